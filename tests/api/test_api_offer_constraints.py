"""Offer budgets and stock through the API: respond consumes them, recommend drops a used-up
offer with a trace reason, and a bad constraint is a 400 naming the field."""

from __future__ import annotations

from typing import Any

from apikit import Api, error_of, fields_of


def _respond(api: Api, offer_id: str, key: str, outcome: str, value: float = 0.0) -> None:
    body: dict[str, Any] = {"customerId": f"c-{key}", "offerId": offer_id, "outcome": outcome,
                            "idempotencyKey": key, "conversionValue": value}  # fmt: skip
    response = api.client.post("/api/v1/respond", json=body, headers=api.headers(role="editor"))
    assert response.status_code in (200, 201), response.text


def _top_offer(api: Api) -> dict[str, Any]:
    top = api.recommend()["decisions"][0]["offerId"]
    offer: dict[str, Any] = api.get(f"/api/v1/offers/{top}").json()
    return offer


def _returned(api: Api) -> list[str]:
    return [d["offerId"] for d in api.recommend(limit=50)["decisions"]]


def test_stock_runs_out_after_positive_outcomes(api: Api) -> None:
    offer = _top_offer(api) | {"stock": 2}
    assert api.client.put(f"/api/v1/offers/{offer['id']}", json=offer,
                          headers=api.headers()).status_code == 200  # fmt: skip
    _respond(api, offer["id"], "seen", "impression")  # not positive: no stock used
    _respond(api, offer["id"], "buy-1", "conversion", 10.0)
    assert offer["id"] in _returned(api)
    _respond(api, offer["id"], "buy-2", "conversion", 10.0)
    _respond(api, offer["id"], "buy-2", "conversion", 10.0)  # a retry
    body = api.recommend(explain=True, limit=50)
    assert offer["id"] not in [d["offerId"] for d in body["decisions"]]
    (drop,) = [d for d in body["trace"]["dropped"] if d["offerId"] == offer["id"]]
    assert drop["reason"] == "out of stock: 2/2 units used"
    assert drop["nodeId"] == "(offer-constraints)" and drop["stage"] == "offer_constraint"
    # restocking brings it back
    api.client.put(f"/api/v1/offers/{offer['id']}", json=offer | {"stock": 3},
                   headers=api.headers())  # fmt: skip
    assert offer["id"] in _returned(api)


def test_budgets_are_spent_by_positive_outcome_values(api: Api) -> None:
    offer = _top_offer(api) | {"budget": {"daily": 50.0, "lifetime": 80.0}}
    api.client.put(f"/api/v1/offers/{offer['id']}", json=offer, headers=api.headers())
    _respond(api, offer["id"], "b1", "conversion", 30.0)
    assert offer["id"] in _returned(api)
    _respond(api, offer["id"], "b2", "conversion", 30.0)
    body = api.recommend(explain=True, limit=50)
    (drop,) = [d for d in body["trace"]["dropped"] if d["offerId"] == offer["id"]]
    assert drop["reason"].startswith("daily budget spent: 50/50 on ")
    # a mandatory offer obeys its constraints too
    api.client.put(f"/api/v1/offers/{offer['id']}", json=offer | {"mandatory": True},
                   headers=api.headers())  # fmt: skip
    assert offer["id"] not in _returned(api)


def test_bad_constraints_are_400s(api: Api) -> None:
    error = error_of(api.post("/api/v1/offers", {"id": "x", "stock": -1}), 400)
    assert fields_of(error) == ["body.stock"]
    error = error_of(api.post("/api/v1/offers", {"id": "x", "budget": {"daily": 0}}), 400)
    assert fields_of(error) == ["body.budget.daily"]
    error = error_of(api.post("/api/v1/offers", {"id": "x", "budget": {"weekly": 5}}), 400)
    assert fields_of(error) == ["body.budget.weekly"]
