"""The decision and outcome service: the glue between the store and the host, without HTTP.

:class:`DecisionService` loads a tenant's published flow and its offers from the store, fills a
decision request with what the store knows about the customer (all-time ``metrics`` and, when
the flow reads it, per-offer ``offerHistory``), runs ``host.decide`` and saves what was returned
so an outcome can cite ``recommendationId + rank`` (:meth:`DecisionService.decide` does the same
without saving). :meth:`DecisionService.record_outcome` records an outcome through the store and
calls the ``outcome_recorded`` hooks after the commit; :meth:`~DecisionService.correct_outcome`
and :meth:`~DecisionService.delete_outcome` change recorded outcomes (``interactions_changed``
hooks), :meth:`~DecisionService.forget_customer` deletes a customer's data, plugin documents
included (``customer_forgotten`` hooks).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from .engine.catalog import CompiledCatalog
from .engine.compiler import CompiledFlow
from .errors import UnknownFlowError
from .experiments import (
    CONTROL,
    CONTROL_GROUP_SETTING,
    LIFT_WINDOW_DAYS,
    Assignment,
    ControlGroupSettings,
    assign,
    control_group_problem,
    lift_report,
    random_pick_seed,
)
from .host import Host
from .models.decision import Decision, DecisionItem, Trace
from .models.policies import PolicyInputs
from .models.request import DecisionRequest, OfferHistory
from .policies.constraints import exhausted_offers
from .policies.documents import ContactPolicies
from .store import (
    ACCEPT_UNKNOWN_OFFERS_SETTING,
    Correction,
    CustomerSummary,
    FlowVersion,
    ForgetResult,
    Interaction,
    InteractionIn,
    OfferSummary,
    RecommendationItem,
    RecordResult,
    Store,
)

#: Seconds a tenant's compiled offer catalog is reused before the store is read again. Writes
#: made through this service's process invalidate it at once; other processes' writes are seen
#: after at most this long.
OFFERS_TTL_SECONDS = 5.0
_OFFER_PAGE = 1000
#: Tenant setting: when true, outcomes may name offers that are not in the tenant's catalog
#: (offers managed elsewhere); by default such an outcome is refused (UnknownOfferError).
ACCEPT_UNKNOWN_OFFERS = ACCEPT_UNKNOWN_OFFERS_SETTING
_SECONDS_PER_DAY = 86_400.0
_log = logging.getLogger("nextbest.service")


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What :meth:`DecisionService.recommend` returns: the saved id and the decision."""

    recommendation_id: str
    flow_key: str
    flow_version: int
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a recommend response (camelCase)."""
        out: dict[str, Any] = {
            "recommendationId": self.recommendation_id,
            "customerId": self.decision.customer_id,
            "flowKey": self.flow_key,
            "flowVersion": self.flow_version,
            "asOf": self.decision.as_of.isoformat(),
            "decisions": [_item_dict(item) for item in self.decision.items],
        }
        if self.decision.group is not None:
            out["group"] = self.decision.group
        if self.decision.trace is not None:
            out["trace"] = self.decision.trace_dict()
        return out


def _item_dict(item: DecisionItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "offerId": item.offer_id,
        "name": item.name,
        "rank": item.rank,
        "score": item.score,
        "personalization": dict(item.personalization),
    }
    if item.fallback:
        out["fallback"] = True  # a flow's fallback offer: nothing else was left
    return out


@dataclass(frozen=True, slots=True)
class StoreDecision:
    """What :meth:`DecisionService.decide` returns: the flow run, the request as filled from
    the store (``metrics``, ``offerHistory``, ``asOf``) and the decision."""

    flow_key: str
    flow_version: int
    request: DecisionRequest
    decision: Decision


#: The ``metrics.*`` values (without the prefix) of a customer without interactions.
NEW_CUSTOMER_METRICS: Mapping[str, Any] = MappingProxyType(
    {
        "interactions": 0,
        "impressions": 0,
        "positive": 0,
        "negative": 0,
        "neutral": 0,
        "conversions": 0,
        "total_value": 0.0,
        "average_value": None,
        "days_since_last_contact": None,
        "days_since_first_contact": None,
    }
)


def customer_metrics(store: Store, tenant_id: str, customer_id: str, now: datetime) -> dict:
    """The ``metrics.*`` values of a customer from the all-time summary (zeros when new).

    ``days_since_last_contact`` and ``days_since_first_contact`` are None for a customer without
    interactions; ``average_value`` is the total value per conversion (None without one).
    """
    return metrics_of(store.get_customer_summary(tenant_id, customer_id), now)


def metrics_of(summary: CustomerSummary | None, now: datetime) -> dict:
    """The ``metrics.*`` values (without the prefix) of a customer's all-time summary as of
    ``now`` (None: a new customer), as :func:`customer_metrics` gives them; for summaries read
    in bulk."""
    if summary is None:
        return dict(NEW_CUSTOMER_METRICS)
    return {
        "interactions": summary.interactions,
        "impressions": summary.impressions,
        "positive": summary.positive,
        "negative": summary.negative,
        "neutral": summary.neutral,
        "conversions": summary.conversions,
        "total_value": summary.total_value,
        "average_value": (
            summary.total_value / summary.conversions if summary.conversions else None
        ),
        "days_since_last_contact": max(
            0.0, (now - summary.last_at).total_seconds() / _SECONDS_PER_DAY
        ),
        "days_since_first_contact": max(
            0.0, (now - summary.first_at).total_seconds() / _SECONDS_PER_DAY
        ),
    }


def offer_history(store: Store, tenant_id: str, customer_id: str) -> dict[str, OfferHistory]:
    """Per-offer history of a customer from the store's offer summaries."""
    return offer_history_of(store.get_offer_summaries(tenant_id, customer_id))


