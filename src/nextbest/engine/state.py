"""Per-decision state: the request, resolved context, candidates, trace and failure policy.

A DecisionState lives for one decision only, so concurrent decisions share nothing mutable.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import DecisionError
from ..expressions import non_finite, plain_number
from ..models.decision import Candidate, Drop, PluginFailure, Trace
from ..models.request import DecisionRequest
from ..plugin_api import ContextProvider, ContextRequest, HostAPI
from .catalog import CompiledCatalog
from .plan import FlowPlan

log = logging.getLogger("nextbest.engine")

#: The plugin whose context values come from the request itself and whose formula functions
#: failing are formula errors: its problems are the caller's input, not a plugin's fault.
BUILTIN_PLUGIN = "builtin"


class DecisionView:
    """What extension-point hooks see of the decision in progress."""

    __slots__ = ("_state",)

    def __init__(self, state: DecisionState) -> None:
        self._state = state

    @property
    def tenant_id(self) -> str:
        """The tenant the decision is for."""
        return self._state.tenant_id

    @property
    def host(self) -> HostAPI:
        """The deciding host (its ``plugin_state`` and ``store``)."""
        return self._state.host

    @property
    def request(self) -> DecisionRequest:
        """The decision request (customer, channel, attributes, ...)."""
        return self._state.request

    @property
    def as_of(self) -> datetime:
        """The time the decision is made as of (the request's ``asOf``, else now)."""
        return self._state.as_of

    @property
    def flow_key(self) -> str:
        """The key of the flow being run."""
        return self._state.flow.key

    def get(self, name: str) -> Any:
        """A customer-level context name (``customer.x``, ``attributes.y``), or None."""
        return self._state.customer_value(name)


class DecisionState:
    """Everything one decision needs while it runs."""

    __slots__ = (
        "_resolved_providers",
        "as_of",
        "candidates",
        "catalog",
        "customer",
        "explain",
        "flow",
        "host",
        "ranked",
        "request",
        "response_fields",
        "tenant_id",
        "trace",
    )

    def __init__(
        self,
        *,
        flow: FlowPlan,
        catalog: CompiledCatalog,
        host: HostAPI,
        tenant_id: str,
        request: DecisionRequest,
        as_of: datetime,
        explain: bool,
    ) -> None:
        self.flow = flow
        self.host = host
        self.tenant_id = tenant_id
        self.request = request
        self.as_of = as_of
        self.explain = explain
        self.trace: Trace | None = Trace() if explain else None
        self.customer: dict[str, Any] = {}
        self.candidates: list[Candidate] = []
        self.ranked: list[Candidate] | None = None
        self.catalog = catalog
        self.response_fields: tuple[str, ...] | None = None
        self._resolved_providers: set[str] = set()

    # -- context -------------------------------------------------------------------------
    def resolve_customer_names(self) -> None:
        """Resolve the customer-level names the flow references, one provider call each
        (the grouping by provider is done once, when the flow is compiled)."""
        for provider, wanted in self.flow.context_plan:
            self._run_provider(provider, wanted)

    def _run_provider(self, provider: ContextProvider, wanted: frozenset[str]) -> None:
        self._resolved_providers.add(provider.name)
        request = ContextRequest(self.tenant_id, self.request, self.as_of, wanted, self.host)
        values: Mapping[str, Any] = {}
        try:
            values = provider.resolve(request) or {}
            if not isinstance(values, Mapping):
                raise TypeError(
                    f"context provider {provider.name!r} returned {type(values).__name__}; "
                    "return a mapping of name to value"
                )
        except Exception as exc:
            values = {}
            plugin = self.flow.registry.owner("context", provider.name)
            self.plugin_failed(plugin, "register_context", exc, None, "names resolve to null")
        customer = self.customer
        for name in wanted:
            value = values.get(name)
            if value is not None and type(value) not in _PLAIN:
                value = self._finite_context_value(provider, name, value)
            customer[name] = value
        if self.trace is not None:
            for name in sorted(wanted):
                self.trace.context[name] = jsonable(customer[name])

    def _finite_context_value(self, provider: ContextProvider, name: str, value: Any) -> Any:
        """``value`` when every number in it is finite (a numpy number as a plain Python one,
        which formulas expect), else None plus a failure: a plugin's under the plugin-error
        policy, a trace entry for the request's own values."""
        if type(value) is not float and isinstance(value, numbers.Real):
            value = plain_number(value)
        bad = non_finite(value)
        if bad is None:
            return value
        plugin = self.flow.registry.owner("context", provider.name)
        problem = ValueError(f"{name} is not a finite number ({bad})")
        if plugin != BUILTIN_PLUGIN:
            self.plugin_failed(plugin, "register_context", problem, None, f"{name} is null")
        elif self.trace is not None:
            self.trace.failures.append(
                PluginFailure("request", f"context {name}", str(problem), None, "value is null")
            )
        return None

    def customer_value(self, name: str) -> Any:
        """A customer-level name, resolving its provider on first use."""
        if name in self.customer:
            return self.customer[name]
        provider = self.flow.registry.provider_for(name)
        if provider is None or provider.name in self._resolved_providers:
            self.customer.setdefault(name, None)
            return self.customer[name]
        self._run_provider(provider, frozenset({name}))
        return self.customer[name]

    # -- outcomes of steps ---------------------------------------------------------------
    def drop(self, candidate: Candidate, drop: Drop) -> None:
        """Record why a candidate left (only when explaining)."""
        if self.trace is not None:
            self.trace.drops.append(drop)
        del candidate

    def plugin_failed(
        self, plugin: str, hook: str, exc: BaseException, offer_id: str | None, action: str
    ) -> None:
        """Apply the flow's plugin-error policy: record and go on, or fail the decision."""
        error = f"{type(exc).__name__}: {exc}"
        if self.flow.settings.on_plugin_error == "fail":
            raise DecisionError(
                f"plugin {plugin!r} failed in {hook}"
                + (f" for offer {offer_id!r}" if offer_id else "")
                + f": {error} (flow {self.flow.key!r} has onPluginError: fail)"
            ) from exc
        log.warning("plugin %r failed in %s (%s); %s", plugin, hook, error, action)
        if self.trace is not None:
            self.trace.failures.append(PluginFailure(plugin, hook, error, offer_id, action))


_PLAIN = frozenset({str, int, bool})


def jsonable(value: Any) -> Any:
    """``value`` made fit for the trace's JSON: containers as lists and dicts with string keys,
    non-finite numbers as None, any other object as its ``str``."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
