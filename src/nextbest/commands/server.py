"""CLI commands for the service: ``serve`` (with ``--demo``), ``offers ...`` and ``flows ...``.

``offers`` and ``flows`` do from the command line what the management endpoints do over HTTP,
with the same validation (through the Host, so plugin rule types are known).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..documents import load_document
from ..errors import FlowValidationError, PluginError
from ..store import OfferExistsError, Store, TenantExistsError
from .database import database_option, open_database
from .webhooks import allow_private_option, retry_schedule_option, settings_of

if TYPE_CHECKING:  # the host (and the engine) load only when a command needs them
    from ..host import Host

DEMO_TENANT = "demo"
_EXAMPLES = Path(__file__).resolve().parents[3] / "examples"  # the checkout's examples/


def _host(store: Store | None = None) -> Host:
    from ..host import Host

    try:
        return Host(store=store)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _store(database: str | None, *, upgrade: bool = False) -> Iterator[Store]:
    """Open the store (announced on stderr); with ``upgrade`` create or migrate it, else
    require it at the current schema."""
    hint = "create it with `nextbest db upgrade`, or pass --upgrade"
    with open_database(
        database, schema="any" if upgrade else "current", missing_hint=hint
    ) as store:
        if upgrade:
            applied = store.upgrade()
            if applied:
                click.echo(f"applied migrations {applied} to {store.url}", err=True)
        yield store


def _require_tenant(store: Store, tenant_id: str) -> None:
    if store.get_tenant(tenant_id) is None:
        raise click.ClickException(
            f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
        )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _fail_validation(name: str, exc: FlowValidationError) -> NoReturn:
    lines = [f"{name}: {len(exc.issues)} validation error(s)"]
    lines.extend(f"  {issue}" for issue in exc.issues)
    raise click.ClickException("\n".join(lines))


def _load(file: str | Path) -> Any:
    """The document in ``file``; a file that cannot be read or parsed is a clear error."""
    try:
        return load_document(file)
    except FlowValidationError as exc:
        _fail_validation(str(file), exc)


def _offers_of(document: Any) -> list[dict[str, Any]]:
    """Offers from a file: a list, ``{"offers": [...]}`` or one offer object."""
    if isinstance(document, dict) and "offers" in document:
        document = document["offers"]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list) or not all(isinstance(o, dict) for o in document):
        raise click.ClickException(
            "an offers file holds a list of offers, {offers: [...]} or one offer object"
        )
    return document


# -- demo ------------------------------------------------------------------------------------
def ensure_demo(store: Store, host: Host, examples: Path = _EXAMPLES) -> str:
    """Make the demo tenant ready: tenant, example offers, the cross-sell flow published (a new
    version only when the file changed). Return a new admin key (shown once)."""
    offers_file = examples / "offers.yaml"
    flow_file = examples / "flows" / "cross-sell.yaml"
    for path in (offers_file, flow_file):
        if not path.is_file():
            raise click.ClickException(f"--demo needs {path}; run it from a nextbest checkout")
    with suppress(TenantExistsError):
        store.create_tenant(DEMO_TENANT, "Demo tenant")
    offers = _offers_of(_load(offers_file))
    try:
        host.load_offers(offers)
        document = _load(flow_file)
        flow = host.load_flow(document)
    except FlowValidationError as exc:
        _fail_validation("demo examples", exc)
    for offer in offers:
        store.put_offer(DEMO_TENANT, offer)
    published = store.get_flow(DEMO_TENANT, flow.key, published_only=True)
    if published is None or published.document != document:
        version = store.save_flow(DEMO_TENANT, flow.key, document)
        store.publish_flow(DEMO_TENANT, flow.key, version)
    store.set_default_flow(DEMO_TENANT, flow.key)
    _, key = store.create_api_key(DEMO_TENANT, "admin")
    return key


def _demo_banner(key: str, host: str, port: int) -> str:
    base = f"http://{host}:{port}"
    return (
        f"demo tenant {DEMO_TENANT!r} is ready; admin key (shown once):\n\n  {key}\n\n"
        f"try:\n  curl -s {base}/api/v1/recommend -H 'X-Tenant-Id: {DEMO_TENANT}' "
        f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        '-d \'{"customerId": "ada", "channel": "web", "attributes": '
        '{"age": 36, "income": 72000, "homeowner": true}}\'\n'
        f"docs: {base}/docs\n"
        f"report: {base}/ui/ (sign in with tenant {DEMO_TENANT!r} and the key above)\n"
    )


# -- serve -----------------------------------------------------------------------------------
@click.command("serve")
@click.option("--host", "bind_host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@database_option
@click.option("--upgrade", is_flag=True, help="Apply pending database migrations first.")
@click.option(
    "--demo",
    is_flag=True,
    help="Create the demo tenant with the example offers and flow (implies --upgrade) and "
    "print a new admin key.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    envvar="NEXTBEST_MAX_BODY_BYTES",
    default=None,
    help="The largest request body accepted, in bytes; larger ones answer 413. "
    "Env: NEXTBEST_MAX_BODY_BYTES. [default: 1048576 (1 MiB)]",
)
@click.option(
    "--no-webhook-deliverer",
    "no_deliverer",
    is_flag=True,
    help="Do not deliver webhooks from this process (run `nextbest webhooks deliver` "
    "elsewhere, or let another server do it).",
)
@allow_private_option
@retry_schedule_option
def serve_command(
    bind_host: str,
    port: int,
    database: str | None,
    upgrade: bool,
    demo: bool,
    log_level: str,
    max_body_bytes: int | None,
    no_deliverer: bool,
    allow_private: bool | None,
    retry_schedule: str | None,
) -> None:
    """Run the HTTP API with uvicorn (OpenAPI at /openapi.json, docs at /docs, the web report
    at /ui/) and, unless --no-webhook-deliverer, a webhook deliverer in a background thread."""
    import uvicorn

    from ..api import create_app

    settings = settings_of(allow_private, retry_schedule)

    with _store(database, upgrade=upgrade or demo) as store:
        host = _host(store)
        if demo:
            click.echo(_demo_banner(ensure_demo(store, host), bind_host, port))
        app = create_app(
            host,
            store,
            max_body_bytes=max_body_bytes,
            webhook_settings=settings,
            deliver_webhooks=not no_deliverer,
        )
        click.echo(f"report: http://{bind_host}:{port}/ui/", err=True)
        uvicorn.run(app, host=bind_host, port=port, log_level=log_level)


# -- offers ----------------------------------------------------------------------------------
@click.group("offers")
def offers_group() -> None:
    """Manage a tenant's offers."""


