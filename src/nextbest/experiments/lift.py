"""Lift of a flow over its control group: the statistics (pure; aggregates in, report out).

Every figure compares *customers*: the treatment and control customers of a flow in a window,
each counted once (intent to treat: a customer belongs to its group whether or not it was shown
an offer). Per customer the store gives a success flag (at least one positive response) and a
value (the sum of its outcomes' values, net of refunds); from their per-group counts, sums and
sums of squares this module computes:

- success rate: the difference of proportions with the **Newcombe hybrid score interval**
  (Newcombe 1998, method 10: Wilson intervals of each rate combined). Unlike the Wald interval
  it keeps its coverage for rare successes and small groups and never leaves [-1, 1];
- value per customer: the difference of means with the **Welch** interval (t with the
  Welch-Satterthwaite degrees of freedom): the groups' sizes and variances differ;
- relative lift (treatment / control - 1, for both): the **delta method on the log of the
  ratio**, so the interval is asymmetric and the ratio stays positive; it needs positive means
  in both groups (None otherwise, e.g. no control successes yet).

The intervals are two-sided at ``confidence`` (95 % by default) and hold for large enough groups
(their coverage is checked by simulation in tests/experiments).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .control import CONTROL, TREATMENT

#: The confidence level of every interval unless the caller asks for another one.
CONFIDENCE = 0.95
#: The window of a lift report when no ``since`` is given: this many days before ``until``.
LIFT_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class GroupTotals:
    """One group's customers with their successes and the sum and sum of squares of their
    values (one value per customer)."""

    customers: int
    successes: int
    value_sum: float
    value_sq_sum: float


@dataclass(frozen=True, slots=True)
class OfferTotals:
    """One offer's figures per group: ``shown`` customers were recommended the offer;
    ``totals`` count every customer of the group (successes and values of this offer only)."""

    offer_id: str
    shown: Mapping[str, int]
    totals: Mapping[str, GroupTotals]


@dataclass(frozen=True, slots=True)
class LiftAggregates:
    """What the store aggregates for a lift report (``Store.lift_aggregates``)."""

    flow_key: str
    since: datetime
    until: datetime
    groups: Mapping[str, GroupTotals]
    offers: Sequence[OfferTotals] = ()
    #: customers with recommendations in both groups in the window (the salt or share
    #: changed): left out of every figure
    mixed_customers: int = 0


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its confidence interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


def _z(confidence: float) -> float:
    from scipy import stats  # here: the store imports this module, scipy is slow to import

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (n > 0)."""
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_of_proportions(
    k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """p1 - p2 with the Newcombe hybrid score interval; None when a group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


def _mean_var(total: GroupTotals) -> tuple[float, float]:
    """Mean and sample variance of the group's values (n >= 2)."""
    n = total.customers
    mean = total.value_sum / n
    var = (total.value_sq_sum - n * mean * mean) / (n - 1)
    return mean, max(0.0, var)  # rounding may leave a tiny negative


def welch_difference(
    treatment: GroupTotals, control: GroupTotals, confidence: float = CONFIDENCE
) -> Interval | None:
    """Difference of mean values with the Welch t interval; None unless both groups have at
    least two customers and :data:`MIN_SUCCESSES_FOR_VALUE` successes, and some variance."""
    if treatment.customers < 2 or control.customers < 2:
        return None
    if min(treatment.successes, control.successes) < MIN_SUCCESSES_FOR_VALUE:
        return None
    m1, v1 = _mean_var(treatment)
    m2, v2 = _mean_var(control)
    s1, s2 = v1 / treatment.customers, v2 / control.customers
    d = m1 - m2
    se2 = s1 + s2
    if se2 == 0.0:  # no spread to measure: no interval, not an exact one
        return None
    df = se2 * se2 / (s1 * s1 / (treatment.customers - 1) + s2 * s2 / (control.customers - 1))
    from scipy import stats  # see _z

    t = float(stats.t.ppf(0.5 + confidence / 2.0, df))
    half = t * math.sqrt(se2)
    return Interval(d, d - half, d + half)


#: The least mean / standard error a relative lift needs in both groups: below it the log of
#: the mean is not near-normal (and a mean near 0 makes any ratio meaningless).
MIN_MEAN_TO_SE = 2.0
#: The least successes per group behind a value-per-customer interval: values are mostly 0,
#: so the interval rests on the customers with a value, not on all customers (with fewer, the
#: Welch interval covers far less than it says: 75% at 3 control successes).
MIN_SUCCESSES_FOR_VALUE = 10


def relative_lift(
    m1: float, se1: float, m2: float, se2: float, confidence: float = CONFIDENCE
) -> Interval | None:
    """m1 / m2 - 1 with the delta-method interval of log(m1 / m2); ``se`` are the standard
    errors of the means. None unless both means are positive and at least
    :data:`MIN_MEAN_TO_SE` standard errors from 0 (and both standard errors positive)."""
    if not (m1 > 0.0 and m2 > 0.0 and se1 > 0.0 and se2 > 0.0):
        return None
    if m1 < MIN_MEAN_TO_SE * se1 or m2 < MIN_MEAN_TO_SE * se2:
        return None
    ratio = m1 / m2
    se_log = math.sqrt((se1 / m1) ** 2 + (se2 / m2) ** 2)
    z = _z(confidence)
    return Interval(
        ratio - 1.0, ratio * math.exp(-z * se_log) - 1.0, ratio * math.exp(z * se_log) - 1.0
    )


def _rate(total: GroupTotals) -> dict[str, Any]:
    rate = total.successes / total.customers if total.customers else None
    return {"customers": total.customers, "successes": total.successes, "rate": rate}


def _value(total: GroupTotals) -> dict[str, Any]:
    mean = total.value_sum / total.customers if total.customers else None
    return {"customers": total.customers, "total": total.value_sum, "mean": mean}


def _figures(t: GroupTotals, c: GroupTotals, confidence: float) -> dict[str, Any]:
    """Success rate and value per customer, treatment vs control, with the lifts."""
    diff = difference_of_proportions(t.successes, t.customers, c.successes, c.customers, confidence)
    rate_rel = None
    if 0 < t.successes < t.customers and 0 < c.successes < c.customers:
        p1, p2 = t.successes / t.customers, c.successes / c.customers
        rate_rel = relative_lift(
            p1,
            math.sqrt(p1 * (1 - p1) / t.customers),
            p2,
            math.sqrt(p2 * (1 - p2) / c.customers),
            confidence,
        )
    value_diff = welch_difference(t, c, confidence)
    value_rel = None
    if value_diff is not None:  # the same conditions as the absolute interval
        m1, v1 = _mean_var(t)
        m2, v2 = _mean_var(c)
        value_rel = relative_lift(
            m1, math.sqrt(v1 / t.customers), m2, math.sqrt(v2 / c.customers), confidence
        )
    return {
        "successRate": {
            TREATMENT: _rate(t),
            CONTROL: _rate(c),
            "absoluteLift": diff.to_dict() if diff else None,
            "relativeLift": rate_rel.to_dict() if rate_rel else None,
        },
        "valuePerCustomer": {
            TREATMENT: _value(t),
            CONTROL: _value(c),
            "absoluteLift": value_diff.to_dict() if value_diff else None,
            "relativeLift": value_rel.to_dict() if value_rel else None,
        },
    }


_EMPTY = GroupTotals(0, 0, 0.0, 0.0)

#: How the report computes its figures (returned with it, so a reader knows).
METHODS = {
    "unit": "customer (intent to treat: every customer of a group counts, shown an offer or not)",
    "success": "at least one positive response in the window after the first recommendation",
    "value": "sum of the customer's outcome values in that window (net of refunds)",
    "absoluteLift": "treatment - control; success rate: Newcombe hybrid score interval; "
    "value per customer: Welch t interval",
    "relativeLift": "treatment / control - 1; delta method on the log of the ratio",
    "omitted": "an interval is null when the data cannot support it: a relative lift needs "
    "both means at least 2 standard errors above 0 (a success rate strictly between 0 and 1); "
    "a value interval needs 10 successes per group and some spread",
}


def lift_report(aggregates: LiftAggregates, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The lift report (JSON shape, camelCase) of a flow's aggregates: the flow's figures and
    each offer's, treatment vs control, with ``confidence`` intervals."""
    t = aggregates.groups.get(TREATMENT, _EMPTY)
    c = aggregates.groups.get(CONTROL, _EMPTY)
    offers = []
    for offer in aggregates.offers:
        offers.append(
            {
                "offerId": offer.offer_id,
                "shown": {group: offer.shown.get(group, 0) for group in (TREATMENT, CONTROL)},
                **_figures(
                    offer.totals.get(TREATMENT, GroupTotals(t.customers, 0, 0.0, 0.0)),
                    offer.totals.get(CONTROL, GroupTotals(c.customers, 0, 0.0, 0.0)),
                    confidence,
                ),
            }
        )
    return {
        "flowKey": aggregates.flow_key,
        "since": aggregates.since.isoformat(),
        "until": aggregates.until.isoformat(),
        "confidence": confidence,
        "customers": {
            TREATMENT: t.customers,
            CONTROL: c.customers,
            "excludedMixed": aggregates.mixed_customers,
        },
        "flow": _figures(t, c, confidence),
        "offers": offers,
        "methods": dict(METHODS),
    }
