"""The CLV pages of the web report (through the host's ``register_report_pages``) and the CLV
section of a customer's profile (``customer_profile_sections``).

Every page computes the tenant's records as of the page's time with
:func:`~nextbest_clv.service.record_columns.record_columns` (two store queries, nothing
stored), so the pages agree with each other and with a batch run at that time.

- ``overview`` (100): customers, total and average predicted value, customers and value per
  segment.
- ``distribution`` (200): the predicted value and CLV score histograms now, with quantiles.
- ``at-risk`` (400): customers by value at risk (predicted value times churn probability), sortable
  and paginated, with their segment, last interaction and the top offer the tenant's default
  published flow would give them: decided for the rows shown only, without recording anything.

The predicted value is the model's discounted ``clv`` for a probabilistic model and the RFM
record's ``predictedRevenue`` otherwise (``value_column``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest import (
    Axis,
    Block,
    Chart,
    Column,
    DecisionService,
    HostAPI,
    NextbestError,
    PageRequest,
    RegisterReportPage,
    ReportPage,
    Series,
    Stat,
    Stats,
    Table,
    Text,
    UnknownFlowError,
)
from nextbest.store import from_epoch, to_epoch
from nextbest_clv.errors import ClvError, ModelNotFittedError, NoInteractionsError
from nextbest_clv.report_history import distribution_over_time, overview_trend
from nextbest_clv.service import attach, service_for
from nextbest_clv.service.history import customer_history
from nextbest_clv.service.record_columns import RecordColumns, record_columns
from nextbest_clv.service.records import SEGMENTS

__all__ = [
    "PAGES",
    "profile_blocks",
    "profile_sections",
    "register_pages",
    "render_at_risk",
    "render_distribution",
    "render_overview",
    "value_column",
]

MONEY = "money"
VALUE_BINS = 20
AT_RISK_SORTS = ("value_at_risk", "value", "churn", "segment", "last_interaction", "customer")


def value_column(records: RecordColumns) -> tuple[str, NDArray[np.float64]]:
    """The predicted value per customer and its label (see the module docstring)."""
    if records.model != "rfm" and "clv" in records.columns:
        return "discounted CLV", np.asarray(records.columns["clv"], dtype=np.float64)
    return "predicted revenue", np.asarray(records.columns["predictedRevenue"], dtype=np.float64)


def _records(request: PageRequest) -> RecordColumns | Text:
    """The records as of the page's time, or a note saying why there are none."""
    try:
        return record_columns(service_for(request.host), request.tenant_id, to_epoch(request.as_of))
    except ModelNotFittedError as exc:
        return Text(f"{exc} Fit the model (nextbest clv fit) to see this page.", kind="note")


def _no_customers(records: RecordColumns) -> Text | None:
    if len(records.columns["customerId"]):
        return None
    excluded = f" ({len(records.failures)} could not be scored)" if records.failures else ""
    return Text(f"No customer has a CLV record yet{excluded}.", kind="note")


def render_overview(request: PageRequest) -> list[Block]:
    """Page 1, Overview, then the trend since the previous snapshots."""
    return [*_overview_now(request), *overview_trend(request)]


def _overview_now(request: PageRequest) -> list[Block]:
    records = _records(request)
    if isinstance(records, Text):
        return [records]
    label, value = value_column(records)
    known = np.isfinite(value)
    segments = np.asarray(records.columns["segment"]).astype(str)
    blocks: list[Block] = [
        Stats(
            [
                Stat("Customers", len(value), "count"),
                Stat(f"Total {label}", float(value[known].sum()), MONEY),
                Stat(
                    f"Average {label}", float(value[known].mean()) if known.any() else None, MONEY
                ),
                Stat("Not scored", len(records.failures), "count"),
                Stat("Model", records.model),
            ]
        )
    ]
    empty = _no_customers(records)
    if empty is not None:
        return [*blocks, empty]
    counts = [int((segments == s).sum()) for s in SEGMENTS]
    totals = [float(value[(segments == s) & known].sum()) for s in SEGMENTS]
    blocks += [
        Chart(
            "bar",
            "Customers per segment",
            Axis("Segment"),
            Axis("Customers", "count"),
            [Series("customers", list(SEGMENTS), counts)],
        ),
        Chart(
            "bar",
            f"{label.capitalize()} per segment",
            Axis("Segment"),
            Axis(label.capitalize(), MONEY),
            [Series(label, list(SEGMENTS), totals)],
        ),
        Table(
            "segments",
            "Customers and predicted value per segment",
            [
                Column("segment", "Segment"),
                Column("customers", "Customers", "count", True),
                Column("share", "Share of customers", "%", True),
                Column("value", f"Total {label}", MONEY, True),
                Column("average", f"Average {label}", MONEY, True),
            ],
            [
                [s, n, 100.0 * n / len(value), t, t / n if n else None]
                for s, n, t in zip(SEGMENTS, counts, totals, strict=True)
            ],
        ),
    ]
    return blocks


