"""``nextbest webhooks``: endpoints (add, list, show, remove, rotate, test, replay), deliveries
(list, show, redeliver), the standalone deliverer (``deliver``) and ``purge``.

Secrets are printed by ``add`` and ``rotate`` only, on stdout (the rest goes to stderr), so
``nextbest webhooks endpoints add ... > secret.txt`` keeps just the secret.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from ..outbox import Deliverer, WebhookSettings, add_endpoint, send_test_event
from ..outbox.schedule import parse_duration
from ..outbox.settings import (
    ALLOW_PRIVATE_ENV,
    DEFAULT_RETENTION_DAYS,
    RETENTION_ENV,
    RETRY_SCHEDULE_ENV,
    retention_from_env,
)
from ..outbox.views import delivery_json, endpoint_json
from ..store import (
    DELIVERY_STATUSES,
    ConflictError,
    EndpointInUseError,
    InvalidInputError,
    NotFoundError,
    Store,
    parse_time,
)
from .database import database_option, open_database

F = TypeVar("F", bound=Callable[..., Any])

tenant_option = click.option(
    "--tenant", "tenant_id", required=True, help="The tenant the endpoint belongs to."
)


def allow_private_option(function: F) -> F:
    """``--allow-private-targets`` (env NEXTBEST_WEBHOOKS_ALLOW_PRIVATE)."""
    return click.option(
        "--allow-private-targets",
        "allow_private",
        is_flag=True,
        default=None,
        help="Allow webhook URLs on loopback, private, link-local and reserved addresses "
        f"(tests, local receivers). Env: {ALLOW_PRIVATE_ENV}=1.",
    )(function)


def retry_schedule_option(function: F) -> F:
    """``--retry-schedule`` (env NEXTBEST_WEBHOOK_RETRY_SCHEDULE)."""
    return click.option(
        "--retry-schedule",
        default=None,
        metavar="PAUSES",
        help="Pauses between attempts, e.g. 5s,5m,30m,2h,5h,10h,10h (the default: 8 attempts "
        f"over about a day). Env: {RETRY_SCHEDULE_ENV}.",
    )(function)


def settings_of(
    allow_private: bool | None, retry_schedule: str | None, **kwargs: Any
) -> WebhookSettings:
    """WebhookSettings from the options (a bad value is a usage error)."""
    try:
        return WebhookSettings.from_env(
            allow_private=allow_private, retry_schedule=retry_schedule, **kwargs
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _tenant(store: Store, tenant_id: str) -> None:
    if store.get_tenant(tenant_id) is None:
        raise click.ClickException(
            f"tenant {tenant_id!r} does not exist: create it with `nextbest tenants create`"
        )


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints, deliveries and the deliverer."""


@webhooks_group.group("endpoints")
def endpoints_group() -> None:
    """A tenant's webhook endpoints."""


@endpoints_group.command("add")
@click.argument("url")
@tenant_option
@click.option("--description", default=None, help="What the endpoint is for.")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    help="An event type to send (repeat for several); default: every type.",
)
@allow_private_option
@database_option
def endpoints_add(
    url: str,
    tenant_id: str,
    description: str | None,
    event_types: tuple[str, ...],
    allow_private: bool | None,
    database: str | None,
) -> None:
    """Add an endpoint at URL and print its signing secret (shown this once)."""
    settings = settings_of(allow_private, None)
    with open_database(database) as store:
        _tenant(store, tenant_id)
        try:
            endpoint, secret = add_endpoint(
                store,
                settings.policy,
                tenant_id,
                url,
                description=description,
                event_types=list(event_types) or None,
            )
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint=exc.field or "URL") from None
    click.echo(f"endpoint {endpoint.endpoint_id} added for {tenant_id}: {endpoint.url}", err=True)
    click.echo("its signing secret (store it now; it is not shown again):", err=True)
    click.echo(secret)


