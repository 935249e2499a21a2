"""A simulation equals per-customer decisions, draws reproducible samples, compares flows,
counts failures and refuses bad input by field; nothing is recorded."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from populationkit import AS_OF, AS_OF_TEXT, MONTHLY_CAP, OFFERS, service

from nextbest import ContextProvider, DecisionService, Host, hookimpl
from nextbest.errors import UnknownFlowError
from nextbest.simulate import parse_options, run_simulation
from nextbest.store import InvalidInputError, Store

PRICES = {o["id"]: (o.get("propensity"), float(o.get("businessValue", 0))) for o in OFFERS}


def options(**raw: Any) -> Any:
    return parse_options({"asOf": AS_OF_TEXT, **raw}, now=datetime.now(UTC))


def expected(svc: DecisionService, flow: str, ids: list[str]) -> dict[str, Any]:
    """The figures computed from one DecisionService.decide per customer."""
    mix: Counter[tuple[str, int]] = Counter()
    value = conversions = 0.0
    without = 0
    tops = {}
    for cid in ids:
        decided = svc.decide(
            "acme", {"customerId": cid, "asOf": AS_OF_TEXT, "decisionFlowKey": flow}
        )
        items = decided.decision.items
        tops[cid] = items[0].offer_id if items else None
        without += not items
        for item in items:
            mix[(item.offer_id, item.rank)] += 1
            p, v = PRICES[item.offer_id]
            conversions += p
            value += p * v
    return {"mix": mix, "value": value, "conversions": conversions, "without": without,
            "tops": tops}  # fmt: skip


def mix_of(tally: dict[str, Any]) -> Counter[tuple[str, int]]:
    return Counter(
        {
            (offer, int(rank)): n
            for offer, entry in tally["offerMix"].items()
            for rank, n in entry["byRank"].items()
        }
    )


@pytest.mark.parametrize("flow", ["retention", "engaged"])
def test_result_equals_per_customer_decisions(store: Store, flow: str) -> None:
    svc = service(store)
    svc.contact_policies.put("acme", MONTHLY_CAP)
    result = run_simulation(svc, "acme", options(flow=flow))
    ids = sorted(store.customer_summaries("acme"))
    want = expected(svc, flow, ids)
    overall = result["flows"][0]["overall"]
    assert result["customers"] == overall["customers"] == len(ids)
    assert mix_of(overall) == want["mix"]
    assert overall["withoutOffer"] == want["without"]
    assert overall["expectedValue"] == pytest.approx(want["value"])
    assert overall["expectedConversions"] == pytest.approx(want["conversions"])
    assert result["contactPolicies"] == ["two-a-month"]
    if want["without"]:  # the cap is why they get nothing
        rules = {r["rule"] for r in overall["blockingRules"]}
        assert "two-a-month" in rules
    # the breakdown: the CLV plugin's segment, adding up to the whole
    assert result["by"] == "customer.clv.segment"
    by_value = result["flows"][0]["byValue"]
    assert sum(t["customers"] for t in by_value.values()) == len(ids)
    assert sum((mix_of(t) for t in by_value.values()), Counter()) == mix_of(overall)


def test_the_cap_blocks_and_is_reported(store: Store) -> None:
    svc = service(store)
    svc.contact_policies.put("acme", MONTHLY_CAP)
    overall = run_simulation(svc, "acme", options(flow="engaged"))["flows"][0]["overall"]
    # customers seeded with 3 impressions this month are over the cap of 2
    assert overall["withoutOffer"] > 0
    assert overall["blockingRules"][0] == {"rule": "two-a-month",
                                           "customers": overall["withoutOffer"]}  # fmt: skip


def test_nothing_is_recorded(store: Store) -> None:
    svc = service(store)
    before = store.customer_summaries("acme")
    run_simulation(svc, "acme", options(flow="retention", compare="retention@2"))
    assert store.customer_summaries("acme") == before
    assert list(store.iter_recommendations("acme")) == []


def test_sample_is_reproducible_and_a_subset(store: Store) -> None:
    svc = service(store)
    first = run_simulation(svc, "acme", options(flow="retention", sample=10, seed=5))
    again = run_simulation(svc, "acme", options(flow="retention", sample=10, seed=5))
    other = run_simulation(svc, "acme", options(flow="retention", sample=10, seed=6))
    assert first["customers"] == 10
    assert first["flows"] == again["flows"]
    assert first["tenantCustomers"] == len(store.customer_summaries("acme"))
    assert other["customers"] == 10
    # a sample of everything is everything
    whole = run_simulation(svc, "acme", options(flow="retention", sample=10_000, seed=1))
    assert whole["customers"] == whole["tenantCustomers"]


def test_segment_keeps_one_value_of_the_breakdown(store: Store) -> None:
    svc = service(store)
    full = run_simulation(svc, "acme", options(flow="retention"))
    segment, tally = next(iter(full["flows"][0]["byValue"].items()))
    only = run_simulation(svc, "acme", options(flow="retention", segment=segment))
    assert only["customers"] == tally["customers"]
    assert only["flows"][0]["overall"] == tally
    with pytest.raises(InvalidInputError) as caught:
        run_simulation(svc, "acme", options(flow="retention", segment="no-such-segment"))
    assert caught.value.field == "segment"


def test_compare_counts_changed_top_offers(store: Store) -> None:
    svc = service(store)
    result = run_simulation(svc, "acme", options(flow="retention", compare="retention@2"))
    assert [f["flowVersion"] for f in result["flows"]] == [1, 2]
    ids = sorted(store.customer_summaries("acme"))
    v1 = expected(svc, "retention", ids)["tops"]
    v2_flow = svc.host.load_flow(store.get_flow("acme", "retention", version=2).document)
    v2 = {}
    for cid in ids:
        request = {"customerId": cid, "asOf": AS_OF_TEXT}  # retention reads no metrics
        decision = svc.host.decide("acme", request, flow=v2_flow, offers=svc.catalog("acme"))
        v2[cid] = decision.items[0].offer_id if decision.items else None
    changes = Counter((v1[c] or "(none)", v2[c] or "(none)") for c in ids if v1[c] != v2[c])
    comparison = result["comparison"]
    assert comparison["customers"] == len(ids)
    assert comparison["topOfferChanged"] == sum(changes.values()) > 0
    assert {(c["from"], c["to"]): c["customers"] for c in comparison["changes"]} == changes
    for change in comparison["changes"]:
        assert 1 <= len(change["exampleCustomerIds"]) <= 5
        for cid in change["exampleCustomerIds"]:
            assert (v1[cid] or "(none)", v2[cid] or "(none)") == (change["from"], change["to"])
    # v2 shows one offer per customer
    assert all(
        set(e["byRank"]) == {"1"} for e in result["flows"][1]["overall"]["offerMix"].values()
    )


def test_unknown_flow_and_version(store: Store) -> None:
    svc = service(store)
    with pytest.raises(UnknownFlowError, match=r"^flow: "):
        run_simulation(svc, "acme", options(flow="nope"))
    with pytest.raises(UnknownFlowError, match=r"^version: flow 'retention' has no version 9"):
        run_simulation(svc, "acme", options(flow="retention", version=9))
    with pytest.raises(UnknownFlowError, match=r"^compare: "):
        run_simulation(svc, "acme", options(flow="retention", compare="nope@1"))
    with pytest.raises(InvalidInputError) as caught:
        run_simulation(svc, "acme", options(flow="retention", by="customer.nobody"))
    assert caught.value.field == "by"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "flow"),
        ({"flow": "retention", "sample": 0, "seed": 1}, "sample"),
        ({"flow": "retention", "sample": "ten", "seed": 1}, "sample"),
        ({"flow": "retention", "sample": 10}, "sample"),
        ({"flow": "retention", "seed": 3}, "seed"),
        ({"flow": "retention", "sample": 5, "seed": -1}, "seed"),
        ({"flow": "retention", "asOf": "last tuesday"}, "asOf"),
        ({"flow": "retention", "asOf": "1700-01-01T00:00:00Z"}, "asOf"),
        ({"flow": "retention", "version": 0}, "version"),
        ({"flow": "retention", "compare": "retention@x"}, "compare"),
        ({"flow": "retention", "segment": ""}, "segment"),
        ({"flow": "retention", "colour": "red"}, "colour"),
    ],
)
def test_bad_options_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_options(raw, now=datetime.now(UTC))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


class Flaky:
    """A context provider failing for some customers (the flow says onPluginError: fail)."""

    @hookimpl
    def register_context(self, register: Any) -> None:
        def resolve(ctx: Any) -> dict[str, Any]:
            if ctx.request.customer_id.endswith("7"):
                raise RuntimeError("no luck")
            return {"customer.luck": 1}

        register(ContextProvider("flaky", resolve, names=frozenset({"customer.luck"})))


def test_a_failing_decision_is_counted_and_the_run_goes_on(store: Store) -> None:
    host = Host(store=store, plugins=[Flaky()])
    svc = DecisionService(host, store)
    flow = {
        "key": "lucky",
        "version": 2,
        "settings": {"onPluginError": "fail"},
        "nodes": [
            {"type": "inventory", "id": "all", "config": {"scope": "all"}},
            {"type": "filter", "id": "lucky", "config": {"expression": "customer.luck == 1"}},
            {"type": "score", "id": "score", "config": {"method": "priority_weighted"}},
            {"type": "rank", "id": "top", "config": {"maxCandidates": 1}},
        ],
    }
    store.publish_flow("acme", "lucky", store.save_flow("acme", "lucky", flow))
    result = run_simulation(svc, "acme", options(flow="lucky"))
    ids = sorted(store.customer_summaries("acme"))
    failing = [c for c in ids if c.endswith("7")]
    errors = result["flows"][0]["errors"]
    assert errors["count"] == len(failing) > 0
    assert [e["customerId"] for e in errors["first"]] == failing[:5]
    assert "no luck" in errors["first"][0]["error"]
    assert result["flows"][0]["overall"]["customers"] == len(ids) - len(failing)
    # the name nobody answers for in bulk was resolved one customer at a time
    assert result["perCustomerContext"] == ["customer.luck"]


def test_as_of_is_the_decisions_time(store: Store) -> None:
    svc = service(store)
    result = run_simulation(svc, "acme", options(flow="retention"))
    assert result["asOf"] == AS_OF.isoformat()


def test_another_tenant_has_no_customers(store: Store) -> None:
    svc = service(store)
    store.publish_flow("globex", "engaged", store.save_flow("globex", "engaged",
                       store.get_flow("acme", "engaged").document))  # fmt: skip
    result = run_simulation(svc, "globex", options(flow="engaged"))
    assert result["customers"] == 0
    assert result["flows"][0]["overall"]["offerMix"] == {}


def test_a_continuous_breakdown_is_bounded(store: Store) -> None:
    from nextbest.simulate.result import MAX_GROUPS, OTHER_VALUE, FlowTally

    tally = FlowTally("f", 1)
    for i in range(MAX_GROUPS + 5):
        tally.add(str(i), [])
    assert len(tally.by_value) == MAX_GROUPS + 1
    assert tally.by_value[OTHER_VALUE].customers == 5
    svc = service(store)
    result = run_simulation(svc, "acme", options(flow="engaged", by="metrics.total_value"))
    by_value = result["flows"][0]["byValue"]
    assert result["by"] == "metrics.total_value"
    assert sum(t["customers"] for t in by_value.values()) == result["customers"]