def render_distribution(request: PageRequest) -> list[Block]:
    """Page 2, CLV distribution: the histograms now, then over time (the snapshots)."""
    return [*_distribution_now(request), *distribution_over_time(request)]


def _distribution_now(request: PageRequest) -> list[Block]:
    records = _records(request)
    if isinstance(records, Text):
        return [records]
    empty = _no_customers(records)
    if empty is not None:
        return [empty]
    label, value = value_column(records)
    finite = value[np.isfinite(value)]
    blocks: list[Block] = []
    if len(finite):
        q = np.quantile(finite, [0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
        blocks.append(
            Stats(
                [
                    Stat(f"{name} {label}", float(v), MONEY)
                    for name, v in zip(("P10", "P25", "Median", "P75", "P90"), q, strict=False)
                ],
                title=f"Quantiles of {label}",
            )
        )
        low, high = float(min(finite.min(), 0.0)), float(q[5])
        if high <= low:
            high = low + 1.0
        clipped = int((finite > high).sum())
        counts, edges = np.histogram(np.minimum(finite, high), bins=VALUE_BINS, range=(low, high))
        note = (
            f"The last bin also holds the {clipped} customers above the 99th percentile "
            f"({high:,.2f}); the largest value is {float(finite.max()):,.2f}."
            if clipped
            else ""
        )
        blocks.append(
            Chart(
                "histogram",
                f"Customers by {label}",
                Axis(label.capitalize(), MONEY),
                Axis("Customers", "count"),
                [Series("customers", edges.tolist(), counts.tolist())],
                note=note,
            )
        )
    scores = np.asarray(records.columns["clvScore"], dtype=np.int64)
    score_counts = np.bincount(np.minimum(scores // 10, 9), minlength=10)
    blocks.append(
        Chart(
            "histogram",
            "Customers by CLV score",
            Axis("CLV score", "0-100"),
            Axis("Customers", "count"),
            [Series("customers", list(range(0, 101, 10)), score_counts.tolist())],
        )
    )
    return blocks


def _last_interactions(request: PageRequest, ids: NDArray[Any]) -> NDArray[np.float64]:
    store = request.host.store
    assert store is not None
    summary = store.customer_summary_columns(request.tenant_id)
    last = dict(zip(summary.customer_ids.tolist(), summary.last_at.tolist(), strict=True))
    return np.array([last.get(c, np.nan) for c in ids.tolist()], dtype=np.float64)


def _top_offers(request: PageRequest, customers: list[str]) -> tuple[list[str | None], str]:
    """The top offer of the tenant's default published flow for each customer (decided,
    nothing recorded), and a note when there is no such flow."""
    host = request.host
    decisions = host.plugin_state(
        "clv.report.decisions",
        lambda: DecisionService(host, host.store),  # type: ignore[arg-type]
    )
    offers: list[str | None] = []
    for customer in customers:
        try:
            made = decisions.decide(
                request.tenant_id, {"customerId": customer, "asOf": request.as_of}
            )
        except UnknownFlowError:
            return [None] * len(customers), (
                "Top offer: the tenant has no published default flow (set one with "
                "nextbest flows default)."
            )
        except NextbestError as exc:  # a flow that does not load or run: say so once
            return [None] * len(customers), f"Top offer: the default flow failed: {exc}"
        items = made.decision.items
        offers.append(items[0].offer_id if items else None)
    return offers, ""


def _order(column: NDArray[Any], ids: NDArray[Any], descending: bool) -> NDArray[np.int64]:
    """Row order by ``column`` (missing numbers last either way), ties by customer id."""
    id_rank = np.unique(ids, return_inverse=True)[1]
    if column.dtype.kind == "f":
        missing = ~np.isfinite(column)
        key = np.where(missing, 0.0, column)
        return np.lexsort((id_rank, -key if descending else key, missing))
    rank = np.unique(column, return_inverse=True)[1]
    return np.lexsort((id_rank, -rank if descending else rank))


def render_at_risk(request: PageRequest) -> list[Block]:
    """Page 4, At-risk customers."""
    query = request.table(
        "at-risk", sortable=AT_RISK_SORTS, default_sort="value_at_risk", page_size=25
    )
    records = _records(request)
    if isinstance(records, Text):
        return [records]
    empty = _no_customers(records)
    if empty is not None:
        return [empty]
    label, value = value_column(records)
    ids = np.asarray(records.columns["customerId"]).astype(str)
    churn = np.asarray(records.columns["churnProbability"], dtype=np.float64)
    segments = np.asarray(records.columns["segment"]).astype(str)
    at_risk = value * churn
    last = _last_interactions(request, ids)
    keys: dict[str, NDArray[Any]] = {
        "value_at_risk": at_risk,
        "value": value,
        "churn": churn,
        "segment": segments,
        "last_interaction": last,
        "customer": ids,
    }
    order = _order(keys[query.sort], ids, query.descending)
    page = order[query.offset : query.offset + query.page_size]
    customers = ids[page].tolist()
    offers, note = _top_offers(request, customers)

    def number(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    rows = [
        [
            customers[i],
            str(segments[j]),
            number(value[j]),
            None if not np.isfinite(churn[j]) else 100.0 * float(churn[j]),
            number(at_risk[j]),
            from_epoch(float(last[j])) if np.isfinite(last[j]) else None,
            offers[i],
        ]
        for i, j in enumerate(page.tolist())
    ]
    blocks: list[Block] = [
        Stats(
            [
                Stat("Total value at risk", float(np.nansum(at_risk)), MONEY),
                Stat("Customers", len(ids), "count"),
                Stat(
                    "Churn probability, mean",
                    100.0 * float(np.nanmean(churn)) if np.isfinite(churn).any() else None,
                    "%",
                ),
            ]
        ),
        Table(
            "at-risk",
            f"Customers by value at risk ({label} times churn probability)",
            [
                Column("customer", "Customer", sortable=True),
                Column("segment", "Segment", sortable=True),
                Column("value", label.capitalize(), MONEY, True, True),
                Column("churn", "Churn probability", "%", True, True),
                Column("value_at_risk", "Value at risk", MONEY, True, True),
                Column("last_interaction", "Last interaction", "UTC", sortable=True),
                Column("top_offer", "Top offer"),
            ],
            rows,
            query,
            len(ids),
        ),
    ]
    if note:
        blocks.append(Text(note, kind="note"))
    return blocks


PAGES = (
    ReportPage(
        "overview",
        "Overview",
        100,
        render_overview,
        "Customers, predicted value and segments (CLV).",
    ),
    ReportPage(
        "distribution",
        "CLV distribution",
        200,
        render_distribution,
        "How predicted value and CLV scores are spread over the customers.",
    ),
    ReportPage(
        "at-risk",
        "At-risk customers",
        400,
        render_at_risk,
        "Customers by value at risk, with the offer the default flow would make them.",
    ),
)


def register_pages(register: RegisterReportPage) -> None:
    """Register the CLV pages."""
    for page in PAGES:
        register(page)


def profile_sections(
    host: HostAPI, tenant_id: str, customer_id: str, as_of: datetime
) -> Mapping[str, Any] | None:
    """The customer's CLV record as of ``as_of`` (section ``clv``) with its ``history`` (one
    row per stored snapshot up to ``as_of``: asOf, segment, prediction), or the reason there
    is no record (``error`` with the plugin's code; the history is still given)."""
    service = attach(host)
    if service is None:  # a host without a store has no records
        return None
    history = customer_history(service.store, tenant_id, customer_id, to_epoch(as_of))
    try:
        record = dict(service.get(tenant_id, customer_id, to_epoch(as_of)))
    except NoInteractionsError:
        return {"clv": {"history": history}} if history else None
    except ClvError as exc:
        record = {"error": getattr(exc, "code", "clv_error"), "message": str(exc)}
    return {"clv": {**record, "history": history}}


def profile_blocks(sections: Mapping[str, Any]) -> list[Block]:
    """The CLV history of a customer's profile (the ``history`` of section ``clv``) as a
    table and a line chart of the prediction per snapshot; nothing without history."""
    section = sections.get("clv")
    history = section.get("history") if isinstance(section, Mapping) else None
    if not history:
        return []
    field = history[-1].get("field") or "prediction"
    rows = [[h["asOf"], h["segment"], h["predicted"]] for h in history]
    blocks: list[Block] = [
        Table(
            "clv-history",
            "CLV history: the customer in each stored snapshot, oldest first",
            [
                Column("asOf", "Snapshot as of", "UTC"),
                Column("segment", "Segment"),
                Column("predicted", f"Predicted ({field})", MONEY, True),
            ],
            rows,
        )
    ]
    known = [h for h in history if h["predicted"] is not None]
    if known:
        blocks.append(
            Chart(
                "line",
                "Predicted value per snapshot",
                Axis("Snapshot as of", "UTC"),
                Axis(field, MONEY),
                [Series(field, [h["asOf"] for h in known], [h["predicted"] for h in known])],
            )
        )
    return blocks
