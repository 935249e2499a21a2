"""A full batch compute: the RFM records and, for a probabilistic model, its fields.

Used by ``nextbest clv compute``, ``POST /api/v1/clv/compute`` and the scheduler. With a
probabilistic model the stored fit is looked up first, so a model that was never fitted fails
before anything is written; the model fields of every customer are then computed as of the
batch's ``asOf`` from that fit and stored in one transaction. At the end the service's batch
listeners are called with the records as columns (the plugin tells the host there): the RFM
fields and, for a probabilistic model, the model's fields as the records read them.

A full batch (no segment) that stored records then keeps a snapshot of the tenant's
distribution (:mod:`~nextbest_clv.service.history`; its id is ``snapshot`` in the result) and
scores the earlier snapshots whose horizon has passed by its asOf
(:func:`~nextbest_clv.service.history_compare.score_due`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from nextbest_clv.service.facade import ClvService
from nextbest_clv.service.history import record_snapshot
from nextbest_clv.service.history_compare import score_due
from nextbest_clv.service.model_records import ModelBatchResult
from nextbest_clv.service.tenant_batch import BatchResult

__all__ = ["compute_records", "result_json"]


def compute_records(
    service: ClvService,
    tenant_id: str,
    *,
    segment: str | None = None,
    as_of: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[BatchResult, ModelBatchResult | None]:
    """Batch compute the tenant's records (see the module doc).

    Raises:
        ModelNotFittedError: the tenant's model is probabilistic and was never fitted.
        (and whatever :meth:`ClvService.compute_batch` raises)
    """
    service.require_tenant(tenant_id)
    settings = service.get_settings(tenant_id)
    if settings.model != "rfm":
        service.models.forget(tenant_id)
        service.models.fit(tenant_id, settings.model)
    result = service.compute_batch(tenant_id, segment=segment, as_of=as_of, progress=progress)
    model_result = None
    if settings.model != "rfm":
        model_result = service.models.compute_batch(tenant_id, settings, as_of=result.as_of)
        service.invalidate_tenant(tenant_id)
        _add_model_columns(result, model_result)
    for listener in list(service.batch_listeners):
        listener(tenant_id, result)
    if segment is None and result.computed:
        summary = record_snapshot(
            service.store,
            tenant_id,
            settings,
            as_of=result.as_of,
            taken_at=service.clock(),
            customer_ids=result.customer_ids,
            columns=result.columns,
            failed=result.failed,
            fit=None if model_result is None else model_result.fit,
        )
        score_due(service.store, tenant_id, settings, result.as_of)
        result = dataclasses.replace(result, snapshot=summary["id"])
    return result, model_result


#: Record fields whose model figure replaces the RFM one where the model has it.
_REPLACED = ("churnProbability", "predictedRevenue")


def _add_model_columns(result: BatchResult, model_result: ModelBatchResult) -> None:
    """Put the model's fields into the batch's columns for its listeners, aligned with the
    stored records, as the records read them: the model's ``churnProbability``,
    ``predictedRevenue`` and ``segment`` where it has them (the RFM ones otherwise), null
    fields for a customer without them (no data, or failed: fields that are not finite), and
    ``model`` (null for a failed customer). A full batch's ``counts`` become the counts of
    these segments."""
    ids = result.customer_ids
    if not ids:
        return
    n = len(ids)
    position = {c: i for i, c in enumerate(model_result.customer_ids)}
    at = np.fromiter((position.get(c, -1) for c in ids), dtype=np.int64, count=n)
    has = at >= 0
    for name, values in model_result.columns.items():
        if name == "segment":
            continue
        column = np.full(n, np.nan)
        column[has] = np.asarray(values, dtype=np.float64)[at[has]]
        if name in _REPLACED and name in result.columns:
            rfm = np.asarray(result.columns[name], dtype=np.float64)
            column = np.where(np.isfinite(column), column, rfm)
        result.columns[name] = column
    if "segment" in model_result.columns and "segment" in result.columns:
        segments = np.asarray(result.columns["segment"]).astype(object)
        picked = np.asarray(model_result.columns["segment"], dtype=object)[at[has]]
        known = np.array([s is not None for s in picked.tolist()], dtype=bool)
        rows = np.flatnonzero(has)[known]
        segments[rows] = picked[known]
        result.columns["segment"] = segments.astype(str)
        if result.segment is None:  # a full batch counts the segments the records read
            for name in result.counts:
                result.counts[name] = int((result.columns["segment"] == name).sum())
    # A customer the model failed has no model record: no model, as reading it says.
    failed = model_result.failed_ids
    model = np.full(n, model_result.model, dtype=object)
    if failed:
        model[np.fromiter((c in failed for c in ids), dtype=bool, count=n)] = None
    result.columns["model"] = model


def result_json(result: BatchResult, model_result: ModelBatchResult | None) -> dict[str, Any]:
    """The batch result's JSON, plus ``model`` (the model fields' result) for a probabilistic
    model."""
    out = result.to_dict()
    if model_result is not None:
        out["model"] = model_result.to_dict()
    return out
