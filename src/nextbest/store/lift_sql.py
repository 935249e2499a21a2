"""Lift aggregates of the SQL store: a flow's customers per control group in a time window,
with their successes and values, summed in SQL (one row per group, or per group and offer).

The rule (docs/learning.md, "Control groups and lift"): a customer belongs to the window when
the flow saved a recommendation for it with a group in [since, until); its group is that of
those recommendations (a customer with both groups in the window, because the salt or share
changed, is counted in ``mixed_customers`` and left out). Its outcomes count from its first
recommendation in the window up to ``until``, whichever offer they name (control customers in
``mode: none`` were shown nothing: their outcomes are the baseline). Success is at least one
positive response; value is the sum of the outcomes' values (net of refunds). Per offer, the
same customers with the outcomes naming that offer only.
"""

from __future__ import annotations

from datetime import datetime

from nextbest.experiments import GroupTotals, LiftAggregates, OfferTotals
from nextbest.store.base import to_epoch
from nextbest.store.core_sql import SqlCore, check_id, valid_tenant_id
from nextbest.store.errors import InvalidInputError
from nextbest.store.limits import epoch_problem

# One statement, so the flow's customers in the window (members) are found once: the
# customer's group and first recommendation (firsts, members), its success and value per offer
# it named (pairs, one pass over its outcomes; the offer NULL for outcomes naming none and for
# a customer without outcomes) and overall (per_customer); then one row set per figure, tagged
# by its kind:
# ('group', grp, NULL, customers, successes, value, value²), ('offer', grp, offer, 0,
# successes, value, value²), ('shown', grp, offer, customers shown it, 0, 0, 0) and
# ('mixed', NULL, NULL, customers in both groups, 0, 0, 0).
# Parameters: tenant, flow key, since, until (members); tenant, until (pairs); tenant, flow
# key, since, until (shown).
_POSITIVE = "CASE WHEN i.classification = 'positive' AND i.kind = 'response' THEN 1 ELSE 0 END"
_AGGREGATES = f"""
WITH firsts AS (
    SELECT customer_id, MIN(created_at) AS first_at,
           MIN(assigned_group) AS g_min, MAX(assigned_group) AS g_max
    FROM recommendations
    WHERE tenant_id = ? AND flow_key = ? AND created_at >= ? AND created_at < ?
      AND assigned_group IS NOT NULL
    GROUP BY customer_id
),
members AS (
    SELECT customer_id, first_at, g_min AS grp FROM firsts WHERE g_min = g_max
),
pairs AS (
    SELECT m.grp AS grp, m.customer_id AS customer_id, i.offer_id AS offer_id,
           MAX({_POSITIVE}) AS success, SUM(i.value) AS value
    FROM members m LEFT JOIN interactions i
      ON i.tenant_id = ? AND i.customer_id = m.customer_id
     AND i.occurred_at >= m.first_at AND i.occurred_at < ?
    GROUP BY m.grp, m.customer_id, i.offer_id
),
per_customer AS (
    SELECT grp, customer_id, MAX(success) AS success, COALESCE(SUM(value), 0.0) AS value
    FROM pairs GROUP BY grp, customer_id
)
SELECT 'group', grp, NULL, COUNT(*), SUM(success), SUM(value), SUM(value * value)
FROM per_customer GROUP BY grp
UNION ALL
SELECT 'offer', grp, offer_id, 0, SUM(success), SUM(value), SUM(value * value)
FROM pairs WHERE offer_id IS NOT NULL GROUP BY grp, offer_id
UNION ALL
SELECT 'shown', m.grp, it.offer_id, COUNT(DISTINCT m.customer_id), 0, 0.0, 0.0
FROM recommendations r
JOIN members m ON m.customer_id = r.customer_id
JOIN recommendation_items it
  ON it.tenant_id = r.tenant_id AND it.recommendation_id = r.recommendation_id
WHERE r.tenant_id = ? AND r.flow_key = ? AND r.created_at >= ? AND r.created_at < ?
  AND r.assigned_group = m.grp
GROUP BY m.grp, it.offer_id
UNION ALL
SELECT 'mixed', NULL, NULL, COUNT(*), 0, 0.0, 0.0 FROM firsts WHERE g_min <> g_max
"""


def _window(since: datetime, until: datetime) -> tuple[float, float]:
    start, end = to_epoch(since), to_epoch(until)
    for what, value in (("since", start), ("until", end)):
        problem = epoch_problem(value)
        if problem is not None:
            raise InvalidInputError(f"{what} {problem}", field=what)
    if not start < end:
        raise InvalidInputError(
            f"since must be before until, got since={since.isoformat()} until={until.isoformat()}",
            field="since",
        )
    return start, end


class LiftSql(SqlCore):
    """Lift aggregates (see the module docstring for the rule)."""

    def lift_aggregates(
        self, tenant_id: str, flow_key: str, since: datetime, until: datetime
    ) -> LiftAggregates:
        check_id("flow key", flow_key)
        start, end = _window(since, until)
        groups: dict[str, GroupTotals] = {}
        offers: dict[str, tuple[dict[str, int], dict[str, GroupTotals]]] = {}
        mixed = 0
        if valid_tenant_id(tenant_id):
            members = (tenant_id, flow_key, start, end)
            params = (*members, tenant_id, end, *members)
            with self._read() as cur:
                rows = cur.execute(_AGGREGATES, params).fetchall()
            for kind, grp, offer_id, n, k, total, squares in rows:
                if kind == "group":
                    groups[grp] = GroupTotals(int(n), int(k), float(total), float(squares))
                elif kind == "mixed":
                    mixed = int(n)
                elif kind == "shown":
                    offers.setdefault(offer_id, ({}, {}))[0][grp] = int(n)
            for kind, grp, offer_id, _, k, total, squares in rows:
                if kind == "offer":  # every customer of the group is in the denominator
                    size = groups[grp].customers
                    entry = offers.setdefault(offer_id, ({}, {}))
                    entry[1][grp] = GroupTotals(size, int(k), float(total), float(squares))
        return LiftAggregates(
            flow_key,
            since,
            until,
            groups,
            [
                OfferTotals(offer_id, shown, totals)
                for offer_id, (shown, totals) in sorted(offers.items())
            ],
            mixed,
        )
