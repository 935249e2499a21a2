"""Segments that follow a probabilistic model (pure: arrays in, arrays out).

With a probabilistic model active, a customer's segment is:

- ``at_risk`` when P(alive) is below ``atRiskProbabilityAlive`` (overrides the value tier);
- otherwise a value tier from the model's ``clv`` against the percentiles of the ``clv`` of
  the tenant's customers that are *not* at risk: ``high`` when ``clv >= P_high``, ``medium``
  when ``clv >= P_low``, else ``low`` (``np.percentile``, linear interpolation, with the same
  ``segmentHighPercentile`` / ``segmentLowPercentile`` settings as the RFM segments).

The percentiles are taken over the customers not at risk so that the tier shares hold among
the customers the tiers are for: low CLV and low P(alive) go together, so percentiles over
everyone would put most of the ``low`` tier into ``at_risk`` and leave ``low`` empty.

:class:`ModelTiers` keeps the thresholds, so one customer is placed in O(1) with the same
answer as the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.core.rfm import SEGMENT_ORDER, Segment

__all__ = [
    "ModelTiers",
    "build_tiers",
    "clv_percentile",
    "model_segment",
    "model_segment_codes",
]


@dataclass(frozen=True, slots=True)
class ModelTiers:
    """The thresholds of a tenant's model segments.

    Attributes:
        at_risk_probability_alive: P(alive) below this is ``at_risk``.
        clv_high: ``clv`` at or above this is ``high`` (None: no customer is active).
        clv_low: ``clv`` at or above this (and below ``clv_high``) is ``medium``.
        customers: customers the thresholds were computed from (all, at risk or not).
        clv_sorted: their ``clv``, sorted (for :func:`clv_percentile`).
    """

    at_risk_probability_alive: float
    clv_high: float | None
    clv_low: float | None
    customers: int
    clv_sorted: NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0), repr=False, compare=False
    )

    def to_json(self) -> dict[str, float | int | None]:
        """camelCase JSON."""
        return {
            "atRiskProbabilityAlive": self.at_risk_probability_alive,
            "clvHigh": self.clv_high,
            "clvLow": self.clv_low,
            "customers": self.customers,
        }


def build_tiers(
    probability_alive: ArrayLike,
    clv: ArrayLike,
    *,
    at_risk_probability_alive: float,
    high_percentile: float,
    low_percentile: float,
) -> ModelTiers:
    """The thresholds from every customer's P(alive) and ``clv`` (finite values only; a NaN
    entry, a customer without model fields, is left out)."""
    alive = np.asarray(probability_alive, dtype=np.float64)
    value = np.asarray(clv, dtype=np.float64)
    known = np.isfinite(alive) & np.isfinite(value)
    active = known & (alive >= at_risk_probability_alive)
    high: float | None = None
    low: float | None = None
    if active.any():
        hi, lo = np.percentile(value[active], [high_percentile, low_percentile])
        high, low = float(hi), float(lo)
    ordered = np.sort(value[known])
    ordered.flags.writeable = False
    return ModelTiers(at_risk_probability_alive, high, low, int(known.sum()), ordered)


def clv_percentile(clv: ArrayLike, tiers: ModelTiers) -> NDArray[np.float64]:
    """The mid-rank percentile (0-100) of each ``clv`` among the tenant's customers (all of
    them, at risk or not): ``100 (count(< x) + count(<= x)) / (2 n)``, the model's
    counterpart of the RFM ``clvScore``. NaN for a NaN ``clv`` or when there are no customers."""
    value = np.asarray(clv, dtype=np.float64)
    ordered = tiers.clv_sorted
    if ordered.size == 0:
        return np.full(value.shape, np.nan)
    counts = np.searchsorted(ordered, value, "left") + np.searchsorted(ordered, value, "right")
    return np.where(np.isfinite(value), 100.0 * counts / (2 * ordered.size), np.nan)


def model_segment_codes(
    probability_alive: ArrayLike, clv: ArrayLike, tiers: ModelTiers
) -> NDArray[np.int8]:
    """Segment codes (indexes of :data:`~nextbest_clv.core.rfm.SEGMENT_ORDER`) per customer.
    Entries whose P(alive) or ``clv`` is NaN get code -1 (no model segment)."""
    alive = np.asarray(probability_alive, dtype=np.float64)
    value = np.asarray(clv, dtype=np.float64)
    high = np.inf if tiers.clv_high is None else tiers.clv_high
    low = np.inf if tiers.clv_low is None else tiers.clv_low
    codes = (3 - (value >= low) - (value >= high)).astype(np.int8)
    codes[alive < tiers.at_risk_probability_alive] = 0
    codes[~(np.isfinite(alive) & np.isfinite(value))] = -1
    return codes


def model_segment(probability_alive: float, clv: float, tiers: ModelTiers) -> Segment:
    """One customer's segment; equals :func:`model_segment_codes` for the same inputs."""
    code = int(model_segment_codes([probability_alive], [clv], tiers)[0])
    if code < 0:
        raise ValueError("P(alive) and clv must be finite numbers to place a customer")
    return SEGMENT_ORDER[code]
