"""A back-test as a picture: cumulative repeat transactions by holdout week, and by decile.

Drawn with matplotlib's Agg backend (no display needed) into a PNG or SVG file, chosen by the
file's suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: render to files only, never open a window

import matplotlib.pyplot as plt
import numpy as np

from nextbest_clv.errors import ClvInputError

__all__ = ["PLOT_FORMATS", "plot_backtest"]

PLOT_FORMATS: tuple[str, ...] = (".png", ".svg")
_PREDICTED, _ACTUAL = "#1f77b4", "#d62728"


def plot_backtest(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the plot of a back-test report (``BacktestReport.to_json()``) to ``path``.

    Raises:
        ClvInputError: the suffix is not .png or .svg.
    """
    target = Path(path)
    if target.suffix.lower() not in PLOT_FORMATS:
        raise ClvInputError(
            f"plot file {str(target)!r} must end in .png or .svg (the format follows the suffix)"
        )
    weekly, deciles = report["weekly"], report["deciles"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    try:
        left.plot(weekly["weeks"], weekly["actual"], color=_ACTUAL, label="actual")
        left.plot(
            weekly["weeks"], weekly["predicted"], color=_PREDICTED, ls="--", label="predicted"
        )
        left.set_xlabel(f"week after calibration end ({report['calibrationEnd']})")
        left.set_ylabel("cumulative repeat transactions")
        left.set_title("Holdout: cumulative repeat transactions by week")
        left.grid(alpha=0.3)
        left.legend()

        pos = np.arange(len(deciles))
        width = 0.4
        right.bar(
            pos - width / 2,
            [d["predictedMean"] for d in deciles],
            width,
            color=_PREDICTED,
            label="predicted",
        )
        right.bar(
            pos + width / 2,
            [d["actualMean"] for d in deciles],
            width,
            color=_ACTUAL,
            label="actual",
        )
        right.set_xticks(pos, [str(d["decile"]) for d in deciles])
        right.set_xlabel("decile of predicted transactions (1 = highest)")
        right.set_ylabel("mean holdout transactions per customer")
        right.set_title("Holdout: predicted vs actual by decile")
        right.grid(alpha=0.3, axis="y")
        right.legend()

        tx = report["transactions"]
        fig.suptitle(
            f"{report['model']}: {report['customers']} customers, holdout "
            f"{report['holdoutWeeks']:.1f} weeks; predicted {tx['predicted']:.0f} vs actual "
            f"{tx['actual']:.0f} repeat transactions (MAE {tx['mae']:.3f}, RMSE {tx['rmse']:.3f})"
        )
        fig.tight_layout()
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, format=target.suffix.lower()[1:], dpi=100)
    finally:
        plt.close(fig)
    return target
