"""Offer lifecycle and flow fallback offers through the HTTP API, as a user would meet them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from apikit import FLOW, Api, error_of, fields_of


def _publish(api: Api, document: dict) -> None:
    saved = api.post("/api/v1/flows", document, role="editor")
    assert saved.status_code == 201, saved.text
    version = saved.json()["version"]
    published = api.post(f"/api/v1/flows/{document['key']}/versions/{version}/publish")
    assert published.status_code == 200, published.text


def test_an_offer_with_a_wrong_status_or_dates_is_a_400_naming_the_field(api: Api) -> None:
    error = error_of(
        api.post("/api/v1/offers", {"id": "x", "status": "Active"}, role="editor"), 400
    )
    assert fields_of(error) == ["body.status"]
    assert "'active', 'inactive', 'draft', 'paused', 'retired' or 'archived'" in str(error)
    error = error_of(
        api.post(
            "/api/v1/offers",
            {"id": "x", "startAt": "2026-03-02T00:00:00Z", "endAt": "2026-03-01T00:00:00Z"},
        ),
        400,
    )
    assert "endAt" in str(error) and "startAt" in str(error)
    assert error_of(api.get("/api/v1/offers/x"), 404)["code"] == "offer_not_found"


def test_recommend_honours_offer_dates_now(api: Api) -> None:
    # recommend decides as of now (UTC): dates around the present moment
    now = datetime.now(UTC)
    day = timedelta(days=1)
    dated = {
        "upcoming": {"startAt": now + day},
        "ended": {"endAt": now - day},
        "running": {"startAt": now - day, "endAt": now + day},
    }
    for offer_id, dates in dated.items():
        body = {"id": offer_id, "priority": 100, "weight": 100, "businessValue": 1000}
        body |= {"propensity": 0.9, **{k: v.isoformat() for k, v in dates.items()}}
        assert api.post("/api/v1/offers", body, role="editor").status_code == 201
    decided = api.recommend(explain=True, limit=50)
    returned = [d["offerId"] for d in decided["decisions"]]
    assert "running" in returned and "upcoming" not in returned and "ended" not in returned
    dropped = {d["offerId"]: d for d in decided["trace"]["dropped"]}
    assert dropped["upcoming"]["reason"].startswith("not started")
    assert dropped["ended"]["reason"].startswith("ended")


def test_fallback_offers_come_back_marked_when_nothing_qualifies(api: Api) -> None:
    strict = copy.deepcopy(FLOW) | {"key": "strict"}
    inventory = next(n for n in strict["nodes"] if n["type"] == "inventory")
    inventory["config"] = {"scope": "category", "categories": ["no-such-category"]}
    first = api.get("/api/v1/offers", params={"limit": 1}).json()["items"][0]["id"]
    strict["settings"] = {"fallbackOffers": ["not-in-catalog", first]}
    _publish(api, strict)
    body = api.recommend(decisionFlowKey="strict", explain=True)
    assert [d["offerId"] for d in body["decisions"]] == [first]
    assert body["decisions"][0]["fallback"] is True and body["decisions"][0]["rank"] == 1
    assert body["trace"]["fallback"] == [first]
    dropped = {d["offerId"]: d["reason"] for d in body["trace"]["dropped"]}
    assert dropped["not-in-catalog"] == "fallback offer is not in the catalog"
    stored = api.store.get_recommendation("acme", body["recommendationId"])
    assert stored is not None and [i.offer_id for i in stored.items] == [first]
    # the regular flow returns no fallback marks
    regular = api.recommend(decisionFlowKey=FLOW["key"])
    assert regular["decisions"] and not any("fallback" in d for d in regular["decisions"])


def test_a_flow_naming_a_fallback_twice_is_refused_at_save(api: Api) -> None:
    bad = copy.deepcopy(FLOW) | {"key": "bad", "settings": {"fallbackOffers": ["a", "a"]}}
    error = error_of(api.post("/api/v1/flows", bad, role="editor"), 400)
    assert "repeated: a" in str(error)
