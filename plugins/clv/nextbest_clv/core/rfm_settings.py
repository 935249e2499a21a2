"""Per-tenant settings of the RFM CLV model (validated; JSON field names in camelCase)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

__all__ = ["WEIGHT_SUM_TOLERANCE", "RfmSettings", "is_number"]

#: How far the three weights may sum away from 1 and still be accepted.
WEIGHT_SUM_TOLERANCE = 1e-9


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool): what a numeric setting accepts."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class RfmSettings(BaseModel):
    """Settings of the RFM CLV record for one tenant.

    Field names are snake_case in Python and camelCase in JSON (``recencyWeight`` ...); both are
    accepted on input, unknown keys are rejected. Numbers are strict: a float setting accepts a
    float or an int, never a bool or a string; an int setting only an int. Instances are
    immutable and hashable, so a distribution snapshot can remember the settings it was built
    with.

    Rules: weights >= 0 summing to 1 (within ``WEIGHT_SUM_TOLERANCE``); days, slope, months and
    TTL positive; ``0 < segmentLowPercentile < segmentHighPercentile < 100``.
    """

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    recency_weight: StrictFloat = Field(default=0.35, alias="recencyWeight", ge=0.0)
    frequency_weight: StrictFloat = Field(default=0.35, alias="frequencyWeight", ge=0.0)
    monetary_weight: StrictFloat = Field(default=0.30, alias="monetaryWeight", ge=0.0)
    at_risk_days: StrictInt = Field(default=30, alias="atRiskDays", gt=0)
    churn_midpoint_days: StrictFloat = Field(default=30.0, alias="churnMidpointDays", gt=0.0)
    churn_slope: StrictFloat = Field(default=0.08, alias="churnSlope", gt=0.0)
    lifespan_months: StrictFloat = Field(default=24.0, alias="lifespanMonths", gt=0.0)
    segment_high_percentile: StrictFloat = Field(
        default=75.0, alias="segmentHighPercentile", gt=0.0, lt=100.0
    )
    segment_low_percentile: StrictFloat = Field(
        default=25.0, alias="segmentLowPercentile", gt=0.0, lt=100.0
    )
    cache_ttl_seconds: StrictFloat = Field(default=300.0, alias="cacheTtlSeconds", gt=0.0)

    @classmethod
    def cross_field_problems(cls, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The rules that involve several fields, checked on snake_case ``values`` (any of
        which may be missing or invalid: a rule whose fields are not all numbers is skipped, so
        the caller can report these problems next to per-field errors). Returns
        ``("", message)`` pairs (the problem is the settings object, not one field)."""
        problems: list[tuple[str, str]] = []
        weights = [values.get(f"{n}_weight") for n in ("recency", "frequency", "monetary")]
        if all(is_number(w) for w in weights):
            total = sum(weights)  # type: ignore[arg-type]
            if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
                problems.append(
                    (
                        "",
                        "recencyWeight + frequencyWeight + monetaryWeight must sum to 1 "
                        f"(within {WEIGHT_SUM_TOLERANCE:g}); got {total!r}",
                    )
                )
        low, high = values.get("segment_low_percentile"), values.get("segment_high_percentile")
        if is_number(low) and is_number(high) and not float(low) < float(high):  # type: ignore[arg-type]
            problems.append(
                (
                    "",
                    "segmentLowPercentile must be below segmentHighPercentile "
                    f"(0 < low < high < 100); got low={low!r}, high={high!r}",
                )
            )
        return problems

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> RfmSettings:
        problems = type(self).cross_field_problems(
            {name: getattr(self, name) for name in type(self).model_fields}
        )
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return self
