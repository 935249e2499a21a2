"""No ``regex`` condition can stall the process: the patterns that backtracked for seconds (or
forever) with Python's ``re`` run in a child process against the longest value a condition
matches, and again on 64 times that to show the matching is linear.

A child process, because a backtracking ``re`` match holds the GIL: a thread-based timeout could
not even fire. The child reports each step on stdout; the parent allows a generous start-up,
then a budget far above what RE2 needs (milliseconds) and far below what backtracking needs
(seconds to centuries). No timing is asserted beyond that budget (benchmarks/regex.py measures).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from nextbest.builtin.patterns import MAX_REGEX_INPUT

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120.0  # importing the host on a busy machine
BUDGET_SECONDS = 30.0  # every decision and search below; RE2 needs well under one second

# (pattern, the hostile text it is matched against as a function of its length, whether the
# pattern matches it): the patterns from the issue and the ones today's guard used to refuse.
CASES: list[tuple[str, str, bool]] = [
    (r"(a|a)*$", "a_then_bang", True),  # the empty match at the end
    (r"(a|aa)*$", "a_then_bang", True),
    (r"(a|b|ab)*c", "ab", False),
    (r"a*a*a*a*a*a*b", "a", False),
    (r"^(.*)(.*)(.*)(.*)(.*)!$", "a", False),
    (r"(.*a){20}", "few_a", False),
    (r"(.*a){20}", "a", True),
    (r"^(a+)+$", "a_then_bang", False),
    (r"(.*,)*x", "comma", False),
    (r"(?:\w+\.)+com", "a_dot", False),
]

CHILD = r"""
import json, sys
from nextbest import Host
from nextbest.builtin.patterns import compile_pattern

def text(kind, n):
    if kind == "a_then_bang":
        return "a" * (n - 1) + "!"
    if kind == "ab":
        return "ab" * (n // 2)
    if kind == "few_a":
        return "a" * 19 + "b" * (n - 19)
    if kind == "comma":
        return "," * n
    if kind == "a_dot":
        return "a." * (n // 2)
    return "a" * n

cases, limit = json.loads(sys.argv[1]), int(sys.argv[2])
host = Host()
offers = host.load_offers([{"id": "o", "priority": 50}])
flows = []
for pattern, kind, _ in cases:
    rule = {"id": "r", "ruleType": "attribute_condition",
            "config": {"attribute": "v", "operator": "regex", "value": pattern}}
    flows.append(host.load_flow({"key": "f", "version": 2, "nodes": [
        {"type": "inventory", "id": "inv"},
        {"type": "qualify", "id": "q", "config": {"rules": [rule]}},
        {"type": "score", "id": "s", "config": {"method": "priority_weighted"}},
        {"type": "rank", "id": "rk"}]}))
print("ready", flush=True)
for (pattern, kind, _), flow in zip(cases, flows):
    value = text(kind, limit)
    assert len(value) == limit
    decision = host.decide("t", {"customerId": "c", "attributes": {"v": value}},
                           flow=flow, offers=offers)
    print(json.dumps(["decided", pattern, kind, bool(decision.items)]), flush=True)
for pattern, kind, _ in cases:
    compiled = compile_pattern(pattern)
    found = [compiled.search(text(kind, n)) for n in (limit, 64 * limit)]
    print(json.dumps(["linear", pattern, kind, found]), flush=True)
print(json.dumps(["done"]), flush=True)
"""


def _lines(stream: object, out: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put(None)


def test_hostile_patterns_match_in_bounded_linear_time() -> None:
    env = {
        **os.environ,
        "NEXTBEST_PLUGINS": "builtin",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(CASES), str(MAX_REGEX_INPUT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=STARTUP_SECONDS)
        assert first == "ready\n", f"child failed to start: {first!r} {child.stderr.read()!r}"  # type: ignore[union-attr]
        results = []
        while True:
            try:
                line = lines.get(timeout=BUDGET_SECONDS)
            except queue.Empty:
                raise AssertionError(
                    f"matching stalled for {BUDGET_SECONDS} s after {results[-1:]}"
                ) from None
            assert line is not None, f"child died: {child.stderr.read()!r}"  # type: ignore[union-attr]
            results.append(json.loads(line))
            if results[-1] == ["done"]:
                break
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    decided = [(p, k, passed) for tag, p, k, passed in results[:-1] if tag == "decided"]
    linear = [(p, k, found) for tag, p, k, found in results[:-1] if tag == "linear"]
    # every decision ran its condition on the longest value, with RE2's (correct) answer
    assert decided == CASES
    # the same searches on 1k and 64k characters completed, with consistent answers
    assert linear == [(p, k, [expected, expected]) for p, k, expected in CASES]
