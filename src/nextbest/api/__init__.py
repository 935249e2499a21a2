"""The HTTP API (FastAPI). Build it with :func:`create_app`; guard plugin routes with
:func:`nextbest.api.auth.require_role`."""

from __future__ import annotations

from .app import create_app, plugin_router
from .auth import AuthContext, require_role
from .errors import ApiError

__all__ = ["ApiError", "AuthContext", "create_app", "plugin_router", "require_role"]
