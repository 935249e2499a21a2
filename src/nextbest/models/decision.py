"""What a decision returns: ranked items and, when asked, the trace that explains them.

These are plain dataclasses rather than pydantic models: they are built on the hot path.
``to_dict()`` gives the JSON shape (camelCase) used by the CLI and the HTTP API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .offers import Offer


@dataclass(slots=True)
class Drop:
    """Why an offer left the flow: where, which rule, the reason and the inputs the rule saw."""

    offer_id: str
    node_id: str
    reason: str
    rule_id: str | None = None
    stage: str | None = None
    inputs: dict[str, Any] | None = None
    plugin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "offerId": self.offer_id,
            "nodeId": self.node_id,
            "ruleId": self.rule_id,
            "stage": self.stage,
            "reason": self.reason,
            "inputs": self.inputs or {},
            "plugin": self.plugin,
        }


@dataclass(slots=True)
class ScoreBreakdown:
    """The parts of one score: each factor, its weight (exponent) and who supplied it."""

    method: str
    score: float
    fit_multiplier: float
    factors: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    terms: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "score": self.score,
            "fitMultiplier": self.fit_multiplier,
            "factors": dict(self.factors),
            "weights": dict(self.weights),
            "terms": list(self.terms),
            "sources": dict(self.sources),
            "profile": self.profile,
        }


@dataclass(slots=True)
class PluginFailure:
    """A plugin (or formula) that failed during the decision, and what the host did about it."""

    plugin: str
    hook: str
    error: str
    offer_id: str | None = None
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "hook": self.hook,
            "error": self.error,
            "offerId": self.offer_id,
            "action": self.action,
        }


@dataclass(slots=True)
class Trace:
    """The explanation of a decision (built only when ``explain`` is on)."""

    drops: list[Drop] = field(default_factory=list)
    scores: dict[str, ScoreBreakdown] = field(default_factory=dict)
    adjustments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    computed: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    #: the flow's fallback offers returned because nothing else was left (in order)
    fallback: list[str] = field(default_factory=list)
    #: every scored offer's annotations (``Candidate.annotations``), by offer id
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "annotations": {k: dict(v) for k, v in self.annotations.items()},
            "dropped": [d.to_dict() for d in self.drops],
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
            "fitAdjustments": {k: list(v) for k, v in self.adjustments.items()},
            "computed": {k: dict(v) for k, v in self.computed.items()},
            "context": dict(self.context),
            "pluginFailures": [f.to_dict() for f in self.failures],
            "timings": list(self.timings),
        }
        if self.fallback:
            out["fallback"] = list(self.fallback)
        return out


class Candidate:
    """An offer still in play during a decision. Extension-point plugins receive these."""

    __slots__ = (
        "_adjustments",
        "_drop",
        "annotations",
        "breakdown",
        "computed",
        "fallback",
        "fit_multiplier",
        "offer",
        "scope",
        "score",
    )

    def __init__(self, offer: Offer, scope: dict[str, Any] | None = None) -> None:
        self.offer = offer
        self.fit_multiplier = 1.0
        self.score: float | None = None
        self.computed: dict[str, Any] = {}
        self.breakdown: ScoreBreakdown | None = None
        #: a flow's fallback offer, returned because nothing else was left
        self.fallback = False
        #: what plugins noted about this offer in this decision (value providers through
        #: ``ValueRequest.annotations``, ``annotate_decision`` hooks), by plugin; created on
        #: first use, stored with the recommendation for the offers returned
        self.annotations: dict[str, Any] | None = None
        self._drop: str | None = None
        # (multiplier, reason, fitMultiplier after) from adjust_fit, moved to the trace by the
        # extension point with the name of the plugin that made them
        self._adjustments: list[tuple[float, str, float]] | None = None  # created on first use
        # the names formulas see for this offer (host-managed)
        self.scope: dict[str, Any] = {} if scope is None else scope

    @property
    def offer_id(self) -> str:
        return self.offer.id

    def drop(self, reason: str) -> None:
        """Remove this candidate from the decision (from a ``pre_score`` hook)."""
        self._drop = reason or "dropped by plugin"

    def adjust_fit(self, multiplier: float, reason: str = "") -> None:
        """Multiply the fitMultiplier (clamped to [0.1, 1.0] like soft rules).

        Raises:
            ValueError: ``multiplier`` is not a finite number >= 0 (the hook then fails and
                its changes are undone).
        """
        factor = float(multiplier)
        if not 0.0 <= factor < math.inf:  # NaN fails the comparison
            raise ValueError(f"adjust_fit multiplier must be a finite number >= 0, got {factor}")
        self.fit_multiplier = min(1.0, max(0.1, self.fit_multiplier * factor))
        if self._adjustments is None:
            self._adjustments = []
        self._adjustments.append((factor, reason, self.fit_multiplier))

    def __repr__(self) -> str:
        return f"Candidate({self.offer.id!r}, fit={self.fit_multiplier}, score={self.score})"


@dataclass(slots=True)
class DecisionItem:
    """One ranked offer in the response."""

    offer_id: str
    name: str
    rank: int
    score: float
    personalization: dict[str, Any] = field(default_factory=dict)
    category: str | None = None
    #: a flow's fallback offer (``"fallback": true`` in JSON; the key is absent otherwise)
    fallback: bool = False
    #: what plugins noted about the offer (``Candidate.annotations``); empty when nothing
    annotations: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "offerId": self.offer_id,
            "name": self.name,
            "rank": self.rank,
            "score": self.score,
            "category": self.category,
            "personalization": dict(self.personalization),
        }
        if self.fallback:
            out["fallback"] = True
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(slots=True)
class Decision:
    """The result of ``Host.decide``."""

    tenant_id: str
    customer_id: str
    flow_key: str
    as_of: datetime
    items: list[DecisionItem]
    trace: Trace | None = None
    #: the customer's control group (``control`` / ``treatment``) when one is configured
    group: str | None = None
    #: why the customer is in its group (shown in the trace as ``controlGroup``)
    group_reason: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenantId": self.tenant_id,
            "customerId": self.customer_id,
            "flowKey": self.flow_key,
            "asOf": self.as_of.isoformat(),
            "decisions": [i.to_dict() for i in self.items],
        }
        if self.group is not None:
            out["group"] = self.group
        if self.trace is not None:
            out["trace"] = self.trace_dict()
        return out

    def trace_dict(self) -> dict[str, Any]:
        """The trace as JSON, with ``controlGroup`` (why the customer is in its group) when a
        control group is configured."""
        if self.trace is None:
            raise ValueError("the decision has no trace: it was made without explain")
        out = self.trace.to_dict()
        if self.group_reason is not None:
            out["controlGroup"] = dict(self.group_reason)
        return out
