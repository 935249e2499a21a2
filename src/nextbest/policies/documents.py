"""Contact policies of a tenant in the store, and what a decision needs of them.

Policies are stored as documents of the host's namespace :data:`POLICIES_NAMESPACE` (one per
policy name) and validated on every write (:func:`parse_policy`). :class:`ContactPolicies`
caches each tenant's active policies (writes through it invalidate at once; other processes'
writes are seen within ``ttl`` seconds) and reads, per decision, only the summaries the
active policies need: the customer's daily summaries of the current month and ISO week for
``frequency_cap``, the all-time summary for ``customer_total_cap``, the per (offer, outcome
type) latest times for ``cooldown`` and ``outcome_based``, and the customer's contact counts
(per day, offer and channel) once when a cap is scoped to an offer, category, subcategory or
channel, a ``cross_channel_cap`` or an ``outcome_based`` policy with a classification is active
(since the earliest day one of them reads; all of them for a scoped ``customer_total_cap``).
No raw interaction is read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from ..engine.compiler import format_loc
from ..engine.policies import scope_label
from ..errors import FlowIssue, FlowValidationError, StoredPolicyError
from ..models.offers import Offer
from ..models.policies import (
    COUNTED,
    COUNTED_SCOPES,
    POLICY_ADAPTER,
    POLICY_TYPES,
    PolicyCounts,
    PolicyInputs,
    period_starts,
    window_start,
)
from ..store import ContactCount, CustomerSummary, DailySummary, OfferOutcome, Store

log = logging.getLogger(__name__)

#: The document namespace holding contact policies (the host's own; plugins use theirs).
POLICIES_NAMESPACE = "nextbest.contact-policies"
#: Seconds a tenant's policies are reused before the store is read again.
POLICIES_TTL_SECONDS = 5.0


def parse_policy(document: Any) -> Any:
    """A contact policy model from its document.

    Raises:
        FlowValidationError: every problem with its path (``config.max``, ``ruleType``, ...).
    """
    try:
        return POLICY_ADAPTER.validate_python(document)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if loc and loc[0] in POLICY_TYPES:  # the union's tag pydantic puts first
                loc = loc[1:]
            path = format_loc(loc, frozenset())
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                path = "ruleType"  # a missing or unknown rule type: the message lists them
            issues.append(FlowIssue(path, err["msg"]))
        raise FlowValidationError(issues) from None


def _list_order(document: Any) -> tuple[float, str]:
    """Highest priority first, then by name; a stored document that lacks them (written
    around the API) still sorts, so it can be listed and fixed."""
    priority = document.get("priority") if isinstance(document, dict) else None
    name = document.get("name") if isinstance(document, dict) else None
    number = float(priority) if isinstance(priority, int | float) else 0.0
    return -number, str(name)


def policy_document(policy: Any) -> dict[str, Any]:
    """The JSON document of a policy model (camelCase, defaults filled in)."""
    out: dict[str, Any] = policy.model_dump(mode="json", by_alias=True)
    return out


class ContactPolicies:
    """A store's contact policies: writes, reads and the per-decision inputs. Thread-safe."""

    def __init__(self, store: Store, *, ttl: float = POLICIES_TTL_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, tuple[Any, ...]]] = {}

    # -- documents ---------------------------------------------------------------------------
    def put(self, tenant_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store a policy (created or replaced by name); return its document."""
        policy = parse_policy(dict(document))
        stored = policy_document(policy)
        self.store.put_documents(POLICIES_NAMESPACE, tenant_id, {policy.name: stored})
        self.invalidate(tenant_id)
        return stored

    def get(self, tenant_id: str, name: str) -> dict[str, Any] | None:
        """One policy's document, or None."""
        found: dict[str, Any] | None = self.store.get_document(POLICIES_NAMESPACE, tenant_id, name)
        return found

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every policy of the tenant, highest priority first, then by name."""
        documents = self.store.get_documents(POLICIES_NAMESPACE, tenant_id)
        return sorted(documents.values(), key=_list_order)

    def remove(self, tenant_id: str, name: str) -> bool:
        """Delete a policy; whether it existed."""
        removed = self.store.delete_documents(POLICIES_NAMESPACE, tenant_id, [name]) > 0
        self.invalidate(tenant_id)
        return removed

    def invalidate(self, tenant_id: str) -> None:
        """Forget the cached policies of a tenant."""
        with self._lock:
            self._active.pop(tenant_id, None)

    # -- decisions ---------------------------------------------------------------------------
    def active(self, tenant_id: str) -> tuple[Any, ...]:
        """The tenant's active policies as models, highest priority first (cached)."""
        now = time.monotonic()
        with self._lock:
            cached = self._active.get(tenant_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        models = []
        for document in self.list(tenant_id):
            try:
                models.append(parse_policy(document))
            except FlowValidationError as exc:
                name = str(document.get("name", "?")) if isinstance(document, dict) else "?"
                log.error(
                    "tenant %r: stored contact policy %r is invalid: %s", tenant_id, name, exc
                )
                raise StoredPolicyError(name, exc.issues) from None
        policies = tuple(p for p in models if p.status == "active")
        with self._lock:
            self._active[tenant_id] = (now, policies)
        return policies

    def inputs(
        self,
        tenant_id: str,
        customer_id: str,
        as_of: datetime,
        offers: Mapping[str, tuple[Offer, Any]] | None = None,
    ) -> PolicyInputs | None:
        """The active policies with the counts they read for one customer as of ``as_of``
        (UTC), or None when the tenant has no active policy. ``offers`` (the catalog by id)
        places past contacts in a category or subcategory; contacts with offers outside it
        count in no category."""
        policies = self.active(tenant_id)
        if not policies:
            return None
        # UTC periods whatever offset the request's asOf carries
        as_of = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
        counts = self.counts(tenant_id, customer_id, as_of, policies, offers or {})
        return PolicyInputs(policies, counts)

    def counts(
        self,
        tenant_id: str,
        customer_id: str,
        as_of: datetime,
        policies: Iterable[Any],
        catalog: Mapping[str, tuple[Offer, Any]],
    ) -> PolicyCounts:
        """What ``policies`` read of one customer, from the store's summaries."""
        policies = tuple(policies)
        need = counts_needed(policies, as_of)
        days: Sequence[DailySummary] = ()
        if need.daily_from is not None:
            days = self.store.get_daily_summaries(
                tenant_id, customer_id, need.daily_from, as_of.date()
            )
        summary = None
        if need.summary:
            summary = self.store.get_customer_summary(tenant_id, customer_id)
        offers: Sequence[OfferOutcome] = ()
        if need.offers:
            offers = self.store.get_offer_outcomes(tenant_id, customer_id)
        contacts: Sequence[ContactCount] = ()
        if need.contacts:
            contacts = self.store.get_contact_counts(tenant_id, customer_id, need.contacts_from)
        return policy_counts(as_of, policies, catalog, days, summary, offers, contacts)


@dataclass(frozen=True, slots=True)
class CountsNeeded:
    """Which summaries policies read as of a time: the daily ones from ``daily_from`` (None:
    none), the all-time one, the offer outcomes (``offers``), the contact counts (from
    ``contacts_from``; None with ``contacts``: all of them)."""

    daily_from: date | None
    summary: bool
    offers: bool
    contacts: bool
    contacts_from: date | None


def counts_needed(policies: Iterable[Any], as_of: datetime) -> CountsNeeded:
    """What :func:`policy_counts` needs read for ``policies`` as of ``as_of`` (UTC)."""
    policies = tuple(policies)
    kinds = {p.rule_type for p in policies}
    first = min(period_starts(as_of).values())
    scoped = [p for p in policies if _scoped_cap(p)]
    whole = any(p.rule_type == "customer_total_cap" for p in scoped)
    windows = [window_start(as_of, p.config.days) for p in policies if _classified(p)]
    return CountsNeeded(
        daily_from=first if "frequency_cap" in kinds else None,
        summary="customer_total_cap" in kinds,
        offers=bool(kinds & {"cooldown", "outcome_based"}),
        contacts=bool(scoped) or "cross_channel_cap" in kinds or bool(windows),
        contacts_from=None if whole else min([first, *windows]),
    )


def _classified(policy: Any) -> bool:
    """An ``outcome_based`` policy counting responses by classification."""
    return policy.rule_type == "outcome_based" and policy.config.classification is not None


def _scoped_cap(policy: Any) -> bool:
    return policy.rule_type in ("frequency_cap", "customer_total_cap") and (
        policy.scope in COUNTED_SCOPES
    )


def policy_counts(
    as_of: datetime,
    policies: Iterable[Any],
    catalog: Mapping[str, tuple[Offer, Any]],
    days: Sequence[DailySummary],
    summary: CustomerSummary | None,
    offers: Sequence[OfferOutcome],
    contacts: Sequence[ContactCount],
) -> PolicyCounts:
    """What ``policies`` read of one customer as of ``as_of`` (UTC), from what
    :func:`counts_needed` names, however it was read (one customer, or a whole tenant at
    once): its daily summaries, all-time summary, offer outcomes and contact counts."""
    policies = tuple(policies)
    kinds = {p.rule_type for p in policies}
    starts = period_starts(as_of)
    end = as_of.date()  # days after the decision's are out
    periods: dict[str, dict[str, int]] = {}
    if "frequency_cap" in kinds:
        for period, start in starts.items():
            periods[period] = _totals(d for d in days if start <= d.day <= end)
    all_time: dict[str, int] = {}
    if "customer_total_cap" in kinds:
        all_time = _totals([summary] if summary else [])
    outcomes: dict[str, dict[str, OfferOutcome]] = {}
    if kinds & {"cooldown", "outcome_based"}:
        for o in offers:
            outcomes.setdefault(o.offer_id, {})[o.outcome] = o
    classified: dict[tuple[str, date], dict[str, int]] = {}
    for policy in policies:
        if not _classified(policy):
            continue
        cls = policy.config.classification
        key = (cls, window_start(as_of, policy.config.days))
        if key in classified:
            continue
        by_offer: dict[str, int] = {}
        for r in contacts:
            if r.offer_id is not None and key[1] <= r.day <= end:
                n = r.positives if cls == "positive" else r.negatives
                if n:
                    by_offer[r.offer_id] = by_offer.get(r.offer_id, 0) + n
        classified[key] = by_offer
    scoped: dict[str, dict[str, dict[str, int]]] = {}
    for policy in policies:
        label = scope_label(policy)
        if _scoped_cap(policy) and label not in scoped:
            matching = [r for r in contacts if _in_scope(policy, r, catalog)]
            scoped[label] = {
                period: _contact_totals(r for r in matching if start <= r.day <= end)
                for period, start in starts.items()
            }
            scoped[label]["all"] = _contact_totals(matching)
    channels: dict[str, dict[str, dict[str, int]]] = {}
    if "cross_channel_cap" in kinds:
        for period, start in starts.items():
            on: dict[str, dict[str, int]] = {}
            for r in contacts:
                if r.channel is not None and start <= r.day <= end:
                    seen = on.setdefault(r.channel, dict.fromkeys(COUNTED, 0))
                    for name in COUNTED:
                        seen[name] += getattr(r, name)
            channels[period] = on
    return PolicyCounts(periods, all_time, outcomes, classified, scoped, channels)


def _totals(summaries: Iterable[Any]) -> dict[str, int]:
    """Every ``COUNTED`` value summed over summaries (daily or all-time)."""
    out = dict.fromkeys(COUNTED, 0)
    for s in summaries:
        out["impressions"] += s.impressions
        out["interactions"] += s.interactions
        out["responses"] += s.interactions - s.impressions
        out["conversions"] += s.conversions
    return out


def _contact_totals(rows: Iterable[ContactCount]) -> dict[str, int]:
    out = dict.fromkeys(COUNTED, 0)
    for r in rows:
        for name in COUNTED:
            out[name] += getattr(r, name)
    return out


def _in_scope(policy: Any, row: ContactCount, catalog: Mapping[str, tuple[Offer, Any]]) -> bool:
    """Whether a contact counts for a cap scoped to an offer, (sub)category or channel."""
    scope, scope_id = policy.scope, policy.scope_id
    if scope == "channel":
        return row.channel == scope_id
    if scope == "offer":
        return row.offer_id == scope_id
    found = catalog.get(row.offer_id) if row.offer_id is not None else None
    if found is None:
        return False
    offer = found[0]
    return bool((offer.category if scope == "category" else offer.sub_category) == scope_id)
