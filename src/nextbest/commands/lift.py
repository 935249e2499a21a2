"""``nextbest lift``: a flow's lift over its control group (docs/learning.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from ..errors import UnknownFlowError
from ..service import DecisionService
from ..store import InvalidInputError
from .database import database_option
from .options import time_option
from .server import _host, _require_tenant, _store

__all__ = ["lift_command"]


def _number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f}%" if percent else f"{value:+.4f}"


def _interval(lift: dict[str, float] | None, percent: bool = False) -> str:
    if lift is None:
        return "-"
    low, high = _number(lift["low"], percent), _number(lift["high"], percent)
    return f"{_number(lift['estimate'], percent)} [{low}, {high}]"


def _rows(scope: str, figures: dict[str, Any]) -> list[tuple[str, ...]]:
    rate, value = figures["successRate"], figures["valuePerCustomer"]

    def share(group: dict[str, Any]) -> str:
        return "-" if group["rate"] is None else f"{group['rate']:.4f} ({group['customers']})"

    def mean(group: dict[str, Any]) -> str:
        return "-" if group["mean"] is None else f"{group['mean']:.2f} ({group['customers']})"

    return [
        (
            scope,
            "success rate",
            share(rate["treatment"]),
            share(rate["control"]),
            _interval(rate["absoluteLift"]),
            _interval(rate["relativeLift"], percent=True),
        ),
        (
            scope,
            "value/customer",
            mean(value["treatment"]),
            mean(value["control"]),
            _interval(value["absoluteLift"]),
            _interval(value["relativeLift"], percent=True),
        ),
    ]


def render_table(report: dict[str, Any]) -> str:
    """The report as a text table: one row per metric for the flow and for each offer."""
    customers = report["customers"]
    level = round(report["confidence"] * 100)
    lines = [
        f"lift of flow {report['flowKey']!r} from {report['since']} to {report['until']} "
        f"({level}% intervals)",
        f"customers: treatment {customers['treatment']}, control {customers['control']}, "
        f"left out (in both groups) {customers['excludedMixed']}",
    ]
    header = (
        "scope",
        "metric",
        "treatment (n)",
        "control (n)",
        f"absolute lift [{level}% CI]",
        f"relative lift [{level}% CI]",
    )
    rows = [header, *_rows("(flow)", report["flow"])]
    for offer in report["offers"]:
        rows.extend(_rows(offer["offerId"], offer))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


@click.command("lift")
@click.option("--tenant", "tenant_id", required=True, help="The tenant.")
@click.option("--flow", "flow_key", required=True, help="The flow's key.")
@click.option(
    "--since", callback=time_option, help="Start of the window (default: 30 days before --until)."
)
@click.option("--until", callback=time_option, help="End of the window (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@database_option
def lift_command(
    tenant_id: str,
    flow_key: str,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
    database: str | None,
) -> None:
    """Success rate and value per customer of a flow's treatment and control groups, with the
    absolute and relative lift and their 95% confidence intervals, for the flow and each offer
    (see docs/learning.md)."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        service = DecisionService(_host(store), store)
        try:
            report = service.lift_report(
                tenant_id, flow_key, since=since, until=until or datetime.now(UTC)
            )
        except UnknownFlowError as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInputError as exc:
            hint = exc.field if exc.field in ("since", "until") else "flow"
            raise click.BadParameter(str(exc), param_hint=f"--{hint}") from None
    click.echo(json.dumps(report, indent=2) if as_json else render_table(report))
