"""RFM customer lifetime value: percentiles, score, segments, churn and predicted revenue.

Pure numeric code (numpy only, no I/O). It implements the product spec's CLV record:

- ``recency_days`` R = whole days since the last interaction (floor);
- ``frequency`` F = number of interactions; ``monetary`` M = total conversion value;
- mid-rank percentile ``pct(x, xs) = (count(xs < x) + count(xs <= x)) / (2 * len(xs))``,
  with ``RecencyNorm = pct(-R, all -R)`` (lower recency is better);
- ``clv_score = round_half_up(100 * (wR*RecencyNorm + wF*FrequencyNorm + wM*MonetaryNorm))``;
- segment ``at_risk`` when ``R >= atRiskDays`` (overrides), else ``high`` / ``medium`` / ``low``
  against the tenant's score percentiles (``np.percentile``, linear interpolation);
- ``churn_probability = 1 / (1 + exp(-slope * (R - midpoint)))``;
- ``predicted_revenue = M / max(1, days_since_first / 30.4375) * lifespanMonths``, in cents.

Conventions
-----------
- **Times** are POSIX epoch seconds as float64 (arrays for the batch, floats for one customer),
  ``as_of`` included. They are quantised to the nearest whole microsecond on entry, so that the
  day arithmetic is exact integer arithmetic: ``R = (as_of_us - last_us) // 86_400_000_000``.
- **Only customers with at least one interaction have a record.** Every customer passed in must
  have ``frequency >= 1``; a ``frequency < 1`` or an empty batch raises :class:`RfmInputError`.
  Also required: ``first_at <= last_at <= as_of``, finite times, finite ``monetary >= 0``.
- **Rounding.** ``clv_score`` rounds half up with an absolute tolerance of ``SCORE_TOLERANCE``
  (1e-9 score points): a raw score within 1e-9 below ``k + 0.5`` counts as ``k + 0.5``, because
  float error (about 1e-14 here) can put an exact half just below it. ``predicted_revenue`` is
  rounded half up to cents with a tolerance of ``1e-9 + 1e-11 * |cents|`` cents, for the same
  reason (e.g. 1440.005 is stored as 1440.00499999...). Monetary is never negative, so half up
  and half away from zero agree.

Recency percentiles at any ``as_of``
------------------------------------
A :class:`DistributionSnapshot` keeps the sorted last-interaction times, not the recencies.
Since ``R_j >= R  <=>  last_j <= as_of - R * day`` (exactly, in integer microseconds),
``count(R_j >= R)`` and ``count(R_j > R) = count(R_j >= R + 1)`` are one binary search each, at
any ``as_of``. Single-customer scoring is therefore O(log n) and needs no rebuild as time passes;
only new interactions (or new score percentiles) call for a new snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.core.rfm_settings import RfmSettings

__all__ = [
    "DAYS_PER_MONTH",
    "SCORE_TOLERANCE",
    "SEGMENT_ORDER",
    "DistributionSnapshot",
    "RfmBatch",
    "RfmInputError",
    "RfmRecord",
    "RfmSettings",
    "Segment",
    "SnapshotMismatchError",
    "build_snapshot",
    "midrank_pct",
    "score_batch",
    "score_one",
]

#: Average month length used for ``monthsActive`` (365.25 / 12).
DAYS_PER_MONTH = 30.4375
#: Absolute tolerance (score points) of the half-up rounding of the raw score.
SCORE_TOLERANCE = 1e-9

_US_PER_SECOND = 1_000_000
# Times beyond +-9e9 s (year ~2255) are rejected: their microseconds would exceed 2**53.
_MAX_ABS_SECONDS = 9e9
_TIME_RULE = "finite epoch seconds within +-9e9"
_US_PER_DAY = 86_400 * _US_PER_SECOND
# exp(z) overflows a float64 above ~709.78; 1 / (1 + exp(z)) is 0.0 there.
_EXP_OVERFLOW = 709.0
# Integer arrays whose value span is at most this use counting (bincount) instead of sorting.
_MAX_COUNTING_SPAN = 1 << 22
# Recency spans up to this many days get a churn lookup table; wider spans use np.unique.
_MAX_CHURN_TABLE_DAYS = 1 << 16


class RfmInputError(ValueError):
    """Inputs that cannot produce a CLV record (no interactions, bad times, bad values)."""


class SnapshotMismatchError(ValueError):
    """A snapshot was used with settings that change what it holds (weights, percentiles)."""


class Segment(StrEnum):
    """CLV segment of a customer."""

    AT_RISK = "at_risk"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: Segment of each code in :attr:`RfmBatch.segment_code` (code = index).
SEGMENT_ORDER: tuple[Segment, ...] = (Segment.AT_RISK, Segment.HIGH, Segment.MEDIUM, Segment.LOW)
_SEGMENT_NAMES = np.array([s.value for s in SEGMENT_ORDER])


@dataclass(frozen=True, slots=True)
class RfmRecord:
    """The CLV record of one customer (times are not part of it; the caller knows ``as_of``)."""

    recency_days: int
    frequency: int
    monetary: float
    clv_score: int
    segment: Segment
    churn_probability: float
    predicted_revenue: float


@dataclass(frozen=True, slots=True)
class DistributionSnapshot:
    """Immutable per-tenant distribution that scores one customer in O(log n).

    Attributes:
        as_of: epoch seconds at which it was built (the score percentiles refer to it).
        n_customers: number of customers (all with >= 1 interaction).
        last_at_us: sorted last-interaction times, integer epoch microseconds.
        frequency: sorted frequencies.
        monetary: sorted monetary totals.
        score_high: ``np.percentile(scores, segment_high_percentile)`` at ``as_of``.
        score_low: ``np.percentile(scores, segment_low_percentile)`` at ``as_of``.
        settings: the settings it was built with.

    The arrays are read-only views; build snapshots with :func:`build_snapshot` or
    :func:`score_batch`.
    """

    as_of: float
    n_customers: int
    last_at_us: NDArray[np.int64]
    frequency: NDArray[np.int64]
    monetary: NDArray[np.float64]
    score_high: float
    score_low: float
    settings: RfmSettings

    def __post_init__(self) -> None:
        for name in ("last_at_us", "frequency", "monetary"):
            arr = getattr(self, name)
            if arr.shape != (self.n_customers,):
                raise ValueError(f"snapshot {name} must have shape ({self.n_customers},)")
            arr.flags.writeable = False


@dataclass(frozen=True, slots=True)
class RfmBatch:
    """CLV records of a tenant's customers, as parallel arrays in input order.

    ``segment_code`` indexes :data:`SEGMENT_ORDER`; ``counts`` maps each segment name to its
    number of customers (all four keys present).
    """

    as_of: float
    recency_days: NDArray[np.int64]
    frequency: NDArray[np.int64]
    monetary: NDArray[np.float64]
    clv_score: NDArray[np.int64]
    segment_code: NDArray[np.int8]
    churn_probability: NDArray[np.float64]
    predicted_revenue: NDArray[np.float64]
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.clv_score.shape[0])

    def finite(self) -> NDArray[np.bool_]:
        """Per customer, whether every number of the record is finite. Monetary totals near
        the float64 limit make the predicted revenue overflow; such a record is not JSON and
        its customer must be left out (and reported) by the caller."""
        return np.asarray(
            np.isfinite(self.monetary)
            & np.isfinite(self.churn_probability)
            & np.isfinite(self.predicted_revenue),
            dtype=bool,
        )

    def segments(self) -> NDArray[np.str_]:
        """Segment names per customer (``at_risk``, ``high``, ``medium``, ``low``)."""
        return _SEGMENT_NAMES[self.segment_code]

    def record(self, i: int) -> RfmRecord:
        """The record of customer ``i`` (input order) as an :class:`RfmRecord`."""
        return RfmRecord(
            recency_days=int(self.recency_days[i]),
            frequency=int(self.frequency[i]),
            monetary=float(self.monetary[i]),
            clv_score=int(self.clv_score[i]),
            segment=SEGMENT_ORDER[int(self.segment_code[i])],
            churn_probability=float(self.churn_probability[i]),
            predicted_revenue=float(self.predicted_revenue[i]),
        )


# --------------------------------------------------------------------------- percentiles


def midrank_pct(x: ArrayLike, xs: ArrayLike) -> NDArray[np.float64]:
    """Mid-rank percentile ``(count(xs < x) + count(xs <= x)) / (2 * len(xs))`` for each ``x``.

    O((len(x) + len(xs)) log len(xs)); results are in [0, 1]. ``xs`` must be non-empty.
    """
    xs_sorted = np.sort(np.asarray(xs).ravel())
    if xs_sorted.size == 0:
        raise RfmInputError("midrank_pct needs at least one value in xs")
    q = np.asarray(x)
    counts = np.searchsorted(xs_sorted, q, "left") + np.searchsorted(xs_sorted, q, "right")
    return np.asarray(counts / (2 * xs_sorted.size), dtype=np.float64)


def _sort_key(x: NDArray[Any]) -> NDArray[Any]:
    """Integers ordered like the float64 values ``x`` (no NaN), for numpy's faster int sort.

    IEEE-754 bit patterns of non-negative floats order like integers; negative ones order
    reversed, so their magnitude bits are flipped. ``+ 0.0`` turns -0.0 into 0.0.
    """
    if x.dtype != np.float64:
        return x
    bits = (x + 0.0).view(np.int64)
    return np.where(bits < 0, bits ^ np.int64(0x7FFF_FFFF_FFFF_FFFF), bits)


def _midrank_counts(x: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """``count(x < x_i) + count(x <= x_i)`` for every i, and ``x`` sorted. O(n log n) or O(n)."""
    n = x.shape[0]
    if np.issubdtype(x.dtype, np.integer):
        lo, hi = int(x.min()), int(x.max())
        if hi - lo <= _MAX_COUNTING_SPAN:
            # Counting: cumulative histogram gives count(<=) and count(<) for every value.
            offset = x - lo
            hist = np.bincount(offset, minlength=hi - lo + 1)
            le = np.cumsum(hist)
            both = 2 * le - hist  # le + lt, with lt = le - hist
            return both[offset], np.repeat(np.arange(lo, hi + 1, dtype=x.dtype), hist)
    order = np.argsort(_sort_key(x), kind="stable")
    xs = x[order]
    # Tie groups in sorted order: each element's lt = group start, le = group end.
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.append(starts[1:], n)
    sizes = ends - starts
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(starts + ends, sizes)
    return out, xs


# --------------------------------------------------------------------------- validation


def _times_ok(seconds: NDArray[np.float64]) -> NDArray[np.bool_]:
    return np.abs(seconds) <= _MAX_ABS_SECONDS  # False for NaN and inf too


def _to_us(seconds: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.rint(seconds * 1e6).astype(np.int64)


def _scalar_to_us(seconds: float, name: str) -> int:
    value = float(seconds)
    if not abs(value) <= _MAX_ABS_SECONDS:
        raise RfmInputError(f"{name} must be {_TIME_RULE}; got {seconds!r}")
    return int(np.rint(np.float64(value) * 1e6))


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _as_1d(values: ArrayLike, name: str, dtype: type) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise RfmInputError(f"{name} must be a 1-D array; got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise RfmInputError(f"{name} must be numeric; got dtype {arr.dtype}")
    return np.asarray(arr, dtype=dtype)


# last_us, first_us (None when not given), frequency, monetary, as_of in microseconds
_ValidatedBatch = tuple[
    NDArray[np.int64], NDArray[np.int64] | None, NDArray[np.int64], NDArray[np.float64], int
]


def _validated_batch(
    last_at: ArrayLike,
    first_at: ArrayLike | None,
    frequency: ArrayLike,
    monetary: ArrayLike,
    as_of: float,
) -> _ValidatedBatch:
    last = _as_1d(last_at, "last_at", np.float64)
    freq_raw = np.asarray(frequency)
    if freq_raw.ndim != 1 or freq_raw.dtype.kind not in "iuf":
        raise RfmInputError("frequency must be a 1-D numeric array of interaction counts")
    money = _as_1d(monetary, "monetary", np.float64)
    n = last.shape[0]
    if n == 0:
        raise RfmInputError(
            "no customers to score: a CLV record needs customers with at least one interaction"
        )
    arrays = {"frequency": freq_raw, "monetary": money}
    first = None
    if first_at is not None:
        first = _as_1d(first_at, "first_at", np.float64)
        arrays["first_at"] = first
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise RfmInputError(f"{name} has {arr.shape[0]} values but last_at has {n}")

    if freq_raw.dtype.kind == "f":
        bad = ~np.isfinite(freq_raw) | (freq_raw != np.floor(freq_raw))
        if bad.any():
            i = _first_bad(bad)
            raise RfmInputError(
                f"frequency must be whole counts; index {i} has {float(freq_raw[i])!r}"
            )
    freq = freq_raw.astype(np.int64)
    if (low := freq < 1).any():
        i = _first_bad(low)
        raise RfmInputError(
            "frequency must be >= 1 for every customer (customers with no interactions have "
            f"no CLV record; leave them out); index {i} has {freq[i]}"
        )
    if (bad := ~np.isfinite(money) | (money < 0)).any():
        i = _first_bad(bad)
        raise RfmInputError(f"monetary must be finite and >= 0; index {i} has {float(money[i])!r}")
    if (bad := ~_times_ok(last)).any():
        i = _first_bad(bad)
        raise RfmInputError(f"last_at must be {_TIME_RULE}; index {i} has {float(last[i])!r}")

    as_us = _scalar_to_us(as_of, "as_of")
    last_us = _to_us(last)
    if (late := last_us > as_us).any():
        i = _first_bad(late)
        raise RfmInputError(
            f"last_at must not be after as_of ({as_of!r}); index {i} has {float(last[i])!r}"
        )
    first_us = None
    if first is not None:
        if (bad := ~_times_ok(first)).any():
            i = _first_bad(bad)
            raise RfmInputError(f"first_at must be {_TIME_RULE}; index {i} has {float(first[i])!r}")
        first_us = _to_us(first)
        if (bad := first_us > last_us).any():
            i = _first_bad(bad)
            raise RfmInputError(
                f"first_at must not be after last_at; index {i} has first_at={float(first[i])!r}, "
                f"last_at={float(last[i])!r}"
            )
    return last_us, first_us, freq, money, as_us


# --------------------------------------------------------------------------- formulas


def _churn_scalar(recency_days: int, settings: RfmSettings) -> float:
    z = -settings.churn_slope * (recency_days - settings.churn_midpoint_days)
    return 0.0 if z > _EXP_OVERFLOW else 1.0 / (1.0 + math.exp(z))


def _churn_array(recency: NDArray[np.int64], settings: RfmSettings) -> NDArray[np.float64]:
    # Churn depends on the whole-day recency only, so it is evaluated once per distinct day with
    # the same scalar function score_one uses: batch and single results are bit-identical.
    lo, hi = int(recency.min()), int(recency.max())
    if hi - lo <= _MAX_CHURN_TABLE_DAYS:
        table = np.array([_churn_scalar(r, settings) for r in range(lo, hi + 1)])
        return table[recency - lo]
    days, inverse = np.unique(recency, return_inverse=True)
    table = np.array([_churn_scalar(int(r), settings) for r in days])
    return table[inverse]


def _raw_score(
    recency2: Any, frequency2: Any, monetary2: Any, n: int, settings: RfmSettings
) -> Any:
    # The *2 arguments are count(<) + count(<=); dividing by 2n gives the mid-rank percentile.
    # Same operation order for arrays and Python numbers, so both round identically.
    denom = 2 * n
    return 100.0 * (
        settings.recency_weight * (recency2 / denom)
        + settings.frequency_weight * (frequency2 / denom)
        + settings.monetary_weight * (monetary2 / denom)
    )


def _shift_cents_half_up(cents: Any) -> Any:
    # floor() of this is round-half-up of (non-negative) cents, with the documented tolerance.
    return cents + 0.5 + (1e-9 + 1e-11 * cents)


def _predicted_revenue_array(
    monetary: NDArray[np.float64], days_active: NDArray[np.float64], settings: RfmSettings
) -> NDArray[np.float64]:
    months = np.maximum(1.0, days_active / DAYS_PER_MONTH)
    # A monetary total near the float64 limit overflows to inf here: RfmBatch.finite() tells.
    with np.errstate(over="ignore", invalid="ignore"):
        cents = monetary / months * settings.lifespan_months * 100.0
        return np.floor(_shift_cents_half_up(cents)) / 100.0


def _predicted_revenue_scalar(monetary: float, days_active: float, settings: RfmSettings) -> float:
    months = max(1.0, days_active / DAYS_PER_MONTH)
    cents = monetary / months * settings.lifespan_months * 100.0
    if not math.isfinite(cents):  # overflowed (see the array version); floor() would raise
        return cents
    return math.floor(_shift_cents_half_up(cents)) / 100.0


def _segment_codes(
    recency: NDArray[np.int64],
    score: NDArray[np.int64],
    score_high: float,
    score_low: float,
    settings: RfmSettings,
) -> NDArray[np.int8]:
    codes = (3 - (score >= score_low) - (score >= score_high)).astype(np.int8)
    codes[recency >= settings.at_risk_days] = 0
    return codes


def _segment_scalar(
    recency: int, score: int, score_high: float, score_low: float, settings: RfmSettings
) -> Segment:
    if recency >= settings.at_risk_days:
        return Segment.AT_RISK
    if score >= score_high:
        return Segment.HIGH
    if score >= score_low:
        return Segment.MEDIUM
    return Segment.LOW


# --------------------------------------------------------------------------- batch


def _score_core(
    last_us: NDArray[np.int64],
    freq: NDArray[np.int64],
    money: NDArray[np.float64],
    as_us: int,
    as_of: float,
    settings: RfmSettings,
) -> tuple[NDArray[np.int64], NDArray[np.int64], DistributionSnapshot]:
    n = last_us.shape[0]
    recency = (as_us - last_us) // _US_PER_DAY
    # pct(-R, all -R): rank R in reverse order; (max - R) keeps it a non-negative integer.
    recency2, _ = _midrank_counts(int(recency.max()) - recency)
    frequency2, freq_sorted = _midrank_counts(freq)
    monetary2, money_sorted = _midrank_counts(money)
    raw = _raw_score(recency2, frequency2, monetary2, n, settings)
    score = np.clip(np.floor(raw + 0.5 + SCORE_TOLERANCE), 0, 100).astype(np.int64)
    high, low = np.percentile(
        score, [settings.segment_high_percentile, settings.segment_low_percentile]
    )
    snapshot = DistributionSnapshot(
        as_of=float(as_of),
        n_customers=n,
        last_at_us=np.sort(last_us),
        frequency=np.ascontiguousarray(freq_sorted, dtype=np.int64),
        monetary=np.ascontiguousarray(money_sorted, dtype=np.float64),
        score_high=float(high),
        score_low=float(low),
        settings=settings,
    )
    return recency, score, snapshot


def score_batch(
    last_at: ArrayLike,
    first_at: ArrayLike,
    frequency: ArrayLike,
    monetary: ArrayLike,
    as_of: float,
    settings: RfmSettings | None = None,
) -> tuple[RfmBatch, DistributionSnapshot]:
    """Score every customer of a tenant as of ``as_of``; O(n log n), no per-customer loop.

    Args:
        last_at: last-interaction time per customer, epoch seconds (float64).
        first_at: first-interaction time per customer, epoch seconds (float64).
        frequency: number of interactions per customer (integers >= 1).
        monetary: total conversion value per customer (finite, >= 0).
        as_of: the time the records are computed for, epoch seconds.
        settings: the tenant's settings (default: :class:`RfmSettings` defaults).

    Returns:
        The records as arrays in input order, and the snapshot of this tenant's distribution
        (for :func:`score_one`). A record's numbers depend on the other customers only through
        ranks, so a customer whose record is not finite (:meth:`RfmBatch.finite`: a monetary
        total near the float64 limit) can be left out and the rest scored again.

    Raises:
        RfmInputError: empty input, mismatched lengths, ``frequency < 1``, negative or
            non-finite monetary, non-finite times, ``first_at > last_at`` or ``last_at > as_of``.
    """
    settings = settings or RfmSettings()
    last_us, first_us, freq, money, as_us = _validated_batch(
        last_at, first_at, frequency, monetary, as_of
    )
    assert first_us is not None  # first_at is required here
    recency, score, snapshot = _score_core(last_us, freq, money, as_us, as_of, settings)
    codes = _segment_codes(recency, score, snapshot.score_high, snapshot.score_low, settings)
    days_active = (as_us - first_us) / _US_PER_DAY
    per_segment = np.bincount(codes, minlength=len(SEGMENT_ORDER))
    batch = RfmBatch(
        as_of=float(as_of),
        recency_days=recency,
        frequency=freq,
        monetary=money,
        clv_score=score,
        segment_code=codes,
        churn_probability=_churn_array(recency, settings),
        predicted_revenue=_predicted_revenue_array(money, days_active, settings),
        counts={s.value: int(c) for s, c in zip(SEGMENT_ORDER, per_segment, strict=True)},
    )
    return batch, snapshot


def build_snapshot(
    last_at: ArrayLike,
    frequency: ArrayLike,
    monetary: ArrayLike,
    as_of: float,
    settings: RfmSettings | None = None,
) -> DistributionSnapshot:
    """Build a tenant's :class:`DistributionSnapshot` from its customers' R/F/M inputs.

    Same inputs and rules as :func:`score_batch` without ``first_at`` (revenue is not needed);
    the score percentiles are those of the scores as of ``as_of``.
    """
    settings = settings or RfmSettings()
    last_us, _, freq, money, as_us = _validated_batch(last_at, None, frequency, monetary, as_of)
    return _score_core(last_us, freq, money, as_us, as_of, settings)[2]


# --------------------------------------------------------------------------- one customer


def _check_settings(snapshot: DistributionSnapshot, settings: RfmSettings) -> None:
    built = snapshot.settings
    keys = (
        "recency_weight",
        "frequency_weight",
        "monetary_weight",
        "segment_high_percentile",
        "segment_low_percentile",
    )
    changed = [k for k in keys if getattr(built, k) != getattr(settings, k)]
    if changed:
        raise SnapshotMismatchError(
            "the snapshot was built with different "
            + ", ".join(changed)
            + "; rebuild it with the current settings (score_batch or build_snapshot)"
        )


def score_one(
    last_at: float,
    first_at: float,
    frequency: int,
    monetary: float,
    as_of: float,
    snapshot: DistributionSnapshot,
    settings: RfmSettings | None = None,
) -> RfmRecord:
    """Score one customer against a tenant snapshot in O(log n), at any ``as_of``.

    Percentiles are taken over the snapshot's customers and the segment thresholds are the
    snapshot's. For a customer of the snapshot and ``as_of == snapshot.as_of`` the record equals
    the :func:`score_batch` record exactly. Recency percentiles stay exact at other ``as_of``
    values too (see the module docstring); the score percentiles are those of ``snapshot.as_of``.

    Args mirror :func:`score_batch` for one customer; ``settings`` defaults to the snapshot's.

    Raises:
        RfmInputError: ``frequency < 1`` (no interactions: no record), bad times or monetary,
            or a monetary total so large that the record's numbers are not finite.
        SnapshotMismatchError: ``settings`` differ from the snapshot's in weights or segment
            percentiles.
    """
    settings = settings or snapshot.settings
    _check_settings(snapshot, settings)
    if isinstance(frequency, bool) or int(frequency) != frequency:
        raise RfmInputError(f"frequency must be a whole count; got {frequency!r}")
    freq = int(frequency)
    if freq < 1:
        raise RfmInputError(
            f"frequency must be >= 1 (a customer with no interactions has no CLV record); "
            f"got {freq}"
        )
    money = float(monetary)
    if not math.isfinite(money) or money < 0:
        raise RfmInputError(f"monetary must be finite and >= 0; got {monetary!r}")
    as_us = _scalar_to_us(as_of, "as_of")
    last_us = _scalar_to_us(last_at, "last_at")
    first_us = _scalar_to_us(first_at, "first_at")
    if last_us > as_us:
        raise RfmInputError(f"last_at ({last_at!r}) must not be after as_of ({as_of!r})")
    if first_us > last_us:
        raise RfmInputError(f"first_at ({first_at!r}) must not be after last_at ({last_at!r})")

    recency = (as_us - last_us) // _US_PER_DAY
    lasts = snapshot.last_at_us
    # count(R_j >= R) = count(last_j <= as_of - R days); count(R_j > R) likewise with R + 1.
    ge = int(np.searchsorted(lasts, as_us - recency * _US_PER_DAY, "right"))
    gt = int(np.searchsorted(lasts, as_us - (recency + 1) * _US_PER_DAY, "right"))
    freqs, moneys = snapshot.frequency, snapshot.monetary
    f2 = int(np.searchsorted(freqs, freq, "left")) + int(np.searchsorted(freqs, freq, "right"))
    m2 = int(np.searchsorted(moneys, money, "left")) + int(np.searchsorted(moneys, money, "right"))
    raw = _raw_score(gt + ge, f2, m2, snapshot.n_customers, settings)
    score = min(100, max(0, math.floor(raw + 0.5 + SCORE_TOLERANCE)))
    days_active = (as_us - first_us) / _US_PER_DAY
    revenue = _predicted_revenue_scalar(money, days_active, settings)
    if not math.isfinite(revenue):
        raise RfmInputError(
            f"monetary {monetary!r} is too large to score: the predicted revenue is not a "
            "finite number"
        )
    return RfmRecord(
        recency_days=recency,
        frequency=freq,
        monetary=money,
        clv_score=score,
        segment=_segment_scalar(recency, score, snapshot.score_high, snapshot.score_low, settings),
        churn_probability=_churn_scalar(recency, settings),
        predicted_revenue=revenue,
    )
