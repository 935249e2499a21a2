"""The HTTP API (FastAPI). Build it with :func:`create_app`; guard plugin routes with
:func:`nextbest.api.auth.require_role`, and type their parameters with :data:`Id` and
:data:`Time` so they answer the host's 400s for bad ids and times."""

from __future__ import annotations

from .app import create_app, plugin_router
from .auth import AuthContext, require_role
from .errors import ApiError
from .schemas import Id, Time

__all__ = ["ApiError", "AuthContext", "Id", "Time", "create_app", "plugin_router", "require_role"]
