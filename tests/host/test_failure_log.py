"""Plugin failures are logged once per decision and plugin hook (with the number of failures and
offers), and at most once per interval per plugin hook and host (the lines in between are
counted and reported with the next one); the trace keeps one entry per failure."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import CountingPlugin, counting, decide, flow, inventory, qualify, rank, score

from nextbest import Host, hookimpl
from nextbest.engine.state import FAILURE_LOG_INTERVAL, FAILURE_LOG_KEY, FailureLog

OFFERS = [{"id": f"o{i:02}", "priority": 50} for i in range(30)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing_flow() -> dict[str, Any]:
    return flow(
        inventory(),
        qualify(counting("boom", fail=True)),
        score(method="priority_weighted"),
        rank(),
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nextbest.engine"]


@pytest.fixture
def counting_host(make_host: Any) -> Any:
    return make_host(CountingPlugin())


def test_one_line_per_decision_and_hook_with_the_count_and_every_trace_entry(
    counting_host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="nextbest.engine"):
        decision = decide(counting_host, failing_flow(), OFFERS)
    assert decision.items == []
    assert lines(caplog) == [
        "plugin 'CountingPlugin' failed 30 time(s) in rule type counting (30 offer(s); flow "
        "'t', tenant 't1'): RuntimeError: counting rule boom exploded; offer dropped"
    ]
    assert decision.trace is not None
    assert sorted(f.offer_id or "" for f in decision.trace.failures) == [o["id"] for o in OFFERS]


def test_lines_are_rate_limited_across_decisions_with_a_count_of_the_rest(
    counting_host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    counting_host.plugin_state(FAILURE_LOG_KEY, lambda: FailureLog(clock=clock))
    with caplog.at_level("WARNING", logger="nextbest.engine"):
        for explain in (True, False, False, True, False):
            decide(counting_host, failing_flow(), OFFERS[:4], explain=explain)
            clock.now += 1
        assert len(lines(caplog)) == 1  # the first decision's line only
        clock.now += FAILURE_LOG_INTERVAL
        decide(counting_host, failing_flow(), OFFERS[:2], explain=False)
    first, later = lines(caplog)
    assert "failed 4 time(s)" in first and "more failure(s)" not in first
    assert later.startswith("plugin 'CountingPlugin' failed 2 time(s) in rule type counting")
    assert later.endswith("[16 more failure(s) in 4 decision(s) not logged in the last 60 s]")


class _Broken:
    """A second plugin failing in other hooks of the same decision."""

    @hookimpl
    def register_functions(self, register: Any) -> None:
        def boom(x: Any) -> Any:
            raise RuntimeError("pricing service down")

        register("boom", boom)

    @hookimpl
    def post_rank(self, decision: Any, ranked: Any) -> Any:
        raise RuntimeError("reorder failed")


def test_each_plugin_hook_has_its_own_line_and_each_host_its_own_limit(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    doc = flow(
        inventory(),
        {"type": "compute", "id": "c", "config": {"fields": [{"name": "m", "formula": "boom(1)"}]}},
        score(method="priority_weighted"),
        rank(),
        {"type": "extension_point", "id": "pr", "config": {"hook": "post_rank"}},
    )
    first, second = make_host(_Broken()), make_host(_Broken())
    with caplog.at_level("WARNING", logger="nextbest.engine"):
        decide(first, doc, OFFERS[:3])
        decide(first, doc, OFFERS[:3])  # within the interval: not logged
        decide(second, doc, OFFERS[:3])  # another host: logged
    logged = lines(caplog)
    assert len(logged) == 4
    assert sum("in function boom (3 offer(s)" in line for line in logged) == 2
    assert sum("in post_rank (the decision;" in line for line in logged) == 2


def test_failure_log_is_thread_safe_and_counts_everything() -> None:
    import threading

    messages: list[str] = []

    class Sink:
        def warning(self, message: str) -> None:
            messages.append(message)

    clock = Clock()
    failure_log = FailureLog(clock=clock, logger=Sink())  # type: ignore[arg-type]
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(100):
            failure_log.report("p", "h", 2, 1, "E", "a", "here")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.now += FAILURE_LOG_INTERVAL
    assert failure_log.report("p", "h", 1, 0, "E", "a", "here")
    assert len(messages) == 2
    assert messages[1].endswith(
        "[1598 more failure(s) in 799 decision(s) not logged in the last 60 s]"
    )


class _FailingListener:
    """A plugin whose after-commit hook fails on every recorded outcome."""

    @hookimpl
    def outcome_recorded(self, host: Any, tenant_id: str, interaction: Any) -> None:
        raise RuntimeError("crm unreachable")


def test_after_commit_hook_failures_are_rate_limited_too(
    make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = make_host(_FailingListener())
    clock = Clock()
    host.plugin_state(FAILURE_LOG_KEY, lambda: FailureLog(clock=clock))
    with caplog.at_level("WARNING", logger="nextbest"):
        for _ in range(5):
            failures = host.notify_outcome("acme", object())
            assert failures == [("_FailingListener", "RuntimeError: crm unreachable")]
            clock.now += 1
        clock.now += FAILURE_LOG_INTERVAL
        host.notify_outcome("acme", object())
    logged = [r.getMessage() for r in caplog.records if "_FailingListener" in r.getMessage()]
    assert len(logged) == 2, logged
    assert logged[0] == (
        "plugin '_FailingListener' failed 1 time(s) in outcome_recorded (the call; tenant "
        "'acme'): RuntimeError: crm unreachable; what was committed stands"
    )
    assert logged[1].endswith("[4 more failure(s) in 4 call(s) not logged in the last 60 s]")