@offers_group.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "tenant_id", required=True, help="The tenant the offers belong to.")
@database_option
def offers_put(file: str, tenant_id: str, database: str | None) -> None:
    """Create or replace the offers in FILE (YAML/JSON: a list, {offers: [...]} or one offer)."""
    offers = _offers_of(_load(file))
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        try:
            _host().load_offers(offers)
        except FlowValidationError as exc:
            _fail_validation(file, exc)
        created = sum(store.put_offer(tenant_id, offer) for offer in offers)
    click.echo(f"{len(offers)} offer(s) stored for {tenant_id}: {created} new, "
               f"{len(offers) - created} replaced")  # fmt: skip


@offers_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "tenant_id", required=True, help="The tenant the offers belong to.")
@database_option
def offers_create(file: str, tenant_id: str, database: str | None) -> None:
    """Create the offers in FILE, like POST /api/v1/offers: an offer whose id already exists is
    left as it is and reported (exit status 1); `offers put` replaces offers."""
    offers = _offers_of(_load(file))
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        try:
            _host().load_offers(offers)
        except FlowValidationError as exc:
            _fail_validation(file, exc)
        existing: list[str] = []
        for offer in offers:
            try:
                store.create_offer(tenant_id, offer)
            except OfferExistsError as exc:
                existing.append(exc.offer_id)
    click.echo(f"{len(offers) - len(existing)} offer(s) created for {tenant_id}")
    if existing:
        shown = ", ".join(repr(offer_id) for offer_id in existing)
        raise click.ClickException(
            f"{len(existing)} offer(s) already exist and were left unchanged: {shown}; "
            "replace them with `nextbest offers put`"
        )


