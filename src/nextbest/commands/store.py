"""CLI commands for the store: ``db upgrade``, ``tenants``, ``keys`` and ``ingest``.

The host's ``nextbest`` click group calls :func:`register_store_commands`. Every command takes
``--database URL`` (environment: NEXTBEST_DATABASE_URL; default ``sqlite:///nextbest.db``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nextbest.ingest import FORMATS, IngestError, IngestReport, ingest_file
from nextbest.store import (
    DATABASE_URL_ENV,
    ROLES,
    SchemaNotReadyError,
    Store,
    StoreError,
    open_store,
)

_SHOWN_ERRORS = 20

database_option = click.option(
    "--database",
    "database",
    envvar=DATABASE_URL_ENV,
    default=None,
    metavar="URL",
    help="sqlite:///path.db or postgresql://... [env NEXTBEST_DATABASE_URL; "
    "default sqlite:///nextbest.db]",
)


def _open(database: str | None, *, check_schema: bool = True) -> Store:
    try:
        store = open_store(database)
        if check_schema and store.schema_version() < store.latest_schema_version():
            store.close()
            raise SchemaNotReadyError(
                f"the database at {store.url} is not at schema version "
                f"{store.latest_schema_version()}: run `nextbest db upgrade` first"
            )
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    return store


def _column(value: str | None) -> str | int | None:
    """A column option: digits are a 1-based position, anything else a header name."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


@click.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
@database_option
def db_upgrade(database: str | None) -> None:
    """Create or migrate the database schema (safe to run again)."""
    with _open(database, check_schema=False) as store:
        try:
            applied = store.upgrade()
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
        version = store.schema_version()
    if applied:
        click.echo(f"applied migrations {', '.join(map(str, applied))}; schema version {version}")
    else:
        click.echo(f"schema is up to date (version {version})")


@click.group("tenants")
def tenants_group() -> None:
    """Manage tenants."""


@tenants_group.command("create")
@click.argument("tenant_id")
@click.option("--name", default=None, help="Display name.")
@database_option
def tenants_create(tenant_id: str, name: str | None, database: str | None) -> None:
    """Create tenant TENANT_ID."""
    with _open(database) as store:
        try:
            store.create_tenant(tenant_id, name)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"created tenant {tenant_id}")


@tenants_group.command("list")
@database_option
def tenants_list(database: str | None) -> None:
    """List tenants (id, name, creation time)."""
    with _open(database) as store:
        tenants = store.list_tenants()
    for tenant in tenants:
        click.echo(f"{tenant.tenant_id}\t{tenant.name or ''}\t{tenant.created_at.isoformat()}")


@click.group("keys")
def keys_group() -> None:
    """Manage API keys."""


@keys_group.command("create")
@click.option("--tenant", "tenant_id", required=True, help="Tenant the key belongs to.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@database_option
def keys_create(tenant_id: str, role: str, database: str | None) -> None:
    """Create an API key and print it once (it cannot be shown again)."""
    with _open(database) as store:
        try:
            key_id, plaintext = store.create_api_key(tenant_id, role)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"key id: {key_id}", err=True)
    click.echo("store this key now; it is not shown again:", err=True)
    click.echo(plaintext)


@keys_group.command("revoke")
@click.argument("key_id")
@click.option("--tenant", "tenant_id", required=True, help="Tenant the key belongs to.")
@database_option
def keys_revoke(key_id: str, tenant_id: str, database: str | None) -> None:
    """Revoke API key KEY_ID."""
    with _open(database) as store:
        revoked = store.revoke_api_key(tenant_id, key_id)
    if not revoked:
        raise click.ClickException(f"no valid key {key_id!r} for tenant {tenant_id!r}")
    click.echo(f"revoked key {key_id}")


