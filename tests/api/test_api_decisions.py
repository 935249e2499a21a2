"""Recommend and respond over HTTP: happy paths, every 400 the issue lists, idempotency, hooks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import ADA, FLOW, Api, error_of, fields_of

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import Store


def respond(api: Api, body: dict[str, Any], **headers: str) -> Any:
    return api.client.post(
        "/api/v1/respond", json=body, headers=api.headers(role="editor", **headers)
    )


def test_recommend_returns_ranked_decisions_and_stores_them(api: Api) -> None:
    body = api.recommend()
    assert set(body) == {
        "recommendationId",
        "customerId",
        "flowKey",
        "flowVersion",
        "asOf",
        "decisions",
    }
    ranked = body["decisions"]
    assert [d["rank"] for d in ranked] == list(range(1, len(ranked) + 1)) and ranked
    assert set(ranked[0]) == {"offerId", "name", "rank", "score", "personalization"}
    assert ranked[0]["personalization"]["headline"].startswith(ranked[0]["name"])
    scores = [d["score"] for d in ranked]
    assert scores == sorted(scores, reverse=True)
    stored = api.store.get_recommendation("acme", body["recommendationId"])
    assert stored is not None and stored.customer_id == "ada"
    assert [(i.rank, i.offer_id) for i in stored.items] == [
        (d["rank"], d["offerId"]) for d in ranked
    ]
    assert stored.flow_key == "cross-sell" and stored.flow_version == 1


def test_recommend_limit_explain_and_flow_key(api: Api) -> None:
    one = api.recommend(limit=1, explain=True, decisionFlowKey="cross-sell")
    assert len(one["decisions"]) == 1
    assert {"dropped", "scores"} <= set(one["trace"])
    assert any(d["offerId"] == "student-account" for d in one["trace"]["dropped"])
    for bad, field in [
        ({"limit": 0}, "body.limit"),
        ({"limit": 51}, "body.limit"),
        ({"limit": "3"}, "body.limit"),
        ({"customerId": ""}, "body.customerId"),
        ({"segments": "vip"}, "body.segments"),
        ({"explain": "yes"}, "body.explain"),
        ({"surprise": 1}, "body.surprise"),
    ]:
        error = error_of(api.post("/api/v1/recommend", {**ADA, **bad}), 400)
        assert field in fields_of(error), (bad, error)
    error = error_of(api.post("/api/v1/recommend", {**ADA, "decisionFlowKey": "nope"}), 400)
    assert error["code"] == "unknown_flow"


def test_recommend_fills_metrics_and_offer_history_from_summaries(api: Api) -> None:
    flow = copy.deepcopy(FLOW)
    flow["key"] = "with-metrics"
    flow["nodes"][5]["config"]["fields"].append(
        {"name": "spent", "formula": "coalesce(metrics.total_value, -1)", "outputType": "number"}
    )
    flow["nodes"][6]["config"]["fields"].append("spent")
    assert api.post("/api/v1/flows", flow).status_code == 201
    api.post("/api/v1/flows/with-metrics/versions/1/publish")
    first = api.recommend(decisionFlowKey="with-metrics", explain=True)
    assert first["decisions"][0]["personalization"]["spent"] == 0
    top = first["decisions"][0]["offerId"]
    for i, value in enumerate([20.0, 22.5]):
        assert (
            respond(
                api,
                {
                    "customerId": "ada",
                    "offerId": "savings-boost",
                    "outcome": "conversion",
                    "conversionValue": value,
                    "idempotencyKey": f"m{i}",
                },
            ).status_code
            == 200
        )
    # The top offer was just seen: recency_check (minDays 7) lowers its fit via offerHistory.
    respond(
        api,
        {"customerId": "ada", "offerId": top, "outcome": "impression", "idempotencyKey": "seen"},
    )
    second = api.recommend(decisionFlowKey="with-metrics", explain=True)
    assert second["decisions"][0]["personalization"]["spent"] == 42.5
    assert any(
        adj["ruleId"] == "not-seen-this-week"
        for adj in second["trace"]["fitAdjustments"].get(top, [])
    )
    assert not first["trace"]["fitAdjustments"].get(top)


def test_respond_by_offer_and_by_recommendation_rank(api: Api) -> None:
    rec = api.recommend()
    chosen = rec["decisions"][1]
    when = "2026-01-15T10:30:00+01:00"
    response = respond(
        api,
        {
            "customerId": "ada",
            "recommendationId": rec["recommendationId"],
            "rank": 2,
            "outcome": "conversion",
            "conversionValue": 99.5,
            "idempotencyKey": "evt-1",
            "timestamp": when,
            "channelId": "web",
            "context": {"page": "home"},
        },
    )
    assert response.status_code == 200 and response.headers["idempotent-replayed"] == "false"
    body = response.json()
    assert body["offerId"] == chosen["offerId"] and body["rank"] == 2
    assert body["classification"] == "positive" and body["conversionValue"] == 99.5
    assert body["timestamp"] == "2026-01-15T09:30:00+00:00" and body["channelId"] == "web"
    by_offer = respond(
        api,
        {"customerId": "bob", "offerId": "savings-boost", "outcome": "dismiss"},
        **{"Idempotency-Key": "evt-2"},
    )
    assert by_offer.status_code == 200
    assert by_offer.json()["classification"] == "negative"
    assert by_offer.json()["idempotencyKey"] == "evt-2"
    summary = api.store.get_customer_summary("acme", "ada")
    assert summary is not None and summary.conversions == 1 and summary.total_value == 99.5


def test_respond_takes_the_channel_of_the_cited_recommendation(api: Api) -> None:
    rec = api.recommend(channel="mobile")
    cited = {"customerId": "ada", "recommendationId": rec["recommendationId"], "rank": 1}
    omitted = respond(api, {**cited, "outcome": "click", "idempotencyKey": "evt-c1"})
    assert omitted.status_code == 200 and omitted.json()["channelId"] == "mobile"
    given = respond(
        api, {**cited, "outcome": "click", "idempotencyKey": "evt-c2", "channelId": "email"}
    )
    assert given.status_code == 200 and given.json()["channelId"] == "email"
    # a retry without channelId is the same outcome; the stored one keeps the filled channel
    retry = respond(api, {**cited, "outcome": "click", "idempotencyKey": "evt-c1"})
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["channelId"] == "mobile"
    by_offer = respond(
        api,
        {"customerId": "ada", "offerId": "savings-boost", "outcome": "click"},
        **{"Idempotency-Key": "evt-c3"},
    )
    assert by_offer.status_code == 200 and by_offer.json()["channelId"] is None


def test_respond_custom_outcome_type(api: Api) -> None:
    api.post("/api/v1/outcome-types", {"name": "upgrade", "classification": "positive"})
    response = respond(
        api,
        {
            "customerId": "c",
            "offerId": "premium-card",
            "outcome": "upgrade",
            "idempotencyKey": "u1",
        },
    )
    assert response.status_code == 200 and response.json()["classification"] == "positive"
    other = api.client.post(
        "/api/v1/respond",
        headers=api.headers("globex"),
        json={"customerId": "c", "offerId": "x", "outcome": "upgrade", "idempotencyKey": "u1"},
    )
    assert error_of(other, 400)["code"] == "unknown_outcome"


def test_same_key_returns_the_original_and_counts_once(api: Api) -> None:
    body = {
        "customerId": "ada",
        "offerId": "premium-card",
        "outcome": "conversion",
        "conversionValue": 10,
        "idempotencyKey": "once",
    }
    first = respond(api, body)
    again = respond(api, body)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(api.plugin.calls) == 1
    summary = api.store.get_customer_summary("acme", "ada")
    assert summary is not None and summary.interactions == 1 and summary.total_value == 10
    conflict = error_of(respond(api, body | {"outcome": "click"}), 409)
    assert conflict["code"] == "idempotency_conflict"
    assert fields_of(conflict) == ["body.idempotencyKey"]


def _ok(**extra: Any) -> dict[str, Any]:
    return {
        "customerId": "ada",
        "offerId": "premium-card",
        "outcome": "click",
        "idempotencyKey": "bad-1",
    } | extra


FUTURE = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
BAD_BODIES = [
    ({k: v for k, v in _ok().items() if k != "idempotencyKey"}, "body.idempotencyKey", None),
    ({k: v for k, v in _ok().items() if k != "customerId"}, "body.customerId", None),
    ({k: v for k, v in _ok().items() if k != "outcome"}, "body.outcome", None),
    (_ok(outcome="bought"), "body.outcome", "unknown_outcome"),
    (_ok(offerId=None), "body.offerId", None),
    (
        _ok(offerId=None, recommendationId="r-unknown", rank=1),
        "body.recommendationId",
        "unknown_recommendation",
    ),
    (_ok(offerId=None, recommendationId="r-unknown"), "body.rank", None),
    (_ok(offerId=None, rank=1), "body.recommendationId", None),
    (_ok(rank=0, recommendationId="r"), "body.rank", None),
    (_ok(conversionValue=-1), "body.conversionValue", None),
    (_ok(conversionValue="12"), "body.conversionValue", None),
    (_ok(conversionValue=True), "body.conversionValue", None),
    (_ok(timestamp="last tuesday"), "body.timestamp", None),
    (_ok(timestamp="2026-13-01T00:00:00Z"), "body.timestamp", None),
    (_ok(timestamp=1700000000), "body.timestamp", None),
    (_ok(timestamp=FUTURE), "body.timestamp", None),
    (_ok(customerId=42), "body.customerId", None),
    (_ok(rank="1", recommendationId="r"), "body.rank", None),
    (_ok(context=[1, 2]), "body.context", None),
    (_ok(channelId=5), "body.channelId", None),
    (_ok(idempotencyKey=""), "body.idempotencyKey", None),
    (_ok(extra="field"), "body.extra", None),
]


@pytest.mark.parametrize(("body", "field", "code"), BAD_BODIES)
def test_respond_bad_input_is_a_400_naming_the_field(
    api: Api, body: dict[str, Any], field: str, code: str | None
) -> None:
    error = error_of(respond(api, body), 400)
    assert field in fields_of(error), error
    if code:
        assert error["code"] == code
    assert api.store.get_customer_summary("acme", "ada") is None
    assert list(api.store.iter_interactions("acme")) == []
    assert api.plugin.calls == []


def test_respond_unknown_rank_and_foreign_customer(api: Api) -> None:
    rec = api.recommend()
    error = error_of(
        respond(
            api,
            _ok(
                offerId=None,
                recommendationId=rec["recommendationId"],
                rank=len(rec["decisions"]) + 1,
            ),
        ),
        400,
    )
    assert error["code"] == "unknown_rank" and fields_of(error) == ["body.rank"]
    error = error_of(
        respond(
            api,
            _ok(
                customerId="mallory", offerId=None, recommendationId=rec["recommendationId"], rank=1
            ),
        ),
        400,
    )
    assert error["code"] == "unknown_recommendation"
    assert list(api.store.iter_interactions("acme")) == []


@pytest.mark.parametrize(
    "raw",
    [
        '{"customerId": "ada", "conversionValue": NaN}',
        '{"customerId": "ada", "conversionValue": Infinity}',
        '{"customerId": "ada", "conversionValue": -Infinity}',
    ],
)
def test_respond_rejects_nan_and_infinite_values(api: Api, raw: str) -> None:
    body = json.loads(raw) | {
        "offerId": "premium-card",
        "outcome": "conversion",
        "idempotencyKey": "nan",
    }
    content = json.dumps(body)  # json.dumps writes NaN/Infinity literals, as some clients do
    response = api.client.post(
        "/api/v1/respond",
        content=content,
        headers=api.headers(**{"Content-Type": "application/json"}),
    )
    assert fields_of(error_of(response, 400)) == ["body.conversionValue"]


def test_respond_body_not_json_and_wrong_content_type(api: Api) -> None:
    headers = api.headers(**{"Content-Type": "application/json"})
    error = error_of(api.client.post("/api/v1/respond", content="{not json", headers=headers), 400)
    assert error["code"] == "invalid_json" and fields_of(error) == ["body"]
    error = error_of(api.client.post("/api/v1/respond", content="", headers=headers), 400)
    assert fields_of(error) == ["body"]
    form = api.headers(**{"Content-Type": "application/x-www-form-urlencoded"})
    error = error_of(api.client.post("/api/v1/respond", content="a=1", headers=form), 415)
    assert error["code"] == "unsupported_media_type"
    text = api.headers(**{"Content-Type": "text/plain"})
    error_of(api.client.post("/api/v1/offers", content='{"id": "x"}', headers=text), 415)
    error = error_of(api.client.post("/api/v1/respond", json=[1, 2], headers=api.headers()), 400)
    assert fields_of(error) == ["body"]


def test_backfilled_timestamps_are_accepted(api: Api) -> None:
    old = "2019-03-01T08:00:00Z"
    response = respond(api, _ok(timestamp=old, idempotencyKey="old"))
    assert response.status_code == 200 and response.json()["timestamp"].startswith("2019-03-01")
    near = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert respond(api, _ok(timestamp=near, idempotencyKey="near")).status_code == 200


def test_outcome_recorded_hook_runs_after_commit_with_the_interaction(api: Api) -> None:
    respond(api, _ok(idempotencyKey="h1", outcome="conversion", conversionValue=5))
    assert len(api.plugin.calls) == 1
    tenant, interaction, committed = api.plugin.calls[0]
    assert tenant == "acme" and committed is True
    assert api.plugin.hosts == [api.host]  # the host that recorded it, with its store
    assert interaction.idempotency_key == "h1" and interaction.value == 5.0
    respond(api, _ok(idempotencyKey="h1", outcome="conversion", conversionValue=5))
    error_of(respond(api, _ok(idempotencyKey="h2", outcome="nope")), 400)
    assert len(api.plugin.calls) == 1


def test_the_app_and_its_host_share_one_store(store: Store) -> None:
    # plugins reach the store through the host: an app over another store is refused
    with pytest.raises(ValueError, match=r"create it with Host\(store=store\)"):
        create_app(Host(), store)


def test_plugin_route_uses_host_auth(api: Api) -> None:
    assert api.get("/api/v1/recorder/whoami").json() == {
        "tenant": "acme",
        "role": "admin",
        "plugin": "recorder",
    }
    error_of(api.get("/api/v1/recorder/whoami", role="viewer"), 403)
    error_of(api.client.get("/api/v1/recorder/whoami"), 401)
    foreign = {"X-Tenant-Id": "acme", "Authorization": f"Bearer {api.keys[('globex', 'admin')]}"}
    error_of(api.client.get("/api/v1/recorder/whoami", headers=foreign), 404)


def test_keys_bulk_import_makes_are_refused_on_respond(api: Api) -> None:
    # A caller taking an import's key would have its outcome replaced by the next import.
    error = error_of(respond(api, _ok(idempotencyKey="ingest:id:conversion:17")), 400)
    assert fields_of(error) == ["body.idempotencyKey"] and "bulk import" in error["message"]
    body = _ok()
    del body["idempotencyKey"]
    error = error_of(respond(api, body, **{"Idempotency-Key": "ingest:1a2b:x"}), 400)
    assert fields_of(error) == ["header.Idempotency-Key"]
    assert api.store.get_interaction("acme", "ingest:id:conversion:17") is None
