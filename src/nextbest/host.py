"""The Host: loads plugins, compiles flows and offer catalogs, and makes decisions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pluggy
from pydantic import ValidationError

from .documents import load_document
from .engine.catalog import CompiledCatalog
from .engine.compiler import CompiledFlow, compile_flow, validation_issues
from .engine.runner import run_decision
from .engine.schema import build_flow_model
from .engine.state import FAILURE_LOG_KEY, FailureLog
from .errors import FlowValidationError, PluginError, UnknownFlowError
from .hookcalls import call_impl, implementations
from .models.decision import Decision
from .models.offers import OfferCatalog
from .models.policies import PolicyInputs
from .models.request import DecisionRequest
from .plugin_api import ContextChange, HostAPI, TriggerEvent
from .plugins import make_plugin_manager
from .registration import collect
from .store.base import (
    Interaction,
    OutcomeParticipant,
    OutcomeTransaction,
    Recommendation,
    Store,
)

log = logging.getLogger("nextbest")
T = TypeVar("T")


class Host:
    """A decisioning host: plugins loaded, flows compiled, decisions made.

    ``plugins`` are registered after the entry points (objects or modules with ``@hookimpl``
    functions); ``store`` is the optional storage backend that plugins reach as ``host.store``.
    A Host is safe to share between threads: compiled flows and catalogs are immutable.
    Hooks receive it typed as :class:`~nextbest.HostAPI`, the part plugins may rely on.
    """

    def __init__(
        self,
        *,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
        store: Store | None = None,
        pm: pluggy.PluginManager | None = None,
    ) -> None:
        self.pm = pm or make_plugin_manager(load_entry_points=load_entry_points, plugins=plugins)
        self.registry = collect(self.pm)
        self.functions = dict(self.registry.functions)
        self.flow_model = build_flow_model(self.registry)
        self.store = store
        self._lock = threading.Lock()
        self._flows: dict[tuple[str, str], tuple[CompiledFlow, CompiledCatalog]] = {}
        self._default_flow: dict[str, str] = {}
        self._plugin_state: dict[str, Any] = {}
        self._state_lock = threading.RLock()
        for impl in implementations(self.pm, "startup"):
            try:
                call_impl(impl, host=self)
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in startup: {type(exc).__name__}: {exc}"
                ) from exc

    def plugin_state(self, key: str, factory: Callable[[], T]) -> T:
        """The object a plugin keeps for this host under ``key`` (a service, a cache), created
        by ``factory()`` on first use; every later call returns the same object. Thread-safe.

        Plugins keep per-host state here rather than in module globals, so two hosts in one
        process (two stores, tests) never share it. Namespace keys by plugin (``"myplugin.cache"``).
        """
        with self._state_lock:
            if key not in self._plugin_state:
                self._plugin_state[key] = factory()
            return cast(T, self._plugin_state[key])

    # -- loading -------------------------------------------------------------------------
    def load_flow(self, source: Mapping[str, Any] | str | Path | object) -> CompiledFlow:
        """Validate and compile a flow (a dict, or a YAML/JSON file path).

        Raises FlowValidationError listing every problem with its path (also when ``source``
        is neither: a parsed document that is not a mapping, say).
        """
        name = None
        if isinstance(source, str | Path):
            name = str(source)
            source = load_document(source)
        if not isinstance(source, Mapping):
            raise FlowValidationError(
                [_issue("", "a flow document must be a mapping (YAML/JSON object)")], source=name
            )
        return compile_flow(
            source,
            registry=self.registry,
            functions=self.functions,
            flow_model=self.flow_model,
            source=name,
        )

    def load_offers(self, source: Any) -> CompiledCatalog:
        """Validate an offer catalog: a file path, a list of offers or ``{"offers": [...]}``."""
        name = None
        if isinstance(source, str | Path):
            name = str(source)
            source = load_document(source)
        if isinstance(source, list | tuple):
            source = {"offers": list(source)}
        try:
            catalog = OfferCatalog.model_validate(source)
        except ValidationError as exc:
            raise FlowValidationError(validation_issues(exc, frozenset()), source=name) from None
        return CompiledCatalog.build(catalog)

    def flow_schema(self) -> dict[str, Any]:
        """The JSON Schema of flow documents, including every registered rule type."""
        return self.flow_model.model_json_schema(by_alias=True)

    # -- in-memory flow registry -------------------------------------------------------------
    def add_flow(
        self, tenant_id: str, flow: CompiledFlow, offers: CompiledCatalog, *, default: bool = True
    ) -> None:
        """Make ``flow`` (with its offers) available to ``decide`` for ``tenant_id``."""
        with self._lock:
            self._flows[(tenant_id, flow.key)] = (flow, offers)
            if default or tenant_id not in self._default_flow:
                self._default_flow[tenant_id] = flow.key

    def _lookup(self, tenant_id: str, key: str | None) -> tuple[CompiledFlow, CompiledCatalog]:
        with self._lock:
            key = key or self._default_flow.get(tenant_id)
            found = self._flows.get((tenant_id, key)) if key else None
        if found is None:
            raise UnknownFlowError(
                f"tenant {tenant_id!r} has no flow {key!r}"
                if key
                else f"tenant {tenant_id!r} has no default flow; add one or pass decisionFlowKey"
            )
        return found

    # -- decisions ---------------------------------------------------------------------------
    def decide(
        self,
        tenant_id: str,
        request: DecisionRequest | Mapping[str, Any],
        *,
        flow: CompiledFlow | None = None,
        offers: CompiledCatalog | None = None,
        random_pick: int | None = None,
        policies: PolicyInputs | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Run a flow for one customer and return the ranked offers (and trace if asked).

        Without ``flow``/``offers`` the tenant's flow added with ``add_flow`` is used (the
        request's ``decisionFlowKey``, else the tenant's default). ``random_pick``: a seed
        with which the rank node returns one eligible offer at random (control groups).
        ``policies``: the tenant's contact policies and the counts they read (the service
        loads them from the store). ``context``: customer-level values read beforehand
        (e.g. a tenant's columns from ``context_columns``); a provider whose names are all in it
        is not called, the rest resolve as usual.
        """
        if not isinstance(request, DecisionRequest):
            request = DecisionRequest.model_validate(request)
        if flow is None or offers is None:
            found_flow, found_offers = self._lookup(tenant_id, request.decision_flow_key)
            flow = flow or found_flow
            offers = offers or found_offers
        return run_decision(
            flow,
            offers,
            host=self,
            tenant_id=tenant_id,
            request=request,
            random_pick=random_pick,
            policies=policies,
            context=context,
        )

    def notify_outcome(self, tenant_id: str, interaction: Interaction) -> list[tuple[str, str]]:
        """Call every ``outcome_recorded`` hook with this host; a failing plugin is logged,
        never raised.

        Returns (plugin, error) pairs for the implementations that failed.
        """
        return self._notify("outcome_recorded", tenant_id=tenant_id, interaction=interaction)

    def outcome_participants(self, tenant_id: str) -> tuple[OutcomeParticipant, ...]:
        """The participants to pass to ``store.record_interaction``: one that calls every
        ``outcome_recording`` hook inside the outcome's transaction (none when no plugin
        implements it, so recording costs nothing more). A raising implementation is logged
        with its plugin and re-raised: the outcome rolls back."""
        impls = implementations(self.pm, "outcome_recording")
        if not impls:
            return ()

        def participant(transaction: OutcomeTransaction, interaction: Interaction) -> None:
            for impl in impls:
                try:
                    call_impl(
                        impl,
                        host=self,
                        tenant_id=tenant_id,
                        interaction=interaction,
                        transaction=transaction,
                    )
                except Exception:
                    log.warning(
                        "plugin %r failed in outcome_recording (tenant %r): the outcome is "
                        "rolled back",
                        impl.plugin_name,
                        tenant_id,
                        exc_info=True,
                    )
                    raise

        return (participant,)

    def notify_recommendation_saving(
        self, tenant_id: str, decision: Decision
    ) -> list[tuple[str, str]]:
        """Call every ``recommendation_saving`` hook with this host (before the decision is
        saved as a recommendation); failures are logged and returned as (plugin, error)."""
        return self._notify(
            "recommendation_saving",
            tenant_id=tenant_id,
            decision=decision,
            action="the recommendation is saved with the annotations as they are",
        )

    def notify_recommendation_saved(
        self, tenant_id: str, recommendation: Recommendation
    ) -> list[tuple[str, str]]:
        """Call every ``recommendation_saved`` hook with this host (after the recommendation
        was committed); failures are logged and returned as (plugin, error)."""
        return self._notify(
            "recommendation_saved", tenant_id=tenant_id, recommendation=recommendation
        )

    def notify_interactions_imported(
        self, tenant_id: str, customer_ids: Iterable[str]
    ) -> list[tuple[str, str]]:
        """Call every ``interactions_imported`` hook with this host (after a bulk import
        committed); failures are logged and returned as (plugin, error)."""
        return self._notify(
            "interactions_imported", tenant_id=tenant_id, customer_ids=frozenset(customer_ids)
        )

    def notify_interactions_changed(
        self,
        tenant_id: str,
        removed: Sequence[Interaction],
        added: Sequence[Interaction],
    ) -> list[tuple[str, str]]:
        """Call every ``interactions_changed`` hook with this host (after a deletion or a
        correction was committed); failures are logged and returned as (plugin, error)."""
        return self._notify(
            "interactions_changed",
            tenant_id=tenant_id,
            removed=tuple(removed),
            added=tuple(added),
        )

    def notify_customer_forgotten(self, tenant_id: str, customer_id: str) -> list[tuple[str, str]]:
        """Call every ``customer_forgotten`` hook with this host (after the customer's data was
        deleted); failures are logged and returned as (plugin, error)."""
        return self._notify("customer_forgotten", tenant_id=tenant_id, customer_id=customer_id)

    def context_changed(self, tenant_id: str, change: ContextChange) -> list[tuple[str, str]]:
        """Call every ``customer_context_changed`` hook with this host (after the plugin that
        provides the values committed them); failures are logged and returned as (plugin,
        error). The host's trigger engine evaluates the tenant's triggers there."""
        if len(change.customer_ids) == 0:
            return []
        return self._notify("customer_context_changed", tenant_id=tenant_id, change=change)

    def watched_context_names(self, tenant_id: str) -> frozenset[str]:
        """The union of every ``watched_context_names`` answer for ``tenant_id``; a failing
        plugin is logged and counts as watching nothing."""
        answers = self._answers("watched_context_names", tenant_id=tenant_id)
        return frozenset(name for answer in answers if answer for name in answer)

    def previous_wanted(self, tenant_id: str, change: ContextChange) -> frozenset[str]:
        """The customers of a change about to be committed whose previous values someone wants
        (the union of the ``context_changing`` hooks); a failing plugin is logged and wants
        none."""
        if len(change.customer_ids) == 0:
            return frozenset()
        answers = self._answers("context_changing", tenant_id=tenant_id, change=change)
        return frozenset(c for answer in answers if answer for c in answer)

    def report_dimensions(self, tenant_id: str) -> list[str]:
        """The context names plugins suggest for breaking reports down by (every
        ``report_dimensions`` answer, in plugin order, each name once); a failing plugin is
        logged and suggests nothing."""
        answers = self._answers("report_dimensions", tenant_id=tenant_id)
        names = (name for answer in answers if answer for name in answer)
        return list(dict.fromkeys(n for n in names if isinstance(n, str)))

    def context_columns(
        self, tenant_id: str, names: Iterable[str], as_of: float
    ) -> list[ContextChange]:
        """Every ``context_columns`` answer for ``names`` (each plugin's columns for the whole
        tenant); a failing plugin is logged and left out (its names are then resolved one
        customer at a time)."""
        answers = self._answers(
            "context_columns", tenant_id=tenant_id, names=frozenset(names), as_of=as_of
        )
        return [answer for answer in answers if isinstance(answer, ContextChange)]

    def _answers(self, hook: str, **kwargs: Any) -> Iterator[Any]:
        """Each implementation's answer to a collecting hook, called with this host one plugin
        at a time; a plugin that raises is logged and gives no answer."""
        for impl in implementations(self.pm, hook):
            try:
                answer = call_impl(impl, host=self, **kwargs)
            except Exception:
                log.exception("plugin %r failed in %s", impl.plugin_name, hook)
                continue
            yield answer

    def notify_trigger_fired(self, tenant_id: str, event: TriggerEvent) -> list[tuple[str, str]]:
        """Call every ``trigger_fired`` hook with this host (after the firing was committed);
        failures are logged and returned as (plugin, error)."""
        return self._notify("trigger_fired", tenant_id=tenant_id, event=event)

    def _notify(
        self, hook: str, *, action: str = "what was committed stands", **kwargs: Any
    ) -> list[tuple[str, str]]:
        """Call every implementation of an after-commit hook; a failing plugin is logged, never
        raised: what was committed stands (``action``: what happens instead, for the log)."""
        failures = []
        for impl in implementations(self.pm, hook):
            try:
                call_impl(impl, host=self, **kwargs)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                # One line per plugin hook and interval (a failing hook fails on every write).
                log.debug("plugin %r failed in %s", impl.plugin_name, hook, exc_info=True)
                self.plugin_state(FAILURE_LOG_KEY, FailureLog).report(
                    impl.plugin_name,
                    hook,
                    failures=1,
                    offers=0,
                    error=error,
                    action=action,
                    where=f"tenant {kwargs['tenant_id']!r}",
                    unit="call",
                )
                failures.append((impl.plugin_name, error))
        return failures


def _issue(path: str, message: str) -> Any:
    from .errors import FlowIssue

    return FlowIssue(path, message)


if TYPE_CHECKING:

    def _offers_host_api(host: Host) -> HostAPI:
        """mypy checks here that Host keeps every promise HostAPI makes to plugins."""
        return host
