"""Delivery end to end: a real receiver on a loopback port, the deliverer, the store.

Signatures are checked with the independent verifier of ``receiver.py``. Retry schedules are
injected (pauses of 0 s), so retries run at once and no assertion depends on time.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from receiver import Received, Receiver, running, verify

from nextbest.outbox import Deliverer, TargetPolicy, WebhookSettings, add_endpoint
from nextbest.outbox.schedule import schedule_of
from nextbest.store import OutboxEvent, Store

PRIVATE = TargetPolicy(allow_private=True)


def settings(pauses: list[float] | None = None, **kwargs: object) -> WebhookSettings:
    """Private targets allowed, retries at once (``pauses``, default two), short timeouts."""
    return WebhookSettings(
        policy=PRIVATE,
        schedule=schedule_of([0.0, 0.0] if pauses is None else pauses),
        **kwargs,  # type: ignore[arg-type]
    )


def event(event_id: str, event_type: str = "thing.happened", **payload: object) -> OutboxEvent:
    return OutboxEvent(
        "acme", event_id, event_type, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), dict(payload)
    )


def deliver(store: Store, config: WebhookSettings) -> int:
    deliverer = Deliverer(store, config)
    try:
        return deliverer.drain()
    finally:
        deliverer.stop()


def test_a_delivery_is_signed_and_recorded(store: Store) -> None:
    with running(Receiver()) as receiver:
        endpoint, secret = add_endpoint(store, PRIVATE, "acme", receiver.url + "/hooks?x=1")
        store.publish_events([event("evt-1", customer="ada", score=71.5)])
        assert deliver(store, settings()) == 1
    [request] = receiver.requests
    assert request.path == "/hooks?x=1"
    assert verify(secret, request.headers, request.body)
    assert not verify(secret, {**request.headers, "webhook-id": "evt-2"}, request.body)
    assert request.headers["webhook-id"] == "evt-1"
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    assert request.json() == {
        "id": "evt-1",
        "type": "thing.happened",
        "timestamp": "2026-01-02T03:04:05Z",
        "tenantId": "acme",
        "data": {"customer": "ada", "score": 71.5},
    }
    [delivery] = store.list_deliveries("acme").items
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.endpoint_id == endpoint.endpoint_id and delivery.response_excerpt == "ok"
    assert delivery.last_latency_ms is not None and delivery.last_latency_ms > 0
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_retries_until_the_receiver_recovers(store: Store) -> None:
    def reply(request: Received, seen: int) -> tuple[int, dict[str, str], bytes]:
        if seen == 1:
            return 500, {}, b"boom"
        if seen == 2:
            time.sleep(1.5)  # past the deliverer's total timeout: no answer in time
        return 200, {}, b"fine"

    with running(Receiver(reply)) as receiver:
        add_endpoint(store, PRIVATE, "acme", receiver.url)
        store.publish_events([event("evt-r")])
        deliver(store, settings([0.0, 0.0, 0.0], total_timeout=0.5))
    assert receiver.ids() == ["evt-r"] * 3
    [delivery] = store.list_deliveries("acme").items
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)


def test_failed_after_the_last_attempt_then_redelivered_and_replayed(store: Store) -> None:
    healthy = {"now": False}

    def reply(request: Received, seen: int) -> tuple[int, dict[str, str], bytes]:
        return (200, {}, b"ok") if healthy["now"] else (503, {}, b"x" * 5000)

    with running(Receiver(reply)) as receiver:
        endpoint, _ = add_endpoint(store, PRIVATE, "acme", receiver.url)
        store.publish_events([event("evt-a"), event("evt-b")])
        deliver(store, settings([0.0, 0.0]))
        assert sorted(receiver.ids()) == ["evt-a"] * 3 + ["evt-b"] * 3
        failed = store.list_deliveries("acme", status="failed").items
        assert len(failed) == 2
        assert all(d.attempts == 3 and d.last_status_code == 503 for d in failed)
        assert all(d.last_error == "HTTP 503" and d.next_attempt_at is None for d in failed)
        assert all(d.response_excerpt == "x" * 256 for d in failed)  # read up to a limit

        first = next(d for d in failed if d.event_id == "evt-a")
        again = store.redeliver("acme", first.delivery_id)
        assert (again.status, again.attempts) == ("pending", 0)
        deliver(store, settings([0.0]))  # still down: 2 more attempts, then failed again
        assert store.get_delivery("acme", first.delivery_id).attempts == 2  # type: ignore[union-attr]
        assert receiver.ids().count("evt-a") == 5

        healthy["now"] = True
        since = datetime.now(UTC) - timedelta(hours=1)
        assert store.replay_failed("acme", endpoint.endpoint_id, since) == 2
        assert store.replay_failed("acme", endpoint.endpoint_id, since) == 0  # none failed
        deliver(store, settings())
    assert store.delivery_counts("acme") == {"pending": 0, "delivered": 2, "failed": 0}
    assert receiver.ids().count("evt-a") == 6 and receiver.ids().count("evt-b") == 4


def test_replay_takes_only_failures_since_the_time(store: Store) -> None:
    with running(Receiver(lambda r, n: (500, {}, b""))) as receiver:
        endpoint, _ = add_endpoint(store, PRIVATE, "acme", receiver.url)
        store.publish_events([event("evt-old")])
        deliver(store, settings([]))
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert store.replay_failed("acme", endpoint.endpoint_id, later) == 0


def test_a_redirect_is_not_followed(store: Store) -> None:
    reply = (302, {"Location": "/elsewhere"}, b"")
    with running(Receiver(lambda r, n: reply)) as receiver:
        add_endpoint(store, PRIVATE, "acme", receiver.url + "/start")
        store.publish_events([event("evt-302")])
        deliver(store, settings([]))
    assert [r.path for r in receiver.requests] == ["/start"]
    [delivery] = store.list_deliveries("acme").items
    assert (delivery.status, delivery.last_status_code) == ("failed", 302)


def test_a_refused_connection_is_retried_then_failed(store: Store) -> None:
    receiver = Receiver()
    url = receiver.url
    receiver.server.server_close()  # nothing listens on the port any more
    add_endpoint(store, PRIVATE, "acme", url)
    store.publish_events([event("evt-down")])
    deliver(store, settings([0.0]))
    [delivery] = store.list_deliveries("acme").items
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert "Connection" in (delivery.last_error or "")


def test_the_guard_applies_at_send_time(store: Store) -> None:
    with running(Receiver()) as receiver:
        add_endpoint(store, PRIVATE, "acme", receiver.url)  # allowed when it was added
        store.publish_events([event("evt-ssrf")])
        deliver(store, WebhookSettings(schedule=schedule_of([])))  # this deliverer refuses
    assert receiver.requests == []
    [delivery] = store.list_deliveries("acme").items
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert "refused" in (delivery.last_error or "") and "loopback" in (delivery.last_error or "")


def test_the_guard_checks_the_address_it_connects_to(store: Store) -> None:
    """DNS rebinding: the name resolved to a public address when the endpoint was added and to
    a private one at send time; the send is refused on the address it would connect to."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    rebinding = TargetPolicy(resolver=lambda host, port: next(answers))
    add_endpoint(store, rebinding, "acme", "http://hooks.example.com/in")
    store.publish_events([event("evt-rebind")])
    deliver(store, WebhookSettings(policy=rebinding, schedule=schedule_of([])))
    [delivery] = store.list_deliveries("acme").items
    assert delivery.status == "failed"
    assert "resolves to 127.0.0.1" in (delivery.last_error or "")


