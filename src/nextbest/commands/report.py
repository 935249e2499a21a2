"""``nextbest report --tenant T --out report.html [--as-of]``: the tenant's whole web report
as one self-contained HTML file that opens from disk with no network (docs/report.md)."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from .database import database_option
from .options import time_option
from .server import _host, _require_tenant, _store

__all__ = ["report_command"]


@click.command("report")
@click.option("--tenant", "tenant_id", required=True, help="The tenant.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The HTML file to write (replaced when it exists).",
)
@click.option("--as-of", "as_of", callback=time_option, help="The report's time (default: now).")
@database_option
def report_command(tenant_id: str, out: Path, as_of: datetime | None, database: str | None) -> None:
    """Write every report page of TENANT into one HTML file: charts, tables and their data
    inline, Plotly's JS bundled, navigation by anchors; it opens from disk with no server and
    no network. Prints the file's path."""
    from ..ui.export import export_report

    when = as_of or datetime.now(UTC)
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        html = export_report(_host(store), tenant_id, when)
    target = out.resolve()
    if not target.parent.is_dir():
        raise click.BadParameter(
            f"the folder {str(target.parent)!r} does not exist", param_hint="--out"
        )
    # Written beside the target and renamed, so a reader never sees half a report.
    fd, temp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    click.echo(str(target))
