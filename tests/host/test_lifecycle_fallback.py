"""Offer lifecycle (status set, startAt/endAt honoured by inventory) and flow fallback offers."""

from __future__ import annotations

import pytest
from hostkit import decide, drops, flow, ids, inventory, issue_paths, offer, qualify, rank, rule
from hostkit import score as score_node

from nextbest import FlowValidationError, Host

NOON = "2026-03-10T12:00:00Z"  # hostkit's AS_OF


def run(h: Host, offers: list[dict], as_of: str = NOON, **settings: object) -> object:
    extra = {"settings": settings} if settings else {}
    return decide(
        h,
        flow(inventory(), score_node(method="priority_weighted"), rank(), **extra),
        offers,
        asOf=as_of,
    )


# -- status ---------------------------------------------------------------------------------------
def test_status_outside_the_fixed_set_is_a_load_error_naming_the_allowed_values(
    host: Host,
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        host.load_offers([offer("a", status="Active")])
    assert issue_paths(caught.value) == ["offers[0].status"]
    message = str(caught.value)
    for allowed in ("active", "inactive", "draft", "paused", "retired", "archived"):
        assert allowed in message


def test_inventory_statuses_are_checked_against_the_same_set(host: Host) -> None:
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(
            flow(inventory(statuses=["Active"]), score_node(method="priority_weighted"), rank())
        )
    assert any("statuses" in path for path in issue_paths(caught.value))


def test_inventory_selects_by_status(host: Host) -> None:
    offers = [offer("a"), offer("p", status="paused")]
    assert ids(run(host, offers)) == ["a"]
    doc = flow(inventory(statuses=["paused"]), score_node(method="priority_weighted"), rank())
    assert ids(decide(host, doc, offers)) == ["p"]


# -- lifecycle dates ----------------------------------------------------------------------------
def test_dates_are_utc_and_end_must_follow_start(host: Host) -> None:
    catalog = host.load_offers(
        [offer("a", startAt="2026-03-10T14:00:00+02:00", endAt="2026-03-11T00:00:00")]
    )
    (a,) = catalog.offers
    assert a.start_at is not None and a.start_at.isoformat() == "2026-03-10T12:00:00+00:00"
    assert a.end_at is not None and a.end_at.isoformat() == "2026-03-11T00:00:00+00:00"
    for start, end in ((NOON, NOON), ("2026-03-11T00:00:00Z", NOON)):
        with pytest.raises(FlowValidationError, match=r"endAt .* must be after startAt"):
            host.load_offers([offer("a", startAt=start, endAt=end)])
    with pytest.raises(FlowValidationError) as caught:
        host.load_offers([offer("a", startAt="1800-01-01T00:00:00Z")])
    assert issue_paths(caught.value) == ["offers[0].startAt"]


def test_inventory_honours_the_lifecycle_as_of_the_decision(host: Host) -> None:
    offers = [
        offer("always"),
        offer("from-noon", startAt=NOON),  # starts exactly at the decision time: in
        offer("until-noon", endAt=NOON),  # ends exactly at the decision time: out
        offer("tomorrow", startAt="2026-03-11T00:00:00Z"),
        offer("window", startAt="2026-03-01T00:00:00Z", endAt="2026-03-31T00:00:00Z"),
    ]
    decision = run(host, offers)
    assert sorted(ids(decision)) == ["always", "from-noon", "window"]
    why = drops(decision)
    assert why["until-noon"].node_id == "inv" and why["until-noon"].reason.startswith("ended")
    assert why["tomorrow"].reason.startswith("not started")
    # the same catalog a second before noon and on the next day (the selection is cached per
    # catalog; the dates are checked per decision)
    assert sorted(ids(run(host, offers, "2026-03-10T11:59:59Z"))) == [
        "always",
        "until-noon",
        "window",
    ]
    assert sorted(ids(run(host, offers, "2026-03-11T00:00:00Z"))) == [
        "always",
        "from-noon",
        "tomorrow",
        "window",
    ]


# -- fallback -------------------------------------------------------------------------------------
def _drop_everything() -> dict:
    return qualify(rule("none", "expression", {"expression": "priority > 1000"}))


def _flow_with_fallback(*fallback: str) -> dict:
    return flow(
        inventory(),
        _drop_everything(),
        score_node(method="priority_weighted"),
        rank(),
        settings={"fallbackOffers": list(fallback)},
    )


def test_fallback_offers_are_returned_when_nothing_qualifies(host: Host) -> None:
    offers = [offer("a"), offer("b"), offer("f1"), offer("f2", priority=90)]
    decision = decide(host, _flow_with_fallback("f2", "f1"), offers)
    assert ids(decision) == ["f2", "f1"]  # in the flow's order
    assert all(item.fallback for item in decision.items)
    assert [item.rank for item in decision.items] == [1, 2]
    body = decision.to_dict()
    assert all(d["fallback"] is True for d in body["decisions"])
    assert body["trace"]["fallback"] == ["f2", "f1"]


def test_fallback_is_not_used_when_an_offer_qualifies(host: Host) -> None:
    doc = flow(
        inventory(),
        score_node(method="priority_weighted"),
        rank(),
        settings={"fallbackOffers": ["f"]},
    )
    decision = decide(host, doc, [offer("a"), offer("f")])
    assert sorted(ids(decision)) == ["a", "f"]
    assert not any(item.fallback for item in decision.items)
    body = decision.to_dict()
    assert "fallback" not in body["decisions"][0] and "fallback" not in body["trace"]


def test_fallback_skips_missing_inactive_and_expired_offers_with_a_reason(host: Host) -> None:
    offers = [
        offer("a"),
        offer("off", status="inactive"),
        offer("old", endAt="2026-01-01T00:00:00Z"),
        offer("ok"),
    ]
    decision = decide(host, _flow_with_fallback("gone", "off", "old", "ok"), offers)
    assert ids(decision) == ["ok"]
    reasons = {d.offer_id: d.reason for d in decision.trace.drops if d.node_id == "rk"}
    assert reasons["gone"] == "fallback offer is not in the catalog"
    assert "status 'inactive'" in reasons["off"]
    assert reasons["old"].startswith("ended")


def test_fallback_obeys_the_request_limit(host: Host) -> None:
    offers = [offer("a"), offer("f1"), offer("f2")]
    doc = _flow_with_fallback("f1", "f2")
    decision = host.decide(
        "t1",
        {"customerId": "c1", "limit": 1},
        flow=host.load_flow(doc),
        offers=host.load_offers(offers),
    )
    assert ids(decision) == ["f1"]


def test_fallback_offers_are_validated_at_flow_load(host: Host) -> None:
    with pytest.raises(FlowValidationError, match="repeated: f"):
        host.load_flow(_flow_with_fallback("f", "f"))
    with pytest.raises(FlowValidationError) as caught:
        host.load_flow(_flow_with_fallback(""))
    assert issue_paths(caught.value) == ["settings.fallbackOffers[0]"]
    with pytest.raises(FlowValidationError):
        host.load_flow(_flow_with_fallback(*(f"f{i}" for i in range(51))))
