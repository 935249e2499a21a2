"""The report's reads of the SQL store.

A customer's latest recommendations (newest first, with their items), and offer activity: per
offer, channel and UTC period (day or ISO week), the impressions, responses, positive
responses, conversions and value of a tenant's interactions in a time window, summed in SQL in
one statement (the report's Offers page).

Interactions without an offer count under offer NULL (the caller shows them as "(none)").
The period of an interaction is found in SQL as the whole number of periods since the first
period start at or before ``since``; every interaction in the window is at or after it, so
the number is never negative and truncation is the floor on both dialects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nextbest.store.base import (
    OfferActivity,
    Recommendation,
    RecommendationItem,
    from_epoch,
    to_epoch,
)
from nextbest.store.core_sql import SqlCore, check_id, valid_tenant_id
from nextbest.store.errors import InvalidInputError
from nextbest.store.interactions_sql import _item
from nextbest.store.limits import epoch_problem

PERIODS = {"day": 86400.0, "week": 7 * 86400.0}
#: The longest window one call sums (the page's window is bounded; this bounds the rows).
MAX_ACTIVITY_DAYS = 3660

_ACTIVITY = """
SELECT {bucket} AS period, offer_id, channel,
       SUM(CASE WHEN kind = 'impression' THEN 1 ELSE 0 END),
       SUM(CASE WHEN kind = 'response' THEN 1 ELSE 0 END),
       SUM(CASE WHEN kind = 'response' AND classification = 'positive' THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'conversion' THEN 1 ELSE 0 END),
       SUM(value)
FROM interactions
WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ?
GROUP BY period, offer_id, channel
ORDER BY period, offer_id, channel
"""


def period_start(moment: datetime, period: str) -> datetime:
    """The start of the UTC day, or of the ISO week (Monday 00:00 UTC), holding ``moment``."""
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is not None:
        utc = moment.astimezone(UTC)
        day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    return day - timedelta(days=day.weekday()) if period == "week" else day


#: The most recommendations ``customer_recommendations`` returns.
MAX_CUSTOMER_RECOMMENDATIONS = 100


class ReportSql(SqlCore):
    """The report's reads (see the module docstring)."""

    def customer_recommendations(
        self, tenant_id: str, customer_id: str, limit: int = 10
    ) -> list[Recommendation]:
        check_id("customer id", customer_id)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInputError("limit must be an integer", field="limit")
        if not 1 <= limit <= MAX_CUSTOMER_RECOMMENDATIONS:
            raise InvalidInputError(
                f"limit must be between 1 and {MAX_CUSTOMER_RECOMMENDATIONS}", field="limit"
            )
        if not valid_tenant_id(tenant_id):
            return []
        with self._read() as cur:
            heads = cur.execute(
                "SELECT recommendation_id, channel, placement, flow_key, flow_version, "
                "created_at, assigned_group FROM recommendations "
                "WHERE tenant_id = ? AND customer_id = ? "
                "ORDER BY created_at DESC, recommendation_id DESC LIMIT ?",
                (tenant_id, customer_id, limit),
            ).fetchall()
            items: dict[str, list[RecommendationItem]] = {h[0]: [] for h in heads}
            if heads:
                marks = ", ".join("?" for _ in heads)
                for r in cur.execute(
                    "SELECT recommendation_id, rank, offer_id, score, annotations "
                    "FROM recommendation_items WHERE tenant_id = ? "
                    f"AND recommendation_id IN ({marks}) ORDER BY recommendation_id, rank",
                    (tenant_id, *items),
                ).fetchall():
                    items[r[0]].append(_item(r[1:]))
        return [
            Recommendation(
                h[0],
                tenant_id,
                customer_id,
                items[h[0]],
                h[1],
                h[2],
                h[3],
                h[4],
                from_epoch(h[5]),
                h[6],
            )
            for h in heads
        ]

    def offer_activity(
        self, tenant_id: str, since: datetime, until: datetime, period: str = "day"
    ) -> list[OfferActivity]:
        if period not in PERIODS:
            raise InvalidInputError("period must be 'day' or 'week'", field="period")
        start, end = to_epoch(since), to_epoch(until)
        for what, value in (("since", start), ("until", end)):
            problem = epoch_problem(value)
            if problem is not None:
                raise InvalidInputError(f"{what} {problem}", field=what)
        if not start < end:
            raise InvalidInputError("since must be before until", field="since")
        if end - start > MAX_ACTIVITY_DAYS * 86400.0:
            raise InvalidInputError(
                f"the window may span at most {MAX_ACTIVITY_DAYS} days", field="since"
            )
        if not valid_tenant_id(tenant_id):
            return []
        width = PERIODS[period]
        origin = to_epoch(period_start(from_epoch(start), period))
        bucket = (
            "CAST((occurred_at - ?) / ? AS INTEGER)"
            if self.dialect == "sqlite"
            else "FLOOR((occurred_at - ?) / ?)"
        )
        with self._read() as cur:
            rows = cur.execute(
                _ACTIVITY.format(bucket=bucket), (origin, width, tenant_id, start, end)
            ).fetchall()
        return [
            OfferActivity(
                period_start=from_epoch(origin + int(n) * width),
                offer_id=offer_id,
                channel=channel,
                impressions=int(impressions),
                responses=int(responses),
                positive=int(positive),
                conversions=int(conversions),
                value=float(value),
            )
            for n, offer_id, channel, impressions, responses, positive, conversions, value in rows
        ]
