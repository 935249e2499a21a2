"""nextbest_clv.notebook on the CDNOW sample: CLV records, back-tests and fits as DataFrames,
equal to the plugin's own answers (single reads, batches, stored runs and fits), read without a
store round trip per customer."""

from __future__ import annotations

import math
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from clvkit import T0, FakeClock
from modelkit import add_buyers, ingest_cdnow
from nextbest_clv import notebook as clv
from nextbest_clv.backtest.runs import list_backtests, run_backtest
from nextbest_clv.errors import ClvInputError, UnknownModelError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model, list_fits
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE

import nextbest.notebook
from nextbest.notebook import Notebook
from nextbest.store import Store, TenantNotFoundError, open_store

AS_OF = "1998-07-01T00:00:00Z"
AS_OF_EPOCH = datetime(1998, 7, 1, tzinfo=UTC).timestamp()
END = datetime(1998, 6, 30, tzinfo=UTC).timestamp()
#: served record field -> frame column
FIELDS = {
    "clvScore": "clv_score",
    "predictedRevenue": "predicted_revenue",
    "churnProbability": "churn_probability",
    "rfmRecency": "rfm_recency",
    "rfmFrequency": "rfm_frequency",
    "rfmMonetary": "rfm_monetary",
    "segment": "segment",
}
MODEL_FIELDS = {
    "probabilityAlive": "probability_alive",
    "expectedPurchases90d": "expected_purchases_90d",
    "expectedRevenue12m": "expected_revenue_12m",
    "clv": "clv",
    "model": "model",
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """CDNOW as tenant ``cdnow`` (model rfm) and ``cdnow-bg`` (bgnbd, fitted), with two
    stored back-tests and a second fit version of ``cdnow-bg``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('nb') / 'cdnow.db'}"
    store = open_store(url)
    store.upgrade()
    store.create_tenant("empty")
    service = ClvService(store)
    for tenant in ("cdnow", "cdnow-bg"):
        store.create_tenant(tenant)
        ingest_cdnow(store, tenant)
    settings = service.get_settings("cdnow-bg")
    fit_tenant_model(store, "cdnow-bg", "bgnbd", settings, end=END - 90 * 86_400)
    fit_tenant_model(store, "cdnow-bg", "bgnbd", settings, end=END)
    fit_tenant_model(store, "cdnow-bg", "paretonbd", settings, end=END)
    service.update_settings("cdnow-bg", {"model": "bgnbd"})
    calibration = datetime(1997, 9, 30, tzinfo=UTC).timestamp()
    for model in ("bgnbd", "paretonbd"):
        run_backtest(store, "cdnow-bg", model, settings, calibration_end=calibration)
    store.close()
    return url


@pytest.fixture
def nb(url: str) -> Iterator[Notebook]:
    with nextbest.notebook.open(url) as notebook:
        yield notebook


def sample(frame: pd.DataFrame, n: int = 40) -> list[str]:
    ids = frame["customer_id"].tolist()
    return [ids[i] for i in np.linspace(0, len(ids) - 1, n).astype(int)]


def same(frame_value: Any, record_value: Any) -> bool:
    if record_value is None:
        return bool(pd.isna(frame_value))
    if isinstance(record_value, float):
        return math.isclose(float(frame_value), record_value, rel_tol=0, abs_tol=0)
    return bool(frame_value == record_value)


def test_rfm_records_equal_single_reads_and_the_batch(nb: Notebook) -> None:
    frame = clv.clv_records(nb, "cdnow", as_of=AS_OF)
    assert len(frame) == 2357 and frame.attrs["failures"] == []
    assert list(frame.columns) == [*clv.RECORD_COLUMNS.values(), "computed_at"]
    assert (frame["model"] == "rfm").all() and frame["clv"].isna().all()
    assert str(frame["computed_at"].dtype) == "datetime64[us, UTC]"
    assert (frame["computed_at"] == pd.Timestamp(AS_OF)).all()
    assert [str(frame[c].dtype) for c in ("clv_score", "rfm_recency", "predicted_revenue")] == [
        "int64",
        "int64",
        "float64",
    ]
    rows = frame.set_index("customer_id")
    service = ClvService(nb.store)  # a service of its own: its answers are computed
    for customer in sample(frame):
        record = service.get("cdnow", customer, as_of=AS_OF_EPOCH)
        assert all(same(rows.loc[customer, c], record[f]) for f, c in FIELDS.items()), customer
    compute_records(service, "cdnow", as_of=AS_OF_EPOCH)
    stored = nb.store.get_documents(RECORDS_NAMESPACE, "cdnow")
    for field, column in FIELDS.items():
        assert rows[column].tolist() == [stored[c][field] for c in rows.index], field


def test_bgnbd_records_equal_single_reads_and_the_batch(nb: Notebook) -> None:
    frame = clv.clv_records(nb, "cdnow-bg", as_of=datetime(1998, 7, 1, tzinfo=UTC))
    assert len(frame) == 2357 and (frame["model"] == "bgnbd").all()
    assert frame["probability_alive"].notna().all()
    rows = frame.set_index("customer_id")
    service = ClvService(nb.store)
    for customer in sample(frame):
        record = service.get("cdnow-bg", customer, as_of=AS_OF_EPOCH)
        fields = {**FIELDS, **MODEL_FIELDS}
        assert all(same(rows.loc[customer, c], record[f]) for f, c in fields.items()), customer
    compute_records(service, "cdnow-bg", as_of=AS_OF_EPOCH)
    stored = nb.store.get_documents(MODEL_RECORDS_NAMESPACE, "cdnow-bg")
    for field, column in MODEL_FIELDS.items():
        assert rows[column].tolist() == [stored[c][field] for c in rows.index], field
    assert rows["churn_probability"].tolist() == [stored[c]["churnProbability"] for c in rows.index]


def test_records_take_no_store_round_trip_per_customer(
    nb: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def per_customer(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a per-customer store read")

    for name in ("get_customer_summary", "iter_interactions"):
        monkeypatch.setattr(nb.store, name, per_customer)
    # Documents: the tenant's settings and its fit, once each (never a record per customer).
    monkeypatch.setattr(nb.store, "get_document", _one_fit_read(nb.store))
    assert len(clv.clv_records(nb, "cdnow-bg", as_of=AS_OF)) == 2357


def _one_fit_read(store: Store) -> Any:
    reads: list[tuple[str, ...]] = []
    real = type(store).get_document

    def get_document(namespace: str, tenant_id: str, key: str) -> Any:
        reads.append((namespace, key))
        assert namespace != RECORDS_NAMESPACE and len(reads) <= 2, reads
        return real(store, namespace, tenant_id, key)

    return get_document


def test_records_list_the_customers_without_one(store: Store, tmp_path: Path) -> None:
    add_buyers(store, "acme", T0, n=30)
    with sqlite3.connect(tmp_path / "clv.db") as connection:
        connection.execute(
            "UPDATE customer_summaries SET total_value = 1e307 WHERE customer_id = 'c3'"
        )
    notebook = Notebook(store)
    frame = clv.clv_records(notebook, "acme", as_of=T0 - 5 * 86_400)
    failures = {f["customerId"]: f["reason"] for f in frame.attrs["failures"]}
    assert "c3" in failures and "too large to score" in failures["c3"]
    late = [c for c, r in failures.items() if "is after asOf" in r]
    assert late  # bought after the asOf: no record as of it
    assert set(frame["customer_id"]) | set(failures) == {f"c{i}" for i in range(30)}
    assert not set(frame["customer_id"]) & set(failures)
    service = ClvService(store, FakeClock(T0))
    batch = service.compute_batch("acme", as_of=T0 - 5 * 86_400)
    assert sorted(f["customerId"] for f in batch.failures) == sorted(failures)


def test_backtests_and_fits_are_the_stored_ones(nb: Notebook) -> None:
    runs = list_backtests(nb.store, "cdnow-bg")
    frame = clv.backtests(nb, "cdnow-bg")
    assert frame["id"].tolist() == [r["id"] for r in runs] and len(frame) == 2
    assert frame["model"].tolist() == [r["model"] for r in runs]
    assert frame["transactions_rmse"].tolist() == [r["transactions"]["rmse"] for r in runs]
    assert frame["revenue_actual"].tolist() == [r["revenue"]["actual"] for r in runs]
    assert frame["params"].tolist() == [r["params"] for r in runs]
    assert frame["calibration_end"].tolist() == [pd.Timestamp("1997-09-30T00:00:00Z")] * 2
    assert frame["excluded_customers"].tolist() == [0, 0]
    assert len(clv.backtests(nb, "cdnow-bg", model="paretonbd")) == 1
    fits = list_fits(nb.store, "cdnow-bg")
    table = clv.fits(nb, "cdnow-bg")
    assert table[["model", "version"]].values.tolist() == [[f["model"], f["version"]] for f in fits]
    assert sorted(table["version"].tolist()) == [1, 1, 2]
    bgnbd = table[table["model"] == "bgnbd"]
    assert bgnbd["param_r"].tolist() == [f["params"]["r"] for f in fits if f["model"] == "bgnbd"]
    assert bgnbd["param_s"].isna().all()  # a Pareto/NBD parameter
    assert table["data_end"].max() == pd.Timestamp("1998-06-30T00:00:00Z")
    assert table["transactions"].tolist() == [f["dataSpan"]["transactions"] for f in fits]
    assert str(table["churned"].dtype) == "Int64" and table["churned"].isna().all()
    with pytest.raises(UnknownModelError):
        clv.fits(nb, "cdnow-bg", model="rfm")
    with pytest.raises(TenantNotFoundError):
        clv.backtests(nb, "nobody")


def test_empty_frames_keep_their_dtypes(nb: Notebook) -> None:
    full = clv.backtests(nb, "cdnow-bg")
    empty = clv.backtests(nb, "empty")
    assert len(empty) == 0 and list(empty.dtypes) == list(full.dtypes)
    fits, no_fits = clv.fits(nb, "cdnow-bg"), clv.fits(nb, "empty")
    assert len(no_fits) == 0
    assert set(no_fits.columns) == {c for c in fits.columns if not c.startswith("param_")}
    assert all(no_fits[c].dtype == fits[c].dtype for c in no_fits.columns)
    records = clv.clv_records(nb, "empty", as_of=AS_OF)
    assert len(records) == 0
    assert list(records.dtypes) == list(clv.clv_records(nb, "cdnow", as_of=AS_OF).dtypes)


def test_as_of_outside_the_window_names_the_argument(nb: Notebook) -> None:
    for value in ("2300-01-01", datetime(1850, 1, 1), 1e11, "soon"):
        with pytest.raises(ClvInputError) as info:
            clv.clv_records(nb, "cdnow", as_of=value)  # type: ignore[arg-type]
        assert info.value.field == "as_of"


def test_frames_without_pandas_name_the_extra(
    nb: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    for call in (
        lambda: clv.clv_records(nb, "cdnow", as_of=AS_OF),
        lambda: clv.backtests(nb, "cdnow-bg"),
        lambda: clv.fits(nb, "cdnow-bg"),
    ):
        with pytest.raises(ImportError, match=r"pip install 'nextbest\[pandas\]'"):
            call()
