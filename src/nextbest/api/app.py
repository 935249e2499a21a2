"""The FastAPI application: host routes, plugin routes, /healthz, one error shape."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ..hookcalls import call_impl, implementations
from ..host import Host
from ..service import DecisionService
from ..store import Store
from ..version import __version__ as _version
from . import admin, customer_data, decisions, flows, offers
from .errors import install_error_handlers
from .routing import JsonRoute


def plugin_router(host: Host) -> APIRouter:
    """A router holding every plugin's routes (``register_routes(router, host)``)."""
    router = APIRouter(route_class=JsonRoute)
    for impl in implementations(host.pm, "register_routes"):
        call_impl(impl, router=router, host=host)
    return router


def create_app(host: Host, store: Store, *, service: DecisionService | None = None) -> FastAPI:
    """Build the API for ``host`` on ``store``: recommend, respond, offers, flows, outcome
    types and keys under ``/api/v1``, plugin routes, ``/healthz``, ``/openapi.json``, ``/docs``.

    ``host`` must be the host of ``store`` (``Host(store=store)``): plugin routes and hooks
    reach the store through the host, so both must mean the same database.
    """
    if host.store is not store or (service is not None and service.store is not store):
        raise ValueError(
            "create_app(host, store): the host was created with another store; "
            "create it with Host(store=store)"
        )
    app = FastAPI(
        title="nextbest",
        version=_version,
        description="Next-best-offer decisions and outcomes. Every /api request needs "
        "X-Tenant-Id and 'Authorization: Bearer <key>' (or X-API-Key).",
    )
    app.state.host = host
    app.state.store = store
    app.state.service = service or DecisionService(host, store)
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Liveness check (no authentication)")
    def healthz() -> dict[str, str]:
        """``{"status": "ok"}`` while the server answers."""
        return {"status": "ok"}

    for module in (decisions, offers, flows, admin, customer_data):
        app.include_router(module.router)
    app.include_router(plugin_router(host))
    return app


__all__ = ["create_app", "plugin_router"]
