"""Formula functions for computed fields and ``expression`` rules (documented in docs/clv.md).

Pure, positional, and None-tolerant: a missing CLV value (None) gives None, never an error,
so a formula can ``coalesce(...)`` it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["FUNCTIONS", "clv_discount", "clv_tier", "value_at_risk"]

#: Lower bounds of the tiers of :func:`clv_tier`, best first.
TIERS: tuple[tuple[float, str], ...] = (
    (80.0, "platinum"),
    (60.0, "gold"),
    (40.0, "silver"),
    (0.0, "bronze"),
)


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number or None, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def clv_tier(score: Any) -> str | None:
    """Tier of a CLV score (0-100): ``platinum`` >= 80, ``gold`` >= 60, ``silver`` >= 40,
    else ``bronze``; None for None."""
    value = _number(score, "score")
    if value is None:
        return None
    return next(name for low, name in TIERS if value >= low) if value >= 0 else "bronze"


def value_at_risk(predicted_revenue: Any, churn_probability: Any) -> float | None:
    """Expected revenue lost to churn: ``predicted_revenue * churn_probability``, in cents
    (rounded half up); None when either is None."""
    revenue = _number(predicted_revenue, "predicted_revenue")
    churn = _number(churn_probability, "churn_probability")
    if revenue is None or churn is None:
        return None
    if not 0.0 <= churn <= 1.0:
        raise ValueError(f"churn_probability must lie in [0, 1], got {churn_probability!r}")
    return math.floor(revenue * churn * 100.0 + 0.5) / 100.0


def clv_discount(score: Any, min_pct: Any, max_pct: Any) -> int | None:
    """A personalised discount in whole percent: ``min_pct`` at score 0 rising linearly to
    ``max_pct`` at score 100 (score clamped to 0-100, rounded half up); None for a None score."""
    value = _number(score, "score")
    low, high = _number(min_pct, "min_pct"), _number(max_pct, "max_pct")
    if low is None or high is None:
        raise TypeError("min_pct and max_pct must be numbers")
    if value is None:
        return None
    value = min(100.0, max(0.0, value))
    return math.floor(low + (high - low) * value / 100.0 + 0.5)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "clv_tier": clv_tier,
    "value_at_risk": value_at_risk,
    "clv_discount": clv_discount,
}
