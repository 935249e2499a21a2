"""Per-tenant settings of the RFM CLV model (validated; JSON field names in camelCase)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["WEIGHT_SUM_TOLERANCE", "RfmSettings"]

#: How far the three weights may sum away from 1 and still be accepted.
WEIGHT_SUM_TOLERANCE = 1e-9


class RfmSettings(BaseModel):
    """Settings of the RFM CLV record for one tenant.

    Field names are snake_case in Python and camelCase in JSON (``recencyWeight`` ...); both are
    accepted on input, unknown keys are rejected. Instances are immutable and hashable, so a
    distribution snapshot can remember the settings it was built with.

    Rules: weights >= 0 summing to 1 (within ``WEIGHT_SUM_TOLERANCE``); days, slope, months and
    TTL positive; ``0 < segmentLowPercentile < segmentHighPercentile < 100``.
    """

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    recency_weight: float = Field(default=0.35, alias="recencyWeight", ge=0.0)
    frequency_weight: float = Field(default=0.35, alias="frequencyWeight", ge=0.0)
    monetary_weight: float = Field(default=0.30, alias="monetaryWeight", ge=0.0)
    at_risk_days: int = Field(default=30, alias="atRiskDays", gt=0)
    churn_midpoint_days: float = Field(default=30.0, alias="churnMidpointDays", gt=0.0)
    churn_slope: float = Field(default=0.08, alias="churnSlope", gt=0.0)
    lifespan_months: float = Field(default=24.0, alias="lifespanMonths", gt=0.0)
    segment_high_percentile: float = Field(
        default=75.0, alias="segmentHighPercentile", gt=0.0, lt=100.0
    )
    segment_low_percentile: float = Field(
        default=25.0, alias="segmentLowPercentile", gt=0.0, lt=100.0
    )
    cache_ttl_seconds: float = Field(default=300.0, alias="cacheTtlSeconds", gt=0.0)

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> RfmSettings:
        total = self.recency_weight + self.frequency_weight + self.monetary_weight
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                "recencyWeight + frequencyWeight + monetaryWeight must sum to 1 "
                f"(within {WEIGHT_SUM_TOLERANCE:g}); got {total!r}"
            )
        if not self.segment_low_percentile < self.segment_high_percentile:
            raise ValueError(
                "segmentLowPercentile must be below segmentHighPercentile "
                "(0 < low < high < 100); got "
                f"low={self.segment_low_percentile!r}, high={self.segment_high_percentile!r}"
            )
        return self
