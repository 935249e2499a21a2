"""Concurrent retries: 8 threads post the same 1,000 outcomes, every outcome sent by 3 threads at
about the same moment plus immediate re-sends; each is recorded exactly once and the summaries
equal those of a serial run (on SQLite and PostgreSQL). Concurrent management writes: creates of
one offer id have one winner (the others 409), concurrent flow saves and publishes never 5xx."""

from __future__ import annotations

import copy
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from apikit import FLOW, OFFERS, Api, error_of, fields_of

from nextbest.store import InteractionIn

THREADS = 8
EVENTS = 1000
SENDERS = 3  # threads that send each outcome (3,000 requests plus re-sends keep the test quick)
_OUTCOMES = ["impression", "click", "conversion", "dismiss", "defer", "impression", "save"]
_ACTIVE = [o["id"] for o in OFFERS if o.get("status", "active") == "active"]


def events() -> list[dict[str, Any]]:
    """1,000 distinct outcomes over 40 customers, fixed times (so runs are comparable)."""
    rng = random.Random(7)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # Distinct times: on equal times the last *recorded* outcome wins, which is order-dependent.
    minutes = rng.sample(range(60 * 24 * 20), EVENTS)
    out = []
    for i in range(EVENTS):
        outcome = _OUTCOMES[i % len(_OUTCOMES)]
        out.append(
            {
                "customerId": f"c{rng.randrange(40)}",
                "offerId": rng.choice(_ACTIVE),
                "outcome": outcome,
                "conversionValue": round(rng.uniform(1, 300), 2) if outcome == "conversion" else 0,
                "timestamp": (start + timedelta(minutes=minutes[i])).isoformat(),
                "idempotencyKey": f"evt-{i:04d}",
            }
        )
    return out


def summaries(api: Api, tenant: str, customers: set[str]) -> dict[str, Any]:
    store = api.store

    def strip(s: Any) -> tuple:
        return (
            s.interactions,
            s.impressions,
            s.positive,
            s.negative,
            s.neutral,
            s.conversions,
            round(s.total_value, 6),
            s.first_at,
            s.last_at,
            s.last_outcome,
        )

    return {
        c: (
            strip(store.get_customer_summary(tenant, c)),
            {o: strip(s) for o, s in store.get_offer_summaries(tenant, c).items()},
            [(d.day, strip(d)) for d in store.get_daily_summaries(tenant, c)],
        )
        for c in sorted(customers)
    }


def test_concurrent_retries_record_each_outcome_once(api: Api) -> None:
    batch = events()
    # Thread t sends the outcomes i with i % THREADS in {t, t-1, t-2}, in the same order, so
    # three threads collide on each key at about the same moment; every 10th is re-sent at once,
    # as a client retrying after a lost answer would.
    results: dict[str, list[dict[str, Any]]] = {e["idempotencyKey"]: [] for e in batch}
    lock = threading.Lock()
    failures: list[str] = []
    headers = api.headers(role="editor")

    def worker(t: int) -> None:
        rotation = batch[t * (EVENTS // THREADS) :] + batch[: t * (EVENTS // THREADS)]
        for i, event in enumerate(rotation):
            for _attempt in range(2 if i % 5 == 0 else 1):
                response = api.client.post("/api/v1/respond", json=event, headers=headers)
                if response.status_code != 200:
                    failures.append(response.text)
                    continue
                with lock:
                    results[event["idempotencyKey"]].append(response.json())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    recorded = list(api.store.iter_interactions("acme"))
    assert len(recorded) == EVENTS
    assert len({r.idempotency_key for r in recorded}) == EVENTS
    for key, answers in results.items():
        assert len(answers) >= SENDERS
        assert all(a == answers[0] for a in answers), key  # every retry saw the original
    assert len(api.plugin.calls) == EVENTS

    api.store.create_tenant("serial")
    for event in batch:
        api.store.record_interaction(
            "serial",
            InteractionIn(
                customer_id=event["customerId"],
                offer_id=event["offerId"],
                outcome=event["outcome"],
                value=event["conversionValue"],
                idempotency_key=event["idempotencyKey"],
                occurred_at=datetime.fromisoformat(event["timestamp"]),
            ),
        )
    customers = {e["customerId"] for e in batch}
    assert summaries(api, "acme", customers) == summaries(api, "serial", customers)


def race(threads: int, request: Any) -> list[Any]:
    """Send ``request(i)`` from ``threads`` threads released at the same moment; the responses."""
    barrier = threading.Barrier(threads)
    responses: list[Any] = [None] * threads

    def run(i: int) -> None:
        barrier.wait()
        responses[i] = request(i)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return responses


def test_concurrent_creates_of_one_offer_id_answer_one_201_and_409s(api: Api) -> None:
    headers = api.headers(role="editor")
    responses = race(
        12,
        lambda i: api.client.post(
            "/api/v1/offers", json={"id": "race", "name": f"by {i}"}, headers=headers
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 11, [r.text for r in responses]
    (winner,) = [r.json() for r in responses if r.status_code == 201]
    for loser in (r for r in responses if r.status_code == 409):
        error = error_of(loser, 409)
        assert error["code"] == "offer_exists" and "'race' already exists" in error["message"]
        assert fields_of(error) == ["body.id"]
    assert api.get("/api/v1/offers/race").json() == winner


def test_concurrent_flow_saves_and_publishes_answer_no_5xx(api: Api) -> None:
    draft = copy.deepcopy(FLOW) | {"key": "race"}
    headers = api.headers(role="editor")
    saved = race(8, lambda i: api.client.post("/api/v1/flows", json=draft, headers=headers))
    assert [r.status_code for r in saved] == [201] * 8, [r.text for r in saved]
    assert sorted(r.json()["version"] for r in saved) == list(range(1, 9))

    published = race(
        8,
        lambda i: api.client.post(f"/api/v1/flows/race/versions/{i + 1}/publish", headers=headers),
    )
    assert [r.status_code for r in published] == [200] * 8, [r.text for r in published]
    assert all(r.json()["published"] for r in published)
    final = api.get("/api/v1/flows/race", params={"published": "true"}).json()["version"]
    versions = [api.get("/api/v1/flows/race", params={"version": v}).json() for v in range(1, 9)]
    assert [v["version"] for v in versions if v["published"]] == [final]

    # Saves and publishes mixed: each thread saves a version and publishes it.
    def save_and_publish(i: int) -> Any:
        version = api.client.post("/api/v1/flows", json=draft, headers=headers).json()["version"]
        return api.client.post(f"/api/v1/flows/race/versions/{version}/publish", headers=headers)

    mixed = race(8, save_and_publish)
    assert [r.status_code for r in mixed] == [200] * 8, [r.text for r in mixed]
    assert sorted(r.json()["version"] for r in mixed) == list(range(9, 17))
    listed = api.get("/api/v1/flows").json()["items"]
    race_info = next(i for i in listed if i["key"] == "race")
    assert race_info["latestVersion"] == 16 and race_info["publishedVersion"] in range(9, 17)
