"""Caps scoped to an offer, category or channel count only the contacts in their scope (from
the store's contact counts), and ``cross_channel_cap`` limits the channels a customer is
contacted on; both stores, through recommend and respond."""

from __future__ import annotations

from typing import Any

from apikit import OFFERS, Api, error_of, fields_of

CATEGORY = {o["id"]: o.get("category") for o in OFFERS}


def put(api: Api, name: str, body: dict[str, Any]) -> None:
    response = api.client.put(
        f"/api/v1/contact-policies/{name}", json=body, headers=api.headers(role="editor")
    )
    assert response.status_code == 201, response.text


def contact(
    api: Api, offer_id: str, key: str, channel: str = "web", outcome: str = "impression"
) -> None:
    body = {"customerId": "ada", "offerId": offer_id, "outcome": outcome,
            "idempotencyKey": key, "channelId": channel}  # fmt: skip
    response = api.client.post("/api/v1/respond", json=body, headers=api.headers(role="editor"))
    assert response.status_code in (200, 201), response.text


def offered(api: Api, **body: Any) -> list[str]:
    return [d["offerId"] for d in api.recommend(**body)["decisions"]]


def blocked(api: Api, **body: Any) -> dict[str, dict[str, Any]]:
    """The offers a contact policy removed from a recommendation, with their drops."""
    return policy_drops(api.recommend(explain=True, **body))


def policy_drops(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["offerId"]: d for d in decision["trace"]["dropped"] if d["stage"] == "contact_policy"}


def test_an_offer_scoped_cap_counts_contacts_with_that_offer(api: Api) -> None:
    first, second = offered(api)[:2]
    put(api, "per-offer", {"ruleType": "frequency_cap", "scope": "offer", "scopeId": first,
                           "config": {"max": 2, "period": "day"}})  # fmt: skip
    contact(api, second, "s1")
    contact(api, second, "s2")
    assert blocked(api) == {}  # the other offer's contacts do not count
    contact(api, first, "f1")
    contact(api, first, "f2")
    decision = api.recommend(explain=True)
    assert first not in [d["offerId"] for d in decision["decisions"]]
    assert set(policy_drops(decision)) == {first}
    drop = policy_drops(decision)[first]
    assert drop["reason"].startswith(f"frequency_cap exceeded: 2/day at scope=offer:{first}")
    assert drop["inputs"]["count"] == 2
    # a deleted contact no longer counts
    deleted = api.client.delete("/api/v1/interactions/f2", headers=api.headers(role="editor"))
    assert deleted.status_code in (200, 204), deleted.text
    assert blocked(api) == {}


def test_a_category_scoped_total_cap_counts_that_category(api: Api) -> None:
    shown = offered(api)
    target = shown[0]
    category = CATEGORY[target]
    others = [o for o in shown if CATEGORY[o] != category]
    assert others
    cap = {"max": 1, "counts": "responses"}
    put(api, "per-category", {"ruleType": "customer_total_cap", "scope": "category",
                              "scopeId": category, "config": cap})  # fmt: skip
    contact(api, others[0], "o1", outcome="click")
    contact(api, target, "t1")  # an impression, not a response
    assert blocked(api) == {}
    contact(api, target, "t2", outcome="click")
    decision = api.recommend(explain=True)
    drops = policy_drops(decision)
    assert {CATEGORY[o] for o in drops} == {category}  # only offers of the category
    assert target in drops and not set(drops) & set(others)
    drop = drops[target]
    assert drop["reason"].startswith(
        f"customer_total_cap exceeded: 1 responses at scope=category:{category}"
    )


def test_a_channel_scoped_cap_counts_contacts_on_that_channel(api: Api) -> None:
    offer = offered(api)[0]
    put(api, "email-daily", {"ruleType": "frequency_cap", "scope": "channel", "scopeId": "email",
                             "config": {"max": 1, "period": "week"}})  # fmt: skip
    contact(api, offer, "w1", channel="web")
    contact(api, offer, "w2", channel="web")
    assert blocked(api, channel="email") == {}  # web contacts do not count against email
    contact(api, offer, "e1", channel="email")
    decision = api.recommend(channel="email", explain=True)
    assert decision["decisions"] == []
    assert "1/week at scope=channel:email" in policy_drops(decision)[offer]["reason"]
    assert blocked(api, channel="web") == {}  # the policy applies to email requests only


def test_cross_channel_cap_limits_the_channels_used(api: Api) -> None:
    offer = offered(api)[0]
    put(api, "one-channel", {"ruleType": "cross_channel_cap",
                             "config": {"maxChannels": 1, "period": "week"}})  # fmt: skip
    assert blocked(api, channel="email") == {}  # no channel used yet
    contact(api, offer, "w1", channel="web")
    contact(api, offer, "w2", channel="web")
    assert blocked(api, channel="web") == {}  # the channel already used stays open
    decision = api.recommend(channel="email", explain=True)
    assert decision["decisions"] == []
    drop = policy_drops(decision)[offer]
    assert drop["reason"].startswith(
        "cross_channel_cap exceeded: 1 channels/week (web) at scope=global"
    )
    assert drop["inputs"]["channels"] == ["web"] and drop["inputs"]["count"] == 1


def test_cross_channel_cap_config_is_checked_at_load(api: Api) -> None:
    url = "/api/v1/contact-policies/bad"
    bad = {"ruleType": "cross_channel_cap", "config": {"maxChannels": 0, "period": "fortnight"}}
    error = error_of(api.client.put(url, json=bad, headers=api.headers()), 400)
    assert sorted(fields_of(error)) == ["body.config.maxChannels", "body.config.period"]
    on_channel = {"ruleType": "cross_channel_cap", "scope": "channel", "scopeId": "web",
                  "config": {"maxChannels": 2, "period": "day"}}  # fmt: skip
    error = error_of(api.client.put(url, json=on_channel, headers=api.headers()), 400)
    assert "cross_channel_cap counts channels" in str(error)
