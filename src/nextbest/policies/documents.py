"""Contact policies of a tenant in the store, and what a decision needs of them.

Policies are stored as documents of the host's namespace :data:`POLICIES_NAMESPACE` (one per
policy name) and validated on every write (:func:`parse_policy`). :class:`ContactPolicies`
caches each tenant's active policies (writes through it invalidate at once; other processes'
writes are seen within ``ttl`` seconds) and reads, per decision, only the summaries the
active policies need: the customer's daily summaries of the current month and ISO week for
``frequency_cap``, the all-time summary for ``customer_total_cap``, the per-offer summaries for
``cooldown`` and ``outcome_based``. No raw interaction is read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..engine.compiler import format_loc
from ..errors import FlowIssue, FlowValidationError
from ..models.policies import (
    POLICY_ADAPTER,
    POLICY_TYPES,
    PolicyCounts,
    PolicyInputs,
    period_starts,
)
from ..store import CustomerSummary, DailySummary, OfferSummary, Store

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
        return sorted(documents.values(), key=lambda d: (-d["priority"], d["name"]))

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
        models = [parse_policy(d) for d in self.list(tenant_id)]
        policies = tuple(p for p in models if p.status == "active")
        with self._lock:
            self._active[tenant_id] = (now, policies)
        return policies

    def inputs(self, tenant_id: str, customer_id: str, as_of: datetime) -> PolicyInputs | None:
        """The active policies with the counts they read for one customer as of ``as_of``
        (UTC), or None when the tenant has no active policy."""
        policies = self.active(tenant_id)
        if not policies:
            return None
        # UTC periods whatever offset the request's asOf carries
        as_of = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
        kinds = {p.rule_type for p in policies}
        return PolicyInputs(policies, self.counts(tenant_id, customer_id, as_of, kinds))

    def counts(
        self, tenant_id: str, customer_id: str, as_of: datetime, kinds: set[str]
    ) -> PolicyCounts:
        """What ``kinds`` of policies read of one customer, from the store's summaries."""
        days: list[DailySummary] = []
        if "frequency_cap" in kinds:
            first = min(period_starts(as_of).values())
            days = self.store.get_daily_summaries(tenant_id, customer_id, first, as_of.date())
        summary = None
        if "customer_total_cap" in kinds:
            summary = self.store.get_customer_summary(tenant_id, customer_id)
        offers: dict[str, OfferSummary] = {}
        if kinds & {"cooldown", "outcome_based"}:
            offers = self.store.get_offer_summaries(tenant_id, customer_id)
        return policy_counts(as_of, kinds, days, summary, offers)


def policy_counts(
    as_of: datetime,
    kinds: set[str] | frozenset[str],
    days: Sequence[DailySummary],
    summary: CustomerSummary | None,
    offers: Mapping[str, OfferSummary],
) -> PolicyCounts:
    """What ``kinds`` of policies read of one customer as of ``as_of`` (UTC), from its daily
    summaries (at least those of the current month and week), its all-time summary and its
    per-offer summaries, however they were read (one customer, or a whole tenant at once)."""
    periods: dict[str, dict[str, int]] = {}
    if "frequency_cap" in kinds:
        for period, start in period_starts(as_of).items():
            inside = [d for d in days if start <= d.day <= as_of.date()]
            periods[period] = {
                "impressions": sum(d.impressions for d in inside),
                "interactions": sum(d.interactions for d in inside),
            }
    all_time: dict[str, int] = {}
    if "customer_total_cap" in kinds:
        all_time = {
            "impressions": summary.impressions if summary else 0,
            "interactions": summary.interactions if summary else 0,
        }
    chosen = dict(offers) if kinds & {"cooldown", "outcome_based"} else {}
    return PolicyCounts(periods, all_time, chosen)
