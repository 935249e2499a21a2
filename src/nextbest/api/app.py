"""The FastAPI application: host routes, plugin routes, /healthz, one error shape, the body
limit, and an OpenAPI description that tells the truth (``openapi.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from ..hookcalls import call_impl, implementations
from ..host import Host
from ..outbox import Deliverer, WebhookSettings
from ..service import DecisionService
from ..store import Store
from ..ui.routes import ui_router
from ..version import __version__ as _version
from . import (
    admin,
    contact_policies,
    customer_attributes,
    customer_data,
    decisions,
    flows,
    offers,
    profiles,
    reports,
    simulations,
    triggers,
    webhooks,
)
from .body_limit import BodyLimitMiddleware, resolve_max_body_bytes
from .errors import install_error_handlers
from .openapi import create_documented_app
from .routing import JsonRoute


def plugin_router(host: Host) -> APIRouter:
    """A router holding every plugin's routes (``register_routes(router, host)``)."""
    router = APIRouter(route_class=JsonRoute)
    for impl in implementations(host.pm, "register_routes"):
        call_impl(impl, router=router, host=host)
    return router


def create_app(
    host: Host,
    store: Store,
    *,
    service: DecisionService | None = None,
    max_body_bytes: int | None = None,
    webhook_settings: WebhookSettings | None = None,
    deliver_webhooks: bool = False,
) -> FastAPI:
    """Build the API for ``host`` on ``store``: recommend, respond, offers, flows, outcome
    types, keys and webhooks under ``/api/v1``, plugin routes, ``/healthz``,
    ``/openapi.json``, ``/docs``, and the report at ``/ui/`` (docs/report.md).

    ``host`` must be the host of ``store`` (``Host(store=store)``): plugin routes and hooks
    reach the store through the host, so both must mean the same database.

    ``max_body_bytes`` limits every request body (413 beyond it); default
    ``NEXTBEST_MAX_BODY_BYTES``, else 1 MiB.

    ``webhook_settings`` (default: from the environment, see :class:`WebhookSettings`) say
    which webhook URLs are allowed; with ``deliver_webhooks`` a deliverer thread runs with the
    app's lifespan (started at startup, stopped at shutdown), as ``nextbest serve`` does.
    """
    if host.store is not store or (service is not None and service.store is not store):
        raise ValueError(
            "create_app(host, store): the host was created with another store; "
            "create it with Host(store=store)"
        )
    limit = resolve_max_body_bytes(max_body_bytes)
    settings = webhook_settings or WebhookSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deliverer = Deliverer(store, settings) if deliver_webhooks else None
        if deliverer is not None:
            deliverer.start()
        app.state.deliverer = deliverer
        try:
            yield
        finally:
            if deliverer is not None:
                deliverer.stop()

    app = create_documented_app(
        lifespan=lifespan,
        title="nextbest",
        version=_version,
        description="Next-best-offer decisions and outcomes. Every `/api` request needs "
        "`X-Tenant-Id` and `Authorization: Bearer <key>` (or `X-API-Key`): use Authorize.",
    )
    app.state.host = host
    app.state.store = store
    app.state.service = service or DecisionService(host, store)
    app.state.max_body_bytes = limit
    app.state.webhooks = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=limit)

    @app.get("/healthz", tags=["health"], summary="Liveness check (no authentication)")
    def healthz() -> dict[str, str]:
        """``{"status": "ok"}`` while the server answers."""
        return {"status": "ok"}

    for module in (
        decisions,
        offers,
        flows,
        admin,
        customer_data,
        customer_attributes,
        profiles,
        webhooks,
        triggers,
        reports,
        simulations,
    ):
        app.include_router(module.router)
    app.include_router(contact_policies.router)
    app.include_router(triggers.runs_router)
    app.include_router(plugin_router(host))
    app.include_router(ui_router(host, store))  # the report in the browser, /ui/
    return app


__all__ = ["create_app", "plugin_router"]
