"""The retry schedule: when a failed attempt is tried again, and when a delivery gives up.

The default: 8 attempts over about a day. After the first attempt fails the next comes after
5 s, then 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (27 h 35 min in all); after the eighth the
delivery is ``failed`` (the dead letter: see it with ``status=failed``, send it again with
redeliver or replay). Every pause is jittered by up to +-20 % so that deliveries which failed
together are not retried in lockstep. Configure it with ``NEXTBEST_WEBHOOK_RETRY_SCHEDULE`` or
``--retry-schedule``, e.g. ``"10s,1m,10m"`` (4 attempts).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PAUSE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
#: The longest pause the schedule accepts between two attempts (7 days).
MAX_PAUSE = 7 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds of ``"5s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"250ms"``; ValueError if not."""
    match = _PAUSE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a duration: use e.g. 30s, 5m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class RetrySchedule:
    """Pauses between attempts (``pauses[n]`` follows attempt ``n + 1``); a delivery makes at
    most ``len(pauses) + 1`` attempts. ``jitter`` spreads each pause by up to that fraction
    either way; ``random`` draws from [0, 1) (tests make it fixed)."""

    pauses: tuple[float, ...]
    jitter: float = 0.2
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if len(self.pauses) > 50 or any(not 0 <= p <= MAX_PAUSE for p in self.pauses):
            raise ValueError("a retry schedule holds at most 50 pauses of 0 s to 7 d")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be from 0 to below 1")

    @classmethod
    def parse(cls, text: str, jitter: float = 0.2) -> RetrySchedule:
        """A schedule from ``"5s,5m,30m"`` (an empty text: a single attempt)."""
        parts = [p for p in text.split(",") if p.strip()]
        return cls(tuple(parse_duration(p) for p in parts), jitter)

    @property
    def max_attempts(self) -> int:
        """How many attempts a delivery makes before it fails."""
        return len(self.pauses) + 1

    def pause_after(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based), None when it was the
        last."""
        if attempt >= self.max_attempts:
            return None
        base = self.pauses[max(attempt, 1) - 1]
        return base * (1 + self.jitter * (2 * self.random() - 1))

    def describe(self) -> str:
        """The schedule as text, e.g. ``5s,5m,30m``."""
        return ",".join(_format(p) for p in self.pauses)


def _format(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


DEFAULT_SCHEDULE = RetrySchedule((5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0))


def schedule_of(pauses: Sequence[float], jitter: float = 0.0) -> RetrySchedule:
    """A schedule of these pauses (tests: ``schedule_of([0, 0])`` retries at once, twice)."""
    return RetrySchedule(tuple(float(p) for p in pauses), jitter)


__all__ = ["DEFAULT_SCHEDULE", "MAX_PAUSE", "RetrySchedule", "parse_duration", "schedule_of"]