@endpoints_group.command("list")
@tenant_option
@database_option
def endpoints_list(tenant_id: str, database: str | None) -> None:
    """List the tenant's endpoints as JSON (never their secrets)."""
    with open_database(database) as store:
        _tenant(store, tenant_id)
        _echo_json([endpoint_json(e) for e in store.list_webhook_endpoints(tenant_id)])


@endpoints_group.command("remove")
@click.argument("endpoint_id")
@tenant_option
@database_option
def endpoints_remove(endpoint_id: str, tenant_id: str, database: str | None) -> None:
    """Remove ENDPOINT_ID and its deliveries."""
    with open_database(database) as store:
        try:
            deleted = store.delete_webhook_endpoint(tenant_id, endpoint_id)
        except EndpointInUseError as exc:
            raise click.ClickException(str(exc)) from None
        if not deleted:
            raise click.ClickException(f"no endpoint {endpoint_id!r} for tenant {tenant_id!r}")
    click.echo(f"removed endpoint {endpoint_id}")


@endpoints_group.command("rotate")
@click.argument("endpoint_id")
@tenant_option
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="How long the old secret keeps signing alongside the new one (0s: not at all).",
)
@database_option
def endpoints_rotate(endpoint_id: str, tenant_id: str, grace: str, database: str | None) -> None:
    """Give ENDPOINT_ID a new signing secret and print it (shown this once)."""
    try:
        grace_seconds = int(parse_duration(grace))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from None
    with open_database(database) as store:
        try:
            endpoint, secret = store.rotate_webhook_secret(
                tenant_id, endpoint_id, grace_seconds=grace_seconds
            )
        except NotFoundError:
            raise click.ClickException(
                f"no endpoint {endpoint_id!r} for tenant {tenant_id!r}"
            ) from None
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint="--grace") from None
    until = endpoint.previous_secret_until
    click.echo(
        f"rotated the secret of {endpoint_id}; the old one signs too until "
        f"{until.isoformat() if until else 'now (no grace)'}",
        err=True,
    )
    click.echo("the new signing secret (store it now; it is not shown again):", err=True)
    click.echo(secret)


@endpoints_group.command("test")
@click.argument("endpoint_id")
@tenant_option
@database_option
def endpoints_test(endpoint_id: str, tenant_id: str, database: str | None) -> None:
    """Put a webhook.test event in the outbox for ENDPOINT_ID (a deliverer sends it)."""
    with open_database(database) as store:
        try:
            event_id, _ = send_test_event(store, tenant_id, endpoint_id)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(event_id)


@endpoints_group.command("replay")
@click.argument("endpoint_id")
@tenant_option
@click.option("--since", required=True, help="Replay failed deliveries created since (ISO).")
@database_option
def endpoints_replay(endpoint_id: str, tenant_id: str, since: str, database: str | None) -> None:
    """Make ENDPOINT_ID's failed deliveries since --since pending again."""
    try:
        when = parse_time(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with open_database(database) as store:
        try:
            count = store.replay_failed(tenant_id, endpoint_id, when)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{count} failed deliveries of {endpoint_id} are pending again")


@webhooks_group.group("deliveries")
def deliveries_group() -> None:
    """A tenant's webhook deliveries."""


@deliveries_group.command("list")
@tenant_option
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), default=None)
@click.option("--endpoint", "endpoint_id", default=None, help="Only this endpoint's.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="The nextCursor of the previous page.")
@database_option
def deliveries_list(
    tenant_id: str,
    status: str | None,
    endpoint_id: str | None,
    limit: int,
    cursor: str | None,
    database: str | None,
) -> None:
    """List deliveries, newest first, as JSON."""
    with open_database(database) as store:
        try:
            page = store.list_deliveries(
                tenant_id, status=status, endpoint_id=endpoint_id, cursor=cursor, limit=limit
            )
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint="--cursor") from None
    _echo_json({"items": [delivery_json(d) for d in page.items], "nextCursor": page.next_cursor})


