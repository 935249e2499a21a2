"""Session-scoped CDNOW fixtures shared by the model tests.

The CDNOW sample is read from the installed ``lifetimes`` package (a test extra); every fixture
here skips the test cleanly when it is not installed. Summary conventions follow the literature
(Fader, Hardie & Lee 2005): one transaction per customer per day, weeks as the time unit,
calibration 1997-01-01..1997-09-30 (weeks 1-39), holdout to 1998-06-30 (weeks 40-78).
"""

from __future__ import annotations

import importlib.util
import warnings
from types import ModuleType

import numpy as np
import pytest
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.summary import CustomerSummary, summarize_transactions
from nextbest_clv.datasets import CdnowTransactions, load_cdnow_sample

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


def _require_lifetimes() -> None:
    if importlib.util.find_spec("lifetimes") is None:
        pytest.skip("lifetimes (test extra) is not installed: it provides the CDNOW data")


@pytest.fixture(scope="session")
def lifetimes() -> ModuleType:
    """The lifetimes package (reference implementation), or skip."""
    with warnings.catch_warnings():
        # lifetimes 0.11.3 sets a pandas option that pandas 3 deprecates, at import time.
        warnings.simplefilter("ignore")
        return pytest.importorskip("lifetimes")


@pytest.fixture(scope="session")
def cdnow_transactions() -> CdnowTransactions:
    """Raw CDNOW sample records (customer ids 1..2357, datetime64[D] dates, dollar values)."""
    _require_lifetimes()
    return load_cdnow_sample()


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_transactions: CdnowTransactions) -> CustomerSummary:
    """Per-customer calibration summary in weeks with the 39-week holdout."""
    ids, dates, values = cdnow_transactions
    return summarize_transactions(
        ids,
        dates,
        values,
        calibration_end=np.datetime64(CALIBRATION_END),
        observation_end=np.datetime64(OBSERVATION_END),
        time_unit="weeks",
    )


@pytest.fixture(scope="session")
def cdnow_bgnbd(cdnow_summary: CustomerSummary) -> BetaGeoModel:
    """BG/NBD fitted on the CDNOW calibration period."""
    s = cdnow_summary
    return BetaGeoModel.fit(s.frequency, s.recency, s.T)


@pytest.fixture(scope="session")
def cdnow_gammagamma(cdnow_summary: CustomerSummary) -> GammaGammaModel:
    """Gamma-Gamma fitted on the CDNOW repeat customers (zero-frequency rows are ignored)."""
    return GammaGammaModel.fit(cdnow_summary.frequency, cdnow_summary.monetary_value)
