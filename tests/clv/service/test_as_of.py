"""Records answer the requested time: explicit asOf vs "now" (record aging), snapshots as of
an explicit asOf (single = batch across processes), single flight across invalidation, and the
model fields' asOf."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from clvkit import DAY, T0, FakeClock, add_interactions, worked_tenant
from modelkit import add_buyers
from nextbest_clv.decisions.context import CLV_CONTEXT
from nextbest_clv.errors import ClvInputError, ClvSettingsError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.fits import fit_tenant_model
from nextbest_clv.service.model_records import MODEL_RECORDS_NAMESPACE

from nextbest import ContextRequest, DecisionRequest, Host
from nextbest.store import Store, TenantNotFoundError

FIELDS = ("clvScore", "predictedRevenue", "churnProbability", "rfmRecency", "segment")


@pytest.fixture
def service(store: Store, clock: FakeClock) -> ClvService:
    worked_tenant(store)
    return ClvService(store, clock)


def core(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}


def test_explicit_as_of_is_served_only_from_a_record_of_that_time(
    service: ClvService, store: Store
) -> None:
    service.compute_batch("acme", as_of=T0)
    assert service.get("acme", "ada", as_of=T0)["source"] == "cached"
    later = service.get("acme", "ada", as_of=T0 + 40 * DAY)
    assert (later["source"], later["rfmRecency"], later["segment"]) == ("computed", 45, "at_risk")
    assert later["computedAt"] == "2024-08-10T00:00:00Z"
    # Cached per asOf: the same asOf again is a cache hit, the batch's asOf still its record.
    assert core(service.get("acme", "ada", as_of=T0 + 40 * DAY)) == core(later)
    assert service.get("acme", "ada", as_of=T0 + 40 * DAY)["source"] == "cached"
    assert service.get("acme", "ada", as_of=T0)["rfmRecency"] == 5
    # The historic compute did not replace the stored (batch) record.
    assert store.get_document(RECORDS_NAMESPACE, "acme", "ada")["computedAt"] == (
        "2024-07-01T00:00:00Z"
    )
    # A fresh process (no cache) agrees.
    fresh = ClvService(store, service.clock)
    assert fresh.get("acme", "ada", as_of=T0)["source"] == "cached"
    assert fresh.get("acme", "ada", as_of=T0 + 40 * DAY)["rfmRecency"] == 45


def test_explicit_as_of_is_stored_when_no_record_exists(service: ClvService, store: Store) -> None:
    record = service.get("acme", "ada", as_of=T0 + DAY)
    assert record["source"] == "computed"
    assert store.get_document(RECORDS_NAMESPACE, "acme", "ada")["computedAt"] == (
        "2024-07-02T00:00:00Z"
    )


def test_now_reads_age_out_after_record_max_age(
    service: ClvService, store: Store, clock: FakeClock
) -> None:
    service.compute_batch("acme")  # as of now (T0)
    assert service.get("acme", "ada")["source"] == "cached"
    # A day later (the default recordMaxAgeSeconds) with nothing new: recency must count on.
    clock.advance(DAY - 1)
    service.invalidate_tenant("acme")
    assert service.get("acme", "ada")["rfmRecency"] == 5  # still the stored record
    clock.advance(1 + 30 * DAY)
    service.invalidate_tenant("acme")
    aged = service.get("acme", "ada")
    assert (aged["source"], aged["rfmRecency"], aged["segment"]) == ("computed", 36, "at_risk")
    # The now compute is the customer's stored record from then on.
    stored = store.get_document(RECORDS_NAMESPACE, "acme", "ada")
    assert stored["rfmRecency"] == 36
    service.update_settings("acme", {"recordMaxAgeSeconds": 3600})
    clock.advance(3599)
    assert service.get("acme", "ada")["source"] == "cached"
    clock.advance(301)  # past the cache TTL and the hour
    assert service.get("acme", "ada")["source"] == "computed"


def test_a_now_read_does_not_use_a_batch_of_another_time(
    service: ClvService, clock: FakeClock
) -> None:
    service.compute_batch("acme", as_of=T0)
    clock.advance(45 * DAY)
    record = service.get("acme", "ada")
    assert (record["source"], record["rfmRecency"]) == ("computed", 50)


def test_as_of_before_the_last_interaction_is_rejected_even_with_a_stored_record(
    service: ClvService,
) -> None:
    service.compute_batch("acme", as_of=T0)
    with pytest.raises(ClvInputError, match="before customer 'ada'"):
        service.get("acme", "ada", as_of=T0 - 10 * DAY)


def test_missing_tenant_is_named(service: ClvService) -> None:
    with pytest.raises(TenantNotFoundError, match="tenant 'nope' does not exist"):
        service.get("nope", "ada")


def test_decision_context_with_an_explicit_as_of_reads_that_time(store: Store) -> None:
    worked_tenant(store)
    host = Host(store=store)
    ClvService(store).compute_batch("acme", as_of=T0)
    names = frozenset({"customer.clv.recency_days", "customer.clv.segment"})

    def resolve(request: DecisionRequest) -> Any:
        as_of = request.as_of or datetime.now(UTC)
        return CLV_CONTEXT.resolve(ContextRequest("acme", request, as_of, names, host))

    at = DecisionRequest.model_validate({"customerId": "ada", "asOf": "2024-08-10T00:00:00Z"})
    assert resolve(at) == {"customer.clv.recency_days": 45, "customer.clv.segment": "at_risk"}
    batch_time = DecisionRequest.model_validate({"customerId": "ada", "asOf": "2024-07-01"})
    assert resolve(batch_time)["customer.clv.recency_days"] == 5


def tenant_with_later_buyers(store: Store) -> None:
    worked_tenant(store)
    # Customers first seen after T0 change the tenant's percentiles "now", not as of T0.
    for i in range(6):
        add_interactions(store, "acme", f"late{i}", [T0 + (i + 1) * DAY] * 30, [50.0] * 30)


def test_single_compute_in_a_fresh_process_equals_the_batch(store: Store, clock: FakeClock) -> None:
    tenant_with_later_buyers(store)
    clock.advance(10 * DAY)
    ClvService(store, clock).compute_batch("acme", as_of=T0)
    batch = store.get_documents(RECORDS_NAMESPACE, "acme")
    assert len(batch) == 6
    fresh = ClvService(store, clock)  # another process: its "now" snapshot differs
    fresh.get("acme", "late0")  # builds the now snapshot first, to make sure it is not reused
    for customer, stored in batch.items():
        single = fresh.recompute("acme", customer, as_of=T0)
        assert {k: single[k] for k in FIELDS} == {k: stored[k] for k in FIELDS}, customer


def test_invalidation_detaches_an_older_flight(store: Store, clock: FakeClock) -> None:
    worked_tenant(store)
    service = ClvService(store, clock)
    real = store.get_customer_summary
    entered, release = threading.Event(), threading.Event()
    first = threading.Event()

    def summary(tenant_id: str, customer_id: str) -> Any:
        value = real(tenant_id, customer_id)
        if not first.is_set():  # only the first read (the old flight) blocks
            first.set()
            entered.set()
            release.wait(30)
        return value

    store.get_customer_summary = summary  # type: ignore[method-assign]
    results: dict[str, dict[str, Any]] = {}
    old = threading.Thread(target=lambda: results.setdefault("old", service.get("acme", "ada")))
    old.start()
    assert entered.wait(30)  # the old flight has read the summary (48 interactions)
    add_interactions(store, "acme", "ada", [T0 - DAY], [40.0])
    service.invalidate("acme", "ada")
    new = threading.Thread(target=lambda: results.setdefault("new", service.get("acme", "ada")))
    new.start()
    new.join(30)  # joining the old flight would block here until release
    release.set()
    old.join(30)
    new.join(30)
    assert results["old"]["rfmFrequency"] == 48
    assert (results["new"]["rfmFrequency"], results["new"]["source"]) == (49, "computed")
    # The old flight's result was not cached: the next read sees 49.
    assert service.get("acme", "ada")["rfmFrequency"] == 49


def test_settings_report_every_problem_at_once(service: ClvService) -> None:
    with pytest.raises(ClvSettingsError) as info:
        service.update_settings(
            "acme",
            {
                "colour": "red",
                "atRiskDays": 0,
                "recencyWeight": 0.5,
                "segmentLowPercentile": 80,
            },
        )
    fields = [field for field, _ in info.value.problems]
    text = str(info.value)
    assert "colour" in fields and "atRiskDays" in fields
    assert "sum to 1" in text and "below segmentHighPercentile" in text
    for value in (True, "0.35"):
        with pytest.raises(ClvSettingsError, match="recencyWeight: Input should be a valid"):
            service.update_settings("acme", {"recencyWeight": value})
    with pytest.raises(ClvSettingsError, match="atRiskDays: Input should be a valid integer"):
        service.update_settings("acme", {"atRiskDays": True})
    ok = service.update_settings(
        "acme", {"recencyWeight": 1, "frequencyWeight": 0, "monetaryWeight": 0}
    )
    assert ok.recency_weight == 1.0
    with pytest.raises(ClvSettingsError, match="'cancel' cannot both start and end"):
        service.update_settings("acme", {"subscriptionStartOutcomes": ["subscribe", "cancel"]})


def model_tenant(store: Store, clock: FakeClock) -> ClvService:
    add_buyers(store, "acme", T0, n=60)
    add_interactions(store, "acme", "later", [T0 + 5 * DAY], [20.0])
    clock.advance(10 * DAY)
    service = ClvService(store, clock)
    fit_tenant_model(store, "acme", "bgnbd", service.get_settings("acme"), end=T0)
    service.update_settings("acme", {"model": "bgnbd"})
    compute_records(service, "acme", as_of=T0)
    return service


def test_model_batch_skips_customers_after_its_as_of(store: Store, clock: FakeClock) -> None:
    model_tenant(store, clock)
    stored = store.get_documents(MODEL_RECORDS_NAMESPACE, "acme")
    # A customer whose last interaction is after the batch's asOf gets no (cut-off) fields.
    assert "later" not in stored
    assert len(stored) == 60


def test_model_fields_follow_the_requested_as_of(store: Store, clock: FakeClock) -> None:
    service = model_tenant(store, clock)
    stored = store.get_documents(MODEL_RECORDS_NAMESPACE, "acme")
    buyer = next(c for c, d in stored.items() if d["probabilityAlive"] is not None)
    at_batch = service.get("acme", buyer, as_of=T0)
    assert at_batch["probabilityAlive"] == stored[buyer]["probabilityAlive"]
    # Another asOf (namespace untouched): computed for that time, not the batch's fields.
    later = service.get("acme", buyer, as_of=T0 + 200 * DAY)
    assert later["expectedPurchases90d"] != stored[buyer]["expectedPurchases90d"]
    assert store.get_document(MODEL_RECORDS_NAMESPACE, "acme", buyer) == stored[buyer]
