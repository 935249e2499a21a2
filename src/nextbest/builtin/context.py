"""The request context provider: names taken from the decision request itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plugin_api import ContextProvider, ContextRequest

_FIXED = {
    "customer.id": lambda r: r.customer_id,
    "customer.segments": lambda r: list(r.segments),
    "request.channel": lambda r: r.channel,
    "request.placement": lambda r: r.placement,
}


def _resolve(ctx: ContextRequest) -> Mapping[str, Any]:
    request = ctx.request
    out: dict[str, Any] = {}
    for name in ctx.names:
        if name in _FIXED:
            out[name] = _FIXED[name](request)
        elif name.startswith("attributes."):
            out[name] = request.attributes.get(name[len("attributes.") :])
        elif name.startswith("metrics."):
            out[name] = request.metrics.get(name[len("metrics.") :])
    return out


REQUEST_CONTEXT = ContextProvider(
    name="request",
    resolve=_resolve,
    names=frozenset(_FIXED),
    prefixes=("attributes.", "metrics."),
    description="customer id, segments, channel, placement, attributes.* and metrics.* "
    "from the decision request",
)
