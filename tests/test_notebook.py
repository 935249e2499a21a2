"""nextbest.notebook: the store's data as DataFrames (summaries, interactions) and decisions for
a table of customers, equal to what the store and the HTTP recommend path answer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import nextbest.notebook
from nextbest import UnknownFlowError
from nextbest.documents import load_document
from nextbest.notebook import Notebook
from nextbest.store import InteractionIn, Store, TenantNotFoundError, open_store, to_epoch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
OFFERS: list[dict[str, Any]] = load_document(EXAMPLES / "offers.yaml")["offers"]
CROSS_SELL: dict[str, Any] = load_document(EXAMPLES / "flows" / "cross-sell.yaml")
AS_OF = datetime(2024, 7, 1, tzinfo=UTC)
#: A flow that reads metrics.* (filled from the summaries like recommend does).
METRICS_FLOW: dict[str, Any] = {
    "key": "metrics",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv", "config": {}},
        {
            "type": "compute",
            "id": "c",
            "config": {
                "fields": [
                    {"name": "bought", "formula": "metrics.conversions"},
                    {"name": "spent", "formula": "metrics.total_value"},
                    {"name": "country", "formula": "attributes.country"},
                ]
            },
        },
        {"type": "score", "id": "s", "config": {}},
        {"type": "rank", "id": "r", "config": {"maxCandidates": 2}},
        {"type": "response", "id": "out", "config": {"fields": ["bought", "spent", "country"]}},
    ],
}


def interaction(
    customer: str, outcome: str, days_ago: float, value: float = 0.0, offer: str | None = None
) -> InteractionIn:
    return InteractionIn(
        customer_id=customer,
        outcome=outcome,
        idempotency_key=f"{customer}-{outcome}-{days_ago}",
        value=value,
        occurred_at=AS_OF - timedelta(days=days_ago),
        offer_id=offer,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store with tenant acme: offers, two published flows, interactions."""
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    store = open_store(url)
    store.upgrade()
    store.create_tenant("acme")
    store.create_tenant("empty")
    for offer in OFFERS:
        store.put_offer("acme", offer)
    for flow in (CROSS_SELL, METRICS_FLOW):
        store.publish_flow("acme", flow["key"], store.save_flow("acme", flow["key"], flow))
    store.set_default_flow("acme", "cross-sell")
    store.record_interactions_bulk(
        "acme",
        [
            interaction("ann", "conversion", 40, 120.5),
            interaction("ann", "conversion", 3, 30.25),
            interaction("ann", "impression", 2, offer="cashback-card"),
            interaction("bob", "impression", 10, offer="premium-card"),
            interaction("bob", "conversion", 1.5, 9.99),
            interaction("cy", "click", 0.25, offer="savings-boost"),
        ],
    )
    store.close()
    return url


@pytest.fixture
def nb(url: str) -> Iterator[Notebook]:
    with nextbest.notebook.open(url) as notebook:
        yield notebook


def test_summaries_are_the_stores_summaries(nb: Notebook) -> None:
    frame = nb.summaries("acme")
    assert list(frame.columns) == [
        "customer_id",
        "first_at",
        "last_at",
        "interactions",
        "conversions",
        "total_value",
    ]
    assert pd.api.types.is_string_dtype(frame["customer_id"])
    assert str(frame["first_at"].dtype) == str(frame["last_at"].dtype) == "datetime64[us, UTC]"
    assert (frame["interactions"].dtype, frame["total_value"].dtype) == ("int64", "float64")
    assert frame["customer_id"].tolist() == ["ann", "bob", "cy"]
    for row in frame.itertuples():
        summary = nb.store.get_customer_summary("acme", row.customer_id)
        assert summary is not None
        assert row.first_at.to_pydatetime() == summary.first_at
        assert row.last_at.to_pydatetime() == summary.last_at
        assert (row.interactions, row.conversions) == (summary.interactions, summary.conversions)
        assert row.total_value == summary.total_value
    empty = nb.summaries("empty")
    assert len(empty) == 0 and list(empty.dtypes) == list(frame.dtypes)
    with pytest.raises(TenantNotFoundError):
        nb.summaries("nobody")


def test_interactions_are_the_stores_interactions(nb: Notebook) -> None:
    frame = nb.interactions("acme")
    stored = list(nb.store.iter_interactions("acme"))
    assert frame["interaction_id"].tolist() == [i.interaction_id for i in stored]
    assert frame["occurred_at"].dt.to_pydatetime().tolist() == [i.occurred_at for i in stored]
    assert frame["value"].tolist() == [i.value for i in stored]
    assert frame["outcome"].tolist() == [i.outcome for i in stored]
    assert [None if pd.isna(v) else v for v in frame["offer_id"]] == [i.offer_id for i in stored]
    assert str(frame["rank"].dtype) == "Int64"
    assert str(frame["recorded_at"].dtype) == "datetime64[us, UTC]"
    anns = nb.interactions("acme", "ann")
    assert anns["customer_id"].unique().tolist() == ["ann"] and len(anns) == 3
    assert list(nb.interactions("empty").dtypes) == list(frame.dtypes)


