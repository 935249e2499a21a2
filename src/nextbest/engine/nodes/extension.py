"""The ``extension_point`` node: call plugin hooks (``pre_score``, ``score_override``,
``post_rank``) one implementation at a time, isolating failures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...hookcalls import call_impl, implementations
from ...models.decision import Drop
from ...models.flows import ExtensionPointConfig
from ..state import DecisionState, DecisionView
from .base import (
    OUTPUT,
    RANKING,
    SELECTION,
    BuildContext,
    Misplacements,
    NodeType,
    static_config,
)


@dataclass
class ExtensionStep:
    node_id: str
    hook: str
    node_type: str = "extension_point"

    def run(self, state: DecisionState) -> None:
        run_extension(self, state)


def _impls(state: DecisionState, hook: str) -> list[Any]:
    return implementations(state.host.pm, hook)


def run_extension(step: ExtensionStep, state: DecisionState) -> None:
    """Run the hook named by an extension_point node."""
    view = DecisionView(state)
    if step.hook == "pre_score":
        dropped_by: dict[int, str] = {}
        for impl in _impls(state, "pre_score"):
            # what the candidates looked like before this plugin, to undo a failing one
            before = [(c, c._drop, c.fit_multiplier) for c in state.candidates]
            try:
                call_impl(impl, decision=view, candidates=list(state.candidates))
            except Exception as exc:
                for cand, was_dropped, fit in before:
                    cand._drop, cand.fit_multiplier, cand._adjustments = was_dropped, fit, None
                state.plugin_failed(
                    impl.plugin_name, "pre_score", exc, None, "hook ignored (its changes undone)"
                )
            else:
                _attribute(step, state, impl.plugin_name, dropped_by)
        kept = []
        for cand in state.candidates:
            if cand._drop is not None:
                drop = Drop(cand.offer.id, step.node_id, cand._drop, stage="pre_score")
                drop.plugin = dropped_by.get(id(cand))
                state.drop(cand, drop)
            else:
                cand.scope["fitMultiplier"] = cand.fit_multiplier
                kept.append(cand)
        state.candidates = kept
    elif step.hook == "score_override":
        impls = _impls(state, "score_override")
        for cand in state.candidates:
            for impl in impls:
                try:
                    value = call_impl(impl, decision=view, candidate=cand)
                    if value is None:
                        continue
                    value = float(value)
                    if not math.isfinite(value) or value < 0:
                        raise ValueError(f"score_override returned {value}")
                except Exception as exc:
                    state.plugin_failed(
                        impl.plugin_name, "score_override", exc, cand.offer.id, "score kept"
                    )
                    continue
                cand.score = value
                if cand.breakdown is not None:
                    cand.breakdown.sources["override"] = impl.plugin_name
                    cand.breakdown.score = value
                break
    else:
        ranked = list(state.ranked or [])
        for impl in _impls(state, "post_rank"):
            try:
                result = call_impl(impl, decision=view, ranked=list(ranked))
                if result is None:
                    continue
                ids = {id(c) for c in ranked}
                if any(id(c) not in ids for c in result) or len(set(map(id, result))) != len(
                    result
                ):
                    raise ValueError("post_rank must return a subset of the ranked candidates")
                ranked = list(result)
            except Exception as exc:
                state.plugin_failed(impl.plugin_name, "post_rank", exc, None, "order kept")
        state.ranked = ranked
        for position, cand in enumerate(ranked, start=1):
            cand.scope["rank"] = position


def _attribute(
    step: ExtensionStep, state: DecisionState, plugin: str, dropped_by: dict[int, str]
) -> None:
    """Credit the drops and fit adjustments made so far to ``plugin`` (hooks run one at a time)."""
    trace = state.trace
    for cand in state.candidates:
        if cand._drop is not None:
            dropped_by.setdefault(id(cand), plugin)
        if not cand._adjustments:
            continue
        if trace is not None:
            for multiplier, reason, fit in cand._adjustments:
                trace.adjustments.setdefault(cand.offer.id, []).append(
                    {
                        "nodeId": step.node_id,
                        "ruleId": None,
                        "stage": "pre_score",
                        "multiplier": multiplier,
                        "fitMultiplier": fit,
                        "reason": reason or "adjusted by plugin",
                        "inputs": {},
                        "plugin": plugin,
                    }
                )
        cand._adjustments = None


def _placement(types: Sequence[str], index: int, node: Any) -> Misplacements:
    """Each hook's place: pre_score before score, score_override between score and rank,
    post_rank after rank."""
    hook = node.config.hook
    score_at = types.index("score") if "score" in types else None
    rank_at = types.index("rank") if "rank" in types else None
    if hook == "pre_score" and score_at is not None and index > score_at:
        yield ".config.hook", "pre_score must come before score"
    if hook == "score_override" and (
        score_at is None or index < score_at or (rank_at is not None and index > rank_at)
    ):
        yield ".config.hook", "score_override must sit between score and rank"
    if hook == "post_rank" and (rank_at is None or index < rank_at):
        yield ".config.hook", "post_rank must come after rank"


def _build(node: Any, ctx: BuildContext) -> ExtensionStep:
    return ExtensionStep(node.id, node.config.hook)


EXTENSION_POINT = NodeType(
    name="extension_point",
    phases=(SELECTION, RANKING, OUTPUT),
    config=static_config(ExtensionPointConfig, required=True),
    build=_build,
    placement=_placement,
    description="calls the plugins' pre_score, score_override or post_rank hooks",
)
