"""Off-policy evaluation: what another flow would have achieved on the logged recommendations.

Each logged recommendation's first offer is the action ``a_i`` (recommendations of a control
group's customers are skipped: the flow's policy did not choose them); its logging probability
is the ``pickProbability`` the decision noted (1 when the flow was deterministic or noted
nothing); its reward is 1 when a success outcome cites it (value: their values' sum). The
target flow is run for the same customer, channel and placement as of the recommendation's time
(its published version or the one asked for, with today's catalog, today's learned counts and
the store's current knowledge of the customer; of the request's ``attributes`` only the one a
logged predictor read is known, so a target reading others sees none). ``π(a_i|x_i)`` is the
target's
``topProbability`` of ``a_i`` under Thompson sampling, else 1 when its first offer is ``a_i``
and 0 otherwise. The reward model is each (offer, channel) cell's success rate in the logs with
a uniform prior (Laplace), times the offer's mean success value for the value estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from nextbest import DecisionService

from ..core.ope import Estimate, doubly_robust, ips
from .cells import NOTE, cell
from .counts import CountsService


@dataclass(frozen=True)
class Evaluation:
    """The estimates of a flow's success rate and value per recommendation."""

    flow_key: str
    #: the evaluated version (None: the published one)
    flow_version: int | None
    logged: int
    skipped: int
    logged_success_rate: float
    logged_value: float
    success_ips: Estimate
    success_dr: Estimate
    value_ips: Estimate
    value_dr: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON shape (camelCase)."""

        def est(e: Estimate) -> dict[str, float | int | None]:
            d = asdict(e)
            return {
                "estimate": _finite(d["value"]),
                "stdError": _finite(d["std_error"]),
                "low": _finite(d["low"]),
                "high": _finite(d["high"]),
            }

        return {
            "flowKey": self.flow_key,
            "flowVersion": self.flow_version,
            "logged": self.logged,
            "skipped": self.skipped,
            "loggedSuccessRate": _finite(self.logged_success_rate),
            "loggedValue": _finite(self.logged_value),
            "successRate": {"ips": est(self.success_ips), "doublyRobust": est(self.success_dr)},
            "value": {"ips": est(self.value_ips), "doublyRobust": est(self.value_dr)},
        }


def evaluate_flow(
    service: DecisionService,
    counts: CountsService,
    tenant_id: str,
    flow_key: str,
    since: datetime | None = None,
    *,
    flow_version: int | None = None,
    level: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Estimate ``flow_key``'s success rate and value per recommendation from the tenant's
    logged recommendations (made at or after ``since``) and their outcomes: its published
    version, or ``flow_version``. UnknownFlowError (before anything is read) when the flow has
    no published version or no such version."""
    store = service.store
    if flow_version is None:
        service.published_flow(tenant_id, flow_key)
    else:
        service.flow_version(tenant_id, flow_key, flow_version)
    rewards: dict[tuple[str, int], list[float]] = {}
    for i in store.iter_interactions(tenant_id):
        if i.recommendation_id is None or i.rank is None or not counts.is_success(tenant_id, i):
            continue
        got = rewards.setdefault((i.recommendation_id, i.rank), [0.0, 0.0])
        got[0] = 1.0
        got[1] += i.value
    logs = []
    cell_stats: dict[tuple[str, str], list[float]] = {}
    control = empty = 0
    for rec in store.iter_recommendations(tenant_id, since=since):
        if rec.group == "control":  # not decided by the logging flow's policy (lift's baseline)
            control += 1
            continue
        if not rec.items:  # nothing was shown: no action to weigh
            empty += 1
            continue
        top = rec.items[0]
        note = (top.annotations or {}).get(NOTE) or {}
        logged_p = float(note.get("pickProbability", 1.0))
        r, v = rewards.get((rec.recommendation_id, top.rank), [0.0, 0.0])
        logs.append((rec, top.offer_id, logged_p, r, v))
        stats = cell_stats.setdefault((top.offer_id, cell(rec.channel)), [0.0, 0.0, 0.0])
        stats[0] += 1
        stats[1] += r
        stats[2] += v

    def q(offer_id: str, channel: str | None) -> tuple[float, float]:
        n, k, value = cell_stats.get((offer_id, cell(channel)), [0.0, 0.0, 0.0])
        rate = (k + 1) / (n + 2)
        return rate, rate * (value / k if k else 0.0)

    cols: dict[str, list[float]] = {k: [] for k in ("r", "v", "t", "lp", "q", "qv", "qt", "qvt")}
    skipped = control + empty
    for done, (rec, action, logged_p, r, v) in enumerate(logs, start=1):
        request = {
            "customerId": rec.customer_id,
            "channel": rec.channel,
            "placement": rec.placement,
            "attributes": _logged_attributes(rec.items[0].annotations),
            "decisionFlowKey": flow_key,
            "asOf": rec.created_at,
            "explain": True,
        }
        decided = service.decide(tenant_id, request, flow_version=flow_version).decision
        if progress is not None:
            progress(done)
        items = decided.items
        trace = decided.trace
        notes = {} if trace is None else trace.annotations
        probs: dict[str, float] = {}
        if items:
            top_note = (notes.get(items[0].offer_id) or {}).get(NOTE) or {}
            if top_note.get("random"):
                for offer_id, ann in notes.items():
                    p = float((ann.get(NOTE) or {}).get("topProbability", 0.0))
                    if p > 0:
                        probs[offer_id] = p
            else:
                probs[items[0].offer_id] = 1.0
        if logged_p <= 0:
            skipped += 1
            continue
        q_a, qv_a = q(action, rec.channel)
        qt = qvt = 0.0
        for offer_id, p in probs.items():
            rate, value = q(offer_id, rec.channel)
            qt += p * rate
            qvt += p * value
        for key, x in (("r", r), ("v", v), ("t", probs.get(action, 0.0)), ("lp", logged_p),
                       ("q", q_a), ("qv", qv_a), ("qt", qt), ("qvt", qvt)):  # fmt: skip
            cols[key].append(x)
    a = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    return Evaluation(
        flow_key,
        flow_version,
        len(logs),
        skipped,
        float(a["r"].mean()) if a["r"].size else float("nan"),
        float(a["v"].mean()) if a["v"].size else float("nan"),
        ips(a["r"], a["t"], a["lp"], level=level),
        doubly_robust(a["r"], a["t"], a["lp"], a["q"], a["qt"], level=level),
        ips(a["v"], a["t"], a["lp"], level=level),
        doubly_robust(a["v"], a["t"], a["lp"], a["qv"], a["qvt"], level=level),
    )


def _finite(x: float | int) -> float | int | None:
    """``x``, or None (JSON null) when it is NaN or infinite: no estimate without logs."""
    return x if math.isfinite(x) else None


def _logged_attributes(annotations: Any) -> dict[str, Any]:
    """The request attributes a logged decision's predictor read (``attributes.x``), the
    only request attributes the logs keep."""
    note = (annotations or {}).get(NOTE) or {}
    name = note.get("predictor")
    if isinstance(name, str) and name.startswith("attributes."):
        return {name[len("attributes.") :]: note.get("predictorValue")}
    return {}
