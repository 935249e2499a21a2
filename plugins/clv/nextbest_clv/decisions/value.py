"""The CLV value provider for the PRIE ``formula`` score: ``clvWeight`` on the impact dimension.

With ``clvWeight`` = W (0-2) on a score node or ranking profile, the impact exponent gets the
term ``W * clvScore / 100``; with a probabilistic model active, ``W * p / 100`` where p is the
percentile (0-100) of the customer's model ``clv`` among the tenant's customers
(``clvPercentile``), so the model's figure ranks customers, not the RFM score (which stays the
term for a customer without model fields). A customer without a CLV record adds no term
(skipped, never a penalty).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from nextbest import ValueProvider, ValueRequest
from nextbest_clv.decisions.context import PERCENTILE_NAME, SCORE_NAME

__all__ = ["CLV_VALUE", "ClvWeightConfig"]


class ClvWeightConfig(BaseModel):
    """``clvWeight`` (0-2): weight of the CLV score in the impact exponent."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    clv_weight: float | None = Field(None, alias="clvWeight", ge=0.0, le=2.0, allow_inf_nan=False)


def _compute(request: ValueRequest) -> float | None:
    config = request.config
    assert isinstance(config, ClvWeightConfig)
    if config.clv_weight is None:
        return None
    score = request.lookup(PERCENTILE_NAME)
    if score is None:
        score = request.lookup(SCORE_NAME)
    if score is None:
        return None
    return config.clv_weight * float(score) / 100.0


CLV_VALUE = ValueProvider(
    name="clv",
    dimension="impact",
    config_model=ClvWeightConfig,
    compute=_compute,
    requires=lambda cfg: (SCORE_NAME, PERCENTILE_NAME),
    description="adds clvWeight * clvScore / 100 to the impact exponent (with a model: the "
    "percentile of the model's clv instead of clvScore)",
)