@deliveries_group.command("show")
@click.argument("delivery_id", type=click.IntRange(1))
@tenant_option
@database_option
def deliveries_show(delivery_id: int, tenant_id: str, database: str | None) -> None:
    """Show one delivery and its event's payload as JSON."""
    with open_database(database) as store:
        delivery = store.get_delivery(tenant_id, delivery_id)
        if delivery is None:
            raise click.ClickException(f"no delivery {delivery_id} for tenant {tenant_id!r}")
        event = store.get_event(tenant_id, delivery.event_id)
    _echo_json(delivery_json(delivery) | {"payload": None if event is None else event.payload})


@deliveries_group.command("redeliver")
@click.argument("delivery_id", type=click.IntRange(1))
@tenant_option
@database_option
def deliveries_redeliver(delivery_id: int, tenant_id: str, database: str | None) -> None:
    """Make DELIVERY_ID pending again, due now."""
    with open_database(database) as store:
        try:
            store.redeliver(tenant_id, delivery_id)
        except (NotFoundError, ConflictError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"delivery {delivery_id} is pending again")


@webhooks_group.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@allow_private_option
@retry_schedule_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=32, show_default=True)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(1, 86400),
    default=None,
    help="How long a claim holds its deliveries; another deliverer takes them again after. "
    "[default: enough for the whole batch to time out, plus 30 s]",
)
@click.option("--poll-seconds", type=click.FloatRange(0.01, 3600), default=1.0, show_default=True)
@click.option(
    "--retention-days",
    type=click.FloatRange(0, 36500),
    default=None,
    help="Days finished outbox events are kept before the deliverer purges them (0: forever). "
    f"Env: {RETENTION_ENV}. [default: {DEFAULT_RETENTION_DAYS:g}]",
)
@database_option
def deliver_command(
    once: bool,
    allow_private: bool | None,
    retry_schedule: str | None,
    concurrency: int,
    batch_size: int,
    lease_seconds: float | None,
    poll_seconds: float,
    retention_days: float | None,
    database: str | None,
) -> None:
    """Deliver the outbox's webhooks until stopped (SIGINT/SIGTERM finish the batch in hand);
    finished events older than the retention are purged hourly.

    Several deliverers may share a PostgreSQL database; on SQLite run one."""
    settings = settings_of(
        allow_private,
        retry_schedule,
        concurrency=concurrency,
        batch_size=batch_size,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        retention_days=retention_days,
    )
    with open_database(database) as store:
        deliverer = Deliverer(store, settings)
        try:
            if once:
                count = deliverer.drain()
                click.echo(f"{count} deliveries attempted", err=True)
                return
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: deliverer.request_stop())
            click.echo(
                f"delivering (retry schedule {settings.schedule.describe() or 'none'}); "
                "stop with Ctrl-C",
                err=True,
            )
            deliverer.run()
        finally:
            deliverer.stop()


def register_webhook_commands(cli: click.Group) -> None:
    """Add ``webhooks`` to the ``nextbest`` command group."""
    cli.add_command(webhooks_group)


__all__ = ["allow_private_option", "register_webhook_commands", "retry_schedule_option"]


@webhooks_group.command("purge")
@click.option(
    "--older-than-days",
    type=click.FloatRange(0, 36500, min_open=True),
    default=None,
    help="Purge finished events written more than this many days ago. "
    f"[default: {RETENTION_ENV}, else {DEFAULT_RETENTION_DAYS:g}]",
)
@database_option
def purge_command(older_than_days: float | None, database: str | None) -> None:
    """Delete finished outbox events (every delivery delivered or failed) older than
    --older-than-days, with their deliveries. Pending deliveries are never purged; a running
    deliverer does this hourly with its retention (--retention-days)."""
    if older_than_days is None:
        try:
            older_than_days = retention_from_env()
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        if older_than_days <= 0:
            raise click.UsageError(
                f"{RETENTION_ENV} is 0 (keep forever): pass --older-than-days to purge"
            )
    with open_database(database) as store:
        before = datetime.now(UTC) - timedelta(days=older_than_days)
        count = store.purge_events(before)
    click.echo(f"{count} finished outbox events older than {older_than_days:g} days purged")
