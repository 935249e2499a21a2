"""The CLV scheduler: due jobs by cron, one runner across processes (store lock)."""

from __future__ import annotations

from datetime import UTC, datetime

from clvkit import FakeClock, worked_tenant
from nextbest_clv.scheduler import ClvScheduler, next_run
from nextbest_clv.service import CONFIG_NAMESPACE, SCHEDULE_STATE_KEY, ClvService
from nextbest_clv.service.history import list_snapshots

from nextbest.store import Store


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_next_run() -> None:
    assert next_run("15 3 * * *", ts("2024-07-01T00:00:00")) == ts("2024-07-01T03:15:00")
    assert next_run("15 3 * * *", ts("2024-07-01T03:15:00")) == ts("2024-07-02T03:15:00")


def test_runs_when_due_and_only_once_across_processes(store: Store) -> None:
    worked_tenant(store)
    clock = FakeClock(ts("2024-07-01T00:00:00"))
    # Two "processes": separate services and schedulers on the same database.
    first = ClvScheduler(ClvService(store, clock), clock=clock)
    second = ClvScheduler(ClvService(store, clock), clock=clock)
    first.service.update_settings("acme", {"schedule": "15 3 * * *"})
    assert first.run_due() == [] and second.run_due() == []  # not due before 03:15
    clock.advance(3 * 3600 + 15 * 60)
    # Another process holds the tenant's job lock: this one skips the job.
    held = store.try_lock("clv-schedule.acme", 60)
    assert held is not None
    assert first.run_due() == []
    held.release()
    results = first.run_due()
    assert [r.tenant_id for r in results] == ["acme"]
    assert results[0].computed == 6
    assert second.run_due() == []  # already run for this slot
    state = store.get_document(CONFIG_NAMESPACE, "acme", SCHEDULE_STATE_KEY)
    assert state["lastRun"] == ts("2024-07-01T03:15:00")
    assert state["lastResult"]["counts"]["high"] >= 1
    assert state["lastResult"]["snapshot"] == results[0].snapshot  # the history's snapshot
    clock.advance(24 * 3600)
    assert len(second.run_due()) == 1  # the next day's slot, run by whichever process is first
    assert first.run_due() == []
    snapshots, _ = list_snapshots(store, "acme")
    assert [s["asOf"] for s in snapshots] == ["2024-07-02T03:15:00Z", "2024-07-01T03:15:00Z"]


def test_tenants_without_schedule_are_skipped(store: Store) -> None:
    worked_tenant(store)
    clock = FakeClock(ts("2024-07-01T00:00:00"))
    scheduler = ClvScheduler(ClvService(store, clock), clock=clock)
    clock.advance(10 * 86_400)
    assert scheduler.run_due() == []


def test_each_tenant_is_computed_as_of_its_turn(store: Store) -> None:
    """Tenants due together run one after another; each batch is as of the time its turn
    comes, not of the first tenant's, so its records (and its triggers) are of the present."""
    worked_tenant(store)
    worked_tenant(store, "globex")
    clock = FakeClock(ts("2024-07-01T00:00:00"))
    service = ClvService(store, clock)
    scheduler = ClvScheduler(service, clock=clock)
    for tenant in ("acme", "globex"):
        service.update_settings(tenant, {"schedule": "15 3 * * *"})
    scheduler.run_due()
    clock.advance(3 * 3600 + 15 * 60)
    real = service.compute_batch

    def slow(tenant_id: str, **kwargs: object) -> object:
        result = real(tenant_id, **kwargs)  # type: ignore[arg-type]
        clock.advance(2 * 3600)  # this tenant's batch takes two hours
        return result

    service.compute_batch = slow  # type: ignore[method-assign]
    results = scheduler.run_due()
    assert [r.tenant_id for r in results] == ["acme", "globex"]
    assert results[1].as_of - results[0].as_of == 2 * 3600
