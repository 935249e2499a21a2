"""``nextbest triggers``: put, list, events, run and preview a tenant's triggers."""

from __future__ import annotations

import json
from typing import Any

import click

from ..documents import load_document
from ..triggers import PreviewTooLargeError, TriggerEngine, TriggerValidationError, engine_for
from .database import database_option
from .server import _fail_validation, _host, _require_tenant, _store

__all__ = ["triggers_group"]

_tenant = click.option("--tenant", "tenant_id", required=True, help="The tenant.")


def _engine(store: Any) -> TriggerEngine:
    engine = engine_for(_host(store))
    if engine is None:  # pragma: no cover - a host on a store always has one
        raise click.ClickException("the trigger engine needs a store")
    return engine


@click.group("triggers")
def triggers_group() -> None:
    """Manage a tenant's triggers (see docs/triggers.md)."""


@triggers_group.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_tenant
@database_option
def triggers_put(file: str, tenant_id: str, database: str | None) -> None:
    """Validate the trigger in FILE (YAML/JSON) and store it (created or replaced)."""
    document = load_document(file)
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        engine = _engine(store)
        key = document.get("key") if isinstance(document, dict) else None
        try:
            stored, created = engine.put(tenant_id, key if isinstance(key, str) else "", document)
        except TriggerValidationError as exc:
            _fail_validation(file, exc)
    click.echo(f"trigger {stored.key!r} {'created' if created else 'replaced'} ({stored.status})")


@triggers_group.command("list")
@_tenant
@database_option
def triggers_list(tenant_id: str, database: str | None) -> None:
    """List the tenant's triggers: key, status, name and condition."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        cursor = None
        while True:
            page = store.list_triggers(tenant_id, cursor=cursor, limit=1000)
            for t in page.items:
                click.echo(f"{t.key}\t{t.status}\t{t.document.get('name')}\t{t.document['when']}")
            cursor = page.next_cursor
            if cursor is None:
                break


@triggers_group.command("events")
@click.argument("key")
@_tenant
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@database_option
def triggers_events(key: str, tenant_id: str, limit: int, database: str | None) -> None:
    """Print a trigger's latest firings as JSON lines, newest first."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        if store.get_trigger(tenant_id, key) is None:
            raise click.ClickException(f"tenant {tenant_id!r} has no trigger {key!r}")
        for event in store.trigger_events(tenant_id, key, limit=limit).items:
            click.echo(json.dumps(event.payload, sort_keys=True))


@triggers_group.command("run")
@_tenant
@database_option
def triggers_run(tenant_id: str, database: str | None) -> None:
    """Evaluate every active trigger of the tenant for every customer now, committing the
    firings (webhooks through the outbox): what time alone changes. Schedule it (cron)."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        results = _engine(store).run(tenant_id)
        for r in results:
            click.echo(f"{r.trigger_key}\t{len(r.firings)} fired\t{json.dumps(r.transitions)}")
        evaluated = max((r.evaluated for r in results), default=0)
        click.echo(f"{len(results)} active trigger(s) over {evaluated:,} customers", err=True)


@triggers_group.command("preview")
@click.argument("key")
@click.argument("customer_ids", nargs=-1)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Without CUSTOMER_IDS: list at most this many customers that would fire.",
)
@_tenant
@database_option
def triggers_preview(
    key: str, customer_ids: tuple[str, ...], limit: int, tenant_id: str, database: str | None
) -> None:
    """Who among CUSTOMER_IDS, or among every customer of the tenant when none is given,
    would fire now (nothing is fired or written)."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        stored = store.get_trigger(tenant_id, key)
        if stored is None:
            raise click.ClickException(f"tenant {tenant_id!r} has no trigger {key!r}")
        engine = _engine(store)
        try:
            loaded = engine.load(tenant_id, stored)
        except TriggerValidationError as exc:
            _fail_validation(key, exc)
        if not customer_ids:
            try:
                found = engine.preview_population(tenant_id, loaded, limit)
            except PreviewTooLargeError as exc:
                raise click.ClickException(str(exc)) from None
            for item in found["wouldFire"]:
                click.echo(f"{item['customerId']}\tFIRE\t{json.dumps(item['values'])}")
            more = " (listed: the first " + str(limit) + ")" if found["truncated"] else ""
            click.echo(
                f"{found['wouldFireCount']:,} of {found['evaluated']:,} customers would fire "
                f"now{more}",
                err=True,
            )
            return
        for item in engine.preview(tenant_id, loaded, customer_ids):
            mark = "FIRE" if item["wouldFire"] else "-"
            click.echo(f"{item['customerId']}\t{mark}\t{json.dumps(item['values'])}")
