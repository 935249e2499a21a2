"""The distribution report of a tenant: counts per segment, a score histogram and the segment
thresholds, computed live from the customer summary columns (nothing stored).

With a probabilistic model active the segments are the model's, as in the records
(:mod:`nextbest_clv.service.model_records`): a customer with model fields is counted in their
model segment, a customer without model data (no transaction or subscription) in their RFM
segment, and a customer whose model fields failed is ``excluded``; ``segmentThresholds`` are the
model's tiers (``atRiskProbabilityAlive``, ``clvHigh``, ``clvLow``), ``segmentsFrom`` says
which (``rfm`` or ``model``) and ``fit`` names the fit. The histogram stays the one of the RFM
``clvScore`` (0-100), which every record carries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from nextbest_clv.service.model_records import ModelColumns
from nextbest_clv.service.records import SEGMENTS, iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.summary_rows import score_rows

__all__ = ["distribution_report"]


def distribution_report(
    cols: Any, settings: ClvSettings, as_of: float, model: ModelColumns | None = None
) -> dict[str, Any]:
    """Counts per segment, a ten-bin score histogram and the segment thresholds of the
    customers in ``cols`` (``Store.customer_summary_columns``) as of ``as_of``; customers that
    cannot be scored (the batch's rule) are counted as ``excluded``. ``model``: the tenant's
    model fields as of ``as_of`` when a model is active (see the module doc)."""
    scored = score_rows(cols, as_of, settings)
    counts = dict.fromkeys(SEGMENTS, 0)
    bins = np.zeros(10, dtype=np.int64)
    thresholds: dict[str, Any] = {"high": None, "low": None}
    excluded = len(scored.failed)
    if scored.batch is not None and scored.snapshot is not None:
        counts = dict(scored.batch.counts)
        bins = np.bincount(np.minimum(scored.batch.clv_score // 10, 9), minlength=10)
        thresholds = {"high": scored.snapshot.score_high, "low": scored.snapshot.score_low}
    extra: dict[str, Any] = {"segmentsFrom": "rfm"}
    if model is not None:
        extra = {"segmentsFrom": "model", "fit": f"{model.fit['model']}/v{model.fit['version']}"}
        assert model.tiers is not None
        thresholds = model.tiers.to_json()
        counts = dict.fromkeys(SEGMENTS, 0)
        if scored.batch is not None:
            rfm_ids = np.asarray(cols.customer_ids)[scored.rows].astype(str)
            segments = _segments_under_model(rfm_ids, scored.batch.segments(), model)
            excluded += int(np.count_nonzero(segments == ""))
            names, found = np.unique(segments[segments != ""], return_counts=True)
            counts.update({str(k): int(v) for k, v in zip(names, found, strict=True)})
    return {
        "asOf": iso_time(as_of),
        "customers": len(scored.rows) - (excluded - len(scored.failed)),
        "excluded": excluded,
        **extra,
        "counts": counts,
        "histogram": [
            {"from": 10 * b, "to": 100 if b == 9 else 10 * b + 9, "count": int(bins[b])}
            for b in range(10)
        ],
        "segmentThresholds": thresholds,
    }


def _segments_under_model(
    ids: NDArray[np.str_], rfm_segments: NDArray[np.str_], model: ModelColumns
) -> NDArray[np.str_]:
    """Per RFM-scored customer: the model segment, the RFM one without model data, or "" when
    the model fields failed (no record)."""
    out = np.asarray(rfm_segments).astype(object)
    model_ids = np.asarray(model.ids).astype(str)
    if model_ids.size:
        order = np.argsort(model_ids)
        sorted_ids = model_ids[order]
        at = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        has = sorted_ids[at] == ids
        seg = model.segments()[order][at]
        out = np.where(has, np.where(seg == None, "", seg), out)  # noqa: E711 - object array
    failed = np.isin(ids, np.asarray(list(model.failed), dtype=str))
    out = np.where(failed, "", out)
    return np.asarray(out, dtype=str)
