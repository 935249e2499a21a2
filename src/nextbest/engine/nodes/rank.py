"""The ``rank`` node: order by score (mandatory offers first) and cut at the limit; when nothing
is left, the flow's fallback offers (``settings.fallbackOffers``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...models.decision import Candidate, Drop
from ...models.flows import RankConfig
from ..policies import apply_contact_policies, apply_mutual_exclusions
from ..state import DecisionState
from .base import RANKING, BuildContext, Misplacements, NodeType, static_config


@dataclass
class RankStep:
    node_id: str
    max_candidates: int
    node_type: str = "rank"

    def run(self, state: DecisionState) -> None:
        limit = self.max_candidates
        if state.request.limit is not None:
            limit = min(limit, state.request.limit)
        # candidates arrive in tie-break order (see CompiledCatalog.build); a stable sort by
        # score, then mandatory offers first, gives score desc, priority desc, id
        ordered = sorted(state.candidates, key=_score_of, reverse=True)
        if any(c.offer.mandatory for c in ordered):
            ordered.sort(key=_not_mandatory)
        if state.random_pick is not None:
            limit = 1  # a control customer gets one offer, a fallback one included
        if state.random_pick is not None and ordered:
            # a control customer's random eligible offer: uniform over the candidates in
            # their tie-break order (scores play no part), the rest dropped
            chosen = state.candidates[state.random_pick % len(state.candidates)]
            ordered.remove(chosen)
            ordered.insert(0, chosen)
        if state.policies is not None and state.policies.policies:  # mutual exclusions
            ordered = apply_mutual_exclusions(state, ordered, self.node_id)
        if not ordered and state.flow.settings.fallback_offers:
            ordered = self._fallback(state)
        state.ranked = ordered[:limit]
        if state.trace is not None:
            for position, cand in enumerate(ordered[limit:], start=limit + 1):
                state.drop(
                    cand,
                    Drop(
                        cand.offer.id,
                        self.node_id,
                        (
                            f"ranked {position}, below the cut-off of {limit}"
                            if state.random_pick is None
                            else "control group (mode random): another offer was picked"
                        ),
                    ),
                )
        for position, cand in enumerate(state.ranked, start=1):
            cand.scope["score"] = cand.score
            cand.scope["rank"] = position

    def _fallback(self, state: DecisionState) -> list[Candidate]:
        """The flow's fallback offers that are in the catalog, active and live at the
        decision's time, and that no contact policy or used-up budget or stock removes, in the
        order the flow names them (the others are trace entries)."""
        by_id = state.catalog.by_id
        customer = {n: state.customer.get(n) for n in state.flow.customer_names}
        out = []
        for offer_id in state.flow.settings.fallback_offers:
            entry = by_id.get(offer_id)
            if entry is None:
                problem: str | None = "fallback offer is not in the catalog"
            else:
                offer, static = entry
                problem = (
                    f"fallback offer has status {offer.status!r}, not 'active'"
                    if offer.status != "active"
                    else offer.live_problem(state.as_of)
                )
            if problem is not None:
                if state.trace is not None:
                    state.trace.drops.append(Drop(offer_id, self.node_id, problem))
                continue
            scope = dict(static)
            scope.update(customer)
            scope["fitMultiplier"] = 1.0
            for name in state.flow.offer_names:  # names no step before set: null
                scope.setdefault(name, None)
            cand = Candidate(offer, scope)
            cand.fallback = True
            cand.score = 0.0
            out.append(cand)
        if out and state.policies is not None and not state.policies.empty:
            # a fallback offer is still a contact: the contact policies and a used-up budget
            # or stock apply to it as to any other offer (drops explained the same way)
            kept, state.candidates = state.candidates, out
            apply_contact_policies(state)
            out, state.candidates = state.candidates, kept
            out = apply_mutual_exclusions(state, out, self.node_id)
        if state.trace is not None:
            state.trace.fallback = [c.offer.id for c in out]
        return out


def _score_of(cand: Candidate) -> float:
    return cand.score or 0.0


def _not_mandatory(cand: Candidate) -> bool:
    return not cand.offer.mandatory


def _placement(types: Sequence[str], index: int, node: Any) -> Misplacements:
    if "score" not in types[:index]:
        yield "", "rank needs a score node before it"


def _build(node: Any, ctx: BuildContext) -> RankStep:
    return RankStep(node.id, node.config.max_candidates)


RANK = NodeType(
    name="rank",
    phases=(RANKING,),
    config=static_config(RankConfig),
    build=_build,
    placement=_placement,
    unique=True,
    required=True,
    description="orders candidates by score and keeps the best",
)
