"""The ``rank`` node: order by score (mandatory offers first) and cut at the limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...models.decision import Candidate, Drop
from ...models.flows import RankConfig
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
        if state.random_pick is not None and ordered:
            # a control customer's random eligible offer: uniform over the candidates in
            # their tie-break order (scores play no part), the rest dropped
            chosen = state.candidates[state.random_pick % len(state.candidates)]
            ordered.remove(chosen)
            ordered.insert(0, chosen)
            limit = 1
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
