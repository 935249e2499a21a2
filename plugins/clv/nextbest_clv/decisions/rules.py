"""The ``propensity_threshold`` rule type: a CLV value must lie in ``[minScore, maxScore]``.

Default stage ``match`` (soft): outside the range multiplies the offer's fitMultiplier by
``multiplierBelow`` (or the rule's/stage's default multiplier when not given). In a hard stage
(``eligibility``, ``fit``) outside the range drops the offer. A missing CLV (no record) counts
as outside. The trace gets ``model``, ``minScore``, ``maxScore`` and ``actualScore``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nextbest import RuleContext, RuleOutcome, RuleType
from nextbest_clv.decisions.context import CONTEXT_FIELDS, PREFIX, SCORE_NAME

__all__ = ["MODEL_NAMES", "PROPENSITY_THRESHOLD", "PropensityThresholdConfig"]

Model = Literal["clv_score", "churn_probability", "predicted_revenue"]
#: Model -> context name it reads.
MODEL_NAMES: dict[str, str] = {
    "clv_score": SCORE_NAME,
    "churn_probability": PREFIX + "churn_probability",
    "predicted_revenue": PREFIX + "predicted_revenue",
}
# Valid range of each model's values, for config validation.
_RANGES: dict[str, tuple[float, float]] = {
    "clv_score": (0.0, 100.0),
    "churn_probability": (0.0, 1.0),
    "predicted_revenue": (0.0, float("inf")),
}
assert all(name in CONTEXT_FIELDS for name in MODEL_NAMES.values())


class PropensityThresholdConfig(BaseModel):
    """Config of ``propensity_threshold``: ``model`` (``clv_score`` 0-100, default;
    ``churn_probability`` 0-1; ``predicted_revenue`` >= 0), ``minScore``, optional
    ``maxScore`` (>= minScore) and ``multiplierBelow`` (0-1)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    model: Model = "clv_score"
    min_score: float = Field(alias="minScore", allow_inf_nan=False)
    max_score: float | None = Field(None, alias="maxScore", allow_inf_nan=False)
    multiplier_below: float | None = Field(None, alias="multiplierBelow", ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _range(self) -> PropensityThresholdConfig:
        low, high = _RANGES[self.model]
        for name, value in (("minScore", self.min_score), ("maxScore", self.max_score)):
            if value is not None and not low <= value <= high:
                raise ValueError(
                    f"{name} {value!r} is outside {self.model}'s range [{low}, {high}]"
                )
        if self.max_score is not None and self.max_score < self.min_score:
            raise ValueError(f"maxScore {self.max_score!r} is below minScore {self.min_score!r}")
        return self


def _evaluate(cfg: PropensityThresholdConfig, ctx: RuleContext) -> RuleOutcome | bool:
    actual = ctx.get(MODEL_NAMES[cfg.model])
    passed = (
        isinstance(actual, int | float)
        and not isinstance(actual, bool)
        and actual >= cfg.min_score
        and (cfg.max_score is None or actual <= cfg.max_score)
    )
    if passed:
        return True
    if not ctx.explain:
        return RuleOutcome(False, multiplier=cfg.multiplier_below)
    bounds = f"[{cfg.min_score:g}, {'inf' if cfg.max_score is None else f'{cfg.max_score:g}'}]"
    reason = (
        f"no CLV {cfg.model} for this customer (counts as outside {bounds})"
        if actual is None
        else f"{cfg.model} {actual:.4g} is outside {bounds}"
    )
    return RuleOutcome(
        False,
        multiplier=cfg.multiplier_below,
        reason=reason,
        inputs={
            "model": cfg.model,
            "minScore": cfg.min_score,
            "maxScore": cfg.max_score,
            "actualScore": actual,
        },
    )


PROPENSITY_THRESHOLD = RuleType(
    "propensity_threshold",
    PropensityThresholdConfig,
    _evaluate,
    "match",
    requires=lambda cfg: (MODEL_NAMES[cfg.model],),
    description="a CLV value (clv_score, churn_probability, predicted_revenue) must lie in "
    "[minScore, maxScore]; soft by default",
)