@offers_group.command("list")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the offer documents as JSON.")
@database_option
def offers_list(tenant_id: str, as_json: bool, database: str | None) -> None:
    """List a tenant's offers, by id."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        offers: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = store.list_offers(tenant_id, cursor=cursor, limit=1000)
            offers.extend(page.items)
            if (cursor := page.next_cursor) is None:
                break
    if as_json:
        _echo_json(offers)
        return
    for offer in offers:
        click.echo(f"{offer['id']:<24} {offer.get('status', 'active'):<8} {offer.get('name', '')}")


@offers_group.command("get")
@click.argument("offer_id")
@click.option("--tenant", "tenant_id", required=True)
@database_option
def offers_get(offer_id: str, tenant_id: str, database: str | None) -> None:
    """Print one offer as JSON."""
    with _store(database) as store:
        offer = store.get_offer(tenant_id, offer_id)
    if offer is None:
        raise click.ClickException(f"tenant {tenant_id!r} has no offer {offer_id!r}")
    _echo_json(offer)


@offers_group.command("delete")
@click.argument("offer_id")
@click.option("--tenant", "tenant_id", required=True)
@database_option
def offers_delete(offer_id: str, tenant_id: str, database: str | None) -> None:
    """Delete one offer (recorded outcomes that cite it stay), like DELETE /api/v1/offers/ID."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        deleted = store.delete_offer(tenant_id, offer_id)
    if not deleted:
        raise click.ClickException(f"tenant {tenant_id!r} has no offer {offer_id!r}")
    click.echo(f"offer {offer_id!r} deleted for {tenant_id}")


# -- flows -----------------------------------------------------------------------------------
@click.group("flows")
def flows_group() -> None:
    """Manage a tenant's decision flows (save versions, publish one)."""


@flows_group.command("save")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "tenant_id", required=True)
@click.option("--publish", is_flag=True, help="Publish the saved version at once.")
@database_option
def flows_save(file: str, tenant_id: str, publish: bool, database: str | None) -> None:
    """Validate the flow in FILE and save it as a new (unpublished) version."""
    document = _load(file)
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        try:
            flow = _host().load_flow(document)
        except FlowValidationError as exc:
            _fail_validation(file, exc)
        version = store.save_flow(tenant_id, flow.key, document)
        if publish:
            store.publish_flow(tenant_id, flow.key, version)
    state = "published" if publish else "saved (publish it with `nextbest flows publish`)"
    click.echo(f"flow {flow.key!r} version {version} {state}")


@flows_group.command("publish")
@click.argument("key")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--tenant", "tenant_id", required=True)
@database_option
def flows_publish(key: str, version: int, tenant_id: str, database: str | None) -> None:
    """Make VERSION of flow KEY the one that runs."""
    with _store(database) as store:
        saved = store.get_flow(tenant_id, key, version)
        if saved is None:
            raise click.ClickException(f"tenant {tenant_id!r} has no flow {key!r} v{version}")
        try:
            _host().load_flow(saved.document)
        except FlowValidationError as exc:
            _fail_validation(f"{key} v{version}", exc)
        store.publish_flow(tenant_id, key, version)
    click.echo(f"flow {key!r} version {version} published")


@flows_group.command("list")
@click.option("--tenant", "tenant_id", required=True)
@database_option
def flows_list(tenant_id: str, database: str | None) -> None:
    """List flow keys with their latest and published versions."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        cursor = None
        while True:
            page = store.list_flows(tenant_id, cursor=cursor, limit=1000)
            for info in page.items:
                published = info.published_version or "-"
                click.echo(f"{info.key:<24} latest v{info.latest_version}  published {published}")
            if (cursor := page.next_cursor) is None:
                break


@flows_group.command("get")
@click.argument("key")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--version", type=click.IntRange(min=1), default=None, help="Default: the latest.")
@click.option("--published", is_flag=True, help="The published version.")
@database_option
def flows_get(
    key: str, tenant_id: str, version: int | None, published: bool, database: str | None
) -> None:
    """Print a flow version (with its document) as JSON."""
    with _store(database) as store:
        flow = store.get_flow(tenant_id, key, version, published_only=published)
    if flow is None:
        raise click.ClickException(f"tenant {tenant_id!r} has no such version of flow {key!r}")
    _echo_json(
        {
            "key": flow.key,
            "version": flow.version,
            "published": flow.published,
            "publishedAt": flow.published_at,
            "createdAt": flow.created_at,
            "document": flow.document,
        }
    )


def register_server_commands(cli: click.Group) -> None:
    """Add ``serve``, ``offers`` and ``flows`` to the ``nextbest`` command group."""
    for command in (serve_command, offers_group, flows_group):
        cli.add_command(command)


__all__ = ["DEMO_TENANT", "ensure_demo", "register_server_commands", "serve_command"]
