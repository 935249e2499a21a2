"""The outbox in the store: idempotent events, fan-out, the caller's transaction, leases,
claims, and the checks every argument goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nextbest.store import (
    AttemptResult,
    ConflictError,
    DeliveryNotFoundError,
    InvalidInputError,
    OutboxEvent,
    Store,
    TenantNotFoundError,
    WebhookEndpointNotFoundError,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def event(
    event_id: str, tenant: str = "acme", event_type: str = "a.b", **payload: Any
) -> OutboxEvent:
    return OutboxEvent(tenant, event_id, event_type, NOW, dict(payload))


def endpoint(store: Store, tenant: str = "acme", **kwargs: Any) -> str:
    created, _ = store.create_webhook_endpoint(tenant, "http://hooks.example.com/in", **kwargs)
    return created.endpoint_id


def test_the_same_event_id_twice_is_a_no_op(store: Store) -> None:
    endpoint(store)
    first = store.publish_events([event("e1", n=1)])
    again = store.publish_events([event("e1", n=2), event("e2")])
    assert (first.events, first.deliveries) == (1, 1)
    assert (again.events, again.deliveries) == (1, 1)  # only e2 is new
    assert store.get_event("acme", "e1").payload == {"n": 1}  # type: ignore[union-attr]
    # Another tenant may use the same id: ids are the producer's, per tenant.
    assert store.publish_events([event("e1", tenant="globex")]).events == 1
    assert store.delivery_counts() == {"pending": 2, "delivered": 0, "failed": 0}


def test_events_are_written_in_the_callers_transaction(store: Store) -> None:
    endpoint(store)

    def state_and_event(cur: Any) -> None:
        store.write_events(cur, [event("in-tx")])
        cur.execute("UPDATE tenants SET name = 'changed' WHERE tenant_id = 'acme'")
        raise RuntimeError("the producer fails after writing")

    with pytest.raises(RuntimeError):
        store.write(state_and_event)
    assert store.get_event("acme", "in-tx") is None  # rolled back with the producer's change
    assert store.get_tenant("acme").name is None  # type: ignore[union-attr]
    assert store.delivery_counts("acme")["pending"] == 0

    written = store.write(lambda cur: store.write_events(cur, [event("in-tx")]))
    assert written.events == 1 and store.get_event("acme", "in-tx") is not None


def test_an_endpoint_added_later_gets_no_old_events(store: Store) -> None:
    store.publish_events([event("before")])
    endpoint(store)
    assert store.publish_events([event("after")]).deliveries == 1
    assert [d.event_id for d in store.list_deliveries("acme").items] == ["after"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"event_id": "has space"}, "event id"),
        ({"event_id": ""}, "event id"),
        ({"event_type": "Not.Valid"}, "event type"),
        ({"payload": {"x": float("nan")}}, "payload.x"),
        ({"payload": ["not", "an", "object"]}, "payload"),
        ({"tenant_id": "bad tenant"}, "tenant id"),
        ({"occurred_at": datetime(1800, 1, 1, tzinfo=UTC)}, "event time"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    store: Store, bad: dict[str, Any], field: str
) -> None:
    fields = {"tenant_id": "acme", "event_id": "ok", "event_type": "a.b", "occurred_at": NOW}
    fields["payload"] = {}
    with pytest.raises(InvalidInputError) as raised:
        store.publish_events([OutboxEvent(**(fields | bad))])
    assert raised.value.field == field


def test_an_unknown_tenant_is_refused(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        store.publish_events([event("e", tenant="nobody")])


def test_claims_are_exclusive_and_leases_run_out(store: Store) -> None:
    endpoint(store)
    store.publish_events([event(f"e{i}") for i in range(5)])
    first = store.claim_deliveries(3, lease_seconds=60)
    second = store.claim_deliveries(10, lease_seconds=60)
    assert len(first) == 3 and len(second) == 2
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    assert store.claim_deliveries(10) == []  # all held
    assert all(c.attempt == 1 and c.secrets for c in first)

    # The holder of `first` dies: once its lease has run out the rows are taken again.
    later = store.clock() + 61
    store.clock = lambda: later  # type: ignore[method-assign]
    retaken = store.claim_deliveries(10, lease_seconds=60)
    assert sorted(c.delivery_id for c in retaken) == sorted(c.delivery_id for c in first + second)
    assert all(c.attempt == 2 for c in retaken)
    # A result of the lost lease is ignored; the current holder's is recorded.
    stale = [_result(c.delivery_id, first[0].lease_token) for c in first]
    assert store.complete_deliveries(stale) == 0
    assert store.complete_deliveries([_result(c.delivery_id, c.lease_token) for c in retaken]) == 5
    assert store.delivery_counts("acme")["delivered"] == 5


def _result(delivery_id: int, token: str) -> AttemptResult:
    return AttemptResult(delivery_id, token, True, None, 204, None, 1.0, "")


def test_a_retry_is_due_at_its_time(store: Store) -> None:
    endpoint(store)
    store.publish_events([event("later")])
    [claim] = store.claim_deliveries(1)
    due = datetime.fromtimestamp(store.clock() + 300, UTC)
    store.complete_deliveries(
        [AttemptResult(claim.delivery_id, claim.lease_token, False, due, 500, "HTTP 500", 2.0, "")]
    )
    assert store.claim_deliveries(10) == []
    [delivery] = store.list_deliveries("acme", status="pending").items
    assert delivery.next_attempt_at is not None and delivery.attempts == 1
    moment = store.clock() + 301
    store.clock = lambda: moment  # type: ignore[method-assign]
    assert [c.attempt for c in store.claim_deliveries(10)] == [2]


def test_redeliver_refuses_a_delivery_in_flight(store: Store) -> None:
    endpoint(store)
    store.publish_events([event("busy")])
    [claim] = store.claim_deliveries(1)
    with pytest.raises(ConflictError):
        store.redeliver("acme", claim.delivery_id)
    with pytest.raises(DeliveryNotFoundError):
        store.redeliver("globex", claim.delivery_id)  # another tenant's
    with pytest.raises(DeliveryNotFoundError):
        store.redeliver("acme", 0)


def test_deliveries_page_newest_first_and_filter(store: Store) -> None:
    one = endpoint(store)
    two = endpoint(store)
    store.publish_events([event(f"e{i}") for i in range(3)])
    page = store.list_deliveries("acme", limit=4)
    ids = [d.delivery_id for d in page.items]
    assert ids == sorted(ids, reverse=True) and page.next_cursor is not None
    rest = store.list_deliveries("acme", limit=4, cursor=page.next_cursor)
    assert len(rest.items) == 2 and rest.next_cursor is None
    assert {d.endpoint_id for d in store.list_deliveries("acme", endpoint_id=two).items} == {two}
    assert store.list_deliveries("acme", status="failed").items == []
    assert store.list_deliveries("globex").items == []
    with pytest.raises(InvalidInputError):
        store.list_deliveries("acme", status="lost")
    with pytest.raises(InvalidInputError):
        store.list_deliveries("acme", cursor="junk!")
    assert one != two


def test_endpoints_check_their_fields(store: Store) -> None:
    for url in ("ftp://x.example.com", "http://with space", "", "x" * 3000, "http://ü.example"):
        with pytest.raises(InvalidInputError) as raised:
            store.create_webhook_endpoint("acme", url)
        assert raised.value.field == "url"
    with pytest.raises(InvalidInputError) as raised:
        store.create_webhook_endpoint("acme", "https://a.example", event_types=["ok", "Bad!"])
    assert raised.value.field == "eventTypes[1]"
    with pytest.raises(InvalidInputError) as raised:
        store.create_webhook_endpoint("acme", "https://a.example", event_types=[])
    assert raised.value.field == "eventTypes"
    with pytest.raises(InvalidInputError) as raised:
        store.create_webhook_endpoint("acme", "https://a.example", description="x" * 501)
    assert raised.value.field == "description"
    with pytest.raises(TenantNotFoundError):
        store.create_webhook_endpoint("nobody", "https://a.example")


def test_endpoints_belong_to_their_tenant(store: Store) -> None:
    created = endpoint(store, event_types=["a.b", "a.b", "c"], description="CRM")
    [listed] = store.list_webhook_endpoints("acme")
    assert listed.endpoint_id == created and listed.event_types == ("a.b", "c")
    assert store.list_webhook_endpoints("globex") == []
    assert store.get_webhook_endpoint("globex", created) is None
    assert not store.delete_webhook_endpoint("globex", created)
    with pytest.raises(WebhookEndpointNotFoundError):
        store.rotate_webhook_secret("globex", created)
    with pytest.raises(WebhookEndpointNotFoundError):
        store.replay_failed("globex", created, NOW - timedelta(days=1))
    store.publish_events([event("e")])
    assert store.delete_webhook_endpoint("acme", created)
    assert store.list_deliveries("acme").items == []  # its deliveries went with it
    assert store.get_webhook_endpoint("acme", created) is None


def test_secrets_are_stored_encrypted(store: Store) -> None:
    created, secret = store.create_webhook_endpoint("acme", "https://a.example")
    with store._read() as cur:  # type: ignore[attr-defined]
        stored = cur.execute("SELECT secret FROM webhook_endpoints").fetchone()[0]
    assert secret.removeprefix("whsec_") not in stored and stored.startswith("v1:")
    raw = __import__("base64").b64decode(secret.removeprefix("whsec_"))
    assert 24 <= len(raw) <= 64
    store.publish_events([event("e")])
    [claim] = store.claim_deliveries(1)
    assert claim.secrets == (secret,) and claim.endpoint_id == created.endpoint_id


def test_purge_deletes_finished_events_only_past_the_cutoff(store: Store) -> None:
    endpoint(store)
    written = store.clock()
    store.publish_events([event(n) for n in ("done", "dead", "waiting")])
    store.publish_events([event("nobody", event_type="x.y")], endpoint_id="ep_none")
    claims = {c.event_id: c for c in store.claim_deliveries(10)}
    done, dead = claims["done"], claims["dead"]
    store.complete_deliveries(
        [
            _result(done.delivery_id, done.lease_token),
            AttemptResult(dead.delivery_id, dead.lease_token, False, None, 500, "HTTP 500", 1, ""),
        ]
    )  # "waiting" stays claimed: pending
    assert store.delivery_counts("acme") == {"pending": 1, "delivered": 1, "failed": 1}
    # Nothing is older than a cutoff at the time of writing.
    assert store.purge_events(datetime.fromtimestamp(written - 1, UTC)) == 0
    after = datetime.fromtimestamp(store.clock() + 1, UTC)
    assert store.purge_events(after, chunk=1) == 3  # done, dead and the one no endpoint took
    assert store.get_event("acme", "done") is None and store.get_event("acme", "dead") is None
    assert store.get_event("acme", "nobody") is None
    assert store.get_event("acme", "waiting") is not None  # a pending delivery keeps it
    assert store.delivery_counts("acme") == {"pending": 1, "delivered": 0, "failed": 0}
    assert store.purge_events(after) == 0
    with pytest.raises(InvalidInputError) as exc:
        store.purge_events("yesterday")  # type: ignore[arg-type]
    assert exc.value.field == "before"


def test_concurrent_writers_of_one_event_add_its_deliveries_once(store: Store) -> None:
    if store.dialect != "postgres":
        pytest.skip("SQLite runs one writer at a time: no interleaving to test")
    import threading
    import time

    first, second = endpoint(store), endpoint(store)
    started = threading.Event()
    results: dict[str, Any] = {}

    def slow_writer() -> None:
        def work(cur: Any) -> None:
            results["a"] = store.write_events(cur, [event("race")], endpoint_id=first)
            started.set()
            time.sleep(0.5)  # the row is written, not committed: the other writer waits on it

        store.write(work)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert started.wait(5)
    results["b"] = store.publish_events([event("race")], endpoint_id=second)
    thread.join()
    assert (results["a"].events, results["a"].deliveries) == (1, 1)
    assert (results["b"].events, results["b"].deliveries) == (0, 0)  # skipped, no delivery
    (only,) = store.list_deliveries("acme").items
    assert only.endpoint_id == first
