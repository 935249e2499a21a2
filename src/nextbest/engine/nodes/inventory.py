"""The ``inventory`` node: the offers a decision starts from (status, category or id scope,
then the offers' lifecycle dates as of the decision's time)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...models.decision import Candidate, Drop
from ...models.flows import InventoryConfig
from ..state import DecisionState
from .base import SELECTION, BuildContext, NodeType, static_config


@dataclass
class InventoryStep:
    node_id: str
    config: Any
    node_type: str = "inventory"

    def __post_init__(self) -> None:
        # catalog id -> (catalog, the selected offers with their base scopes, whether any of
        # them has lifecycle dates); a flow and a catalog are both immutable, so the selection
        # is computed once per pair and only the dates are checked per decision
        self._selected: dict[int, tuple[Any, tuple[tuple[Any, dict[str, Any]], ...], bool]] = {}

    def _select(self, state: DecisionState) -> tuple[tuple[tuple[Any, dict[str, Any]], ...], bool]:
        catalog = state.catalog
        cached = self._selected.get(id(catalog))
        if cached is not None and cached[0] is catalog:
            return cached[1], cached[2]
        cfg = self.config
        statuses = set(cfg.statuses)
        categories = set(cfg.categories) if cfg.scope == "category" else None
        ids = set(cfg.offer_ids) if cfg.scope == "offers" else None
        # offer attributes a formula references but an offer lacks resolve to None
        optional = [n for n in state.flow.offer_names if n.startswith("offer.attributes.")]
        selected = []
        for offer, static in catalog.entries:
            if statuses and offer.status not in statuses:
                continue
            if categories is not None and offer.category not in categories:
                continue
            if ids is not None and offer.id not in ids:
                continue
            base = dict(static)
            for name in optional:
                base.setdefault(name, None)
            selected.append((offer, base))
        entry = tuple(selected)
        dated = any(o.start_at is not None or o.end_at is not None for o, _ in entry)
        if len(self._selected) > 64:  # bound the cache when catalogs are rebuilt often
            self._selected.clear()
        self._selected[id(catalog)] = (catalog, entry, dated)
        return entry, dated

    def run(self, state: DecisionState) -> None:
        customer = {n: state.customer.get(n) for n in state.flow.customer_names}
        customer["fitMultiplier"] = 1.0
        history = state.request.offer_history if state.flow.uses_offer_history else None
        as_of = state.as_of
        out = []
        selected, dated = self._select(state)
        for offer, base in selected:
            if dated and (problem := offer.live_problem(as_of)) is not None:
                state.drop(Candidate(offer), Drop(offer.id, self.node_id, problem))
                continue
            scope = dict(base)
            scope.update(customer)  # holds fitMultiplier = 1.0 too
            if history is not None:
                seen = history.get(offer.id)
                last = seen.last_seen_at if seen is not None else None
                scope["offer.lastSeenDays"] = None if last is None else _days_between(last, as_of)
            out.append(Candidate(offer, scope))
        state.candidates = out


def _days_between(earlier: datetime, later: datetime) -> int:
    if earlier.tzinfo is None:
        earlier = earlier.replace(tzinfo=UTC)
    return math.floor((later - earlier).total_seconds() / 86400)


def _build(node: Any, ctx: BuildContext) -> InventoryStep:
    return InventoryStep(node.id, node.config)


INVENTORY = NodeType(
    name="inventory",
    phases=(SELECTION,),
    config=static_config(InventoryConfig),
    build=_build,
    first=True,
    unique=True,
    required=True,
    description="the offers a decision starts from",
)
