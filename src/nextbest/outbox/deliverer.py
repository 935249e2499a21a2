"""The deliverer: claims due deliveries from the outbox, sends them, records the results.

One loop per deliverer: claim a batch under a lease (see ``nextbest.store`` ``outbox_sql``),
send its requests ``concurrency`` at a time, record every result in one transaction; when
nothing is due, wait ``poll_seconds``. At-least-once: a 2xx is delivered; any other status, a
timeout or a connection error is tried again on the retry schedule, and after the last attempt
the delivery is ``failed``. A deliverer that dies leaves its claims to run out; another (or
itself, restarted) takes them again, so receivers must dedupe by ``webhook-id``.

Several deliverers may share one PostgreSQL database (claims skip each other's rows); on SQLite
run one (claims are still exclusive, but the file has one writer at a time).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from ..store import AttemptResult, ClaimedDelivery, Store
from . import sender, signing
from .settings import WebhookSettings
from .targets import UnsafeTargetError

log = logging.getLogger("nextbest.webhooks")
#: The store lease purging processes take (one purges at a time).
_PURGE_LOCK = "nextbest.outbox.purge"
#: At most about this many events per purge pass (a few seconds), so a backlog never holds
#: up deliveries for long.
_PURGE_PER_PASS = 20_000


class Deliverer:
    """Delivers the outbox's webhooks from ``store`` (see the module).

    ``run_once`` handles one batch; ``drain`` runs batches until nothing is due; ``start`` /
    ``stop`` run the loop in a background thread (``nextbest serve``)."""

    def __init__(self, store: Store, settings: WebhookSettings | None = None) -> None:
        self.store = store
        self.settings = settings or WebhookSettings.from_env()
        self._pool = ThreadPoolExecutor(
            self.settings.concurrency, thread_name_prefix="nextbest-webhook"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge: float | None = None

    # -- one batch ---------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim, send and record one batch; returns how many deliveries it held."""
        claims = self.store.claim_deliveries(
            self.settings.batch_size, lease_seconds=self.settings.lease
        )
        if not claims:
            return 0
        results = list(self._pool.map(self.attempt, claims))
        self.store.complete_deliveries(results)
        return len(claims)

    def drain(self) -> int:
        """Run batches until none is due; returns how many deliveries were attempted."""
        total = 0
        while not self._stop.is_set():
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    def attempt(self, claim: ClaimedDelivery) -> AttemptResult:
        """Send one claimed delivery (never raises: every failure is a result)."""
        started = time.monotonic()
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            if not claim.secrets:
                raise UnsafeTargetError(
                    "no signing secret can be decrypted (was NEXTBEST_API_KEY_PEPPER changed?): "
                    "rotate the endpoint's secret"
                )
            target = self.settings.policy.check(claim.url)
            body = signing.envelope(claim)
            headers = signing.headers(claim, body, int(time.time()), self.settings.user_agent)
            answer = sender.post(
                target,
                body,
                headers,
                connect_timeout=self.settings.connect_timeout,
                total_timeout=self.settings.total_timeout,
            )
            status, excerpt = answer.status, answer.excerpt
        except UnsafeTargetError as exc:
            error = f"refused: {exc}"
        except sender.SendError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the loop: the attempt fails, retried
            log.exception("delivery %s: unexpected error", claim.delivery_id)
            error = f"internal error: {type(exc).__name__}"
        latency = (time.monotonic() - started) * 1000
        delivered = status is not None and 200 <= status < 300
        retry_at = None
        if not delivered:
            if error is None:
                error = f"HTTP {status}"
            pause = self.settings.schedule.pause_after(claim.attempt)
            if pause is not None:
                retry_at = datetime.fromtimestamp(time.time() + pause, UTC)
            log.info(
                "webhook delivery %s (event %s, endpoint %s) attempt %s failed: %s; %s",
                claim.delivery_id,
                claim.event_id,
                claim.endpoint_id,
                claim.attempt,
                error,
                "no attempt left: failed" if retry_at is None else f"next at {retry_at:%H:%M:%S}",
            )
        return AttemptResult(
            delivery_id=claim.delivery_id,
            lease_token=claim.lease_token,
            delivered=delivered,
            retry_at=retry_at,
            status_code=status,
            error=None if delivered else error,
            latency_ms=latency,
            response_excerpt=excerpt,
        )

    # -- retention ---------------------------------------------------------------------------
    def purge(self, now: float | None = None) -> int | None:
        """Delete the finished outbox events older than the retention (see
        :class:`WebhookSettings`); returns how many, or None when the retention is 0 (keep
        forever) or another process is purging (one at a time, through a store lease)."""
        days = self.settings.retention_days
        if days <= 0:
            return None
        now = time.time() if now is None else now
        lease = self.store.try_lock(_PURGE_LOCK, ttl_seconds=600.0)
        if lease is None:
            return None
        with lease:
            before = datetime.fromtimestamp(now - days * 86400.0, UTC)
            purged = self.store.purge_events(before, limit=_PURGE_PER_PASS)
        if purged:
            log.info("purged %d finished outbox events older than %g days", purged, days)
        return purged

    def _purge_when_due(self) -> None:
        now = time.monotonic()
        if self._last_purge is not None and now - self._last_purge < self.settings.purge_seconds:
            return
        purged = self.purge()
        # A backlog is worked off a pass at a time between delivery batches, not in one go.
        self._last_purge = None if purged is not None and purged >= _PURGE_PER_PASS else now

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        """Deliver until :meth:`stop` (a failing batch is logged and retried after a pause);
        finished events past the retention are purged every ``purge_seconds``."""
        while not self._stop.is_set():
            try:
                self._purge_when_due()
            except Exception:
                log.exception("purging the outbox failed; trying again at the next interval")
            try:
                handled = self.run_once()
            except Exception:
                log.exception(
                    "the webhook deliverer failed; retrying in %s s", self.settings.poll_seconds
                )
                handled = 0
            if not handled:
                self._stop.wait(self.settings.poll_seconds)

    def request_stop(self) -> None:
        """Ask the loop to end after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    def start(self) -> None:
        """Run the loop in a background thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="nextbest-deliverer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """End the loop (after the batch in hand) and the request threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        """Stop (same as :meth:`stop`)."""
        self.stop()


__all__ = ["Deliverer"]
