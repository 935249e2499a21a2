"""Starting a simulation from the report's Simulations page (``POST /ui/simulations``): the
form an admin sees and what its submission does. The same checks as
``POST /api/v1/simulations`` (``parse_options``, then ``submit``: the flows must exist), and
the run starts in the background like the API's; the route checks the session's CSRF token.
The flow to simulate is one of the tenant's published flows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import UnknownFlowError
from ..plugin_api import HostAPI
from ..simulate import SimulationBusyError, parse_options, submit
from ..store import InvalidInputError, Store
from .lift_page import decisions_for
from .pages import PageFailure

#: The role that may start simulations from the report.
START_ROLE = "admin"
#: The form's fields, in the order shown, and the options they become.
_FIELDS = ("flow", "compare", "sample", "seed", "asOf")


def published_flows(store: Store, tenant_id: str) -> list[str]:
    """The keys of the tenant's published flows (the first 1,000 by key)."""
    return [f.key for f in store.list_flows(tenant_id, limit=1000).items if f.published_version]


def start_form(store: Store, tenant_id: str, role: str) -> dict[str, Any] | None:
    """The view of the start form for the page template, or None (a role that may not start
    runs, or a tenant without a published flow)."""
    if role != START_ROLE:
        return None
    flows = published_flows(store, tenant_id)
    if not flows:
        return None
    return {
        "title": "Start a simulation",
        "submit": "Start",
        "fields": [
            {"name": "flow", "label": "Flow (published)", "kind": "select", "value": flows[0],
             "options": [(f, f) for f in flows]},
            {"name": "compare", "label": "Compare with (KEY or KEY@VERSION, optional)",
             "kind": "text", "value": ""},
            {"name": "sample", "label": "Sample size (optional)", "kind": "number", "value": ""},
            {"name": "seed", "label": "Seed (with a sample)", "kind": "number", "value": ""},
            {"name": "asOf", "label": "As of (ISO-8601, default now)", "kind": "text",
             "value": ""},
        ],
    }  # fmt: skip


def start_simulation(
    host: HostAPI, store: Store, tenant_id: str, role: str, form: Mapping[str, str]
) -> str:
    """Start the run the form asks for; its id. ``PageFailure`` 403 for a role that may not,
    400 naming the form field for bad input or a flow that is not published, 409 while the
    tenant's last run has not finished or the server runs as many as it may."""
    if role != START_ROLE:
        raise PageFailure(403, f"starting a simulation needs the {START_ROLE} role")
    raw: dict[str, Any] = {}
    for name in _FIELDS:
        value = form.get(name, "").strip()
        if value:
            raw[name] = value
    flow = raw.get("flow")
    if flow is not None and flow not in published_flows(store, tenant_id):
        raise PageFailure(400, "must be one of the tenant's published flows", "form.flow")
    service = decisions_for(host)
    try:
        options = parse_options(raw, now=datetime.now(UTC))
        record = submit(service, tenant_id, options)
    except InvalidInputError as exc:
        raise PageFailure(400, str(exc), f"form.{exc.field or 'flow'}") from None
    except UnknownFlowError as exc:  # the compared flow or version
        field = "compare" if str(exc).startswith("compare") else "flow"
        raise PageFailure(400, str(exc), f"form.{field}") from None
    except SimulationBusyError as exc:
        raise PageFailure(409, str(exc)) from None
    return record.simulation_id


__all__ = ["START_ROLE", "published_flows", "start_form", "start_simulation"]
