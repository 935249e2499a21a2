"""The deliverer's settings, from arguments or the environment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..version import __version__
from .schedule import DEFAULT_SCHEDULE, RetrySchedule
from .targets import TargetPolicy

#: ``1``/``true``/``yes``: webhooks may go to loopback, private, link-local and reserved
#: addresses (tests, receivers on the same network).
ALLOW_PRIVATE_ENV = "NEXTBEST_WEBHOOKS_ALLOW_PRIVATE"
#: The retry schedule, e.g. ``5s,5m,30m,2h,5h,10h,10h`` (see :mod:`.schedule`).
RETRY_SCHEDULE_ENV = "NEXTBEST_WEBHOOK_RETRY_SCHEDULE"
#: Days finished outbox events are kept (``0``: forever), see ``WebhookSettings``.
RETENTION_ENV = "NEXTBEST_WEBHOOK_RETENTION_DAYS"
#: The default of ``retention_days``: long enough to replay a month of failed deliveries.
DEFAULT_RETENTION_DAYS = 30.0


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` says yes (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def retention_from_env() -> float:
    """``NEXTBEST_WEBHOOK_RETENTION_DAYS`` (else the default); ValueError when it is not a
    number of days."""
    text = os.environ.get(RETENTION_ENV, "").strip()
    try:
        days = float(text) if text else DEFAULT_RETENTION_DAYS
    except ValueError:
        raise ValueError(f"{RETENTION_ENV} must be a number of days, got {text!r}") from None
    if not (math.isfinite(days) and 0 <= days <= 36500):
        raise ValueError(f"{RETENTION_ENV} must be from 0 (keep forever) to 36500 days")
    return days


@dataclass(frozen=True)
class WebhookSettings:
    """How webhooks are delivered.

    ``concurrency`` requests run at once; a deliverer claims ``batch_size`` deliveries at a
    time under a lease of ``lease_seconds`` (default: long enough for the whole batch to time
    out, plus 30 s), so a delivery is only taken again when its deliverer died.

    Every ``purge_seconds`` the deliverer deletes outbox events older than ``retention_days``
    whose deliveries are all finished (delivered or failed), with those deliveries
    (``retention_days`` 0: never); replaying failed deliveries reaches back that far.
    """

    policy: TargetPolicy = field(default_factory=TargetPolicy)
    schedule: RetrySchedule = DEFAULT_SCHEDULE
    concurrency: int = 8
    batch_size: int = 32
    lease_seconds: float | None = None
    poll_seconds: float = 1.0
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    user_agent: str = f"nextbest-webhooks/{__version__}"
    retention_days: float = DEFAULT_RETENTION_DAYS
    purge_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 256:
            raise ValueError("concurrency must be from 1 to 256")
        if not 1 <= self.batch_size <= 1000:
            raise ValueError("batch size must be from 1 to 1000")
        if self.lease_seconds is not None and not 1 <= self.lease_seconds <= 86400:
            raise ValueError("the lease must be from 1 s to 1 day")
        if not (math.isfinite(self.retention_days) and 0 <= self.retention_days <= 36500):
            raise ValueError("the retention must be from 0 (keep forever) to 36500 days")
        if not (math.isfinite(self.purge_seconds) and self.purge_seconds > 0):
            raise ValueError("the purge interval must be a positive number of seconds")

    @property
    def lease(self) -> float:
        """The lease of a claim in seconds."""
        if self.lease_seconds is not None:
            return self.lease_seconds
        rounds = math.ceil(self.batch_size / self.concurrency)
        return rounds * (self.connect_timeout + self.total_timeout) + 30.0

    @classmethod
    def from_env(
        cls,
        *,
        allow_private: bool | None = None,
        retry_schedule: str | None = None,
        retention_days: float | None = None,
        **kwargs: object,
    ) -> WebhookSettings:
        """Settings from arguments, else ``NEXTBEST_WEBHOOKS_ALLOW_PRIVATE``,
        ``NEXTBEST_WEBHOOK_RETRY_SCHEDULE`` and ``NEXTBEST_WEBHOOK_RETENTION_DAYS``, else the
        defaults. ValueError on a bad value."""
        if retention_days is None:
            retention_days = retention_from_env()
        if allow_private is None:
            allow_private = env_flag(ALLOW_PRIVATE_ENV)
        if retry_schedule is None:
            retry_schedule = os.environ.get(RETRY_SCHEDULE_ENV)
        # An empty schedule is one attempt and no retry.
        schedule = (
            DEFAULT_SCHEDULE if retry_schedule is None else RetrySchedule.parse(retry_schedule)
        )
        return cls(
            policy=TargetPolicy(allow_private=allow_private),
            schedule=schedule,
            retention_days=retention_days,
            **kwargs,  # type: ignore[arg-type]
        )


__all__ = [
    "ALLOW_PRIVATE_ENV",
    "DEFAULT_RETENTION_DAYS",
    "RETENTION_ENV",
    "RETRY_SCHEDULE_ENV",
    "WebhookSettings",
    "env_flag",
    "retention_from_env",
]
