"""The distribution report of a tenant: counts per segment, a score histogram and the segment
thresholds, computed live from the customer summary columns (nothing stored)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nextbest_clv.service.records import SEGMENTS, iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.summary_rows import score_rows

__all__ = ["distribution_report"]


def distribution_report(cols: Any, settings: ClvSettings, as_of: float) -> dict[str, Any]:
    """Counts per segment, a ten-bin score histogram and the segment thresholds of the
    customers in ``cols`` (``Store.customer_summary_columns``) as of ``as_of``; customers that
    cannot be scored (the batch's rule) are counted as ``excluded``."""
    scored = score_rows(cols, as_of, settings)
    counts = dict.fromkeys(SEGMENTS, 0)
    bins = np.zeros(10, dtype=np.int64)
    thresholds: dict[str, float | None] = {"high": None, "low": None}
    if scored.batch is not None and scored.snapshot is not None:
        counts = dict(scored.batch.counts)
        bins = np.bincount(np.minimum(scored.batch.clv_score // 10, 9), minlength=10)
        thresholds = {"high": scored.snapshot.score_high, "low": scored.snapshot.score_low}
    return {
        "asOf": iso_time(as_of),
        "customers": len(scored.rows),
        "excluded": len(scored.failed),
        "counts": counts,
        "histogram": [
            {"from": 10 * b, "to": 100 if b == 9 else 10 * b + 9, "count": int(bins[b])}
            for b in range(10)
        ],
        "segmentThresholds": thresholds,
    }
