"""The trigger engine of a host: documents, evaluation on context changes, firings, preview.

One :class:`TriggerEngine` per host (kept in ``host.plugin_state``). The host's built-in
``triggers`` plugin hands it every ``customer_context_changed`` notification; it evaluates the
tenant's active triggers over the changed customers in one pass per trigger: one bulk state
read, the compiled formulas per customer, one transaction for every transition and firing
(:meth:`~nextbest.store.Store.commit_trigger_changes`, with the registered transaction
participants), then the ``trigger_fired`` hooks after the commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import DecisionError, FlowIssue
from ..expressions import CompiledExpression, EvaluationError
from ..host import Host
from ..models.request import DecisionRequest
from ..plugin_api import ContextChange, TriggerEvent
from ..service import DecisionService
from ..store import (
    Firing,
    FiringParticipant,
    FiringRecommendation,
    OutboxEvent,
    StateChange,
    Store,
    StoredTrigger,
    TriggerState,
    WebhookEndpointNotFoundError,
)
from .columns import ColumnFilter, column_filter
from .context import (
    METRICS_COLUMNS,
    column,
    json_value,
    metrics_columns,
    population,
    resolve_customer,
)
from .crossing import Transition, event_id, recommendation_id, transition
from .document import CompiledTrigger, TriggerValidationError, compile_trigger

log = logging.getLogger("nextbest.triggers")

__all__ = [
    "ENGINE_KEY",
    "EVENT_TYPE",
    "Evaluation",
    "LoadedTrigger",
    "PreviewTooLargeError",
    "TriggerEngine",
]

#: The key of the engine in ``host.plugin_state``.
ENGINE_KEY = "nextbest.triggers.engine"
#: The type of every firing event.
EVENT_TYPE = "trigger.fired"
#: The host's own per-customer context names: the metrics of the customer's summaries, which
#: every recorded interaction changes.
HOST_NAMES_PREFIX = "metrics."
#: Seconds a tenant's active triggers are reused before the store is read again (writes made
#: through this engine invalidate them at once).
ACTIVE_TTL_SECONDS = 2.0
#: Above this many customers, a trigger's states are read whole (one query), not by id.
_BULK_STATES = 2_000
#: From this many customers on, a change's missing ``metrics.*`` are read as columns (one
#: read of the tenant's summaries; below, one summary per customer is cheaper on a large
#: tenant).
_METRICS_IN_BULK = 500
#: How long states read before a change's commit are reused by its evaluation.
_PREFETCH_SECONDS = 120.0
#: Most customers a whole-tenant preview resolves one at a time (names without columns).
MAX_ROW_PREVIEW = 5_000
#: A change whose values hold for a time more than this before now is not evaluated: a batch
#: as of a past date (a backfill, a what-if) is not a crossing happening now, and firing real
#: webhooks for it would act on the past. Generous enough for a slow batch as of "now".
MAX_CHANGE_AGE_SECONDS = 3600.0
#: ... nor one more than this after now (the store's clock skew allowance for outcomes).
MAX_CHANGE_AHEAD_SECONDS = 300.0


@dataclass(frozen=True)
class LoadedTrigger:
    """A stored trigger, its compiled form and the column form of its ``when`` (None when the
    formula has none: every customer is then evaluated row by row)."""

    stored: StoredTrigger
    compiled: CompiledTrigger
    when_columns: ColumnFilter | None = None
    rearm_columns: ColumnFilter | None = None


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one trigger over some customers found (and, when committed, did)."""

    trigger_key: str
    evaluated: int
    transitions: dict[str, int]
    firings: list[Firing]
    #: Why the trigger was not evaluated (a run that would resolve too many customers one
    #: at a time), else None.
    skipped: str | None = None


def _truth(expr: CompiledExpression, row: Mapping[str, Any]) -> bool | None:
    try:
        return bool(expr.evaluate(row))
    except EvaluationError:
        return None


