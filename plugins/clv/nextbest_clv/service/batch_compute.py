"""A full batch compute: the RFM records and, for a probabilistic model, its fields.

Used by ``nextbest clv compute``, ``POST /api/v1/clv/compute`` and the scheduler. With a
probabilistic model the stored fit is looked up first, so a model that was never fitted fails
before anything is written; the model fields of every customer are then computed as of the
batch's ``asOf`` from that fit and stored in one transaction. At the end the service's batch
listeners are called with the RFM records as columns (the plugin tells the host there; a
probabilistic model's fields are not among the columns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nextbest_clv.service.facade import ClvService
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
    for listener in list(service.batch_listeners):
        listener(tenant_id, result)
    return result, model_result


def result_json(result: BatchResult, model_result: ModelBatchResult | None) -> dict[str, Any]:
    """The batch result's JSON, plus ``model`` (the model fields' result) for a probabilistic
    model."""
    out = result.to_dict()
    if model_result is not None:
        out["model"] = model_result.to_dict()
    return out
