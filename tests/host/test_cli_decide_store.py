"""``nextbest decide --tenant T --customer-id ID``: a decision from the store on the command line,
through DecisionService (the published flow, the stored offers, metrics from the summaries and
what plugins provide from the store), checked against a real SQLite store with every installed
plugin loaded, the CLV plugin included: the values ``clv show`` finds are the ones decided on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from nextbest.cli import build_cli
from nextbest.store import InteractionIn, open_store

AS_OF = "2024-07-01T00:00:00Z"
T0 = datetime(2024, 7, 1, tzinfo=UTC)
OFFERS = [
    {"id": "retention", "name": "Stay with us", "businessValue": 100, "propensity": 0.5},
    {"id": "upsell", "name": "Go premium", "businessValue": 100, "propensity": 0.5},
]
FLOW: dict[str, Any] = {
    "key": "clv-cli",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv"},
        {
            "type": "qualify",
            "id": "q",
            "config": {
                "rules": [
                    {
                        "id": "churners-only",
                        "ruleType": "propensity_threshold",
                        "stage": "eligibility",
                        "scope": "offer",
                        "scopeId": "retention",
                        "config": {"model": "churn_probability", "minScore": 0.5},
                    }
                ]
            },
        },
        {
            "type": "compute",
            "id": "c",
            "config": {
                "fields": [
                    {"name": "churn", "formula": "customer.clv.churn_probability"},
                    {"name": "segment", "formula": "customer.clv.segment"},
                    {"name": "score", "formula": "customer.clv_score"},
                    {"name": "visits", "formula": "metrics.interactions"},
                    {"name": "tier", "formula": "coalesce(attributes.tier, 'none')"},
                ]
            },
        },
        {"type": "score", "id": "s", "config": {"method": "formula"}},
        {"type": "rank", "id": "r"},
    ],
}

#: Another published flow of the tenant, chosen with --flow.
SIMPLE: dict[str, Any] = {
    "key": "simple",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv"},
        {"type": "score", "id": "s", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "r", "config": {"maxCandidates": 1}},
    ],
}


def _strict(text: str) -> Any:
    """Parse JSON refusing NaN, Infinity and -Infinity (Python's json accepts them)."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"invalid JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _interactions(customer: str, days_ago: list[float], value: float) -> list[InteractionIn]:
    return [
        InteractionIn(
            customer_id=customer,
            outcome="conversion",
            idempotency_key=f"{customer}-{i}",
            value=value,
            occurred_at=T0 - timedelta(days=d),
        )
        for i, d in enumerate(days_ago)
    ]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A migrated SQLite store: tenant ``acme`` with offers, a published flow and interactions
    (``ada`` buys often and recently, ``bob`` bought long ago); tenant ``empty`` has nothing."""
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    store = open_store(url)
    try:
        store.upgrade()
        store.create_tenant("acme")
        store.create_tenant("empty")
        for offer in OFFERS:
            store.put_offer("acme", offer)
        store.publish_flow("acme", SIMPLE["key"], store.save_flow("acme", SIMPLE["key"], SIMPLE))
        store.publish_flow("acme", FLOW["key"], store.save_flow("acme", FLOW["key"], FLOW))
        store.set_default_flow("acme", FLOW["key"])
        batch = _interactions("ada", [5 + 3.7 * i for i in range(48)], 7.5)
        batch += _interactions("bob", [170, 160, 150], 10.0)
        batch += _interactions("cy", [60, 50, 40, 30], 5.0)
        store.record_interactions_bulk("acme", batch)
    finally:
        store.close()
    return url


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    # every installed plugin, as a user's `nextbest` has (the host tests default to builtin)
    monkeypatch.delenv("NEXTBEST_PLUGINS", raising=False)
    monkeypatch.delenv("NEXTBEST_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: object) -> Result:
        return runner.invoke(build_cli(), [str(a) for a in args])

    return invoke


def _recommendations(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        count: int = conn.execute("SELECT count(*) FROM recommendations").fetchone()[0]
    return count


@pytest.mark.parametrize("customer", ["ada", "bob"])
def test_decide_from_the_store_uses_the_clv_record_clv_show_finds(
    run: Callable[..., Result], db: str, customer: str
) -> None:
    shown = run("clv", "show", customer, "--tenant", "acme", "--as-of", AS_OF, "--json",
                "--database", db)  # fmt: skip
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    result = run("decide", "--tenant", "acme", "--customer-id", customer, "--as-of", AS_OF,
                 "--database", db, "--json", "--explain", "--attribute", "tier=gold")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = _strict(result.stdout)
    path = Path(db.removeprefix("sqlite:///")).resolve()
    assert f"database: {db} ({path})" in result.stderr
    assert "flow 'clv-cli' version 1" in result.stderr
    assert (data["flowKey"], data["flowVersion"], data["customerId"]) == ("clv-cli", 1, customer)
    context = data["trace"]["context"]
    assert context["customer.clv.churn_probability"] == record["churnProbability"]
    assert context["customer.clv.segment"] == record["segment"]
    assert context["customer.clv_score"] == record["clvScore"]
    assert "no CLV" not in result.stdout
    kept = {d["offerId"]: d["personalization"] for d in data["decisions"]}
    assert kept["upsell"] == {
        "churn": record["churnProbability"],
        "segment": record["segment"],
        "score": float(record["clvScore"]),
        "visits": {"ada": 48, "bob": 3}[customer],  # metrics.* from the store's summary
        "tier": "gold",
    }
    # the churn rule decided on the stored value, not on a missing one
    assert ("retention" in kept) == (record["churnProbability"] >= 0.5)
    assert _recommendations(db) == 0  # a look, not a recommendation: nothing saved


def test_decide_from_the_store_prints_a_table_and_can_save(
    run: Callable[..., Result], db: str
) -> None:
    table = run("decide", "--tenant", "acme", "--customer-id", "bob", "--database", db,
                "--as-of", AS_OF, "--explain")  # fmt: skip
    assert table.exit_code == 0, table.output
    assert table.stdout.startswith("customer bob  flow clv-cli  as of 2024-07-01 00:00")
    saved = run("decide", "--tenant", "acme", "--customer-id", "bob", "--database", db,
                "--json", "--save", "--channel", "web")  # fmt: skip
    assert saved.exit_code == 0, saved.output
    data = _strict(saved.stdout)
    assert f"saved recommendation {data['recommendationId']}" in saved.stderr
    store = open_store(db)
    try:
        stored = store.get_recommendation("acme", data["recommendationId"])
    finally:
        store.close()
    assert stored is not None
    assert (stored.customer_id, stored.channel, stored.flow_key) == ("bob", "web", "clv-cli")
    assert [i.offer_id for i in stored.items] == [d["offerId"] for d in data["decisions"]]


def test_decide_from_the_store_runs_the_flow_given_by_key(
    run: Callable[..., Result], db: str
) -> None:
    result = run("decide", "--tenant", "acme", "--customer-id", "cy", "--flow", "simple",
                 "--database", db, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "flow 'simple' version 1" in result.stderr
    data = _strict(result.stdout)
    assert data["flowKey"] == "simple" and len(data["decisions"]) == 1


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--tenant", "nope", "--customer-id", "ada"], "tenant 'nope' does not exist"),
        (["--tenant", "empty", "--customer-id", "ada"], "no published flow"),
        (["--tenant", "acme", "--customer-id", "ada", "--flow", "other"], "'other' has no"),
        (["--tenant", "acme", "--customer-id", "a\x01b"], "control characters"),
        (["--tenant", "acme", "--customer-id", "x" * 300], "at most 256"),
        (["--tenant", "acme", "--customer-id", ""], "must not be empty"),
        (["--tenant", "acme", "--customer-id", "ada", "--as-of", "0001-01-01"], "between"),
        (["--tenant", "acme", "--customer-id", "ada", "--as-of", "soon"], "ISO-8601"),
        (["--tenant", "acme", "--customer-id", "ada", "--attribute", "tier"], "KEY=VALUE"),
        (
            ["--tenant", "acme", "--customer-id", "ada", "--attribute", "x=NaN"],
            "x: the value holds a number that is not finite",
        ),
        (["--tenant", "acme", "--customer-id", "ada", "--attribute", "x=[1e999]"], "not finite"),
        (["--tenant", "acme", "--customer-id", "ada", "--limit", "0"], "--limit"),
        (["--tenant", "acme", "--customer-id", "ada", "--offers", "o.yaml"], "--offers"),
        (["--customer-id", "ada"], "needs --tenant"),
        (["--tenant", "acme"], "give --customer FILE"),
    ],
)
def test_decide_from_the_store_usage_errors_exit_2(
    run: Callable[..., Result], db: str, args: list[str], mentions: str, tmp_path: Path
) -> None:
    (tmp_path / "o.yaml").write_text("[]")
    result = run("decide", *args, "--database", db)
    assert result.exit_code == 2, result.output
    assert mentions in result.output
    assert "Traceback" not in result.output


def test_decide_from_a_missing_database_creates_no_file(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default database is ./nextbest.db
    result = run("decide", "--tenant", "acme", "--customer-id", "ada")
    assert result.exit_code == 2, result.output
    assert f"database: sqlite:///nextbest.db ({tmp_path / 'nextbest.db'})" in result.stderr
    assert "no database file" in result.output
    assert not (tmp_path / "nextbest.db").exists()
    monkeypatch.setenv("NEXTBEST_DATABASE_URL", "mysql://x")
    result = run("decide", "--tenant", "acme", "--customer-id", "ada")
    assert result.exit_code == 2 and "unsupported database URL" in result.output