def test_decide_equals_recommend_without_saving(
    nb: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["ann", "bob", "cy", "new"],
            "age": [34, 17, 52, 40],
            "income": [52_000, None, 20_000, 90_000],
            "homeowner": [True, False, True, False],
            "segments": [["student"], [], [], ["student"]],
        }
    )
    saved = nb.decide("acme", customers, as_of=AS_OF, save=True)
    assert saved["recommendation_id"].notna().all()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("decide(save=False) saved a recommendation")

    monkeypatch.setattr(nb.store, "save_recommendation", refuse)
    frame = nb.decide("acme", customers, as_of=AS_OF)
    assert frame["recommendation_id"].isna().all() and frame["error"].isna().all()
    assert list(frame.columns) == [
        "customer_id",
        "rank",
        "offer_id",
        "name",
        "score",
        "personalization",
        "flow_key",
        "flow_version",
        "as_of",
        "recommendation_id",
        "error",
    ]
    assert (str(frame["rank"].dtype), str(frame["score"].dtype)) == ("Int64", "float64")
    assert str(frame["as_of"].dtype) == "datetime64[us, UTC]"
    assert (frame["as_of"] == pd.Timestamp(AS_OF)).all()
    assert set(frame["flow_key"]) == {"cross-sell"}
    # The same decisions as the HTTP recommend path (offer history and attributes included).
    columns = ["customer_id", "rank", "offer_id", "score", "personalization"]
    assert frame[columns].equals(saved[columns])
    for customer, rows in frame.groupby("customer_id", sort=False):
        stored = nb.store.get_recommendation(
            "acme", saved.loc[saved["customer_id"] == customer, "recommendation_id"].iloc[0]
        )
        assert stored is not None
        assert [item.offer_id for item in stored.items] == rows["offer_id"].dropna().tolist()
    bob = frame[frame["customer_id"] == "bob"]  # under 18: every offer dropped
    assert len(bob) == 1 and pd.isna(bob["rank"].iloc[0]) and bob["offer_id"].isna().all()


def test_decide_fills_metrics_attributes_and_per_row_times(nb: Notebook) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["ann", "cy"],
            "country": ["FR", None],
            "as_of": [pd.Timestamp("2024-06-01T00:00:00Z"), pd.NaT],
        }
    )
    frame = nb.decide("acme", customers, "metrics", as_of="2024-07-01T00:00:00Z")
    first = frame.groupby("customer_id").first()
    ann, cy = first.loc["ann", "personalization"], first.loc["cy", "personalization"]
    assert (ann["bought"], ann["spent"], ann["country"]) == (2, 150.75, "FR")
    assert (cy["bought"], cy["spent"], cy["country"]) == (0, 0.0, None)
    assert first.loc["ann", "as_of"] == pd.Timestamp("2024-06-01T00:00:00Z")
    assert first.loc["cy", "as_of"] == pd.Timestamp("2024-07-01T00:00:00Z")
    assert (frame.groupby("customer_id").size() == 2).all()  # maxCandidates: 2


def test_decide_reports_bad_rows_and_decides_the_others(nb: Notebook) -> None:
    frame = nb.decide("acme", ["ann", "", "x" * 300, "cy", 7], "metrics", as_of=AS_OF, explain=True)
    errors = frame.groupby("customer_id", sort=False)["error"].first()
    assert pd.isna(errors["ann"]) and pd.isna(errors["cy"]) and pd.isna(errors["7"])
    assert "customer_id" in errors[""] and "customer_id" in errors["x" * 300]
    assert frame.loc[frame["error"].notna(), "rank"].isna().all()
    assert {"dropped", "plugin_failures"} <= set(frame.columns)
    bob = pd.DataFrame({"customer_id": ["bob"], "age": [17]})
    cross = nb.decide("acme", bob, as_of=AS_OF, explain=True)
    assert {d["ruleId"] for d in cross["dropped"].iloc[0]} == {"adults-only"}


def test_decide_refuses_what_cannot_run(nb: Notebook) -> None:
    with pytest.raises(ValueError, match="customer_id column"):
        nb.decide("acme", pd.DataFrame({"id": ["ann"]}))
    with pytest.raises(ValueError, match=r"as_of.*must be between"):
        nb.decide("acme", ["ann"], as_of="2300-01-01T00:00:00Z")
    with pytest.raises(TenantNotFoundError):
        nb.decide("nobody", ["ann"])
    with pytest.raises(UnknownFlowError):
        nb.decide("acme", ["ann"], "no-such-flow")
    with pytest.raises(UnknownFlowError):
        nb.decide("empty", ["ann"])


def test_frames_without_pandas_name_the_extra(
    nb: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    for call in (
        lambda: nb.summaries("acme"),
        lambda: nb.interactions("acme"),
        lambda: nb.decide("acme", ["ann"], as_of=AS_OF),
    ):
        with pytest.raises(ImportError, match=r"pip install 'nextbest\[pandas\]'"):
            call()


def test_open_uses_the_url_and_closes(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_DATABASE_URL", url)
    notebook = nextbest.notebook.open()
    assert notebook.host.store is notebook.store
    assert to_epoch(notebook.summaries("acme")["last_at"].max().to_pydatetime()) == to_epoch(
        AS_OF - timedelta(days=0.25)
    )
    notebook.close()
    assert isinstance(Notebook(open_store(url)).store, Store)
