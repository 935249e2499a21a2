"""``regex`` conditions: the worst patterns the limits accept, as ratios against a baseline
measured in the same run.

Each pattern is compiled fresh (a cold automaton: the worst case, since RE2 caches the states it
builds) and matched against a hostile value of MAX_REGEX_INPUT characters. Figures:
- the slowest of the hostile patterns from the issue and of patterns built to be as costly as
  the program-size limit allows, in ms (target: a few ms), and as a ratio to the baseline
  (the pattern ``a`` on the same value);
- linearity: the same searches on 64 times the text, as a ratio (linear: about 64);
- for contrast, Python's ``re`` on ``(a|a)*$`` at 16 and 20 characters (exponential: each 4
  more characters cost about 16 times as much; the issue's 40 characters would take hours).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import re2

from nextbest.builtin.patterns import MAX_PROGRAM_SIZE, MAX_REGEX_INPUT, compile_pattern

N = MAX_REGEX_INPUT
random.seed(7)
_AB = "".join(random.choice("ab") for _ in range(64 * N))


def texts(kind: str, n: int) -> str:
    return {
        "a": "a" * n,
        "a!": "a" * (n - 1) + "!",
        "ab": "ab" * (n // 2),
        "few_a": "a" * 19 + "b" * (n - 19),
        "random_ab": _AB[:n],
    }[kind]


ISSUE = [
    ("(a|a)*$", "a!"),
    ("(a|aa)*$", "a!"),
    ("(a|b|ab)*c", "ab"),
    ("a*a*a*a*a*a*b", "a"),
    ("^(.*)(.*)(.*)(.*)(.*)!$", "a"),
    ("(.*a){20}", "few_a"),
]
# As costly as the limit allows: a DFA state per character, each as large as the program.
AT_THE_LIMIT = [
    ("(a|b)*a(a|b){%d}", "random_ab"),
    ("[ab]*a[ab]{%d}", "random_ab"),
    ("(?s).*a.{%d}", "random_ab"),
    ("(.*a){%d}", "random_ab"),
]


def largest(template: str) -> str:
    """The template with the largest count the program-size limit accepts."""
    best, low, high = template % 1, 1, 1000
    while low <= high:
        mid = (low + high) // 2
        try:
            compile_pattern(template % mid)
        except ValueError:
            high = mid - 1
        else:
            best, low = template % mid, mid + 1
    return best


def cold_ms(pattern: str, text: str, repeat: int = 9) -> float:
    """Best of ``repeat`` searches, each with a freshly compiled pattern (empty state cache)."""
    best = float("inf")
    for _ in range(repeat):
        re2.purge()
        compiled = compile_pattern(pattern)
        started = time.perf_counter()
        compiled.search(text)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    cases = ISSUE + [(largest(t), kind) for t, kind in AT_THE_LIMIT]
    print(f"regex: {len(cases)} hostile patterns on {N} characters (limit {MAX_PROGRAM_SIZE} "
          "instructions), cold")  # fmt: skip
    worst = ("", 0.0, 0.0, 0.0)
    for pattern, kind in cases:
        base = cold_ms("a", texts(kind, N))
        ms = cold_ms(pattern, texts(kind, N))
        big = cold_ms(pattern, texts(kind, 64 * N), repeat=3)
        print(f"  {pattern[:28]:<30} {ms:7.3f} ms  ({ms / base:6.0f}x 'a')  64x text: "
              f"{big / ms:5.1f}x time")  # fmt: skip
        if ms > worst[1]:
            worst = (pattern, ms, ms / base, big / ms)
    print(f"  slowest: {worst[0][:28]} {worst[1]:.2f} ms on {N} characters (target: a few ms); "
          f"64x the text took {worst[3]:.0f}x the time (linear: ~64)")  # fmt: skip
    slow = re.compile("(a|a)*$")
    t16 = timed(lambda: slow.search("a" * 15 + "!"))
    t20 = timed(lambda: slow.search("a" * 19 + "!"))
    print(f"  contrast, Python re on (a|a)*$: 16 chars {t16:.1f} ms, 20 chars {t20:.1f} ms "
          f"({t20 / t16:.0f}x for 4 more characters)")  # fmt: skip


if __name__ == "__main__":
    main()
