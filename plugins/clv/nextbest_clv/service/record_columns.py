"""Every customer's CLV record as columns, computed as of a time, nothing stored (notebooks).

The rows a batch as of the same time would store, with the same numbers: the RFM fields of the
customers :func:`~nextbest_clv.service.summary_rows.score_rows` scores and, for a probabilistic
model, the fields :meth:`~nextbest_clv.service.model_records.ModelRecords.columns` gives from
the tenant's latest fit (``churnProbability``, ``predictedRevenue`` and ``segment`` then
become the model's, null fields for a customer without data). Customers a batch would list
as failed are in ``failures`` instead.
So each row equals what ``ClvService.get(tenant, customer, as_of=...)`` answers for an explicit
``as_of``. Two store queries (summaries, interactions) whatever the number of customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest_clv.core.model_segments import clv_percentile
from nextbest_clv.service.facade import ClvService
from nextbest_clv.service.model_records import model_revenue
from nextbest_clv.service.summary_rows import score_rows
from nextbest_clv.service.times import checked_epoch

__all__ = ["RecordColumns", "record_columns"]


@dataclass(frozen=True)
class RecordColumns:
    """The records of a tenant's customers as parallel columns (record field -> values, in
    customer id order), the asOf they were computed for, the tenant's model, and the customers
    that have no record with the reason (``customerId``, ``reason``)."""

    as_of: float
    model: str
    columns: dict[str, Any]
    failures: list[dict[str, str]]


def record_columns(
    service: ClvService, tenant_id: str, as_of: float | None = None
) -> RecordColumns:
    """Every customer's record as of ``as_of`` (default now), see the module doc.

    Raises:
        TenantNotFoundError: the tenant does not exist.
        ClvInputError: ``as_of`` outside the store's window of times.
        ModelNotFittedError: the tenant's model is probabilistic and was never fitted.
    """
    as_of = checked_epoch(as_of, "asOf")
    service.require_tenant(tenant_id)
    settings = service.get_settings(tenant_id)
    when = service.clock() if as_of is None else as_of
    cols = service.store.customer_summary_columns(tenant_id)
    scored = score_rows(cols, when, settings)
    failures = scored.failures(len(scored.failed))
    rows = scored.rows
    batch = scored.batch
    columns: dict[str, Any] = {
        "customerId": cols.customer_ids[rows].astype(str),
        "clvScore": batch.clv_score if batch is not None else np.zeros(0, np.int64),
        "predictedRevenue": batch.predicted_revenue if batch is not None else np.zeros(0),
        "churnProbability": batch.churn_probability if batch is not None else np.zeros(0),
        "rfmRecency": batch.recency_days if batch is not None else np.zeros(0, np.int64),
        "rfmFrequency": batch.frequency if batch is not None else np.zeros(0, np.int64),
        "rfmMonetary": batch.monetary if batch is not None else np.zeros(0),
        "segment": batch.segments() if batch is not None else np.zeros(0, str),
    }
    if settings.model != "rfm":
        model = service.models.columns(tenant_id, settings, when, as_of=as_of)
        ids: NDArray[np.str_] = columns["customerId"]
        keep = np.array([c not in model.failed for c in ids.tolist()], dtype=bool)
        failures += [{"customerId": c, "reason": model.failed[c]} for c in ids[~keep].tolist()]
        columns = {name: values[keep] for name, values in columns.items()}
        ids = columns["customerId"]
        # Each customer's row in the model's arrays (-1: no data, null fields).
        position = {c: i for i, c in enumerate(model.ids.tolist())}
        at = np.array([position.get(c, -1) for c in ids.tolist()], dtype=np.int64)
        has = at >= 0
        names = {
            "probabilityAlive": "probability_alive",
            "expectedPurchases90d": "expected_purchases_90d",
            "expectedRevenue12m": "expected_revenue_12m",
            "clv": "clv",
        }
        for name, attribute in names.items():
            values = np.full(len(ids), np.nan)
            if model.fields is not None:
                values[has] = getattr(model.fields, attribute)[at[has]]
            columns[name] = values
        columns["clvPercentile"] = np.full(len(ids), np.nan)
        if model.fields is not None:
            # The record fields the model replaces (model_records): churn, revenue, segment.
            churn = np.array(columns["churnProbability"], dtype=np.float64)
            churn[has] = model.fields.churn_probability[at[has]]
            columns["churnProbability"] = churn
            revenue = np.array(columns["predictedRevenue"], dtype=np.float64)
            revenue[has] = model_revenue(model.fields.clv[at[has]])
            columns["predictedRevenue"] = revenue
            segment = np.asarray(columns["segment"]).astype(object)
            picked = model.segments()[at[has]]
            known = np.array([v is not None for v in picked.tolist()], dtype=bool)
            segment[np.flatnonzero(has)[known]] = picked[known]
            columns["segment"] = segment.astype(str)
            if model.tiers is not None:
                columns["clvPercentile"][has] = clv_percentile(
                    model.fields.clv[at[has]], model.tiers
                )
        columns["model"] = np.full(len(ids), settings.model, dtype=object)
    failures.sort(key=lambda f: f["customerId"])
    return RecordColumns(as_of=when, model=settings.model, columns=columns, failures=failures)
