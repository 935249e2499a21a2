"""Contact policies in the engine: each rule type, scopes, priority order, overrides, mandatory
offers, UTC periods, and the trace entries naming the policy and the count that tripped it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hostkit import AS_OF, flow, ids, inventory, offer, qualify, rank, request, rule
from hostkit import score as score_node

from nextbest import Decision, FlowValidationError, Host
from nextbest.models.policies import PolicyCounts, PolicyInputs, period_starts, window_start
from nextbest.policies.documents import (
    ContactPolicies,
    counts_needed,
    parse_policy,
    policy_counts,
)
from nextbest.store import ContactCount, InteractionIn, OfferOutcome, open_store

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


def outcome(offer_id: str, name: str, last_at: datetime, n: int = 1) -> OfferOutcome:
    """An offer outcome as the store keeps it (kind and classification of the built-ins)."""
    kind = "impression" if name == "impression" else "response"
    classification = {"impression": "neutral", "click": "positive", "conversion": "positive",
                      "dismiss": "negative"}[name]  # fmt: skip
    return OfferOutcome(offer_id, name, kind, classification, last_at, n)


def negatives(offer_id: str, day: date, n: int) -> ContactCount:
    """A contact-count row with ``n`` negative responses to ``offer_id`` on ``day``."""
    return ContactCount(day, offer_id, None, n, 0, n, 0, 0, n)


def counts_of(
    policies: list[Any],
    outcomes: list[OfferOutcome],
    contacts: tuple[ContactCount, ...] | list[ContactCount] = (),
    as_of: datetime = NOON,
) -> PolicyCounts:
    """The counts ``policies`` read, built as the service builds them."""
    return policy_counts(as_of, policies, {}, (), None, outcomes, contacts)


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
def test_cooldown_counts_the_hours_since_the_offer_was_last_shown(host: Host) -> None:
    cool = policy("cool", "cooldown", {"hours": 24})
    seen = [
        outcome("card", "impression", datetime(2026, 3, 9, 12, 0, 1, tzinfo=UTC)),  # 23.99 h
        outcome("loan", "impression", datetime(2026, 3, 9, 12, tzinfo=UTC)),  # exactly 24 h ago
        # a response after the showing does not restart the cooldown (it did: defect 3)
        outcome("loan", "click", datetime(2026, 3, 10, 11, tzinfo=UTC)),
        outcome("gift", "dismiss", datetime(2026, 3, 10, 11, tzinfo=UTC)),  # never shown
    ]
    decision = decide(host, [cool], counts_of([cool], seen))
    assert sorted(ids(decision)) == ["gift", "loan"]
    drop = policy_drops(decision)["card"]
    assert drop.reason.startswith("cooldown: offer last shown 24.0 h ago, needs 24 h")
    assert drop.inputs["hoursSince"] == pytest.approx(23.9997, abs=1e-3)


def test_outcome_based_counts_from_the_last_outcome_of_its_type(host: Host) -> None:
    after_buy = policy("no-rebuy", "outcome_based", {"outcome": "conversion", "days": 30})
    seen = [
        outcome("card", "conversion", datetime(2026, 2, 20, tzinfo=UTC)),
        # shown and clicked after the conversion: still suppressed (it was lifted: defect 1)
        outcome("card", "impression", datetime(2026, 3, 10, 11, tzinfo=UTC), n=4),
        outcome("card", "click", datetime(2026, 3, 10, 11, 30, tzinfo=UTC)),
        outcome("loan", "conversion", datetime(2026, 2, 8, tzinfo=UTC)),  # 30.5 days ago
    ]
    decision = decide(host, [after_buy], counts_of([after_buy], seen))
    assert sorted(ids(decision)) == ["gift", "loan"]
    drop = policy_drops(decision)["card"]
    assert drop.rule_id == "no-rebuy" and drop.reason.startswith(
        "outcome_based: last outcome 'conversion' 18.5 days ago (suppressed for 30 days)"
    )
    assert drop.inputs["daysSince"] == 18.5
    # 30 days after the conversion the offer is back
    later = datetime(2026, 3, 22, 0, 0, 1, tzinfo=UTC)
    back = decide(host, [after_buy], counts_of([after_buy], seen, as_of=later),
                  asOf="2026-03-22T00:00:01Z")  # fmt: skip
    assert "card" in ids(back)


def test_outcome_based_counts_responses_on_the_utc_days_of_its_window(host: Host) -> None:
    dismissed = policy("dismissed", "outcome_based",
                       {"classification": "negative", "minCount": 2, "days": 7})  # fmt: skip
    # NOON is 2026-03-10 12:00: the window is the UTC days 2026-03-03 .. 2026-03-10
    seen = [
        outcome("card", "dismiss", datetime(2026, 3, 3, 0, 5, tzinfo=UTC), n=2),
        outcome("loan", "dismiss", datetime(2026, 3, 8, tzinfo=UTC), n=3),
        outcome("loan", "impression", datetime(2026, 3, 10, 11, tzinfo=UTC)),
        outcome("gift", "dismiss", datetime(2026, 3, 9, tzinfo=UTC), n=3),
        outcome("gift", "impression", datetime(2026, 3, 10, 11, tzinfo=UTC)),
    ]
    contacts = [
        negatives("card", date(2026, 3, 3), 2),  # the window's first day: counts
        negatives("loan", date(2026, 1, 2), 2),  # two dismissals long ago: not in the window
        negatives("loan", date(2026, 3, 8), 1),
        negatives("gift", date(2026, 3, 2), 2),  # the day before the window
        negatives("gift", date(2026, 3, 9), 1),
    ]
    decision = decide(host, [dismissed], counts_of([dismissed], seen, contacts))
    # before: every offer with two dismissals ever was suppressed again after each showing
    assert sorted(ids(decision)) == ["gift", "loan"]
    drop = policy_drops(decision)["card"]
    assert drop.reason.startswith(
        "outcome_based: 2 negative responses on the UTC days since 2026-03-03 "
        "(min 2 in 7 days), the last 7.5 days ago"
    )
    assert drop.inputs["count"] == 2 and drop.inputs["since"] == "2026-03-03"
    # the counts are read from the earliest day the window or a period needs
    assert counts_needed([dismissed], NOON).contacts_from == date(2026, 3, 1)  # the month's
    early = datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert counts_needed([dismissed], early).contacts_from == date(2026, 2, 23)  # the window's


def _store_decision(tmp_path: Path, host: Host, policies: list[dict], rows: list[tuple]) -> Any:
    """Record (key, offer, outcome, at) rows in a fresh SQLite store, then decide as of NOON
    with the counts the service reads."""
    store = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        store.upgrade()
        store.create_tenant("t1")
        for key, offer_id, name, at in rows:
            store.record_interaction("t1", InteractionIn(
                customer_id="c1", outcome=name, idempotency_key=key, offer_id=offer_id,
                occurred_at=at))  # fmt: skip
        contact = ContactPolicies(store)
        for doc in policies:
            contact.put("t1", doc)
        inputs = contact.inputs("t1", "c1", NOON)
        assert inputs is not None
        return decide(host, list(inputs.policies), inputs.counts,
                      [*OFFERS, offer("bond", priority=60)])  # fmt: skip
    finally:
        store.close()


def test_per_offer_policies_read_what_the_store_keeps(host: Host, tmp_path: Path) -> None:
    docs = [
        {"name": "no-rebuy", "ruleType": "outcome_based",
         "config": {"outcome": "conversion", "days": 30}},
        {"name": "dismissed", "ruleType": "outcome_based",
         "config": {"classification": "negative", "minCount": 2, "days": 7}},
        {"name": "cool", "ruleType": "cooldown", "config": {"hours": 12}},
    ]  # fmt: skip
    rows = [
        ("c1", "card", "conversion", datetime(2026, 3, 1, tzinfo=UTC)),
        ("c2", "card", "impression", datetime(2026, 3, 9, tzinfo=UTC)),  # after the conversion
        ("l1", "loan", "dismiss", datetime(2026, 1, 1, tzinfo=UTC)),
        ("l2", "loan", "dismiss", datetime(2026, 1, 2, tzinfo=UTC)),
        ("l3", "loan", "impression", datetime(2026, 3, 9, tzinfo=UTC)),
        ("g1", "gift", "impression", datetime(2026, 3, 9, 23, tzinfo=UTC)),  # 13 h ago
        ("g2", "gift", "click", datetime(2026, 3, 10, 11, tzinfo=UTC)),  # a response, 1 h ago
        ("b1", "bond", "impression", datetime(2026, 3, 10, 3, tzinfo=UTC)),  # 9 h ago
    ]
    decision = _store_decision(tmp_path, host, docs, rows)
    # before the fix: card passed (an impression followed the conversion), loan was blocked
    # (two dismissals ever), gift was blocked (the click counted as a showing)
    assert ids(decision) == ["loan", "gift"]
    drops = policy_drops(decision)
    assert drops["card"].rule_id == "no-rebuy"
    assert drops["bond"].rule_id == "cool" and "last shown 9.0 h ago" in drops["bond"].reason


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


def test_outcome_based_windows_are_utc_days_whatever_the_offset_of_as_of() -> None:
    # 2026-03-10 01:00 at +02:00 is 2026-03-09 23:00 UTC: 7 days before is UTC day 03-02
    local = datetime.fromisoformat("2026-03-10T01:00:00+02:00")
    assert window_start(local, 7) == date(2026, 3, 2)
    assert window_start(datetime(2026, 3, 10, 1), 7) == date(2026, 3, 3)  # naive: UTC
