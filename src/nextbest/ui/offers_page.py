"""The Offers page: impressions, response and conversion rates and value per offer and channel
over time, per UTC day or ISO week, from one store query over a bounded window
(``Store.offer_activity``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, cast

from ..errors import PageInputError
from ..plugin_api import PageRequest
from ..report_blocks import (
    Axis,
    Block,
    Chart,
    Column,
    Form,
    FormField,
    Series,
    Stat,
    Stats,
    Table,
    Text,
)
from ..store import OfferActivity
from ..store.report_sql import period_start

#: Offers drawn as their own line; the others are summed as "(other offers)".
MAX_SERIES = 8
DEFAULT_DAYS = 28
MAX_DAYS = 366
NONE = "(none)"
OTHER = "(other offers)"
_SORTABLE = (
    "offer",
    "channel",
    "impressions",
    "responses",
    "response_rate",
    "conversions",
    "conversion_rate",
    "value",
)


def _rate(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _periods(since: datetime, until: datetime, period: str) -> list[datetime]:
    step = timedelta(days=7 if period == "week" else 1)
    out, at = [], period_start(since, period)
    while at < until:
        out.append(at)
        at += step
    return out


def render_offers(request: PageRequest) -> list[Block]:
    """The Offers page (see the module docstring)."""
    days = request.int_param("days", DEFAULT_DAYS, minimum=1, maximum=MAX_DAYS)
    period = request.param("period", "day") or "day"
    if period not in ("day", "week"):
        raise PageInputError("query.period", "must be day or week")
    until = request.as_of
    since = until - timedelta(days=days)
    store = request.host.store
    assert store is not None
    rows = store.offer_activity(request.tenant_id, since, until, period)
    blocks: list[Block] = [
        Form(
            [
                FormField("days", "Window (days)", "number", str(days)),
                FormField("period", "Per", "select", period, [("day", "day"), ("week", "week")]),
            ]
        )
    ]
    totals = [sum(getattr(r, f) for r in rows) for f in ("impressions", "responses", "conversions")]
    value = sum(r.value for r in rows)
    blocks.append(
        Stats(
            [
                Stat("Impressions", totals[0], "count"),
                Stat("Responses", totals[1], "count"),
                Stat("Conversions", totals[2], "count"),
                Stat("Conversion rate", _rate(totals[2], totals[0]), "% of impressions"),
                Stat("Value", value, "money"),
            ],
            title=f"The last {days} days",
        )
    )
    if not rows:
        blocks.append(Text("No interactions in this window.", kind="note"))
    blocks += _charts(rows, _periods(since, until, period), period)
    blocks.append(_table(request, rows, days))
    return blocks


def _charts(rows: list[OfferActivity], periods: list[datetime], period: str) -> list[Block]:
    weight: dict[str, int] = defaultdict(int)
    for r in rows:
        weight[r.offer_id or NONE] += r.impressions + r.responses
    top = sorted(weight, key=lambda o: (-weight[o], o))[:MAX_SERIES]
    sums: dict[str, dict[datetime, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    )
    for r in rows:
        offer = r.offer_id or NONE
        cell = sums[offer if offer in top else OTHER][r.period_start]
        cell[0] += r.impressions
        cell[1] += r.responses
        cell[2] += r.conversions
        cell[3] += r.value
    names = top + ([OTHER] if OTHER in sums else [])
    x = [p.date().isoformat() for p in periods]
    when = Axis("Period start" if period == "week" else "Day", "UTC")

    def series(pick: Any) -> list[Series]:
        return [Series(n, x, [pick(sums[n][p]) for p in periods]) for n in names]

    return [
        Chart(
            "line",
            f"Impressions per offer and {period}",
            when,
            Axis("Impressions", "count"),
            series(lambda c: int(c[0])),
        ),
        Chart(
            "line",
            f"Response rate per offer and {period}",
            when,
            Axis("Responses per impression", "%"),
            series(lambda c: _rate(c[1], c[0])),
            note="Empty where the offer had no impressions.",
        ),
        Chart(
            "line",
            f"Conversion rate per offer and {period}",
            when,
            Axis("Conversions per impression", "%"),
            series(lambda c: _rate(c[2], c[0])),
        ),
        Chart(
            "bar",
            f"Value per offer and {period}",
            when,
            Axis("Value (net of refunds)", "money"),
            series(lambda c: c[3]),
        ),
    ]


def _table(request: PageRequest, rows: list[OfferActivity], days: int) -> Table:
    query = request.table("offers", sortable=_SORTABLE, default_sort="impressions")
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for r in rows:
        cell = sums[(r.offer_id or NONE, r.channel or NONE)]
        cell[0] += r.impressions
        cell[1] += r.responses
        cell[2] += r.conversions
        cell[3] += r.value
    lines = [
        {
            "offer": offer,
            "channel": channel,
            "impressions": int(c[0]),
            "responses": int(c[1]),
            "response_rate": _rate(c[1], c[0]),
            "conversions": int(c[2]),
            "conversion_rate": _rate(c[2], c[0]),
            "value": c[3],
        }
        for (offer, channel), c in sums.items()
    ]
    # None sorts last either way; ties by offer and channel keep pages stable.
    lines.sort(key=lambda r: (r["offer"], r["channel"]))
    present = [r for r in lines if r[query.sort] is not None]
    absent = [r for r in lines if r[query.sort] is None]
    present.sort(key=lambda r: cast(Any, r[query.sort]), reverse=query.descending)
    ordered = present + absent
    page = ordered[query.offset : query.offset + query.page_size]
    return Table(
        "offers",
        f"Offers by channel over the last {days} days",
        [
            Column("offer", "Offer", sortable=True),
            Column("channel", "Channel", sortable=True),
            Column("impressions", "Impressions", "count", True, True),
            Column("responses", "Responses", "count", True, True),
            Column("response_rate", "Response rate", "%", True, True),
            Column("conversions", "Conversions", "count", True, True),
            Column("conversion_rate", "Conversion rate", "%", True, True),
            Column("value", "Value", "money", True, True),
        ],
        [[r[c] for c in _SORTABLE] for r in page],
        query,
        len(ordered),
    )


__all__ = ["render_offers"]
