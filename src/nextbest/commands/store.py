"""CLI commands for the store: ``db upgrade``, ``tenants``, ``keys``, ``ingest`` (interactions,
or customer attributes with ``--customers``),
``interactions`` (show, correct, delete one recorded outcome) and ``customers forget``.

The host's ``nextbest`` click group calls :func:`register_store_commands`. Every command takes
``--database URL`` (environment: NEXTBEST_DATABASE_URL; default ``sqlite:///nextbest.db``) and
prints the database it uses on stderr (``nextbest.commands.database``).
Corrections, deletions and forgetting go through the service of a Host on the store, so the
plugins' hooks run (their caches follow) and their per-customer documents are forgotten too.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nextbest.commands.database import database_option, open_database
from nextbest.commands.options import option_value, time_option
from nextbest.errors import PluginError
from nextbest.ingest import (
    DECIMALS,
    FORMATS,
    NEGATIVE_VALUES,
    IngestError,
    IngestReport,
    ingest_file,
)
from nextbest.ingest.customers import (
    CUSTOMER_FORMATS,
    DEFAULT_CUSTOMER_COLUMN,
    ingest_customers,
)
from nextbest.store import (
    ROLES,
    TENANT_SETTINGS,
    Interaction,
    InteractionIn,
    InteractionNotFoundError,
    StoreError,
    tenant_setting_problem,
)

if TYPE_CHECKING:  # the host (and the engine) load only when a command needs them
    from nextbest.service import DecisionService

_SHOWN_ERRORS = 20


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
    with open_database(database, schema="any") as store:
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
    with open_database(database) as store:
        try:
            store.create_tenant(tenant_id, name)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"created tenant {tenant_id}")


@tenants_group.command("list")
@database_option
def tenants_list(database: str | None) -> None:
    """List tenants (id, name, creation time)."""
    with open_database(database) as store:
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
    with open_database(database) as store:
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
    with open_database(database) as store:
        revoked = store.revoke_api_key(tenant_id, key_id)
    if not revoked:
        raise click.ClickException(f"no valid key {key_id!r} for tenant {tenant_id!r}")
    click.echo(f"revoked key {key_id}")


_INGEST_EPILOG = """\b
A first import into a new database (./nextbest.db unless --database):
  nextbest ingest orders.csv --tenant shop --create-tenant
A shop export with order ids (a corrected export replaces the rows it changes),
semicolons and decimal commas:
  nextbest ingest orders.csv --tenant shop --id-col order_id --delimiter ';'
    --decimal , --value-col amount --timestamp-col created_at --customer-col email
CDNOW files (../shared/data/cdnow; whitespace-separated, dates YYYYMMDD):
  sample (no header: master id, sample id, date, CDs, dollars):
    nextbest ingest CDNOW_sample.txt --tenant T --no-header --customer-col 1
      --timestamp-col 3 --value-col 5 --timestamp-format %Y%m%d
  master (header "customer_id date number_of_cds dollar_value"):
    nextbest ingest CDNOW_master.txt.gz --tenant T --customer-col customer_id
      --timestamp-col date --value-col dollar_value --timestamp-format %Y%m%d
  or by position, the header line still skipped:
    ... --customer-col 1 --timestamp-col 2 --value-col 4 --timestamp-format %Y%m%d
Customer attributes (CSV with a customerId column, or JSON lines):
  nextbest ingest --customers customers.csv --tenant shop
  nextbest ingest --customers crm.jsonl --tenant shop --merge
