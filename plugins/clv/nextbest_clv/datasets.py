"""Reference data sets for the models, read from files: the CDNOW research transaction data
(Fader, Hardie & Lee 2005). Kept out of the numeric core (which does no I/O); used by tests,
benchmarks and notebooks.

The data is not vendored (it has no published licence): it is read from the copy that ships in
the installed ``lifetimes`` package (a test/benchmark extra), located with
``importlib.util.find_spec`` so that lifetimes (and pandas) is never imported; its own dataset
loaders depend on ``pkg_resources``, gone with setuptools >= 82.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class CdnowTransactions(NamedTuple):
    """One row per CDNOW purchase record (several rows may share a customer and a day)."""

    customer_ids: NDArray[np.int64]
    dates: NDArray[np.datetime64]  # datetime64[D]
    values: NDArray[np.float64]  # dollar value of the record


def load_cdnow_sample() -> CdnowTransactions:
    """The 1/10 sample: 2,357 customers, 6,919 records, 1997-01-01 to 1998-06-30.

    Customer ids are the sample ids (1..2357), so "customer 1 of the sample" is id 1.
    """
    # Columns: master id, sample id, date (YYYYMMDD), number of CDs, dollar value.
    table = _read_table("CDNOW_sample.txt", skip_header=False)
    return CdnowTransactions(table[:, 1].astype(np.int64), _dates(table[:, 2]), table[:, 4])


def load_cdnow_master() -> CdnowTransactions:
    """The full cohort: 23,570 customers, 69,659 records, 1997-01-01 to 1998-06-30."""
    # Columns: customer id, date (YYYYMMDD), number of CDs, dollar value; one header line.
    table = _read_table("CDNOW_master.txt", skip_header=True)
    return CdnowTransactions(table[:, 0].astype(np.int64), _dates(table[:, 1]), table[:, 3])


def _data_file(name: str) -> Path:
    # find_spec locates the installed package without importing it: importlib.resources.files
    # would import lifetimes, and with it pandas, which the models do not need.
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the CDNOW data is read from the installed 'lifetimes' package; install the test "
            "extra (pip install -e '.[dev]') or 'lifetimes==0.11.3'"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "datasets" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found in the installed lifetimes package ({path})")
    return path


def _read_table(name: str, *, skip_header: bool) -> NDArray[np.float64]:
    lines = _data_file(name).read_text().split("\n")
    if skip_header:
        lines = lines[1:]
    rows = [line.split() for line in lines if line.strip()]
    return np.array(rows, dtype=np.float64)


def _dates(yyyymmdd: NDArray[np.float64]) -> NDArray[np.datetime64]:
    n = yyyymmdd.astype(np.int64)
    months = (n // 10000 - 1970) * 12 + (n // 100 % 100 - 1)
    days = months.astype("datetime64[M]").astype("datetime64[D]") + (n % 100 - 1)
    return days.astype("datetime64[D]")
