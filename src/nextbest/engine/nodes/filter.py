"""The ``filter`` node: drop offers by channel, category or a formula, before any rule runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...expressions import CompiledExpression, ExpressionError
from ...models.decision import Drop
from ...models.flows import FilterConfig
from ..formulas import evaluate
from ..state import DecisionState
from .base import SELECTION, BuildContext, NodeType, RawFormulas, static_config


@dataclass
class FilterStep:
    node_id: str
    expression: CompiledExpression | None
    require_channel_match: bool
    exclude_categories: frozenset[str]
    node_type: str = "filter"

    def run(self, state: DecisionState) -> None:
        channel = state.request.channel
        kept = []
        for cand in state.candidates:
            offer = cand.offer
            reason = None
            if offer.category is not None and offer.category in self.exclude_categories:
                reason = f"category {offer.category!r} is excluded"
            elif self.require_channel_match and offer.channels and channel not in offer.channels:
                reason = f"offer is not available on channel {channel!r}"
            elif self.expression is not None:
                value = evaluate(state, self.expression, cand, f"filter {self.node_id}")
                if not value:
                    reason = f"filter {self.expression.source!r} is {value!r}"
            if reason is None:
                kept.append(cand)
            else:
                state.drop(cand, Drop(offer.id, self.node_id, reason))
        state.candidates = kept


def _build(node: Any, ctx: BuildContext) -> FilterStep:
    cfg = node.config
    try:
        expr = ctx.compiler.compile(cfg.expression) if cfg.expression else None
    except ExpressionError as exc:
        ctx.problem(".config.expression", str(exc))
        expr = None
    return FilterStep(node.id, expr, cfg.require_channel_match, frozenset(cfg.exclude_categories))


def _raw_formulas(config: Mapping[str, Any]) -> RawFormulas:
    if isinstance(config.get("expression"), str):
        yield "expression", config["expression"]


FILTER = NodeType(
    name="filter",
    phases=(SELECTION,),
    config=static_config(FilterConfig, required=True),
    build=_build,
    raw_formulas=_raw_formulas,
    description="drops offers by channel, category or a formula",
)
