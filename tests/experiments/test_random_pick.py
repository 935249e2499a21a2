"""The control group's ``mode: random`` in the engine: the rank node returns one eligible offer,
uniform over the candidates that reached it, with the output fields computed after ranking."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from scipy import stats

from nextbest import Host
from nextbest.experiments import random_pick_seed

PRIORITIES = {"a": 90, "b": 70, "c": 50, "d": 30, "e": 10}
OFFERS = [{"id": o, "name": o, "priority": p} for o, p in PRIORITIES.items()]
OFFERS.append({"id": "adults", "name": "adults only", "priority": 100})
FLOW = {
    "key": "f",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "inv"},
        {
            "type": "qualify",
            "id": "q",
            "config": {
                "rules": [
                    {
                        "id": "adults-only",
                        "ruleType": "attribute_condition",
                        "scope": "offer",
                        "scopeId": "adults",
                        "config": {"attribute": "age", "operator": "gte", "value": 18},
                    }
                ]
            },
        },
        {"type": "score", "id": "sc", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "rk", "config": {"maxCandidates": 3}},
        {"type": "compute", "id": "out", "config": {"fields": [{"name": "tag", "formula": "'x'"}]}},
    ],
}


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin")
    return Host()


def test_the_pick_is_uniform_over_the_eligible_offers(host: Host) -> None:
    flow, catalog = host.load_flow(FLOW), host.load_offers(OFFERS)
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    counts: Counter[str] = Counter()
    for i in range(5000):
        customer = f"c{i}"
        seed = random_pick_seed("t", customer, "", "f", as_of)
        decision = host.decide(
            "t",
            {"customerId": customer, "attributes": {"age": 12}},
            flow=flow,
            offers=catalog,
            random_pick=seed,
        )
        (item,) = decision.items
        assert item.rank == 1 and item.personalization == {"tag": "x"}
        counts[item.offer_id] += 1
    # the minor never gets the adults-only offer; the five others equally often
    assert set(counts) == set("abcde")
    result = stats.chisquare(list(counts.values()))
    print("random picks:", dict(counts), f"chi-square p = {result.pvalue:.3f}")
    assert result.pvalue > 0.001


def test_without_a_seed_the_flow_ranks_and_explain_names_the_random_drops(host: Host) -> None:
    flow, catalog = host.load_flow(FLOW), host.load_offers(OFFERS)
    request = {"customerId": "c1", "attributes": {"age": 40}, "explain": True}
    ranked = host.decide("t", request, flow=flow, offers=catalog)
    assert [i.offer_id for i in ranked.items] == ["adults", "a", "b"]
    picked = host.decide("t", request, flow=flow, offers=catalog, random_pick=3)
    # the candidates in their tie-break order are adults, a, b, c, d, e: seed 3 picks c
    assert [i.offer_id for i in picked.items] == ["c"]
    assert picked.trace is not None
    reasons = {d.offer_id: d.reason for d in picked.trace.drops if d.node_id == "rk"}
    assert set(reasons) == {"adults", "a", "b", "d", "e"}
    assert set(reasons.values()) == {"control group (mode random): another offer was picked"}


def test_no_eligible_offer_means_no_pick(host: Host) -> None:
    flow = host.load_flow(FLOW)
    only_adults = host.load_offers([OFFERS[-1]])
    request = {"customerId": "c1", "attributes": {"age": 9}}
    assert host.decide("t", request, flow=flow, offers=only_adults, random_pick=7).items == []


def test_a_control_customer_gets_at_most_one_fallback_offer(host: Host) -> None:
    def adults_only(offer_id: str) -> dict[str, object]:
        return {
            "id": f"adults-{offer_id}",
            "ruleType": "attribute_condition",
            "scope": "offer",
            "scopeId": offer_id,
            "config": {"attribute": "age", "operator": "gte", "value": 18},
        }

    strict = {**FLOW, "settings": {"fallbackOffers": ["a", "b", "c"]}}
    rules = [adults_only(o) for o in ("a", "b", "c", "d", "e", "adults")]
    strict["nodes"] = [
        FLOW["nodes"][0],
        {"type": "qualify", "id": "q", "config": {"rules": rules}},
        *FLOW["nodes"][2:],
    ]
    flow, catalog = host.load_flow(strict), host.load_offers(OFFERS)
    request = {"customerId": "c1", "attributes": {"age": 9}}  # nothing qualifies
    treated = host.decide("t", request, flow=flow, offers=catalog)
    assert [i.offer_id for i in treated.items] == ["a", "b", "c"]  # the flow's fallbacks
    picked = host.decide("t", request, flow=flow, offers=catalog, random_pick=7)
    assert len(picked.items) == 1 and picked.items[0].fallback


def test_the_decide_text_shows_the_group() -> None:
    from types import SimpleNamespace

    from nextbest.commands.decide import format_decision

    decision = SimpleNamespace(
        customer_id="c1", flow_key="f", as_of=datetime(2026, 6, 1, tzinfo=UTC), items=[],
        trace=None, group="control", group_reason={"reason": "draw 0.12 < share 0.2"},
    )  # fmt: skip
    text = format_decision(decision)
    assert "group: control (draw 0.12 < share 0.2)" in text and "no offer (control group)" in text