def test_the_event_filter_and_other_tenants(store: Store) -> None:
    with running(Receiver()) as receiver:
        add_endpoint(store, PRIVATE, "acme", receiver.url + "/typed", event_types=["a.one"])
        add_endpoint(store, PRIVATE, "acme", receiver.url + "/all")
        add_endpoint(store, PRIVATE, "globex", receiver.url + "/globex")
        written = store.publish_events([event("e1", "a.one"), event("e2", "a.two")])
        assert (written.events, written.deliveries) == (2, 3)
        deliver(store, settings())
    got = sorted((r.path, r.webhook_id) for r in receiver.requests)
    assert got == [("/all", "e1"), ("/all", "e2"), ("/typed", "e1")]


def test_rotation_signs_with_both_secrets_during_the_grace(store: Store) -> None:
    with running(Receiver()) as receiver:
        endpoint, old = add_endpoint(store, PRIVATE, "acme", receiver.url)
        rotated, new = store.rotate_webhook_secret("acme", endpoint.endpoint_id, grace_seconds=3600)
        assert new != old and new.startswith("whsec_")
        assert rotated.previous_secret_until is not None
        store.publish_events([event("during-grace")])
        deliver(store, settings())
        store.rotate_webhook_secret("acme", endpoint.endpoint_id, grace_seconds=0)
        store.publish_events([event("after-grace")])
        deliver(store, settings())
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, during.headers, during.body) and verify(new, during.headers, during.body)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert not verify(old, after.headers, after.body) and not verify(new, after.headers, after.body)


def test_secrets_are_never_logged(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running(Receiver(lambda r, n: (500, {}, b"no"))) as receiver:
        endpoint, secret = add_endpoint(store, PRIVATE, "acme", receiver.url)
        _, rotated = store.rotate_webhook_secret("acme", endpoint.endpoint_id)
        store.publish_events([event("evt-log")])
        deliver(store, settings([0.0]))
    assert "evt-log" in caplog.text  # the failures were logged ...
    for value in (secret, rotated, secret.removeprefix("whsec_"), rotated.removeprefix("whsec_")):
        assert value not in caplog.text  # ... without a secret
    assert secret not in json.dumps([repr(e) for e in store.list_webhook_endpoints("acme")])


def test_a_pepper_change_fails_deliveries_with_a_reason(
    database: tuple[str, str | None], store: Store
) -> None:
    from nextbest.store import open_store

    with running(Receiver()) as receiver:
        add_endpoint(store, PRIVATE, "acme", receiver.url)
        store.publish_events([event("evt-pepper")])
        url, schema = database
        with open_store(url, schema=schema, pepper=b"another pepper") as other:
            deliver(other, settings([]))
    assert receiver.requests == []
    [delivery] = store.list_deliveries("acme").items
    assert delivery.status == "failed" and "rotate" in (delivery.last_error or "")
