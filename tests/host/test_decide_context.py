"""``Host.decide(context=)``: values read beforehand replace a provider's call; names missing
from them are still resolved by their provider; ``report_dimensions`` collects plugins' names."""

from __future__ import annotations

from typing import Any

from nextbest import ContextProvider, Host, hookimpl

FLOW = {
    "key": "f",
    "version": 2,
    "nodes": [
        {"type": "inventory", "id": "all", "config": {"scope": "all"}},
        {"type": "filter", "id": "f", "config": {"expression": "customer.a + customer.b >= 3"}},
        {"type": "score", "id": "s", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "r", "config": {"maxCandidates": 1}},
    ],
}
OFFERS = [{"id": "o1", "name": "One"}]


class Counting:
    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []

    @hookimpl
    def register_context(self, register: Any) -> None:
        def resolve(ctx: Any) -> dict[str, Any]:
            self.calls.append(ctx.names)
            return {"customer.a": 1, "customer.b": 1}

        register(ContextProvider("abc", resolve, names=frozenset({"customer.a", "customer.b"})))

    @hookimpl
    def report_dimensions(self, tenant_id: str) -> list[str]:
        return ["customer.a", "customer.a"]


def test_given_values_replace_the_provider_call() -> None:
    plugin = Counting()
    host = Host(plugins=[plugin], load_entry_points=False)
    flow, offers = host.load_flow(FLOW), host.load_offers(OFFERS)
    request = {"customerId": "c1", "explain": True}
    assert host.decide("t", request, flow=flow, offers=offers).items == []  # 1 + 1 < 3
    assert len(plugin.calls) == 1
    given = host.decide("t", request, flow=flow, offers=offers,
                        context={"customer.a": 2, "customer.b": 1})  # fmt: skip
    assert [i.offer_id for i in given.items] == ["o1"]
    assert len(plugin.calls) == 1  # not called again
    assert given.trace is not None and given.trace.context == {"customer.a": 2, "customer.b": 1}
    partial = host.decide("t", request, flow=flow, offers=offers, context={"customer.a": 2})
    assert [i.offer_id for i in partial.items] == ["o1"]
    assert plugin.calls[-1] == frozenset({"customer.b"})  # only the missing name


def test_non_finite_given_values_are_null() -> None:
    host = Host(plugins=[Counting()], load_entry_points=False)
    flow, offers = host.load_flow(FLOW), host.load_offers(OFFERS)
    decision = host.decide("t", {"customerId": "c1"}, flow=flow, offers=offers,
                           context={"customer.a": float("nan"), "customer.b": 5})  # fmt: skip
    assert decision.items == []  # null + 5 is a failed formula: the offer is filtered out


def test_report_dimensions_collects_each_name_once() -> None:
    host = Host(plugins=[Counting()], load_entry_points=False)
    assert host.report_dimensions("t") == ["customer.a"]
    assert Host(load_entry_points=False).report_dimensions("t") == []
