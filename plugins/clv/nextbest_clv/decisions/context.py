"""The CLV context provider: ``customer.clv_score`` and ``customer.clv.*`` in decisions.

The host resolves a provider only when the flow references one of its names, so a flow that
does not mention CLV never computes a record. A customer without interactions (or a host
without a store) resolves every name to None. A request with an explicit ``asOf`` reads the
record as of that time; without one, as of now (see ``nextbest_clv.service``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nextbest import ContextProvider, ContextRequest
from nextbest.store import to_epoch
from nextbest_clv.errors import NoInteractionsError
from nextbest_clv.service import attach

__all__ = ["CLV_CONTEXT", "CONTEXT_FIELDS", "PERCENTILE_NAME", "SCORE_NAME", "SEGMENT_NAME"]

SCORE_NAME = "customer.clv_score"
PREFIX = "customer.clv."
#: The customer's CLV segment: the plugin's suggested report breakdown (``report_dimensions``).
SEGMENT_NAME = PREFIX + "segment"
#: With a model: the percentile (0-100) of the customer's ``clv`` among the tenant's customers.
PERCENTILE_NAME = PREFIX + "value_percentile"
#: Context name -> record field.
CONTEXT_FIELDS: Mapping[str, str] = {
    SCORE_NAME: "clvScore",
    SEGMENT_NAME: "segment",
    PREFIX + "churn_probability": "churnProbability",
    PREFIX + "predicted_revenue": "predictedRevenue",
    PREFIX + "recency_days": "rfmRecency",
    PREFIX + "frequency": "rfmFrequency",
    PREFIX + "monetary": "rfmMonetary",
    # Probabilistic models (null while the tenant's model is rfm; model is then "rfm").
    PREFIX + "probability_alive": "probabilityAlive",
    PREFIX + "expected_purchases_90d": "expectedPurchases90d",
    PREFIX + "expected_revenue_12m": "expectedRevenue12m",
    PREFIX + "value": "clv",
    PERCENTILE_NAME: "clvPercentile",
    PREFIX + "model": "model",
}


def _resolve(ctx: ContextRequest) -> Mapping[str, Any]:
    service = attach(ctx.host)
    if service is None:
        return {}
    try:
        # Only an explicit request asOf is one; the engine's default (now) reads "now", which
        # may be served from a recent stored record.
        as_of = None if ctx.request.as_of is None else to_epoch(ctx.as_of)
        record = service.get(ctx.tenant_id, ctx.request.customer_id, as_of=as_of)
    except NoInteractionsError:
        return {}
    record = {"model": "rfm", **record}
    return {name: record.get(CONTEXT_FIELDS[name]) for name in ctx.names if name in CONTEXT_FIELDS}


CLV_CONTEXT = ContextProvider(
    name="clv",
    resolve=_resolve,
    names=frozenset(CONTEXT_FIELDS),
    description="the customer's CLV record: customer.clv_score and customer.clv.segment, "
    "churn_probability, predicted_revenue, recency_days, frequency, monetary, and with a "
    "probabilistic model probability_alive, expected_purchases_90d, expected_revenue_12m, "
    "value (discounted CLV), value_percentile (its percentile, 0-100) and model",
)
