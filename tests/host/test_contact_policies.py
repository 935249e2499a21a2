"""Contact policies in the engine: each rule type, scopes, priority order, overrides, mandatory
offers, UTC periods, and the trace entries naming the policy and the count that tripped it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hostkit import AS_OF, flow, ids, inventory, offer, qualify, rank, request, rule
from hostkit import score as score_node

from nextbest import Decision, FlowValidationError, Host
from nextbest.models.policies import PolicyCounts, PolicyInputs, period_starts
from nextbest.policies.documents import ContactPolicies, parse_policy
from nextbest.store import InteractionIn, OfferSummary, open_store

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)  # AS_OF: a Tuesday
OFFERS = [
    offer("card", category="cards", priority=90),
    offer("loan", category="loans", priority=80),
    offer("gift", category="cards", subCategory="gifts", priority=70),
]


def policy(name: str, rule_type: str, config: dict | None = None, **fields: Any) -> Any:
    doc: dict[str, Any] = {"name": name, "ruleType": rule_type, **fields}
    if config is not None:
        doc["config"] = config
    return parse_policy(doc)


def summary(offer_id: str, last_at: datetime, **counts: Any) -> OfferSummary:
    base: dict[str, Any] = dict(
        interactions=1, impressions=1, positive=0, negative=0, neutral=0, conversions=0
    )
    base.update(counts)
    return OfferSummary(
        customer_id="c1",
        offer_id=offer_id,
        total_value=0.0,
        first_at=last_at,
        last_at=last_at,
        last_outcome=base.pop("last_outcome", "impression"),
        **base,
    )


def decide(
    h: Host,
    policies: list[Any],
    counts: PolicyCounts | None = None,
    offers: list[dict] | None = None,
    **req: Any,
) -> Decision:
    ordered = sorted(policies, key=lambda p: (-p.priority, p.name))
    inputs = PolicyInputs(tuple(ordered), counts or PolicyCounts())
    doc = flow(inventory(), score_node(method="priority_weighted"), rank(maxCandidates=10))
    return h.decide(
        "t1",
        request(**req),
        flow=h.load_flow(doc),
        offers=h.load_offers(offers or OFFERS),
        policies=inputs,
    )


def policy_drops(decision: Decision) -> dict[str, Any]:
    assert decision.trace is not None
    return {d.offer_id: d for d in decision.trace.drops if d.stage == "contact_policy"}


def periods(day: int = 0, week: int = 0, month: int = 0) -> dict[str, dict[str, int]]:
    return {
        name: {"impressions": n, "interactions": n}
        for name, n in (("day", day), ("week", week), ("month", month))
    }


# -- documents ------------------------------------------------------------------------------------
def test_policy_documents_are_validated_with_paths() -> None:
    with pytest.raises(FlowValidationError) as caught:
        parse_policy({"name": "x", "ruleType": "frequency_cap", "config": {"max": -1}})
    paths = sorted(i.path for i in caught.value.issues)
    assert paths == ["config.max", "config.period"]
    with pytest.raises(FlowValidationError, match="needs a scopeId"):
        parse_policy(
            {"name": "x", "ruleType": "cooldown", "config": {"hours": 1}, "scope": "offer"}
        )
    with pytest.raises(FlowValidationError, match="ruleType"):
        parse_policy({"name": "x", "ruleType": "nope"})
    with pytest.raises(FlowValidationError, match="toHour"):
        policy("x", "time_window", {"fromHour": 9, "toHour": 9})
    with pytest.raises(FlowValidationError, match="exactly one of 'outcome' or 'classification'"):
        policy("x", "outcome_based", {"days": 3})
    with pytest.raises(FlowValidationError, match="global, channel or segment"):
        policy("x", "mutual_exclusion", {"offers": ["a", "b"]}, scope="offer", scopeId="a")


# -- frequency caps and periods -------------------------------------------------------------------
def test_frequency_cap_blocks_at_the_count_and_names_it(host: Host) -> None:
    cap = policy("three-a-day", "frequency_cap", {"max": 3, "period": "day"})
    assert sorted(ids(decide(host, [cap], PolicyCounts(periods(day=2))))) == [
        "card",
        "gift",
        "loan",
    ]
    decision = decide(host, [cap], PolicyCounts(periods(day=3)))
    assert ids(decision) == []
    drop = policy_drops(decision)["card"]
    assert drop.reason.startswith("frequency_cap exceeded: 3/day at scope=global")
    assert drop.rule_id == "three-a-day" and drop.node_id == "(contact-policies)"
    assert drop.inputs == {
        "policy": "three-a-day",
        "ruleType": "frequency_cap",
        "count": 3,
        "max": 3,
        "period": "day",
    }


def test_frequency_cap_scoped_to_a_category_or_channel(host: Host) -> None:
    cards = policy("cards", "frequency_cap", {"max": 1, "period": "week"}, scope="category",
                   scopeId="cards")  # fmt: skip
    decision = decide(host, [cards], PolicyCounts(periods(week=1)))
    assert ids(decision) == ["loan"]
    assert "1/week at scope=category:cards" in policy_drops(decision)["card"].reason
    email = policy("email", "frequency_cap", {"max": 1, "period": "month"}, scope="channel",
                   scopeId="email")  # fmt: skip
    counts = PolicyCounts(periods(month=5))
    assert len(ids(decide(host, [email], counts, channel="web"))) == 3
    assert ids(decide(host, [email], counts, channel="email")) == []


def test_period_counts_use_the_utc_day_of_an_offset_as_of(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        store.upgrade()
        store.create_tenant("t1")
        store.record_interaction(
            "t1",
            InteractionIn(customer_id="c1", outcome="impression", idempotency_key="k",
                          occurred_at=datetime(2026, 3, 9, 23, 30, tzinfo=UTC)),
        )  # fmt: skip
        policies = ContactPolicies(store)
        policies.put("t1", {"name": "cap", "ruleType": "frequency_cap",
                            "config": {"max": 1, "period": "day"}})  # fmt: skip
        # 2026-03-10 00:30 at +02:00 is 2026-03-09 22:30 UTC: the impression's day
        local = datetime.fromisoformat("2026-03-10T00:30:00+02:00")
        inputs = policies.inputs("t1", "c1", local)
        assert inputs is not None and inputs.counts.periods["day"]["impressions"] == 1
        utc_next_day = policies.inputs("t1", "c1", datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
        assert utc_next_day is not None
        assert utc_next_day.counts.periods["day"]["impressions"] == 0
        assert utc_next_day.counts.periods["week"]["impressions"] == 1  # Mon 9th, Tue 10th
    finally:
        store.close()


def test_periods_are_utc_calendar_day_iso_week_and_month() -> None:
    starts = period_starts(datetime(2026, 3, 1, 23, 59, tzinfo=UTC))  # a Sunday
    assert {k: v.isoformat() for k, v in starts.items()} == {
        "day": "2026-03-01",
        "week": "2026-02-23",
        "month": "2026-03-01",
    }
    starts = period_starts(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))  # the Monday after
    assert starts["week"].isoformat() == "2026-03-02" and starts["day"].isoformat() == "2026-03-02"


def test_customer_total_cap_counts_all_time(host: Host) -> None:
    total = policy("lifetime", "customer_total_cap", {"max": 10, "counts": "interactions"})
    counts = PolicyCounts(all_time={"impressions": 2, "interactions": 10})
    decision = decide(host, [total], counts)
    assert ids(decision) == []
    assert policy_drops(decision)["loan"].reason.startswith(
        "customer_total_cap exceeded: 10 interactions at scope=global"
    )
    counts = PolicyCounts(all_time={"impressions": 2, "interactions": 9})
    assert len(ids(decide(host, [total], counts))) == 3


# -- per-offer history ----------------------------------------------------------------------------
def test_cooldown_uses_the_hours_since_the_offer_was_last_seen(host: Host) -> None:
    cool = policy("cool", "cooldown", {"hours": 24})
    seen = {
        "card": summary("card", datetime(2026, 3, 9, 12, 0, 1, tzinfo=UTC)),  # 23.99 h ago
        "loan": summary("loan", datetime(2026, 3, 9, 12, tzinfo=UTC)),  # exactly 24 h ago
    }
    decision = decide(host, [cool], PolicyCounts(offers=seen))
    assert sorted(ids(decision)) == ["gift", "loan"]
    assert policy_drops(decision)["card"].reason.startswith("cooldown: offer last seen 24.0 h ago")


def test_outcome_based_after_an_outcome_or_repeated_dismissals(host: Host) -> None:
    after_buy = policy("no-rebuy", "outcome_based", {"outcome": "conversion", "days": 30})
    dismissed = policy("dismissed", "outcome_based",
                       {"classification": "negative", "minCount": 2, "days": 7})  # fmt: skip
    seen = {
        "card": summary("card", datetime(2026, 2, 20, tzinfo=UTC), last_outcome="conversion"),
        "loan": summary("loan", datetime(2026, 3, 8, tzinfo=UTC), negative=2),
        "gift": summary("gift", datetime(2026, 3, 8, tzinfo=UTC), negative=1),
    }
    decision = decide(host, [after_buy, dismissed], PolicyCounts(offers=seen))
    assert ids(decision) == ["gift"]
    why = policy_drops(decision)
    assert why["card"].rule_id == "no-rebuy" and "'conversion' 18.5 days ago" in why["card"].reason
    assert why["loan"].rule_id == "dismissed" and why["loan"].inputs["count"] == 2
    # 31 days after the conversion the offer is back
    later = decide(host, [after_buy], PolicyCounts(offers=seen), asOf="2026-03-23T00:00:01Z")
    assert "card" in ids(later)


# -- request-level types --------------------------------------------------------------------------
def test_segment_exclusion(host: Host) -> None:
    vip = policy("no-vip-loans", "segment_exclusion", {"segments": ["vip"]}, scope="category",
                 scopeId="loans")  # fmt: skip
    assert sorted(ids(decide(host, [vip], segments=["vip"]))) == ["card", "gift"]
    assert len(ids(decide(host, [vip], segments=["other"]))) == 3


def test_time_window_in_utc(host: Host) -> None:
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    office = policy("office", "time_window", {"days": weekdays, "fromHour": 9, "toHour": 17})
    assert len(ids(decide(host, [office]))) == 3  # Tuesday 12:00 UTC
    # 17:00 is outside (toHour exclusive); so is a Sunday; +02:00 is converted to UTC
    assert len(ids(decide(host, [office], asOf="2026-03-10T18:30:00+02:00"))) == 3
    for as_of in ("2026-03-10T17:00:00Z", "2026-03-08T12:00:00Z", "2026-03-10T10:30:00+02:00"):
        decision = decide(host, [office], asOf=as_of)
        assert ids(decision) == [], as_of
    reason = policy_drops(decide(host, [office], asOf="2026-03-08T12:00:00Z"))["card"].reason
    assert reason.startswith(
        "time_window: sun 12:00 UTC is outside mon,tue,wed,thu,fri 09:00-17:00"
    )


def test_mutual_exclusion_keeps_the_best_ranked(host: Host) -> None:
    pair = policy("one-card", "mutual_exclusion", {"offers": ["card", "gift"]})
    decision = decide(host, [pair])
    assert ids(decision) == ["card", "loan"]
    drop = policy_drops(decision)["gift"]
    assert drop.node_id == "rk" and "'card' ranks higher" in drop.reason


# -- order, overrides, mandatory ------------------------------------------------------------------
def test_highest_priority_first_and_allow_override(host: Host) -> None:
    cap = policy("cap", "frequency_cap", {"max": 1, "period": "day"}, priority=10)
    seg = policy("seg", "segment_exclusion", {"segments": ["s"]}, priority=20)
    counts = PolicyCounts(periods(day=1))
    decision = decide(host, [cap, seg], counts, segments=["s"])
    assert {d.rule_id for d in policy_drops(decision).values()} == {"seg"}
    # an override above the cap exempts the loans; one below it changes nothing
    above = policy("loans-ok", "allow_override", scope="category", scopeId="loans", priority=15)
    assert ids(decide(host, [cap, above], counts)) == ["loan"]
    below = policy("loans-ok", "allow_override", scope="category", scopeId="loans", priority=5)
    assert ids(decide(host, [cap, below], counts)) == []
    # an override also exempts from mutual exclusion
    pair = policy("one-card", "mutual_exclusion", {"offers": ["card", "gift"]}, priority=1)
    gifts = policy("gifts-ok", "allow_override", scope="offer", scopeId="gift", priority=2)
    assert ids(decide(host, [pair, gifts])) == ["card", "loan", "gift"]


def test_mandatory_offers_obey_only_non_bypassable_policies(host: Host) -> None:
    offers = [*OFFERS, offer("must", mandatory=True, priority=10)]
    counts = PolicyCounts(periods(day=9))
    soft = policy("soft", "frequency_cap", {"max": 1, "period": "day"})
    assert ids(decide(host, [soft], counts, offers)) == ["must"]
    hard = policy("hard", "frequency_cap", {"max": 1, "period": "day"}, bypassable=False)
    assert ids(decide(host, [hard], counts, offers)) == []


def test_inactive_policies_and_no_policies_change_nothing(host: Host) -> None:
    off = policy("off", "frequency_cap", {"max": 0, "period": "day"}, status="inactive")
    # the service leaves inactive policies out; an empty input is no policy at all
    decision = decide(host, [], PolicyCounts())
    assert len(ids(decision)) == 3 and off.status == "inactive"
    assert AS_OF.startswith("2026-03-10T12") and NOON.weekday() == 1


def test_a_control_groups_random_pick_obeys_the_policies(host: Host) -> None:
    no_loans = policy("no-loans", "segment_exclusion", {"segments": ["s"]}, scope="category",
                      scopeId="loans")  # fmt: skip
    inputs = PolicyInputs((no_loans,), PolicyCounts())
    doc = flow(inventory(), score_node(method="priority_weighted"), rank(maxCandidates=10))
    compiled, catalog = host.load_flow(doc), host.load_offers(OFFERS)
    picked = {
        ids(
            host.decide("t1", request(segments=["s"]), flow=compiled, offers=catalog,
                        random_pick=seed, policies=inputs)
        )[0]
        for seed in range(40)
    }  # fmt: skip
    assert picked == {"card", "gift"}


# -- scoped counts and cross-channel caps ---------------------------------------------------------
def test_scoped_caps_read_the_counts_of_their_scope(host: Host) -> None:
    cards = policy("cards", "frequency_cap", {"max": 1, "period": "week"}, scope="category",
                   scopeId="cards")  # fmt: skip
    # many contacts in all, none with a card: nothing blocked
    quiet = PolicyCounts(periods(week=5), scoped={"category:cards": {"week": {"impressions": 0}}})
    assert sorted(ids(decide(host, [cards], quiet))) == ["card", "gift", "loan"]
    busy = PolicyCounts(periods(week=1), scoped={"category:cards": {"week": {"impressions": 1}}})
    assert ids(decide(host, [cards], busy)) == ["loan"]
    total = policy("loan-total", "customer_total_cap", {"max": 2, "counts": "conversions"},
                   scope="offer", scopeId="loan")  # fmt: skip
    counts = PolicyCounts(
        all_time={"conversions": 9}, scoped={"offer:loan": {"all": {"conversions": 2}}}
    )
    decision = decide(host, [total], counts)
    assert sorted(ids(decision)) == ["card", "gift"]
    reason = policy_drops(decision)["loan"].reason
    assert reason.startswith("customer_total_cap exceeded: 2 conversions at scope=offer:loan")


def test_cross_channel_cap_keeps_contacts_on_the_channels_already_used(host: Host) -> None:
    cap = policy("one", "cross_channel_cap", {"maxChannels": 1, "period": "week"})
    used = {"week": {"web": {"impressions": 2, "responses": 0}, "app": {"responses": 1}}}
    counts = PolicyCounts(channels=used)
    assert len(ids(decide(host, [cap], counts, channel="web"))) == 3
    assert len(ids(decide(host, [cap], counts))) == 3  # no channel: adds none
    decision = decide(host, [cap], counts, channel="email")
    assert ids(decision) == []
    drop = policy_drops(decision)["card"]
    assert drop.reason.startswith(
        "cross_channel_cap exceeded: 1 channels/week (web) at scope=global; 'email' would be"
    )
    assert drop.inputs["channels"] == ["web"]
    # counting responses, the channel used is app
    responses = policy("one", "cross_channel_cap", {"maxChannels": 1, "period": "week",
                                                     "counts": "responses"})  # fmt: skip
    assert ids(decide(host, [responses], counts, channel="web")) == []
    assert len(ids(decide(host, [responses], counts, channel="app"))) == 3
    # two channels allowed: a second one is still open
    two = policy("two", "cross_channel_cap", {"maxChannels": 2, "period": "week"})
    assert len(ids(decide(host, [two], counts, channel="email"))) == 3
    # a mandatory offer skips it unless it is not bypassable
    must = [offer("card", mandatory=True), offer("loan")]
    assert ids(decide(host, [cap], counts, offers=must, channel="email")) == ["card"]
    strict = policy("one", "cross_channel_cap", {"maxChannels": 1, "period": "week"},
                    bypassable=False)  # fmt: skip
    assert ids(decide(host, [strict], counts, offers=must, channel="email")) == []


def test_cross_channel_cap_config_is_validated() -> None:
    with pytest.raises(FlowValidationError) as caught:
        policy("x", "cross_channel_cap", {"maxChannels": 0})
    assert sorted(i.path for i in caught.value.issues) == ["config.maxChannels", "config.period"]
    with pytest.raises(FlowValidationError, match="cross_channel_cap counts channels"):
        policy("x", "cross_channel_cap", {"maxChannels": 1, "period": "day"}, scope="channel",
               scopeId="web")  # fmt: skip


# -- fallback offers are contacts too -------------------------------------------------------------
def _fallback_decision(
    h: Host, policies: list[Any], counts: PolicyCounts | None = None, **inputs: Any
) -> Decision:
    ordered = sorted(policies, key=lambda p: (-p.priority, p.name))
    doc = flow(
        inventory(),
        qualify(rule("none", "expression", {"expression": "priority > 1000"})),
        score_node(method="priority_weighted"),
        rank(maxCandidates=10),
        settings={"fallbackOffers": ["gift", "card", "loan"]},
    )
    return h.decide(
        "t1",
        request(**inputs.pop("req", {})),
        flow=h.load_flow(doc),
        offers=h.load_offers(OFFERS),
        policies=PolicyInputs(tuple(ordered), counts or PolicyCounts(), **inputs),
    )


def test_fallback_offers_obey_contact_policies(host: Host) -> None:
    assert ids(_fallback_decision(host, [])) == ["gift", "card", "loan"]
    cap = policy("cap", "frequency_cap", {"max": 0, "period": "day"})
    decision = _fallback_decision(host, [cap])
    assert ids(decision) == []
    assert policy_drops(decision)["gift"].reason.startswith("frequency_cap exceeded: 0/day")
    dnc = policy("dnc", "segment_exclusion", {"segments": ["do-not-contact"]})
    assert ids(_fallback_decision(host, [dnc], req={"segments": ["do-not-contact"]})) == []
    loans = policy("no-loans", "segment_exclusion", {"segments": ["s"]}, scope="category",
                   scopeId="loans")  # fmt: skip
    assert ids(_fallback_decision(host, [loans], req={"segments": ["s"]})) == ["gift", "card"]
    pair = policy("one-card", "mutual_exclusion", {"offers": ["card", "gift"]})
    assert ids(_fallback_decision(host, [pair])) == ["gift", "loan"]


def test_fallback_offers_with_used_up_stock_or_budget_are_dropped(host: Host) -> None:
    decision = _fallback_decision(host, [], exhausted={"card": "stock used up (0 left)"})
    assert ids(decision) == ["gift", "loan"]
    assert decision.trace is not None
    assert any(d.offer_id == "card" and d.stage == "offer_constraint" for d in decision.trace.drops)
