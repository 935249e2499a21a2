"""ClvService through a real SQLite store: records, cache, single flight, batch, settings."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

import pytest
from clvkit import DAY, T0, FakeClock, add_interactions, worked_tenant
from nextbest_clv.errors import ClvInputError, ClvSettingsError, NoInteractionsError, NoStoreError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService, attach, service_for
from nextbest_clv.service.per_host import SERVICE_KEY
from nextbest_clv.service.records import RECORD_FIELDS

from nextbest import Host
from nextbest.store import InteractionIn, Store, TenantNotFoundError

EXACT_FIELDS = [
    "customerId",
    "clvScore",
    "predictedRevenue",
    "churnProbability",
    "rfmRecency",
    "rfmFrequency",
    "rfmMonetary",
    "segment",
    "computedAt",
    "source",
]


@pytest.fixture
def service(store: Store, clock: FakeClock) -> ClvService:
    worked_tenant(store)
    return ClvService(store, clock)


def test_worked_example_end_to_end(service: ClvService) -> None:
    record = service.get("acme", "ada")
    assert list(record) == EXACT_FIELDS == list(RECORD_FIELDS)
    assert record["source"] == "computed"
    assert record["rfmRecency"] == 5
    assert record["rfmFrequency"] == 48
    assert record["rfmMonetary"] == 360.0
    assert record["predictedRevenue"] == 1440.00
    assert round(record["churnProbability"], 3) == 0.119
    assert record["churnProbability"] == 1 / (1 + math.exp(2.0))
    assert record["segment"] == "high"
    # R pct 7/12, F and M pct 11/12: 100 * (0.35*7/12 + 0.35*11/12 + 0.30*11/12) = 80
    assert record["clvScore"] == 80
    assert record["computedAt"] == "2024-07-01T00:00:00Z"
    again = service.get("acme", "ada")
    assert again["source"] == "cached"
    assert {k: v for k, v in again.items() if k != "source"} == {
        k: v for k, v in record.items() if k != "source"
    }


def test_no_interactions_and_as_of_errors(service: ClvService) -> None:
    with pytest.raises(NoInteractionsError, match="no recorded interactions") as info:
        service.get("acme", "nobody")
    assert info.value.code == "clv_no_interactions"
    with pytest.raises(NoInteractionsError):
        service.get("globex", "ada")  # another tenant's customer
    with pytest.raises(ClvInputError, match="before customer 'ada'"):
        service.recompute("acme", "ada", as_of=T0 - 10 * DAY)


def test_cache_hit_miss_and_invalidation_with_fake_clock(
    service: ClvService, store: Store, clock: FakeClock
) -> None:
    assert service.get("acme", "ada")["source"] == "computed"
    assert service.computes == 1
    assert service.get("acme", "ada")["source"] == "cached"
    assert service.computes == 1
    # A new interaction without invalidation: the in-process cache serves the old record ...
    add_interactions(store, "acme", "ada", [T0 - 1 * DAY], [40.0])
    assert service.get("acme", "ada")["rfmFrequency"] == 48
    # ... until the TTL (300 s by default) passes; the stored record no longer matches the
    # summary, so it is recomputed.
    clock.advance(299)
    assert service.get("acme", "ada")["rfmFrequency"] == 48
    clock.advance(2)
    fresh = service.get("acme", "ada")
    assert (fresh["source"], fresh["rfmFrequency"], fresh["rfmMonetary"]) == ("computed", 49, 400)
    assert service.computes == 2
    # After the TTL with nothing new, the stored record is served (no compute).
    clock.advance(301)
    assert service.get("acme", "ada")["source"] == "cached"
    assert service.computes == 2
    # invalidate (the outcome hook) makes the next read see the new interaction at once.
    add_interactions(store, "acme", "ada", [T0], [10.0])
    service.invalidate("acme", "ada")
    latest = service.get("acme", "ada")
    assert (latest["source"], latest["rfmFrequency"], latest["rfmRecency"]) == ("computed", 50, 0)
    assert service.computes == 3


def test_cache_keys_are_per_tenant(store: Store, clock: FakeClock) -> None:
    add_interactions(store, "acme", "c1", [T0 - DAY], [5.0])
    add_interactions(store, "globex", "c1", [T0 - 40 * DAY, T0 - 35 * DAY], [1.0, 2.0])
    service = ClvService(store, clock)
    a, g = service.get("acme", "c1"), service.get("globex", "c1")
    assert (a["rfmFrequency"], g["rfmFrequency"]) == (1, 2)
    assert service.get("globex", "c1")["segment"] == "at_risk"
    service.invalidate("acme", "c1")
    assert service.get("globex", "c1")["source"] == "cached"


def test_concurrent_first_reads_compute_once(service: ClvService, store: Store) -> None:
    release = threading.Event()
    entered = threading.Event()
    real = store.get_customer_summary
    calls = []

    def blocking_summary(tenant_id: str, customer_id: str):  # type: ignore[no-untyped-def]
        calls.append(customer_id)
        entered.set()
        release.wait(10)
        return real(tenant_id, customer_id)

    store.get_customer_summary = blocking_summary  # type: ignore[method-assign]
    results: list[dict] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(service.get("acme", "ada"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    threads[0].start()
    assert entered.wait(10)
    for t in threads[1:]:
        t.start()
    # Wait until the seven followers block on the leader's result, then let the leader go.
    flight = service._cache._flights[("acme", "ada")][None]  # the "now" flight
    while len(flight.future._condition._waiters) < 7:  # type: ignore[attr-defined]
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join(10)
    assert not errors
    assert calls == ["ada"]
    assert service.computes == 1
    assert sorted(r["source"] for r in results) == ["cached"] * 7 + ["computed"]
    assert len({r["clvScore"] for r in results}) == 1


def test_eight_threads_reading_and_invalidating(service: ClvService, store: Store) -> None:
    errors: list[BaseException] = []
    seen: list[int] = []
    lock = threading.Lock()

    def reader() -> None:
        try:
            for _ in range(60):
                freq = service.get("acme", "ada")["rfmFrequency"]
                with lock:
                    seen.append(freq)
        except BaseException as exc:
            errors.append(exc)

    def writer(w: int) -> None:
        try:
            for i in range(5):
                add_interactions(store, "acme", "ada", [T0 - DAY + w * 60 + i], [1.0])
                service.invalidate("acme", "ada")
                service.get("acme", "ada")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(48 <= f <= 68 for f in seen)
    # Every invalidation happened after its write: the final read sees all 20 new interactions.
    final = service.get("acme", "ada")
    assert final["rfmFrequency"] == 68
    assert final["rfmMonetary"] == 380.0


def test_single_and_batch_give_identical_records(service: ClvService, store: Store) -> None:
    result = service.compute_batch("acme", as_of=T0)
    assert result.computed == 6
    assert result.counts == {"at_risk": 2, "high": 2, "medium": 2, "low": 0}
    assert result.failed == 0
    stored = store.get_documents(RECORDS_NAMESPACE, "acme")
    for customer in ("ada", "bob", "cy", "dee", "eve", "fay"):
        batch_record = service.get("acme", customer)
        assert batch_record["source"] == "cached"  # served from the batch's stored record
        single = service.recompute("acme", customer, as_of=T0)
        assert single["source"] == "computed"
        assert {k: v for k, v in single.items() if k != "source"} == {
            k: v for k, v in batch_record.items() if k != "source"
        }
        assert stored[customer]["clvScore"] == single["clvScore"]


def test_batch_of_one_segment_and_failures(service: ClvService, store: Store) -> None:
    result = service.compute_batch("acme", segment="at_risk", as_of=T0)
    assert result.computed == 2
    assert result.counts == {"at_risk": 2, "high": 0, "medium": 0, "low": 0}
    assert sorted(store.get_documents(RECORDS_NAMESPACE, "acme")) == ["cy", "eve"]
    # asOf before some customers' last interaction: they fail, the others are scored.
    early = service.compute_batch("acme", as_of=T0 - 3 * DAY)
    assert early.failed == 2  # dee (last 2 days before T0) and fay (1 day)
    assert {f["customerId"] for f in early.failures} == {"dee", "fay"}
    assert "is after asOf 2024-06-28T00:00:00Z" in early.failures[0]["reason"]
    assert early.computed == 4
    with pytest.raises(ClvInputError, match="unknown segment"):
        service.compute_batch("acme", segment="vip")
    with pytest.raises(TenantNotFoundError):
        service.compute_batch("nope")


def test_batch_failure_leaves_previous_records(service: ClvService, store: Store) -> None:
    service.compute_batch("acme", as_of=T0)
    before = store.get_documents(RECORDS_NAMESPACE, "acme")
    add_interactions(store, "acme", "ada", [T0 + DAY], [100.0])

    def explode(done: int, total: int) -> None:
        if done >= 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        service.compute_batch("acme", as_of=T0 + 2 * DAY, progress=explode)
    assert store.get_documents(RECORDS_NAMESPACE, "acme") == before
    progress: list[tuple[int, int]] = []
    service.compute_batch("acme", as_of=T0 + 2 * DAY, progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (6, 6)
    assert store.get_document(RECORDS_NAMESPACE, "acme", "ada")["rfmFrequency"] == 49


def test_settings_validation_and_invalidation(service: ClvService, clock: FakeClock) -> None:
    assert service.get_settings("acme").recency_weight == 0.35
    bad = [
        ({"recencyWeight": 0.5}, "sum to 1"),
        ({"recencyWeight": -0.1, "frequencyWeight": 0.8}, "greater than or equal to 0"),
        ({"segmentLowPercentile": 80}, "below segmentHighPercentile"),
        ({"segmentHighPercentile": 100}, "less than 100"),
        ({"atRiskDays": 0}, "greater than 0"),
        ({"lifespanMonths": -1}, "greater than 0"),
        ({"cacheTtlSeconds": 0}, "greater than 0"),
        ({"schedule": "every day"}, "five-field cron"),
        ({"colour": "red"}, "unknown setting"),
    ]
    for changes, message in bad:
        with pytest.raises(ClvSettingsError, match=message):
            service.update_settings("acme", changes)
    assert service.get("acme", "ada")["segment"] == "high"
    updated = service.update_settings("acme", {"atRiskDays": 5, "schedule": "15 3 * * *"})
    assert (updated.at_risk_days, updated.schedule) == (5, "15 3 * * *")
    # The cached and stored records were computed with other settings: recomputed.
    record = service.get("acme", "ada")
    assert (record["source"], record["segment"]) == ("computed", "at_risk")
    # A new service (another process) reads the stored settings.
    assert ClvService(service.store, clock).get_settings("acme").at_risk_days == 5
    assert service.get_settings("globex").at_risk_days == 30


def test_outcome_hook_invalidates_through_the_host(store: Store) -> None:
    add_interactions(store, "acme", "kim", [T0 - 3 * DAY], [10.0])
    host = Host(store=store)
    service = attach(host)
    assert service is not None
    first = service.get("acme", "kim")
    assert first["rfmFrequency"] == 1
    add_interactions(store, "acme", "kim", [T0 - DAY], [5.0])
    interaction = next(i for i in store.iter_interactions("acme", "kim") if i.value == 5.0)
    assert host.notify_outcome("acme", interaction) == []
    assert service.get("acme", "kim")["rfmFrequency"] == 2


def test_each_host_keeps_its_own_service(store: Store) -> None:
    """The service lives in the host's plugin state: the hooks, the context provider and the
    routes of one host share it; another host (or a host without a store) never sees it."""
    host, other = Host(store=store), Host(store=store)
    service = attach(host)
    assert service is not None and service is attach(host) is service_for(host)
    assert host.plugin_state(SERVICE_KEY, lambda: None) is service
    assert attach(other) is not service
    assert attach(Host()) is None
    with pytest.raises(NoStoreError, match="this host has no store"):
        service_for(Host())


def test_distribution(service: ClvService) -> None:
    dist = service.distribution("acme", as_of=T0)
    assert dist["customers"] == 6
    assert dist["counts"] == {"at_risk": 2, "high": 2, "medium": 2, "low": 0}
    assert [b["count"] for b in dist["histogram"]] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 0]
    assert dist["segmentThresholds"] == {"high": 70.75, "low": 35.25}


def test_a_corrected_value_alone_makes_the_stored_record_stale(
    store: Store, clock: FakeClock
) -> None:
    """A corrected export (same order, same time, new amount) replaced in bulk calls no hook:
    the stored record must still not be served, in this process or another."""

    def order(value: float) -> InteractionIn:
        return InteractionIn(
            customer_id="kim",
            outcome="conversion",
            idempotency_key="order-17",
            value=value,
            occurred_at=datetime.fromtimestamp(T0 - DAY, UTC),
        )

    store.record_interactions_bulk("acme", [order(10.0)])
    first = ClvService(store, clock).get("acme", "kim", as_of=T0)
    assert first["source"] == "computed" and first["rfmMonetary"] == 10.0
    assert ClvService(store, clock).get("acme", "kim", as_of=T0)["source"] == "cached"
    result = store.record_interactions_bulk("acme", [order(25.0)], replace=True)
    assert result.replaced == 1
    again = ClvService(store, clock).get("acme", "kim", as_of=T0)
    assert (again["source"], again["rfmMonetary"]) == ("computed", 25.0)
