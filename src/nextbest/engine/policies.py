"""Contact policies applied to a decision (pure: the policies and counts arrive with it).

:func:`apply_contact_policies` runs after the flow's selection phase (inventory, filter,
qualify, compute) and before scoring: for each candidate the policies are walked from the
highest priority down; the first one in scope that blocks removes the candidate (a trace entry
names the policy and the count that tripped it), an ``allow_override`` policy in scope exempts
it from every policy below. ``mutual_exclusion`` policies act on the ranking instead
(:func:`apply_mutual_exclusions`): of the offers they name, the best ranked one stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..models.decision import Candidate, Drop
from ..models.offers import Offer
from ..models.policies import COUNTED_SCOPES, WEEKDAYS, PolicyCounts, window_start
from ..models.request import DecisionRequest
from ..store import OfferOutcome
from .state import DecisionState

#: The node id contact-policy drops carry in the trace.
POLICY_NODE_ID = "(contact-policies)"
#: The node id of drops for a used-up budget or stock.
CONSTRAINT_NODE_ID = "(offer-constraints)"
#: The stage of contact-policy drops in the trace.
POLICY_STAGE = "contact_policy"
_CUSTOMER_LEVEL = frozenset(
    {"frequency_cap", "customer_total_cap", "cross_channel_cap", "segment_exclusion", "time_window"}
)


def scope_label(policy: Any) -> str:
    """``global`` or ``<scope>:<scopeId>``, as the trace shows it."""
    return "global" if policy.scope == "global" else f"{policy.scope}:{policy.scope_id}"


def in_scope(policy: Any, offer: Offer, request: DecisionRequest) -> bool:
    """Whether ``policy`` applies to ``offer`` in a decision for ``request``."""
    scope, scope_id = policy.scope, policy.scope_id
    if scope == "global":
        return True
    if scope == "offer":
        return bool(offer.id == scope_id)
    if scope == "category":
        return bool(offer.category == scope_id)
    if scope == "subcategory":
        return bool(offer.sub_category == scope_id)
    if scope == "channel":
        return bool(request.channel == scope_id)
    return scope_id in request.segments  # segment


def blocking(
    policy: Any, offer_id: str | None, state: DecisionState, counts: PolicyCounts
) -> tuple[str, dict[str, Any]] | None:
    """Why ``policy`` removes offer ``offer_id`` (reason, inputs), or None when it lets it
    pass; customer-level types (caps, segments, time windows) ignore the offer."""
    kind, cfg, where = policy.rule_type, policy.config, scope_label(policy)
    as_of = state.as_of
    # caps scoped to an offer, category, subcategory or channel count the contacts in scope
    scoped = counts.scoped.get(where) if policy.scope in COUNTED_SCOPES else None
    if kind == "frequency_cap":
        periods = counts.periods if scoped is None else scoped
        seen = periods.get(cfg.period, {}).get(cfg.counts, 0)
        if seen >= cfg.max:
            reason = (
                f"frequency_cap exceeded: {seen}/{cfg.period} at scope={where} "
                f"(max {cfg.max} {cfg.counts} per {cfg.period}, UTC)"
            )
            return reason, {"count": seen, "max": cfg.max, "period": cfg.period}
        return None
    if kind == "customer_total_cap":
        total = counts.all_time if scoped is None else scoped.get("all", {})
        seen = total.get(cfg.counts, 0)
        if seen >= cfg.max:
            reason = (
                f"customer_total_cap exceeded: {seen} {cfg.counts} at scope={where} (max {cfg.max})"
            )
            return reason, {"count": seen, "max": cfg.max}
        return None
    if kind == "cross_channel_cap":
        on = counts.channels.get(cfg.period, {})
        used = sorted(ch for ch, seen_on in on.items() if seen_on.get(cfg.counts, 0) > 0)
        channel = state.request.channel
        # a request on a channel already used (or on none) adds no channel
        if len(used) >= cfg.max_channels and channel is not None and channel not in used:
            reason = (
                f"cross_channel_cap exceeded: {len(used)} channels/{cfg.period} "
                f"({', '.join(used)}) at scope={where}; {channel!r} would be another "
                f"(max {cfg.max_channels} channels with {cfg.counts} per {cfg.period}, UTC)"
            )
            details = {"count": len(used), "channels": used, "max": cfg.max_channels}
            return reason, {**details, "period": cfg.period}
        return None
    if kind == "segment_exclusion":
        hit = [s for s in cfg.segments if s in state.request.segments]
        if hit:
            return (
                f"segment_exclusion: customer is in segment {hit[0]!r} at scope={where}",
                {"segment": hit[0]},
            )
        return None
    if kind == "time_window":
        utc = as_of.astimezone(UTC)  # a request's asOf may carry another offset
        day, hour = WEEKDAYS[utc.weekday()], utc.hour
        if day not in cfg.days or not cfg.from_hour <= hour < cfg.to_hour:
            reason = (
                f"time_window: {day} {utc:%H:%M} UTC is outside {','.join(cfg.days)} "
                f"{cfg.from_hour:02d}:00-{cfg.to_hour:02d}:00 at scope={where}"
            )
            return reason, {"day": day, "hour": hour}
        return None
    if offer_id is None:
        return None
    seen_offer = counts.outcomes.get(offer_id, {})
    if kind == "cooldown":
        shown = _latest(o for o in seen_offer.values() if o.kind == "impression")
        if shown is None:
            return None  # never shown: no cooldown
        hours = (as_of - shown).total_seconds() / 3600.0
        if hours < cfg.hours:
            reason = (
                f"cooldown: offer last shown {hours:.1f} h ago, needs {cfg.hours:g} h "
                f"at scope={where}"
            )
            return reason, {"hoursSince": round(hours, 3), "hours": cfg.hours}
        return None
    if kind == "outcome_based":
        if cfg.outcome is not None:
            found = seen_offer.get(cfg.outcome)
            if found is None:
                return None
            days = (as_of - found.last_at).total_seconds() / 86400.0
            if days >= cfg.days:
                return None
            reason = (
                f"outcome_based: last outcome {cfg.outcome!r} {days:.1f} days ago "
                f"(suppressed for {cfg.days:g} days) at scope={where}"
            )
            return reason, {"outcome": cfg.outcome, "daysSince": round(days, 3)}
        start = window_start(as_of, cfg.days)
        seen = counts.classified.get((cfg.classification, start), {}).get(offer_id, 0)
        if seen < cfg.min_count:
            return None
        last = _latest(o for o in seen_offer.values() if o.classification == cfg.classification)
        ago = "" if last is None else f", the last {_days(as_of, last):.1f} days ago"
        reason = (
            f"outcome_based: {seen} {cfg.classification} responses on the UTC days since "
            f"{start.isoformat()} (min {cfg.min_count} in {cfg.days:g} days){ago} "
            f"at scope={where}"
        )
        window: dict[str, Any] = {
            "count": seen, "minCount": cfg.min_count, "since": start.isoformat()
        }  # fmt: skip
        if last is not None:
            window["daysSince"] = round(_days(as_of, last), 3)
        return reason, window
    return None


def _latest(outcomes: Iterable[OfferOutcome]) -> datetime | None:
    """The latest ``last_at`` of ``outcomes`` (None: none)."""
    return max((o.last_at for o in outcomes), default=None)


def _days(as_of: datetime, at: datetime) -> float:
    return (as_of - at).total_seconds() / 86400.0


def apply_contact_policies(state: DecisionState) -> None:
    """Remove the candidates a policy blocks (see the module docstring).

    Each policy is answered once per decision before the candidates are walked: a
    customer-level one blocks every offer in its scope or none, a per-offer one (cooldown,
    outcome_based) only offers with history, found in the offer outcomes. Policies that
    block nothing are left out, so the walk per candidate is short.
    """
    inputs = state.policies
    if inputs is None or inputs.empty:
        return
    if inputs.exhausted:
        _drop_exhausted(state, inputs.exhausted)
    counts, request, trace = inputs.counts, state.request, state.trace
    # (policy, None: an override | a reason for every offer | reasons by offer id)
    plan: list[tuple[Any, Any]] = []
    for policy in inputs.policies:
        kind = policy.rule_type
        if kind == "mutual_exclusion":
            continue
        if kind == "allow_override":
            plan.append((policy, None))
        elif kind in _CUSTOMER_LEVEL:
            found = blocking(policy, None, state, counts)
            if found is not None:
                plan.append((policy, found))
        else:
            by_offer = {
                offer_id: found
                for offer_id in _may_block(policy, counts, state.as_of)
                if (found := blocking(policy, offer_id, state, counts)) is not None
            }
            if by_offer:
                plan.append((policy, by_offer))
    if all(answer is None for _, answer in plan):
        return  # nothing blocks (overrides alone change nothing)
    kept: list[Candidate] = []
    for cand in state.candidates:
        offer = cand.offer
        blocked = None
        for policy, answer in plan:
            if offer.mandatory and policy.bypassable:
                continue
            if isinstance(answer, dict):
                found = answer.get(offer.id)
                if found is None:
                    continue
            else:
                found = answer
            if not in_scope(policy, offer, request):
                continue
            if found is None:  # an allow_override in scope
                break
            blocked = (policy, found)
            break
        if blocked is None:
            kept.append(cand)
        elif trace is not None:
            policy, (reason, details) = blocked
            inputs_seen = {"policy": policy.name, "ruleType": policy.rule_type, **details}
            trace.drops.append(
                Drop(offer.id, POLICY_NODE_ID, reason, policy.name, POLICY_STAGE, inputs_seen)
            )
    state.candidates = kept


def _may_block(policy: Any, counts: PolicyCounts, as_of: datetime) -> list[str]:
    """The offers a per-offer policy may block, by one cheap test each (a time after the
    window's start, a count at the minimum): :func:`blocking` then decides and says why."""
    cfg = policy.config
    if policy.rule_type == "cooldown":
        cutoff = as_of - timedelta(hours=cfg.hours)
        return [
            offer_id
            for offer_id, seen in counts.outcomes.items()
            if any(o.last_at > cutoff and o.kind == "impression" for o in seen.values())
        ]
    if cfg.outcome is not None:
        cutoff = as_of - timedelta(days=cfg.days)
        return [
            offer_id
            for offer_id, seen in counts.outcomes.items()
            if (found := seen.get(cfg.outcome)) is not None and found.last_at > cutoff
        ]
    classified = counts.classified.get((cfg.classification, window_start(as_of, cfg.days)), {})
    return [offer_id for offer_id, n in classified.items() if n >= cfg.min_count]


def _drop_exhausted(state: DecisionState, exhausted: Mapping[str, str]) -> None:
    """Remove the offers whose budget or stock is used up (mandatory ones too: a constraint
    is never bypassed)."""
    kept = []
    for cand in state.candidates:
        reason = exhausted.get(cand.offer.id)
        if reason is None:
            kept.append(cand)
        elif state.trace is not None:
            state.trace.drops.append(
                Drop(cand.offer.id, CONSTRAINT_NODE_ID, reason, None, "offer_constraint")
            )
    state.candidates = kept


def apply_mutual_exclusions(
    state: DecisionState, ordered: Sequence[Candidate], node_id: str
) -> list[Candidate]:
    """``ordered`` (best first) without the offers a ``mutual_exclusion`` policy excludes: of
    the offers one names, only the best ranked stays (an offer exempted by a higher-priority
    ``allow_override``, or mandatory under a bypassable policy, is neither removed nor
    counted)."""
    inputs = state.policies
    if inputs is None:
        return list(ordered)
    groups = [
        (index, p) for index, p in enumerate(inputs.policies) if p.rule_type == "mutual_exclusion"
    ]
    if not groups:
        return list(ordered)
    request = state.request
    named = frozenset().union(*(p.config.offers for _, p in groups))
    overrides = any(p.rule_type == "allow_override" for p in inputs.policies)
    out: list[Candidate] = []
    taken: dict[int, str] = {}  # policy index -> the offer that stays
    for cand in ordered:
        offer = cand.offer
        if offer.id not in named:
            out.append(cand)
            continue
        subject = [
            (index, policy)
            for index, policy in groups
            if offer.id in policy.config.offers
            and in_scope(policy, offer, request)
            and not (offer.mandatory and policy.bypassable)
            and not (overrides and _overridden(inputs.policies[:index], offer, request))
        ]
        removed_by = next(((p, taken[i]) for i, p in subject if i in taken), None)
        if removed_by is None:
            for index, _ in subject:
                taken[index] = offer.id
            out.append(cand)
        elif state.trace is not None:
            policy, winner = removed_by
            reason = (
                f"mutual_exclusion: {winner!r} ranks higher among "
                f"{', '.join(policy.config.offers)} at scope={scope_label(policy)}"
            )
            state.trace.drops.append(
                Drop(
                    offer.id,
                    node_id,
                    reason,
                    policy.name,
                    POLICY_STAGE,
                    {"policy": policy.name, "ruleType": policy.rule_type, "kept": winner},
                )
            )
    return out


def _overridden(higher: Sequence[Any], offer: Offer, request: DecisionRequest) -> bool:
    return any(p.rule_type == "allow_override" and in_scope(p, offer, request) for p in higher)