def offer_history_of(summaries: Mapping[str, OfferSummary]) -> dict[str, OfferHistory]:
    """Per-offer history from a customer's offer summaries (read one by one or in bulk)."""
    return {
        offer_id: OfferHistory(
            last_seen_at=s.last_at,
            impressions=s.impressions,
            positive=s.positive,
            negative=s.negative,
            conversions=s.conversions,
        )
        for offer_id, s in summaries.items()
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DecisionService:
    """Recommendations and outcomes for every tenant of one store. Safe to share between
    threads: compiled flows and catalogs are immutable, the caches are lock-protected.
    ``clock`` is the time a decision is made as of when its request gives no ``asOf``
    (default: the current time, UTC)."""

    def __init__(
        self,
        host: Host,
        store: Store,
        *,
        offers_ttl: float = OFFERS_TTL_SECONDS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if host.store is not store:
            # plugins reach the store through the host: both must mean one database
            raise ValueError(
                "DecisionService(host, store): the host was created with another store; "
                "create it with Host(store=store)"
            )
        self.host = host
        self.store = store
        self.offers_ttl = offers_ttl
        #: "now" of a decision whose request gives no ``asOf`` (an aware UTC datetime); a test
        #: or a replay passes its own clock to make decisions reproducible
        self.clock: Callable[[], datetime] = clock or _utc_now
        self._lock = threading.Lock()
        self._flows: dict[tuple[str, str, int], CompiledFlow] = {}
        self._catalogs: dict[str, tuple[float, CompiledCatalog]] = {}
        self._control_groups: dict[str, tuple[float, ControlGroupSettings | None]] = {}
        #: the tenants' contact policies (cached; the API and CLI write through it)
        self.contact_policies = ContactPolicies(store, ttl=offers_ttl)

    # -- flows and offers ----------------------------------------------------------------------
    def published_flow(self, tenant_id: str, key: str | None) -> tuple[CompiledFlow, int]:
        """The tenant's published flow ``key`` (else the default one), compiled, and its version.

        Raises UnknownFlowError when there is no such published flow.
        """
        if key is None:
            key = self.store.default_flow_key(tenant_id)
            if key is None:
                raise UnknownFlowError(
                    "the tenant has no published flow: save and publish one "
                    "(POST /api/v1/flows, then .../versions/{v}/publish) or pass decisionFlowKey"
                )
        stored = self.store.get_flow(tenant_id, key, published_only=True)
        if stored is None:
            raise UnknownFlowError(
                f"flow {key!r} has no published version: publish one of its versions first"
            )
        return self._compiled(tenant_id, stored), stored.version

    def flow_version(self, tenant_id: str, key: str, version: int) -> CompiledFlow:
        """Version ``version`` of the tenant's flow ``key``, compiled, published or not (to
        evaluate or replay a version). UnknownFlowError when the flow has no such version."""
        stored = self.store.get_flow(tenant_id, key, version)
        if stored is None:
            raise UnknownFlowError(f"flow {key!r} has no version {version}")
        return self._compiled(tenant_id, stored)

    def _compiled(self, tenant_id: str, stored: FlowVersion) -> CompiledFlow:
        """A stored flow version compiled (once: versions never change)."""
        cache_key = (tenant_id, stored.key, stored.version)
        with self._lock:
            flow = self._flows.get(cache_key)
        if flow is None:
            flow = self.host.load_flow(stored.document)
            with self._lock:
                self._flows[cache_key] = flow
        return flow

    def catalog(self, tenant_id: str) -> CompiledCatalog:
        """The tenant's offers as a compiled catalog (cached for ``offers_ttl`` seconds)."""
        now = time.monotonic()
        with self._lock:
            cached = self._catalogs.get(tenant_id)
        if cached is not None and now - cached[0] < self.offers_ttl:
            return cached[1]
        offers: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.store.list_offers(tenant_id, cursor=cursor, limit=_OFFER_PAGE)
            offers.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        catalog: CompiledCatalog = self.host.load_offers(offers)
        with self._lock:
            self._catalogs[tenant_id] = (now, catalog)
        return catalog

    def invalidate_offers(self, tenant_id: str) -> None:
        """Forget the cached catalog of a tenant (after an offer was written or deleted)."""
        with self._lock:
            self._catalogs.pop(tenant_id, None)

    # -- control groups ------------------------------------------------------------------------
    def tenant_control_group(self, tenant_id: str) -> ControlGroupSettings | None:
        """The tenant setting ``controlGroup`` (read again after ``offers_ttl`` seconds)."""
        now = time.monotonic()
        with self._lock:
            cached = self._control_groups.get(tenant_id)
        if cached is not None and now - cached[0] < self.offers_ttl:
            return cached[1]
        tenant = self.store.get_tenant(tenant_id)
        raw = None if tenant is None else tenant.settings.get(CONTROL_GROUP_SETTING)
        settings = None
        if raw is not None:
            # the store checks the setting on every write; one written before that check
            # existed may be invalid: the tenant then has no control group, and the log says why
            problem = control_group_problem(raw)
            if problem is None:
                settings = ControlGroupSettings.model_validate(raw)
            else:
                _log.warning(
                    "tenant %r: setting %s ignored (%s); fix it with "
                    "`nextbest tenants settings %s --set controlGroup=...`",
                    tenant_id,
                    CONTROL_GROUP_SETTING,
                    problem,
                    tenant_id,
                )
        with self._lock:
            self._control_groups[tenant_id] = (now, settings)
        return settings

    def assignment(self, tenant_id: str, flow: CompiledFlow, customer_id: str) -> Assignment | None:
        """The customer's control group for ``flow``: the flow's setting ``controlGroup``,
        else the tenant's; None when neither has one."""
        settings = flow.settings.control_group
        if settings is not None:
            return assign(settings, tenant_id, customer_id, source="flow")
        settings = self.tenant_control_group(tenant_id)
        if settings is None:
            return None
        return assign(settings, tenant_id, customer_id, source="tenant")

    def _decide_in_group(
        self,
        tenant_id: str,
        request: DecisionRequest,
        flow: CompiledFlow,
        catalog: CompiledCatalog,
        now: datetime,
        policies: PolicyInputs | None = None,
    ) -> Decision:
        """Run the flow, or not, as the customer's control group says, and mark the group
        (contact ``policies`` apply to every offer the flow gives, a random pick's too)."""
        assignment = self.assignment(tenant_id, flow, request.customer_id)
        if assignment is None or assignment.group != CONTROL:
            decision = self.host.decide(
                tenant_id, request, flow=flow, offers=catalog, policies=policies
            )
        elif assignment.settings.mode == "random":
            seed = random_pick_seed(
                tenant_id, request.customer_id, assignment.settings.salt, flow.key, now
            )
            decision = self.host.decide(
                tenant_id, request, flow=flow, offers=catalog, random_pick=seed, policies=policies
            )
        else:  # mode none: the flow does not run, the customer gets nothing
            as_of = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            trace = Trace() if request.explain else None
            decision = Decision(tenant_id, request.customer_id, flow.key, as_of, [], trace)
        if assignment is not None:
            decision.group = assignment.group
            if request.explain:
                decision.group_reason = assignment.explain()
        return decision

    def lift_report(
        self,
        tenant_id: str,
        flow_key: str,
        *,
        until: datetime,
        since: datetime | None = None,
    ) -> dict[str, Any]:
        """The lift report of a flow's control group in [since, until) (default: the
        ``LIFT_WINDOW_DAYS`` before ``until``): the store's aggregates through
        :func:`nextbest.experiments.lift_report`. UnknownFlowError when the tenant has no flow
        ``flow_key``; InvalidInputError naming ``since``/``until`` for a bad window."""
        if self.store.get_flow(tenant_id, flow_key) is None:
            raise UnknownFlowError(f"flow {flow_key!r} not found")
        if since is None:
            since = until - timedelta(days=LIFT_WINDOW_DAYS)
        return lift_report(self.store.lift_aggregates(tenant_id, flow_key, since, until))

    # -- decisions -----------------------------------------------------------------------------
    def decide(
        self,
        tenant_id: str,
        request: DecisionRequest | Mapping[str, Any],
        *,
        flow_version: int | None = None,
    ) -> StoreDecision:
        """Decide for one customer with the tenant's published flow, without saving anything.

        ``metrics`` are filled from the customer's all-time summary when the flow reads any
        ``metrics.*`` name (values given in the request win); ``offerHistory`` from the per-offer
        summaries when the flow uses it and the request gives none. With a control group (the
        flow's or the tenant's setting ``controlGroup``) the decision carries the customer's
        ``group``; a control customer gets no offer or one eligible offer at random. Raises
        UnknownFlowError when the tenant has no such published flow. With ``flow_version`` that
        version of the request's ``decisionFlowKey`` (required then) runs instead of the
        published one (UnknownFlowError when the flow has no such version).
        """
        if not isinstance(request, DecisionRequest):
            request = DecisionRequest.model_validate(request)
        if flow_version is None:
            flow, version = self.published_flow(tenant_id, request.decision_flow_key)
        else:
            if request.decision_flow_key is None:
                raise UnknownFlowError("a flow version needs the flow's key (decisionFlowKey)")
            flow = self.flow_version(tenant_id, request.decision_flow_key, flow_version)
            version = flow_version
        catalog = self.catalog(tenant_id)
        now = request.as_of or self.clock()
        updates: dict[str, Any] = {"as_of": now}
        if any(name.startswith("metrics.") for name in flow.customer_names):
            metrics = customer_metrics(self.store, tenant_id, request.customer_id, now)
            updates["metrics"] = {**metrics, **request.metrics}
        if flow.uses_offer_history and not request.offer_history:
            updates["offer_history"] = offer_history(self.store, tenant_id, request.customer_id)
        request = request.model_copy(update=updates)
        policies = self.contact_policies.inputs(tenant_id, request.customer_id, now, catalog.by_id)
        exhausted = exhausted_offers(self.store, tenant_id, catalog.constrained, now)
        if exhausted:  # offers whose budget or stock is used up drop out
            policies = dataclasses.replace(policies or PolicyInputs(), exhausted=exhausted)
        decision = self._decide_in_group(tenant_id, request, flow, catalog, now, policies)
        return StoreDecision(flow.key, version, request, decision)

    def recommend(
        self, tenant_id: str, request: DecisionRequest | Mapping[str, Any]
    ) -> Recommendation:
        """Decide for one customer like :meth:`decide`, call the ``recommendation_saving``
        hooks, and save the result (with the plugins' annotations of each offer), so outcomes
        can cite its ``recommendationId`` and ranks; then call the ``recommendation_saved``
        hooks."""
        decided = self.decide(tenant_id, request)
        decision, request = decided.decision, decided.request
        self.host.notify_recommendation_saving(tenant_id, decision)
        recommendation_id = uuid.uuid4().hex
        saved = self.store.save_recommendation(
            tenant_id,
            recommendation_id,
            request.customer_id,
            [
                RecommendationItem(item.rank, item.offer_id, item.score, item.annotations or None)
                for item in decision.items
            ],
            channel=request.channel,
            placement=request.placement,
            flow_key=decided.flow_key,
            flow_version=decided.flow_version,
            created_at=decision.as_of,
            group=decision.group,
        )
        self.host.notify_recommendation_saved(tenant_id, saved)
        return Recommendation(recommendation_id, decided.flow_key, decided.flow_version, decision)

    # -- outcomes ------------------------------------------------------------------------------
    def requires_known_offers(self, tenant_id: str) -> bool:
        """Whether the tenant's outcomes must name offers of its catalog (unless they cite
        ``recommendationId + rank``): yes, unless its setting ``acceptUnknownOffers`` is true."""
        tenant = self.store.get_tenant(tenant_id)
        return tenant is None or tenant.settings.get(ACCEPT_UNKNOWN_OFFERS) is not True

    def record_outcome(self, tenant_id: str, interaction: InteractionIn) -> RecordResult:
        """Record an outcome (idempotent by its key) and, when it is new, call the
        ``outcome_recording`` hooks inside the store's transaction and the ``outcome_recorded``
        hooks after the store committed it. An ``offer_id`` must be in the
        tenant's catalog (see :meth:`requires_known_offers`), checked in the store's
        transaction. Store errors propagate (UnknownOutcomeError, UnknownOfferError,
        UnknownRecommendationError, UnknownRankError, InvalidInputError) and leave nothing
        written."""
        result = self.store.record_interaction(
            tenant_id,
            interaction,
            require_known_offer=self.requires_known_offers(tenant_id),
            participants=self.host.outcome_participants(tenant_id),
        )
        if result.created:
            self.host.notify_outcome(tenant_id, result.interaction)
        return result

    def correct_outcome(
        self, tenant_id: str, idempotency_key: str, interaction: InteractionIn
    ) -> Correction:
        """Replace the outcome recorded under ``idempotency_key`` (summaries recomputed in the
        same transaction) and, when it changed, call the ``interactions_changed`` hooks after
        the commit. Validated like :meth:`record_outcome`; InteractionNotFoundError when no
        outcome has the key."""
        correction = self.store.correct_interaction(
            tenant_id,
            idempotency_key,
            interaction,
            require_known_offer=self.requires_known_offers(tenant_id),
        )
        if correction.changed:
            self.host.notify_interactions_changed(
                tenant_id, [correction.before], [correction.after]
            )
        return correction

    def delete_outcome(self, tenant_id: str, idempotency_key: str) -> Interaction:
        """Delete the outcome recorded under ``idempotency_key`` (summaries recomputed in the
        same transaction), call the ``interactions_changed`` hooks after the commit and return
        what was deleted. InteractionNotFoundError when no outcome has the key."""
        deleted = self.store.delete_interaction(tenant_id, idempotency_key)
        self.host.notify_interactions_changed(tenant_id, [deleted], [])
        return deleted

    def forget_customer(self, tenant_id: str, customer_id: str) -> ForgetResult:
        """Delete everything stored about a customer in one transaction: interactions,
        summaries, recommendations and the customer's documents in every namespace plugins
        registered with ``register_customer_data``; then call the ``customer_forgotten`` hooks
        (plugins drop their caches and what they keep about the customer elsewhere); the
        hooks that failed are in ``plugin_failures``. Forgetting an unknown customer deletes
        nothing (and calls the hooks again: a retry after a failed hook)."""
        result = self.store.forget_customer(
            tenant_id, customer_id, document_namespaces=self.host.registry.customer_data
        )
        failures = self.host.notify_customer_forgotten(tenant_id, customer_id)
        return dataclasses.replace(result, plugin_failures=tuple(failures))


__all__ = [
    "ACCEPT_UNKNOWN_OFFERS",
    "OFFERS_TTL_SECONDS",
    "DecisionService",
    "Recommendation",
    "StoreDecision",
    "customer_metrics",
    "metrics_of",
    "offer_history",
    "offer_history_of",
]