"""


@click.command("ingest", epilog=_INGEST_EPILOG)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_id", required=True, help="Tenant the interactions belong to.")
@click.option(
    "--customers",
    is_flag=True,
    help="FILE holds customer attributes, not interactions: CSV with a customerId column "
    "(or --customer-col) and one column per attribute, or JSON lines (.jsonl) of objects. "
    "Each row replaces the customer's stored attributes (--merge: updates the ones it names).",
)
@click.option(
    "--merge",
    is_flag=True,
    help="With --customers: update only the attributes a row names (an empty cell or null "
    "removes one) instead of replacing the customer's attributes.",
)
@click.option(
    "--create-tenant",
    is_flag=True,
    help="Create the tenant if it does not exist, and the database if there is none yet "
    "(migrated to the current schema).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice((*FORMATS, *CUSTOMER_FORMATS[1:])),
    default=None,
    help="File format [default: from the extension (.tsv is CSV with tabs), .gz looked "
    "through; gzip is also recognised by content]; jsonl only with --customers.",
)
@click.option("--no-header", is_flag=True, help="The first line is data, not column names.")
@click.option("--customer-col", help="Customer id column: header name or 1-based position.")
@click.option("--timestamp-col", help="Time column: header name or 1-based position.")
@click.option("--value-col", help="Value column (money; empty means 0).")
@click.option("--outcome-col", help="Outcome column (default: --outcome for every row).")
@click.option("--offer-col", help="Offer id column.")
@click.option("--channel-col", help="Channel column.")
@click.option(
    "--id-col",
    help="A column identifying each row, e.g. order_id: its key is ingest:id:<outcome>:<id>, so "
    "a later export with the same id replaces the stored row (summaries recomputed) instead of "
    "adding one. A row missing from a later export is not deleted.",
)
@click.option(
    "--timestamp-format",
    default=None,
    help="strptime format, e.g. %Y%m%d [default: ISO-8601]; times without a zone are UTC.",
)
@click.option(
    "--outcome",
    default="conversion",
    show_default=True,
    help="Outcome of every row without an outcome column (or with an empty cell).",
)
@click.option(
    "--negative-values",
    type=click.Choice(NEGATIVE_VALUES),
    default=None,
    help="A negative value on a row of --outcome: record it as a refund, or reject the row "
    "[default: refund without an outcome column, reject with one].",
)
@click.option(
    "--delimiter",
    default=None,
    help="Field delimiter, one character (a tab: \\t) [default: ',', a tab for .tsv]; reads "
    "the file as CSV.",
)
@click.option(
    "--decimal",
    type=click.Choice(DECIMALS),
    default=".",
    show_default=True,
    help="Decimal separator of values (15,50 with ','); thousands separators are refused.",
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of the file, e.g. cp1252 (a UTF-8 byte order mark is skipped).",
)
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected rows here (CSV: line, reason, original fields).",
)
@click.option(
    "--source",
    default=None,
    help="Name of the data source in the rows' idempotency keys [default: the file name "
    "without directories and .gz]. Keep it when re-importing an edited or renamed copy. "
    "Not used with --id-col.",
)
@database_option
def ingest_command(
    file: Path,
    tenant_id: str,
    customers: bool,
    merge: bool,
    create_tenant: bool,
    fmt: str | None,
    no_header: bool,
    customer_col: str | None,
    timestamp_col: str | None,
    value_col: str | None,
    outcome_col: str | None,
    offer_col: str | None,
    channel_col: str | None,
    id_col: str | None,
    timestamp_format: str | None,
    outcome: str,
    negative_values: str | None,
    delimiter: str | None,
    decimal: str,
    encoding: str,
    reject_file: Path | None,
    source: str | None,
    database: str | None,
) -> None:
    """Import an interaction/transaction FILE (CSV, Parquet or whitespace-separated text).

    Without --id-col each row's idempotency key is made of --source, the row's normalised
    content and its occurrence number among identical rows, so re-running the file adds
    nothing, and after fixing rejected rows a re-run adds exactly those rows. A row that
    cannot be read exactly (field count, encoding, time, value, id, outcome) is rejected with
    its line and reason; exit status 1 when any row was rejected (the valid rows are stored).

    With --customers, FILE holds customer attributes (see docs/api.md, "Bulk import").
    """
    if customers or merge or fmt == "jsonl":
        given = {
            "--timestamp-col": timestamp_col,
            "--value-col": value_col,
            "--outcome-col": outcome_col,
            "--offer-col": offer_col,
            "--channel-col": channel_col,
            "--id-col": id_col,
            "--timestamp-format": timestamp_format,
            "--negative-values": negative_values,
            "--reject-file": reject_file,
            "--source": source,
            "--no-header": no_header or None,
        }
        if not customers:
            raise click.UsageError(
                "--merge and --format jsonl are for customer attributes: add --customers"
            )
        stray = [name for name, value in given.items() if value is not None]
        if stray or fmt not in (None, *CUSTOMER_FORMATS):
            raise click.UsageError(
                f"{', '.join(stray) or '--format ' + str(fmt)} cannot be used with --customers "
                "(it takes --customer-col, --format csv|jsonl, --delimiter, --encoding, --merge)"
            )
        _ingest_customers(
            file, tenant_id, create_tenant, fmt, customer_col, delimiter, encoding, merge, database
        )
        return
    retry = (
        f"run the same command with --create-tenant (e.g. `nextbest ingest "
        f"{shlex.quote(str(file))} --tenant {shlex.quote(tenant_id)} --create-tenant`)"
    )
    bar: Any = None

    def start(total: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=total, label=f"ingesting {file.name}", file=sys.stderr)
        bar.__enter__()

    def advance(lines: int) -> None:
        if bar is not None:
            bar.update(lines)

    with open_database(
        database,
        schema="create" if create_tenant else "current",
        missing_hint=f"to create it with tenant {tenant_id!r} and import, {retry}",
    ) as store:
        if not create_tenant and store.get_tenant(tenant_id) is None:
            raise click.ClickException(
                f"tenant {tenant_id!r} does not exist in this database: to create it and "
                f"import, {retry}; or create it with `nextbest tenants create "
                f"{shlex.quote(tenant_id)}`"
            )
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
                id_col=_column(id_col),
                timestamp_format=timestamp_format,
                outcome=outcome,
                negative_values=negative_values,  # type: ignore[arg-type]
                delimiter=delimiter,
                decimal=decimal,
                encoding=encoding,
                create_tenant=create_tenant,
                reject_file=reject_file,
                source=source,
                progress=advance,
                on_start=start,
            )
        except (IngestError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        if report.customers:
            # Plugins bring what they derive up to date (e.g. records watched by triggers).
            from nextbest.host import Host

            failures = Host(store=store).notify_interactions_imported(tenant_id, report.customers)
            for plugin, problem in failures:
                click.echo(
                    f"Warning: plugin {plugin!r} failed after the import ({problem}); the "
                    "interactions are stored",
                    err=True,
                )
    if report.tenant_created:
        click.echo(f"created tenant {tenant_id}", err=True)
    click.echo(
        f"rows read: {report.rows_read}, stored: {report.stored}, "
        f"already stored: {report.duplicates}, replaced: {report.replaced}, "
        f"rejected: {len(report.failed)}"
    )
    for error in report.failed[:_SHOWN_ERRORS]:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    if len(report.failed) > _SHOWN_ERRORS:
        more = len(report.failed) - _SHOWN_ERRORS
        hint = f"; see {reject_file}" if reject_file else "; use --reject-file to keep them all"
        click.echo(f"... and {more} more rejected rows{hint}", err=True)
    if report.failed:
        raise SystemExit(1)


def _ingest_customers(
    file: Path,
    tenant_id: str,
    create_tenant: bool,
    fmt: str | None,
    customer_col: str | None,
    delimiter: str | None,
    encoding: str,
    merge: bool,
    database: str | None,
) -> None:
    """``nextbest ingest --customers``: customer attributes, rejected rows reported."""
    with open_database(database, schema="create" if create_tenant else "current") as store:
        created = False
        if store.get_tenant(tenant_id) is None:
            if not create_tenant:
                raise click.ClickException(
                    f"tenant {tenant_id!r} does not exist in this database: add --create-tenant "
                    f"or create it with `nextbest tenants create {shlex.quote(tenant_id)}`"
                )
            store.create_tenant(tenant_id)
            created = True
        try:
            report = ingest_customers(
                store,
                file,
                tenant_id,
                format=fmt,  # type: ignore[arg-type]
                customer_col=customer_col or DEFAULT_CUSTOMER_COLUMN,
                delimiter=delimiter or ",",
                encoding=encoding,
                merge=merge,
            )
        except (IngestError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None
    if created:
        click.echo(f"created tenant {tenant_id}", err=True)
    click.echo(
        f"rows read: {report.rows_read}, customers stored: {report.stored}, "
        f"rejected: {len(report.failed)}"
    )
    for error in report.failed[:_SHOWN_ERRORS]:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    if len(report.failed) > _SHOWN_ERRORS:
        click.echo(f"... and {len(report.failed) - _SHOWN_ERRORS} more rejected rows", err=True)
    if report.failed:
        raise SystemExit(1)


@tenants_group.command("settings")
@click.argument("tenant_id")
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a setting (VALUE is JSON, else text), e.g. acceptUnknownOffers=true. Repeatable.",
)
@click.option("--unset", "removals", multiple=True, metavar="KEY", help="Remove a setting.")
@database_option
def tenants_settings(
    tenant_id: str, changes: tuple[str, ...], removals: tuple[str, ...], database: str | None
) -> None:
    """Show (and with --set/--unset change) the settings of tenant TENANT_ID, as JSON.

    acceptUnknownOffers=true lets outcomes name offers that are not in the tenant's catalog
    (offers managed elsewhere); by default such an outcome is refused. default_flow_key is the
    flow recommend runs when a request names none. controlGroup='{"share": 0.1, "salt": "q4",
    "mode": "none"}' gives the tenant's flows a control group (docs/learning.md).
    """
    update: dict[str, Any] = {key: None for key in removals}
    for change in changes:
        key, sep, text = change.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{change!r} is not KEY=VALUE", param_hint="--set")
        value = option_value(key, text, "--set")
        if key not in TENANT_SETTINGS:
            raise click.BadParameter(
                f"unknown setting {key!r}; the settings are {', '.join(TENANT_SETTINGS)}",
                param_hint="--set",
            )
        problem = tenant_setting_problem(key, value)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="--set")
        update[key] = value
    with open_database(database) as store:
        try:
            if update:
                settings = store.update_tenant_settings(tenant_id, update)
            else:
                tenant = store.get_tenant(tenant_id)
                if tenant is None:
                    raise click.ClickException(
                        f"tenant {tenant_id!r} does not exist: create it with "
                        "`nextbest tenants create`"
                    )
                settings = tenant.settings
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(settings, indent=2, sort_keys=True))


@contextmanager
def _service(database: str | None) -> Iterator[DecisionService]:
    """The decision service of a Host on the store (plugins loaded, so their hooks run)."""
    from nextbest.host import Host
    from nextbest.service import DecisionService

    with open_database(database) as store:
        try:
            host = Host(store=store)
        except PluginError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            yield DecisionService(host, store)
        except InteractionNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc


def _interaction_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "interactionId": interaction.interaction_id,
        "idempotencyKey": interaction.idempotency_key,
        "customerId": interaction.customer_id,
        "offerId": interaction.offer_id,
        "outcome": interaction.outcome,
        "classification": interaction.classification,
        "kind": interaction.kind,
        "value": interaction.value,
        "occurredAt": interaction.occurred_at.isoformat(),
        "recommendationId": interaction.recommendation_id,
        "rank": interaction.rank,
        "channel": interaction.channel,
        "context": interaction.context,
        "recordedAt": interaction.recorded_at.isoformat(),
    }


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


tenant_option = click.option(
    "--tenant", "tenant_id", required=True, help="Tenant the data belongs to."
)


@click.group("interactions")
def interactions_group() -> None:
    """Show, correct or delete one recorded outcome by its idempotency key."""


@interactions_group.command("show")
@click.argument("key")
@tenant_option
@database_option
def interactions_show(key: str, tenant_id: str, database: str | None) -> None:
    """Print the outcome recorded under idempotency key KEY (JSON)."""
    with _service(database) as service:
        found = service.store.get_interaction(tenant_id, key)
        if found is None:
            raise click.ClickException(f"no interaction is recorded under idempotency key {key!r}")
        _echo_json(_interaction_json(found))


@interactions_group.command("delete")
@click.argument("key")
@tenant_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@database_option
def interactions_delete(key: str, tenant_id: str, yes: bool, database: str | None) -> None:
    """Delete the outcome recorded under idempotency key KEY; its customer's summaries are
    recomputed in the same transaction."""
    with _service(database) as service:
        if not yes:
            click.confirm(f"delete the interaction {key!r} of tenant {tenant_id!r}?", abort=True)
        deleted = service.delete_outcome(tenant_id, key)
    click.echo(
        f"deleted {deleted.outcome} of customer {deleted.customer_id} "
        f"({deleted.occurred_at.isoformat()}, value {deleted.value:g})"
    )


@interactions_group.command("correct")
@click.argument("key")
@tenant_option
@click.option("--customer-id", help="The customer it belongs to.")
@click.option("--outcome", help="The outcome (built-in or custom type).")
@click.option("--offer-id", help="The offer (drops a recommendationId + rank citation).")
@click.option("--channel", help="The channel.")
@click.option("--value", type=float, help="The value (a refund's is <= 0).")
@click.option(
    "--timestamp", callback=time_option, help="When it happened (ISO-8601; UTC if no zone)."
)
@database_option
def interactions_correct(
    key: str,
    tenant_id: str,
    customer_id: str | None,
    outcome: str | None,
    offer_id: str | None,
    channel: str | None,
    value: float | None,
    timestamp: datetime | None,
    database: str | None,
) -> None:
    """Correct the outcome recorded under idempotency key KEY: the options given replace its
    recorded fields, the others are kept. Its summaries (and those of a new customer) are
    recomputed in the same transaction; prints the corrected outcome (JSON)."""
    with _service(database) as service:
        found = service.store.get_interaction(tenant_id, key)
        if found is None:
            raise click.ClickException(f"no interaction is recorded under idempotency key {key!r}")
        cited = offer_id is None and found.recommendation_id is not None
        corrected = InteractionIn(
            customer_id=found.customer_id if customer_id is None else customer_id,
            outcome=found.outcome if outcome is None else outcome,
            idempotency_key=key,
            offer_id=found.offer_id if offer_id is None else offer_id,
            channel=found.channel if channel is None else channel,
            value=found.value if value is None else value,
            occurred_at=found.occurred_at if timestamp is None else timestamp,
            recommendation_id=found.recommendation_id if cited else None,
            rank=found.rank if cited else None,
            context=found.context,
        )
        correction = service.correct_outcome(tenant_id, key, corrected)
    if not correction.changed:
        click.echo("nothing to correct: the outcome is recorded like that", err=True)
    _echo_json(_interaction_json(correction.after))


@click.group("customers")
def customers_group() -> None:
    """Customer data: forget a customer (privacy requests)."""


@customers_group.command("forget")
@tenant_option
@click.option("--customer-id", required=True, help="The customer to forget.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@database_option
def customers_forget(tenant_id: str, customer_id: str, yes: bool, database: str | None) -> None:
    """Delete everything stored about a customer in one transaction: interactions, summaries,
    recommendations and the documents plugins keep per customer. Prints what was deleted."""
    with _service(database) as service:
        if not yes:
            click.confirm(
                f"forget customer {customer_id!r} of tenant {tenant_id!r}? This cannot be undone",
                abort=True,
            )
        result = service.forget_customer(tenant_id, customer_id)
    counts = dataclasses.asdict(result)
    documents = counts.pop("documents")
    failures = counts.pop("plugin_failures")
    click.echo(
        f"forgot customer {customer_id}: "
        + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
        + "".join(f", {n} {namespace} documents" for namespace, n in sorted(documents.items()))
    )
    for plugin, error in failures:
        click.echo(
            f"Error: plugin {plugin!r} failed to forget the customer ({error}); what it keeps "
            "may remain: run the command again once it is fixed",
            err=True,
        )
    if failures:
        raise SystemExit(1)


def register_store_commands(cli: click.Group) -> None:
    """Add ``db``, ``tenants``, ``keys``, ``ingest``, ``interactions`` and ``customers`` to
    the ``nextbest`` command group."""
    for command in (
        db_group,
        tenants_group,
        keys_group,
        ingest_command,
        interactions_group,
        customers_group,
    ):
        cli.add_command(command)
