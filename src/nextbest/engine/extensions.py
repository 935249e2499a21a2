"""Extension-point nodes: call plugin hooks one implementation at a time, isolating failures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..models.decision import Drop
from ..plugins import call_impl, implementations
from .state import DecisionView

if TYPE_CHECKING:
    from .state import DecisionState
    from .steps import ExtensionStep


def _impls(state: DecisionState, hook: str) -> list[Any]:
    return implementations(state.host.pm, hook)


def run_extension(step: ExtensionStep, state: DecisionState) -> None:
    """Run the hook named by an extension_point node."""
    view = DecisionView(state)
    if step.hook == "pre_score":
        for impl in _impls(state, "pre_score"):
            try:
                call_impl(impl, decision=view, candidates=list(state.candidates))
            except Exception as exc:
                state.plugin_failed(impl.plugin_name, "pre_score", exc, None, "hook ignored")
        kept = []
        for cand in state.candidates:
            if cand._drop is not None:
                state.drop(cand, Drop(cand.offer.id, step.node_id, cand._drop))
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
