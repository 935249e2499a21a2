"""``nextbest clv ...`` commands: compute, show, settings, schedule.

Every command takes ``--tenant`` and ``--database URL`` (environment NEXTBEST_DATABASE_URL;
default ``sqlite:///nextbest.db``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from nextbest.store import DATABASE_URL_ENV, Store, StoreError, open_store
from nextbest_clv.errors import ClvError
from nextbest_clv.service import SEGMENTS, BatchResult, ClvService

__all__ = ["clv_group", "parse_as_of"]

_database = click.option(
    "--database",
    envvar=DATABASE_URL_ENV,
    default=None,
    metavar="URL",
    help="sqlite:///path.db or postgresql://... [env NEXTBEST_DATABASE_URL; "
    "default sqlite:///nextbest.db]",
)
_tenant = click.option("--tenant", required=True, help="Tenant id.")
_as_of = click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Compute as of this ISO date or time (UTC unless it has an offset); default now.",
)


def parse_as_of(text: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 date or date-time (naive = UTC); None for None.

    Raises:
        click.BadParameter: text that is not ISO-8601.
    """
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO date or time, e.g. 1998-06-30 or 1998-06-30T12:00:00Z",
            param_hint="--as-of",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@contextmanager
def _service(database: str | None) -> Iterator[ClvService]:
    try:
        store: Store = open_store(database)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield ClvService(store)
    except (ClvError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


def progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``progress(done, total)`` callback drawing a click progress bar, and a closer."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def progress(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = click.progressbar(length=max(total, 1), label=label, width=30)
            bar.__enter__()
        bar.update(done - state["done"])
        state["done"] = done

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)

    return progress, close


def print_result(result: BatchResult) -> None:
    """Counts per segment, failures and duration of a batch, as a small table."""
    click.echo(
        f"tenant {result.tenant_id}: {result.computed} record(s) as of "
        f"{result.to_dict()['asOf']} in {result.duration_seconds:.2f} s"
        + (f" (segment {result.segment})" if result.segment else "")
    )
    for name in SEGMENTS:
        click.echo(f"  {name:<8} {result.counts[name]:>9}")
    if result.failed:
        click.echo(f"  failed   {result.failed:>9}", err=True)
        for failure in result.failures[:10]:
            click.echo(f"    {failure['customerId']}: {failure['reason']}", err=True)


@click.group("clv")
def clv_group() -> None:
    """Customer lifetime value (nextbest-clv): compute, show, settings, schedule."""


@clv_group.command("compute")
@_tenant
@click.option("--segment", type=click.Choice(SEGMENTS), default=None, help="Only this segment.")
@_as_of
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compute_command(
    tenant: str, segment: str | None, as_of: str | None, database: str | None, as_json: bool
) -> None:
    """Batch compute the tenant's CLV records (all customers or one segment)."""
    when = parse_as_of(as_of)
    progress, close = progress_bar("Storing CLV records")
    with _service(database) as service:
        try:
            result = service.compute_batch(tenant, segment=segment, as_of=when, progress=progress)
        finally:
            close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_result(result)


@clv_group.command("show")
@click.argument("customer")
@_tenant
@_as_of
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show_command(
    customer: str, tenant: str, as_of: str | None, database: str | None, as_json: bool
) -> None:
    """Show a customer's CLV record (stored, else computed and stored)."""
    when = parse_as_of(as_of)
    with _service(database) as service:
        record = service.get(tenant, customer, as_of=when)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    width = max(len(k) for k in record)
    for key, value in record.items():
        click.echo(f"{key:<{width}}  {value}")


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--set")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string, e.g. schedule=15 3 * * *
    return key.strip(), value


@clv_group.command("settings")
@_tenant
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a setting (camelCase name; JSON value, null clears the schedule). Repeatable.",
)
@_database
def settings_command(tenant: str, assignments: tuple[str, ...], database: str | None) -> None:
    """Show (or change with --set) the tenant's CLV settings."""
    changes = dict(_parse_assignment(a) for a in assignments)
    with _service(database) as service:
        if changes:
            settings = service.update_settings(tenant, changes)
        else:
            service.require_tenant(tenant)
            settings = service.get_settings(tenant)
    click.echo(json.dumps(settings.to_json(), indent=2))


@clv_group.command("schedule")
@_tenant
@click.option("--cron", default=None, help='Five-field cron (UTC), e.g. "15 3 * * *".')
@click.option("--clear", is_flag=True, help="Remove the schedule.")
@_database
def schedule_command(tenant: str, cron: str | None, clear: bool, database: str | None) -> None:
    """Schedule the tenant's batch compute; the API server runs it (one process only)."""
    if (cron is None) == (not clear):
        raise click.UsageError("give either --cron EXPRESSION or --clear")
    with _service(database) as service:
        settings = service.update_settings(tenant, {"schedule": None if clear else cron})
    if settings.schedule is None:
        click.echo(f"tenant {tenant}: CLV schedule cleared")
    else:
        click.echo(f"tenant {tenant}: CLV batch compute scheduled at {settings.schedule!r} (UTC)")