def _json_columns(values: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Columns (lists or numpy arrays) as lists of plain JSON values, by name in order:
    numpy values unwrapped at C speed, non-finite numbers None (as :func:`json_value`)."""
    out: dict[str, list[Any]] = {}
    for name in sorted(values):
        col = values[name]
        if isinstance(col, np.ndarray) and col.dtype.kind in "iubU":
            out[name] = col.tolist()  # integers, booleans, text: JSON as they are
        elif isinstance(col, np.ndarray) and col.dtype.kind == "f":
            listed = col.tolist()
            for i in np.flatnonzero(~np.isfinite(col)).tolist():
                listed[i] = None
            out[name] = listed
        else:
            out[name] = [json_value(v) for v in col]
    return out


def _unique(change: ContextChange) -> ContextChange:
    """``change`` with each customer once (the last of its rows: the latest values), so a
    notifier that repeats a customer cannot make one evaluation write its state twice."""
    ids = change.customer_ids
    if len(set(ids)) == len(ids):
        return change
    last = {c: i for i, c in enumerate(ids)}
    keep = sorted(last.values())

    def pick(col: Sequence[Any]) -> Any:
        if isinstance(col, np.ndarray):
            return col[np.asarray(keep, dtype=np.intp)]
        return [col[i] for i in keep]

    return replace(
        change,
        customer_ids=[ids[i] for i in keep],
        values={n: pick(c) for n, c in change.values.items()},
        previous={n: pick(c) for n, c in change.previous.items()},
    )


def _token(change: ContextChange, trigger: LoadedTrigger) -> tuple[Any, ...]:
    """What identifies a change and a trigger between :meth:`TriggerEngine.previous_wanted`
    and the evaluation: the change's time, customers (count, first, last) and columns, the
    trigger's incarnation and version (a trigger replaced or re-created between is read
    afresh)."""
    ids = change.customer_ids
    count = len(ids)
    first, last = (ids[0], ids[-1]) if count else (None, None)
    stored = trigger.stored
    # The columns themselves (by identity; the host's metrics columns are made anew each
    # time): a notifier that changed a column since it asked (a model's fields added after
    # the RFM write, say) is read afresh.
    columns = tuple(
        sorted((n, id(c)) for n, c in change.values.items() if n not in METRICS_COLUMNS)
    )
    return (change.as_of, count, first, last, stored.uid, stored.updated_at, columns)


class PreviewTooLargeError(ValueError):
    """A whole-tenant preview would resolve too many customers one at a time."""


class TriggerEngine:
    """The triggers of every tenant of one host's store (see the module doc). Thread-safe."""

    def __init__(self, host: Host, store: Store) -> None:
        self.host = host
        self.store = store
        self.decisions = DecisionService(host, store)
        #: Called inside every transaction that commits firings (see
        #: :data:`nextbest.store.FiringParticipant`); the first writes the outbox events of
        #: the firings whose trigger names a webhook endpoint.
        self.participants: list[FiringParticipant] = [self._outbox]
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, str, str, str], CompiledTrigger] = {}
        self._active: dict[str, tuple[float, list[LoadedTrigger]]] = {}
        #: The wall clock changes are compared with (see :meth:`is_current`).
        self.clock: Callable[[], float] = time.time
        #: States read by :meth:`previous_wanted` for the evaluation of the same change that
        #: follows its commit: (tenant, trigger key) -> (read at, change token, states).
        self._prefetched: dict[tuple[str, str], tuple[float, tuple[Any, ...], Any, Any]] = {}

    def _outbox(self, cursor: Any, tenant_id: str, firings: Sequence[Firing]) -> None:
        """Write each firing whose trigger names a webhook endpoint as an outbox event for
        that endpoint, in the firing's transaction (the event id is the firing's: written
        once, delivered at least once, deduplicated by receivers on ``webhook-id``)."""
        by_endpoint: dict[str, list[OutboxEvent]] = {}
        for firing in firings:
            endpoint = (firing.payload.get("actions") or {}).get("webhook")
            if endpoint:
                at = datetime.fromtimestamp(firing.fired_at, UTC)
                event = OutboxEvent(
                    tenant_id, firing.event_id, EVENT_TYPE, at, firing.payload, firing.customer_id
                )
                by_endpoint.setdefault(endpoint, []).append(event)
        for endpoint, events in by_endpoint.items():
            written = self.store.write_events(cursor, events, endpoint_id=endpoint)
            if written.events and not written.deliveries:
                log.warning(
                    "%d trigger firing(s) of tenant %r for webhook endpoint %r have no delivery: "
                    "the endpoint is gone or its filter refuses %s",
                    written.events,
                    tenant_id,
                    endpoint,
                    EVENT_TYPE,
                )

    def add_participant(self, participant: FiringParticipant) -> None:
        """Register a transaction participant: it writes inside every firing transaction."""
        with self._lock:
            self.participants.append(participant)

    # -- documents ----------------------------------------------------------------------------
    def compile(self, document: Any) -> CompiledTrigger:
        """Validate and compile a document against the host's context providers and
        functions; TriggerValidationError names every problem's path."""
        return compile_trigger(document, self.host.registry, self.host.functions)

    def validate(self, tenant_id: str, document: Any, key: str | None = None) -> CompiledTrigger:
        """Like :meth:`compile`, and also: ``key`` (a path's key) equals the document's, and
        ``flow`` names a published flow of the tenant."""
        compiled = self.compile(document)
        issues = []
        if key is not None and compiled.key != key:
            issues.append(FlowIssue("key", f"must equal the trigger key in the path ({key!r})"))
        if compiled.document.flow is not None:
            try:
                self.decisions.published_flow(tenant_id, compiled.document.flow)
            except DecisionError as exc:
                issues.append(FlowIssue("flow", str(exc)))
        for field, expression in (("when", compiled.when), ("rearm", compiled.rearm)):
            names = expression.names if expression is not None else frozenset()
            request_names = sorted(n for n in names if n.startswith("attributes."))
            if request_names:
                issues.append(
                    FlowIssue(
                        field,
                        f"{', '.join(request_names)}: attributes are a decision request's; a "
                        "trigger has no request (use customer context or metrics names)",
                    )
                )
        endpoint = compiled.document.actions.webhook
        found = None if endpoint is None else self.store.get_webhook_endpoint(tenant_id, endpoint)
        if endpoint is not None and found is None:
            issues.append(
                FlowIssue(
                    "actions.webhook",
                    f"the tenant has no webhook endpoint {endpoint!r} (create one with "
                    "POST /api/v1/webhooks/endpoints or `nextbest webhooks endpoints add`)",
                )
            )
        elif found is not None and not found.accepts(EVENT_TYPE):
            # The firing would be written for no one: say so now, not by silence later.
            issues.append(
                FlowIssue(
                    "actions.webhook",
                    f"webhook endpoint {endpoint!r} does not accept {EVENT_TYPE!r} events (its "
                    f"event filter: {', '.join(found.event_types or ())}); create an endpoint "
                    f"whose filter includes {EVENT_TYPE!r}",
                )
            )
        if issues:
            raise TriggerValidationError(issues)
        return compiled

    def put(self, tenant_id: str, key: str, document: Any) -> tuple[StoredTrigger, bool]:
        """Validate and store a trigger (created or replaced); returns it and whether it was
        created."""
        compiled = self.validate(tenant_id, document, key)
        try:
            stored, created = self.store.put_trigger(
                tenant_id, key, compiled.to_json(), compiled.document.status
            )
        except WebhookEndpointNotFoundError as exc:  # removed since validate looked
            raise TriggerValidationError([FlowIssue("actions.webhook", str(exc))]) from None
        self.forget_tenant(tenant_id)
        return stored, created

    def delete(self, tenant_id: str, key: str) -> bool:
        """Delete a trigger with its states and firings."""
        deleted = self.store.delete_trigger(tenant_id, key)
        self.forget_tenant(tenant_id)
        return deleted

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop the cached active triggers of a tenant."""
        with self._lock:
            self._active.pop(tenant_id, None)

    def load(self, tenant_id: str, stored: StoredTrigger) -> LoadedTrigger:
        """A stored trigger compiled (once per version)."""
        cache_key = (tenant_id, stored.key, stored.uid, stored.updated_at.isoformat())
        with self._lock:
            compiled = self._compiled.get(cache_key)
        if compiled is None:
            compiled = self.compile(stored.document)
            with self._lock:
                self._compiled[cache_key] = compiled
        when, rearm = compiled.when, compiled.rearm
        return LoadedTrigger(
            stored,
            compiled,
            column_filter(when.source, when.names),
            None if rearm is None else column_filter(rearm.source, rearm.names),
        )

    def active(self, tenant_id: str) -> list[LoadedTrigger]:
        """The tenant's active triggers, compiled; one that no longer compiles (a plugin gone)
        is logged and skipped."""
        now = time.monotonic()
        with self._lock:
            cached = self._active.get(tenant_id)
        if cached is not None and now - cached[0] < ACTIVE_TTL_SECONDS:
            return cached[1]
        loaded = []
        for stored in self.store.active_triggers(tenant_id):
            try:
                loaded.append(self.load(tenant_id, stored))
            except TriggerValidationError as exc:
                log.error("trigger %r of tenant %r is skipped: %s", stored.key, tenant_id, exc)
        with self._lock:
            self._active[tenant_id] = (now, loaded)
        return loaded

    def watched_names(self, tenant_id: str) -> frozenset[str]:
        """The context names the tenant's active triggers read."""
        return frozenset(n for t in self.active(tenant_id) for n in t.compiled.names)

    # -- evaluation ---------------------------------------------------------------------------
    def context_changed(self, tenant_id: str, change: ContextChange) -> list[Evaluation]:
        """Evaluate every active trigger of the tenant that reads a name of the change (one it
        carries, or any of its provider's) over the changed customers, committing and
        announcing the firings. A change that is not :meth:`current <is_current>` is logged
        and not evaluated."""
        if not self.is_current(tenant_id, change.as_of):
            return []
        change = _unique(change)
        concerned = [t for t in self.active(tenant_id) if self._reads(t, change)]
        # The metrics every concerned trigger lacks, read once for all of them.
        needed = sorted({n for t in concerned for n in t.compiled.names})
        change, _ = self._with_metrics(tenant_id, needed, change)
        return [self.evaluate(tenant_id, trigger, change) for trigger in concerned]

    def _reads(self, trigger: LoadedTrigger, change: ContextChange) -> bool:
        """Whether a change concerns a trigger: it carries one of the trigger's names, or comes
        from the provider of one (a batch that passes only some of its provider's names, say
        the RFM fields, has still changed the others)."""
        names = trigger.compiled.names
        if any(n in change.values for n in names):
            return True
        if not change.provider:
            return False
        registry = self.host.registry
        return any(
            (p := registry.provider_for(n)) is not None and p.name == change.provider for n in names
        )

    def run(self, tenant_id: str) -> list[Evaluation]:
        """Evaluate every active trigger of the tenant for every customer now, committing
        and announcing the firings: what time alone changes (``metrics.days_since_*``,
        recency) without any event or batch. The population's values are read as columns
        (:func:`~nextbest.triggers.context.population`: the summaries, the plugins'
        ``context_columns``), so a tenant costs about one batch; run it on a schedule
        (``nextbest triggers run``, ``POST /api/v1/trigger-runs``)."""
        active = self.active(tenant_id)
        if not active:
            return []
        # Every name of the providers the triggers read (their whole record in the payload,
        # as after a batch), and the host's summary metrics.
        names: set[str] = set()
        for name in {n for t in active for n in t.compiled.names}:
            names.add(name)
            provider = self.host.registry.provider_for(name)
            if provider is not None and name in provider.names:  # a record of named fields
                names.update(provider.names)
        change = population(self.host, tenant_id, names, self.clock())
        if not change.customer_ids:
            return []
        results = []
        for trigger in active:
            lacking = sorted(n for n in trigger.compiled.when.names if n not in change.values)
            if lacking and len(change.customer_ids) > MAX_ROW_PREVIEW:
                log.warning(
                    "trigger %r of tenant %r not run: %s cannot be read for every customer at "
                    "once and %d customers would be resolved one at a time (at most %d)",
                    trigger.compiled.key,
                    tenant_id,
                    ", ".join(lacking),
                    len(change.customer_ids),
                    MAX_ROW_PREVIEW,
                )
                reason = f"{', '.join(lacking)} cannot be read for every customer at once"
                results.append(Evaluation(trigger.compiled.key, 0, {}, [], skipped=reason))
                continue
            results.append(self.evaluate(tenant_id, trigger, change))
        return results

    def _with_metrics(
        self, tenant_id: str, names: Sequence[str], change: ContextChange
    ) -> tuple[ContextChange, frozenset[str]]:
        """``change`` with the host's ``metrics.*`` columns among ``names`` that it lacks,
        for many customers (one read of the summaries instead of one per customer); and the
        names added."""
        lacking = [n for n in names if n in METRICS_COLUMNS and n not in change.values]
        if not lacking or len(change.customer_ids) < _METRICS_IN_BULK:
            return change, frozenset()
        columns = metrics_columns(self.host, tenant_id, change.customer_ids, lacking, change.as_of)
        return replace(change, values={**change.values, **columns}), frozenset(columns)

    def interactions_recorded(
        self, tenant_id: str, customer_ids: Sequence[str], as_of: float
    ) -> list[Evaluation]:
        """Evaluate, for customers whose interactions were recorded, corrected or imported,
        the active triggers that read the host's own per-customer names (``metrics.*``, from
        the summaries those interactions update); every name is resolved through its
        provider. Names of plugins are evaluated when their plugin announces a change."""
        watching = [
            t
            for t in self.active(tenant_id)
            if any(n.startswith(HOST_NAMES_PREFIX) for n in t.compiled.names)
        ]
        if not watching or not customer_ids or not self.is_current(tenant_id, as_of):
            return []
        change = ContextChange(list(customer_ids), {}, as_of=as_of, provider="metrics")
        return [self.evaluate(tenant_id, trigger, change) for trigger in watching]

    def previous_wanted(self, tenant_id: str, change: ContextChange) -> set[str]:
        """The customers of a change about to be committed whose previous values a firing
        would report: for each active trigger reading a changed name, the armed customers
        whose condition is true with the new values (the column form picks the candidates,
        the compiled formula decides; a condition reading names the change does not carry is
        left out: its firings report the values of the last crossing). The states and
        candidates found are kept for the evaluation of the same change after its commit
        (the commit's compare-and-set guards against anything that moved between)."""
        if not self._present(change.as_of):
            return set()
        self._evict_prefetched()
        change = _unique(change)
        ids = list(change.customer_ids)
        wanted: set[str] = set()
        given = change
        for trigger in self.active(tenant_id):
            compiled = trigger.compiled
            if not any(n in given.values for n in compiled.names):
                continue
            change, _ = self._with_metrics(tenant_id, compiled.names, given)
            states, picked = self._states_and_candidates(trigger, tenant_id, change, ids)
            key = (tenant_id, compiled.key)
            token = _token(change, trigger)
            with self._lock:
                self._prefetched[key] = (time.monotonic(), token, states, picked)
            if not all(n in change.values for n in compiled.when.names):
                continue
            chosen = range(len(ids)) if picked is None else picked
            armed = [i for i in chosen if (s := states.get(ids[i])) is None or s.armed]
            rows = self._rows(tenant_id, sorted(compiled.when.names), change, ids, armed)
            wanted.update(ids[i] for i in armed if _truth(compiled.when, rows[i]) is True)
        return wanted

    def _evict_prefetched(self) -> None:
        """Drop prefetched states no evaluation took (a batch that failed after asking)."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._prefetched.items() if now - v[0] >= _PREFETCH_SECONDS]:
                del self._prefetched[key]

    def _states_and_candidates(
        self, trigger: LoadedTrigger, tenant_id: str, change: ContextChange, ids: list[str]
    ) -> tuple[Mapping[str, TriggerState], list[int] | None]:
        """The candidates of a change (:meth:`_candidates`) and the stored states they need:
        for a few customers, their states by id with the stored values; for many, the ids of
        the disarmed customers first (one query of ids), then the states of the candidates
        only (every state when the condition has no column form), without the values."""
        key = trigger.compiled.key
        if len(ids) <= _BULK_STATES:
            states = self.store.trigger_states(tenant_id, key, ids)
            disarmed = {c for c, state in states.items() if not state.armed}
            return states, self._candidates(trigger, change, ids, disarmed)
        picked = self._candidates(
            trigger, change, ids, self.store.disarmed_customers(tenant_id, key)
        )
        if picked is None:
            return self.store.trigger_states(tenant_id, key, with_values=False), None
        chosen = [ids[i] for i in picked]
        states = (
            self.store.trigger_states(tenant_id, key, chosen, with_values=False) if chosen else {}
        )
        return states, picked

    def _states_for(
        self, trigger: LoadedTrigger, tenant_id: str, change: ContextChange, ids: list[str]
    ) -> tuple[Mapping[str, TriggerState], list[int] | None]:
        """The states and candidates :meth:`previous_wanted` found for this change (used
        once, within two minutes; the change's values are the same), else found now."""
        with self._lock:
            found = self._prefetched.pop((tenant_id, trigger.compiled.key), None)
        if found is not None:
            read_at, token, states, picked = found
            fresh = time.monotonic() - read_at < _PREFETCH_SECONDS
            if token == _token(change, trigger) and fresh:
                return states, picked
        return self._states_and_candidates(trigger, tenant_id, change, ids)

    def _present(self, as_of: float) -> bool:
        now = self.clock()
        return now - MAX_CHANGE_AGE_SECONDS <= as_of <= now + MAX_CHANGE_AHEAD_SECONDS

    def is_current(self, tenant_id: str, as_of: float) -> bool:
        """Whether values as of ``as_of`` describe the present: at most
        :data:`MAX_CHANGE_AGE_SECONDS` old and :data:`MAX_CHANGE_AHEAD_SECONDS` ahead. Triggers
        act on the present only; other changes are logged once each and skipped."""
        if self._present(as_of):
            return True
        when = datetime.fromtimestamp(as_of, UTC).isoformat()
        log.warning(
            "triggers of tenant %r not evaluated for values as of %s: not the present (a batch "
            "as of a past or future time fires nothing)",
            tenant_id,
            when,
        )
        return False

    def evaluate(
        self, tenant_id: str, trigger: LoadedTrigger, change: ContextChange, *, commit: bool = True
    ) -> Evaluation:
        """Evaluate one trigger over the customers of ``change``; with ``commit`` the
        transitions and firings are written in one transaction and the ``trigger_fired``
        hooks called for the firings committed."""
        compiled = trigger.compiled
        change, _ = self._with_metrics(tenant_id, compiled.names, _unique(change))
        ids = list(change.customer_ids)
        bulk = len(ids) > _BULK_STATES
        states, candidates = self._states_for(trigger, tenant_id, change, ids)
        rows = self._rows(tenant_id, compiled.names, change, ids, candidates)
        found = self._transitions(compiled, ids, rows, states, change.as_of)
        if bulk:  # the stored values (previous values of a firing) of the transitions only
            moved = [ids[i] for i, _ in found if ids[i] in states]
            if moved:
                states = {**states, **self.store.trigger_states(tenant_id, compiled.key, moved)}
        counts = {"fire": 0, "suppress": 0, "rearm": 0}
        changes = []
        # The change's columns as JSON-ready lists, made once for every firing's payload.
        records: dict[str, dict[str, list[Any]]] = {}
        if any(k == "fire" for _, k in found):
            # The payload's context, by the provider each name comes from (as a customer's
            # names resolved one at a time are), whatever carried the columns.
            by_provider: dict[str, dict[str, Any]] = {}
            for name, col in change.values.items():
                provider = self.host.registry.provider_for(name)
                owner = provider.name if provider is not None else change.provider or "change"
                by_provider.setdefault(owner, {})[name] = col
            records = {owner: _json_columns(cols) for owner, cols in by_provider.items()}
        for i, kind in found:
            counts[kind] += 1
            changes.append(
                self._change(tenant_id, trigger, change, records, i, rows[i], states, kind)
            )
        if not commit:
            firings = [c.firing for c in changes if c.firing is not None]
            return Evaluation(compiled.key, len(ids), counts, firings)
        committed = self.store.commit_trigger_changes(
            tenant_id, compiled.key, changes, tuple(self.participants)
        )
        if compiled.document.actions.hook:
            for firing in committed:
                self.host.notify_trigger_fired(
                    tenant_id,
                    TriggerEvent(
                        firing.event_id,
                        tenant_id,
                        compiled.key,
                        firing.customer_id,
                        firing.fired_at,
                        firing.payload,
                    ),
                )
        return Evaluation(compiled.key, len(ids), counts, committed)

    @staticmethod
    def _candidates(
        trigger: LoadedTrigger,
        change: ContextChange,
        ids: list[str],
        disarmed: Set[str],
    ) -> list[int] | None:
        """The customers (indices into ``ids``) whose state may change, when the column forms
        can tell from the change's columns: the armed ones for whom ``when`` may be true, the
        disarmed ones that may re-arm (``rearm`` may be true; by default, ``when`` is not
        known to be true). None: every customer."""
        compiled = trigger.compiled
        when = trigger.when_columns
        if when is None or not compiled.when.names <= change.values.keys():
            return None
        count = len(ids)
        when_truth = when({n: change.values[n] for n in compiled.when.names}, count)
        if not disarmed:
            return np.flatnonzero(when_truth.may).tolist()
        may_rearm: np.ndarray
        if compiled.rearm is None:
            may_rearm = ~when_truth.sure
        elif trigger.rearm_columns is not None and compiled.rearm.names <= change.values.keys():
            rearm_names = compiled.rearm.names
            may_rearm = trigger.rearm_columns({n: change.values[n] for n in rearm_names}, count).may
        else:
            may_rearm = np.ones(count, dtype=bool)
        is_disarmed = np.fromiter((cid in disarmed for cid in ids), dtype=bool, count=count)
        chosen = np.where(is_disarmed, may_rearm, when_truth.may)
        return np.flatnonzero(chosen).tolist()

    def _rows(
        self,
        tenant_id: str,
        names: Sequence[str],
        change: ContextChange,
        ids: list[str],
        indices: Sequence[int] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Per customer (by index into ``ids``; only ``indices`` when given), the values of
        ``names``: the change's columns, the rest resolved one customer at a time through
        their providers."""
        given = [n for n in names if n in change.values]
        missing = [n for n in names if n not in change.values]
        columns = [column(change.values[n]) for n in given]
        chosen = range(len(ids)) if indices is None else indices
        rows = {i: {name: col[i] for name, col in zip(given, columns, strict=True)} for i in chosen}
        if missing:
            for i, row in rows.items():
                values, _ = resolve_customer(self.host, tenant_id, ids[i], missing, change.as_of)
                row.update(values)
        return rows

    @staticmethod
    def _transitions(
        compiled: CompiledTrigger,
        ids: list[str],
        rows: Mapping[int, dict[str, Any]],
        states: Mapping[str, TriggerState],
        now: float,
    ) -> list[tuple[int, Transition]]:
        """The transitions of the customers in ``rows`` (by index into ``ids``), in order."""
        when, rearm, cooldown = compiled.when, compiled.rearm, compiled.cooldown_seconds
        found: list[tuple[int, Transition]] = []
        get = states.get
        for i, row in rows.items():
            state = get(ids[i])
            if state is None or state.armed:
                fired = _truth(when, row)
                if fired is not True:
                    continue
                kind = transition(state, True, None, now, cooldown)
            else:
                if rearm is None:
                    fired = _truth(when, row)
                    rearmed = None if fired is None else not fired
                else:
                    rearmed = _truth(rearm, row)
                kind = transition(state, None, rearmed, now, cooldown)
            if kind is not None:
                found.append((i, kind))
        return found

    def _change(
        self,
        tenant_id: str,
        trigger: LoadedTrigger,
        change: ContextChange,
        records: Mapping[str, Mapping[str, list[Any]]],
        index: int,
        row: Mapping[str, Any],
        states: Mapping[str, TriggerState],
        kind: Transition,
    ) -> StateChange:
        customer_id = change.customer_ids[index]
        state = states.get(customer_id)
        basis = None if state is None else (state.armed, state.generation)
        generation = 0 if state is None else state.generation
        last = None if state is None else state.last_fired_at
        values = {n: json_value(row.get(n)) for n in trigger.compiled.names}
        at = change.as_of
        if kind == "rearm":  # the values of the last firing are kept
            return StateChange(customer_id, basis, True, generation, last, None, as_of=at)
        if kind == "suppress":
            return StateChange(customer_id, basis, False, generation, last, values, as_of=at)
        firing = self._firing(tenant_id, trigger, change, records, index, values, state)
        return StateChange(
            customer_id, basis, False, firing.generation, firing.fired_at, values, firing, at
        )

    def _firing(
        self,
        tenant_id: str,
        trigger: LoadedTrigger,
        change: ContextChange,
        records: Mapping[str, Mapping[str, list[Any]]],
        index: int,
        values: dict[str, Any],
        state: TriggerState | None,
    ) -> Firing:
        """The firing of ``change.customer_ids[index]``; ``records``: the change's columns from
        :func:`_json_columns`, by the provider they are reported under."""
        compiled = trigger.compiled
        customer_id = change.customer_ids[index]
        generation = (0 if state is None else state.generation) + 1
        eid = event_id(tenant_id, trigger.stored.uid, customer_id, generation)
        # The values before the change where the notifier passed them, else (unknown: None)
        # the values of the customer's last crossing.
        before = (state.crossed if state is not None else None) or {}
        previous = {}
        for n in compiled.names:
            value = json_value(change.previous[n][index]) if n in change.previous else None
            previous[n] = before.get(n) if value is None else value
        context: dict[str, dict[str, Any]] = {}
        for provider, columns in records.items():
            if columns:
                context[provider] = {n: col[index] for n, col in columns.items()}
        missing = [n for n in compiled.names if n not in change.values]
        if missing:
            _, resolved = resolve_customer(self.host, tenant_id, customer_id, missing, change.as_of)
            for owner, record in resolved.items():  # merged into the provider's block
                context.setdefault(owner, {}).update(record)
        fired_at = change.as_of
        payload: dict[str, Any] = {
            "id": eid,
            "type": EVENT_TYPE,
            "time": datetime.fromtimestamp(fired_at, UTC).isoformat(),
            "tenantId": tenant_id,
            "triggerKey": compiled.key,
            "customerId": customer_id,
            "generation": generation,
            "values": values,
            "previousValues": previous,
            "context": context,
            "actions": compiled.document.actions.model_dump(by_alias=True, exclude_none=True),
        }
        recommendation = None
        if compiled.document.flow is not None:
            recommendation = self._offers(
                tenant_id, compiled, customer_id, eid, payload, change.as_of
            )
        return Firing(eid, customer_id, generation, fired_at, payload, recommendation)

    def _offers(
        self,
        tenant_id: str,
        compiled: CompiledTrigger,
        customer_id: str,
        eid: str,
        payload: dict[str, Any],
        as_of: float,
    ) -> FiringRecommendation | None:
        """Run the trigger's flow for the customer as of the firing (the context the
        condition saw) and attach the ranked offers to ``payload``; the recommendation is
        stored with the firing."""
        flow_key = compiled.document.flow
        request = DecisionRequest(
            customer_id=customer_id,
            decision_flow_key=flow_key,
            as_of=datetime.fromtimestamp(as_of, UTC),
        )
        try:
            decided = self.decisions.decide(tenant_id, request)
        except DecisionError as exc:
            payload["offers"] = []
            payload["offersError"] = str(exc)
            return None
        rid = recommendation_id(eid)
        items = decided.decision.items
        payload["recommendationId"] = rid
        payload["flowKey"] = decided.flow_key
        payload["flowVersion"] = decided.flow_version
        if decided.decision.group is not None:
            payload["group"] = decided.decision.group
        payload["offers"] = [
            {
                "recommendationId": rid,
                "offerId": item.offer_id,
                "name": item.name,
                "rank": item.rank,
                "score": item.score,
                "personalization": dict(item.personalization),
            }
            for item in items
        ]
        return FiringRecommendation(
            rid,
            [(item.rank, item.offer_id, item.score) for item in items],
            decided.flow_key,
            decided.flow_version,
            decided.decision.group,
        )

    # -- preview ------------------------------------------------------------------------------
    def preview_population(
        self,
        tenant_id: str,
        trigger: LoadedTrigger,
        limit: int = 100,
        clock: Callable[[], float] | None = None,
    ) -> dict[str, Any]:
        """Who among every customer of the tenant would fire now: the population's values as
        columns (:func:`~nextbest.triggers.context.population`), the column form of ``when``
        to pick the customers that may fire, their stored states in one read; nothing is
        written, no hook runs. Returns how many were evaluated, the transitions counted, and
        the first ``limit`` customers (by id) that would fire, with their values.

        Raises:
            PreviewTooLargeError: a name the condition reads has no columns and too many
                customers would be resolved one at a time (pass customer ids instead).
        """
        compiled = trigger.compiled
        now = (clock or self.clock)()
        change = population(self.host, tenant_id, compiled.names, now)
        ids = list(change.customer_ids)
        states, candidates = self._states_and_candidates(trigger, tenant_id, change, ids)
        missing = sorted(n for n in compiled.names if n not in change.values)
        resolved = len(ids) if candidates is None else len(candidates)
        if missing and resolved > MAX_ROW_PREVIEW:
            raise PreviewTooLargeError(
                f"{', '.join(missing)} cannot be read for every customer at once, and "
                f"{resolved:,} customers would be resolved one at a time (at most "
                f"{MAX_ROW_PREVIEW:,}): preview a list of customer ids instead"
            )
        rows = self._rows(tenant_id, compiled.names, change, ids, candidates)
        found = self._transitions(compiled, ids, rows, states, now)
        counts = {"fire": 0, "suppress": 0, "rearm": 0}
        for _, kind in found:
            counts[kind] += 1
        firing = sorted((ids[i] for i, kind in found if kind == "fire"))
        shown = set(firing[:limit])
        listed = sorted((ids[i], i) for i, kind in found if kind == "fire" and ids[i] in shown)
        items = [
            {"customerId": cid, "values": {n: json_value(v) for n, v in rows[i].items()}}
            for cid, i in listed
        ]
        return {
            "asOf": datetime.fromtimestamp(now, UTC).isoformat(),
            "evaluated": len(ids),
            "transitions": counts,
            "wouldFireCount": counts["fire"],
            "wouldFire": items,
            "truncated": len(firing) > limit,
        }

    def preview(
        self,
        tenant_id: str,
        trigger: LoadedTrigger,
        customer_ids: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> list[dict[str, Any]]:
        """Who would fire now among ``customer_ids``: their values resolved through the
        providers, evaluated against their stored states; nothing is written, no hook runs."""
        compiled = trigger.compiled
        now = clock()
        ids = list(dict.fromkeys(customer_ids))
        rows = {
            i: resolve_customer(self.host, tenant_id, cid, compiled.names, now)[0]
            for i, cid in enumerate(ids)
        }
        states = self.store.trigger_states(tenant_id, compiled.key, ids)
        found = dict(self._transitions(compiled, ids, rows, states, now))
        out = []
        for i, cid in enumerate(ids):
            state = states.get(cid)
            out.append(
                {
                    "customerId": cid,
                    "wouldFire": found.get(i) == "fire",
                    "transition": found.get(i),
                    "armed": state is None or state.armed,
                    "firings": 0 if state is None else state.generation,
                    "values": {n: json_value(v) for n, v in rows[i].items()},
                }
            )
        return out
