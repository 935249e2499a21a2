"""The CDNOW loader reads the files shipped in the installed lifetimes package."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from nextbest_clv.datasets import CdnowTransactions, load_cdnow_master, load_cdnow_sample


@pytest.fixture(scope="module")
def cdnow_transactions() -> CdnowTransactions:
    if importlib.util.find_spec("lifetimes") is None:
        pytest.skip("lifetimes (test extra) is not installed: it provides the CDNOW data")
    return load_cdnow_sample()


def test_sample_has_the_published_size_and_span(cdnow_transactions: CdnowTransactions) -> None:
    ids, dates, values = cdnow_transactions
    assert ids.size == dates.size == values.size == 6919
    assert np.unique(ids).size == 2357 and ids.min() == 1 and ids.max() == 2357
    assert dates.dtype == np.dtype("datetime64[D]")
    assert (str(dates.min()), str(dates.max())) == ("1997-01-01", "1998-06-30")
    # First record of the file: master id 00004, sample id 0001, 1997-01-01, $29.33.
    assert (int(ids[0]), str(dates[0]), float(values[0])) == (1, "1997-01-01", 29.33)
    # Everyone's first purchase is in the first 12 weeks of 1997.
    first_purchase = np.full(2358, np.datetime64("2100-01-01"), dtype="datetime64[D]")
    np.minimum.at(first_purchase, ids, dates)
    firsts = first_purchase[1:]
    assert firsts.max() < np.datetime64("1997-04-01")


def test_master_has_the_published_size(cdnow_transactions: CdnowTransactions) -> None:
    ids, dates, values = load_cdnow_master()
    assert ids.size == 69659 and np.unique(ids).size == 23570
    assert (str(dates.min()), str(dates.max())) == ("1997-01-01", "1998-06-30")
    assert np.all(np.isfinite(values))


@pytest.mark.usefixtures("cdnow_transactions")
def test_loading_does_not_import_lifetimes_or_pandas() -> None:
    code = (
        "import sys; from nextbest_clv.datasets import load_cdnow_sample; "
        "load_cdnow_sample(); print('lifetimes' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