_INGEST_EPILOG = """\b
CDNOW files (../shared/data/cdnow; whitespace-separated, dates YYYYMMDD):
  sample (no header: master id, sample id, date, CDs, dollars):
    nextbest ingest CDNOW_sample.txt --tenant T --no-header --customer-col 1
      --timestamp-col 3 --value-col 5 --timestamp-format %Y%m%d
  master (header "customer_id date number_of_cds dollar_value"):
    nextbest ingest CDNOW_master.txt.gz --tenant T --customer-col customer_id
      --timestamp-col date --value-col dollar_value --timestamp-format %Y%m%d
  or by position, the header line still skipped:
    ... --customer-col 1 --timestamp-col 2 --value-col 4 --timestamp-format %Y%m%d
"""


@click.command("ingest", epilog=_INGEST_EPILOG)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_id", required=True, help="Tenant the interactions belong to.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="File format [default: from the extension, .gz looked through].",
)
@click.option("--no-header", is_flag=True, help="The first line is data, not column names.")
@click.option("--customer-col", help="Customer id column: header name or 1-based position.")
@click.option("--timestamp-col", help="Time column: header name or 1-based position.")
@click.option("--value-col", help="Conversion value column (empty means 0).")
@click.option("--outcome-col", help="Outcome column (default: --outcome for every row).")
@click.option("--offer-col", help="Offer id column.")
@click.option("--channel-col", help="Channel column.")
@click.option(
    "--timestamp-format",
    default=None,
    help="strptime format, e.g. %Y%m%d [default: ISO-8601]; times without a zone are UTC.",
)
@click.option("--outcome", default="conversion", show_default=True, help="Outcome when no column.")
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected rows here (CSV: line, reason, original fields).",
)
@click.option(
    "--source",
    default=None,
    help="Name of the data source in the rows' idempotency keys [default: the file name "
    "without directories and .gz]. Keep it when re-importing an edited or renamed copy.",
)
@database_option
def ingest_command(
    file: Path,
    tenant_id: str,
    fmt: str | None,
    no_header: bool,
    customer_col: str | None,
    timestamp_col: str | None,
    value_col: str | None,
    outcome_col: str | None,
    offer_col: str | None,
    channel_col: str | None,
    timestamp_format: str | None,
    outcome: str,
    reject_file: Path | None,
    source: str | None,
    database: str | None,
) -> None:
    """Import an interaction/transaction FILE (CSV, Parquet or whitespace-separated text).

    Each row's idempotency key is made of --source, the row's normalised content and its
    occurrence number among identical rows, so re-running the file adds nothing, and after
    fixing rejected rows a re-run adds exactly those rows. Exit status 1 when any row was
    rejected (the valid rows are stored).
    """
    bar: Any = None

    def start(total: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=total, label=f"ingesting {file.name}", file=None)
        bar.__enter__()

    def advance(lines: int) -> None:
        if bar is not None:
            bar.update(lines)

    with _open(database) as store:
        try:
            report: IngestReport = ingest_file(
                store,
                file,
                tenant_id,
                format=fmt,  # type: ignore[arg-type]
                header=not no_header,
                customer_col=_column(customer_col),
                timestamp_col=_column(timestamp_col),
                value_col=_column(value_col),
                outcome_col=_column(outcome_col),
                offer_col=_column(offer_col),
                channel_col=_column(channel_col),
                timestamp_format=timestamp_format,
                outcome=outcome,
                reject_file=reject_file,
                source=source,
                progress=advance,
                on_start=start,
            )
        except (IngestError, StoreError) as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
    click.echo(
        f"rows read: {report.rows_read}, stored: {report.stored}, "
        f"already stored: {report.duplicates}, rejected: {len(report.failed)}"
    )
    for error in report.failed[:_SHOWN_ERRORS]:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    if len(report.failed) > _SHOWN_ERRORS:
        more = len(report.failed) - _SHOWN_ERRORS
        hint = f"; see {reject_file}" if reject_file else "; use --reject-file to keep them all"
        click.echo(f"... and {more} more rejected rows{hint}", err=True)
    if report.failed:
        raise SystemExit(1)


def register_store_commands(cli: click.Group) -> None:
    """Add ``db``, ``tenants``, ``keys`` and ``ingest`` to the ``nextbest`` command group."""
    for command in (db_group, tenants_group, keys_group, ingest_command):
        cli.add_command(command)
