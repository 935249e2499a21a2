"""Per-decision state: the request, resolved context, candidates, trace and failure policy.

A DecisionState lives for one decision only, so concurrent decisions share nothing mutable.
Plugin failures are logged once per decision and plugin hook (with the number of failures), and
at most once per :data:`FAILURE_LOG_INTERVAL` seconds per plugin hook and host
(:class:`FailureLog`); the trace still records every failure.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import DecisionError
from ..expressions import non_finite, plain_number
from ..models.decision import Candidate, Drop, PluginFailure, Trace
from ..models.policies import PolicyInputs
from ..models.request import DecisionRequest
from ..plugin_api import ContextProvider, ContextRequest, HostAPI
from .catalog import CompiledCatalog
from .plan import FlowPlan

log = logging.getLogger("nextbest.engine")

#: The plugin whose context values come from the request itself and whose formula functions
#: failing are formula errors: its problems are the caller's input, not a plugin's fault.
BUILTIN_PLUGIN = "builtin"
#: Seconds between two log lines about the same plugin hook (failures in between are counted).
FAILURE_LOG_INTERVAL = 60.0
#: The key of a host's :class:`FailureLog` in ``host.plugin_state``.
FAILURE_LOG_KEY = "nextbest.engine.failure_log"


@dataclass
class _Pending:
    """Failures of one plugin hook not logged yet."""

    failures: int = 0
    decisions: int = 0
    last_logged: float | None = None


class FailureLog:
    """Rate-limited warnings about plugin failures, one per plugin hook and interval.

    A decision reports each (plugin, hook) that failed once, with its count
    (:meth:`DecisionState.log_failures`); the first report logs a warning at once, the
    following ones within ``interval`` seconds are only counted, and the next line logged says
    how many failures in how many decisions were not logged. Thread-safe; one per host.
    """

    def __init__(
        self,
        interval: float = FAILURE_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Pending] = {}

    def report(
        self,
        plugin: str,
        hook: str,
        failures: int,
        offers: int,
        error: str,
        action: str,
        where: str,
        unit: str = "decision",
    ) -> bool:
        """Report ``failures`` failures of ``plugin`` in ``hook`` during one decision
        (``offers`` offers affected, ``error`` the first error, ``where`` the flow and tenant),
        or during one call of an after-commit hook (``unit="call"``, ``offers`` 0).
        Returns whether a line was logged."""
        now = self.clock()
        with self._lock:
            pending = self._pending.setdefault((plugin, hook), _Pending())
            if pending.last_logged is not None and now - pending.last_logged < self.interval:
                pending.failures += failures
                pending.decisions += 1
                return False
            held, held_decisions = pending.failures, pending.decisions
            pending.failures = pending.decisions = 0
            pending.last_logged = now
        affected = f"{offers} offer(s)" if offers else f"the {unit}"
        message = (
            f"plugin {plugin!r} failed {failures} time(s) in {hook} ({affected}; {where}): "
            f"{error}; {action}"
        )
        if held:
            message += (
                f" [{held} more failure(s) in {held_decisions} {unit}(s) not logged in the "
                f"last {self.interval:g} s]"
            )
        self.logger.warning(message)
        return True


@dataclass
class _HookFailures:
    """One decision's failures of one plugin hook."""

    error: str
    action: str
    count: int = 0
    offers: set[str] | None = None


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

    @property
    def random_pick(self) -> bool:
        """Whether the offer returned is a control group's random pick (``mode: random``:
        uniform over the candidates that reached ``rank``), not the flow's ranking."""
        return self._state.random_pick is not None

    def get(self, name: str) -> Any:
        """A customer-level context name (``customer.x``, ``attributes.y``), or None."""
        return self._state.customer_value(name)


class DecisionState:
    """Everything one decision needs while it runs."""

    __slots__ = (
        "_failures",
        "_resolved_providers",
        "as_of",
        "candidates",
        "catalog",
        "customer",
        "explain",
        "flow",
        "host",
        "policies",
        "random_pick",
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
        policies: PolicyInputs | None = None,
    ) -> None:
        self.flow = flow
        #: the tenant's contact policies and the counts they read (None: no policies)
        self.policies = policies
        self.host = host
        self.tenant_id = tenant_id
        self.request = request
        self.as_of = as_of
        self.explain = explain
        self.trace: Trace | None = Trace() if explain else None
        self.customer: dict[str, Any] = {}
        self.candidates: list[Candidate] = []
        self.ranked: list[Candidate] | None = None
        #: a seed: rank picks one candidate with it instead of ordering by score (a control
        #: group's ``mode: random``); None ranks by score
        self.random_pick: int | None = None
        self.catalog = catalog
        self.response_fields: tuple[str, ...] | None = None
        self._resolved_providers: set[str] = set()
        self._failures: dict[tuple[str, str], _HookFailures] | None = None  # on first failure

    # -- context -------------------------------------------------------------------------
    def resolve_customer_names(self, given: Mapping[str, Any] | None = None) -> None:
        """Resolve the customer-level names the flow references, one provider call each
        (the grouping by provider is done once, when the flow is compiled).

        ``given``: values read beforehand (a whole tenant read as columns); a provider whose
        names are all given is not called, the others resolve what is missing.
        """
        if not given:
            for provider, wanted in self.flow.context_plan:
                self._run_provider(provider, wanted)
            return
        customer = self.customer
        for provider, wanted in self.flow.context_plan:
            missing = wanted.difference(given)
            for name in wanted - missing:
                value = given[name]
                if value is not None and type(value) not in _PLAIN:
                    value = self._finite_context_value(provider, name, value)
                customer[name] = value
            if missing:
                self._run_provider(provider, frozenset(missing))
            else:
                self._resolved_providers.add(provider.name)
                if self.trace is not None:
                    for name in sorted(wanted):
                        self.trace.context[name] = jsonable(customer[name])

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
        """Apply the flow's plugin-error policy: record and go on, or fail the decision.

        Recorded failures are logged once per decision and plugin hook by
        :meth:`log_failures`; the trace (when explaining) keeps each one.
        """
        error = f"{type(exc).__name__}: {exc}"
        if self.flow.settings.on_plugin_error == "fail":
            raise DecisionError(
                f"plugin {plugin!r} failed in {hook}"
                + (f" for offer {offer_id!r}" if offer_id else "")
                + f": {error} (flow {self.flow.key!r} has onPluginError: fail)"
            ) from exc
        if self._failures is None:
            self._failures = {}
        failures = self._failures.get((plugin, hook))
        if failures is None:
            failures = self._failures[(plugin, hook)] = _HookFailures(error, action)
        failures.count += 1
        if offer_id is not None:
            if failures.offers is None:
                failures.offers = set()
            failures.offers.add(offer_id)
        if self.trace is not None:
            self.trace.failures.append(PluginFailure(plugin, hook, error, offer_id, action))

    def log_failures(self) -> None:
        """Log this decision's plugin failures: one report per plugin hook to the host's
        :class:`FailureLog`, which rate-limits them across decisions."""
        if not self._failures:
            return
        failure_log = self.host.plugin_state(FAILURE_LOG_KEY, FailureLog)
        where = f"flow {self.flow.key!r}, tenant {self.tenant_id!r}"
        for (plugin, hook), failures in self._failures.items():
            offers = len(failures.offers) if failures.offers else 0
            failure_log.report(
                plugin, hook, failures.count, offers, failures.error, failures.action, where
            )
        self._failures = None


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
