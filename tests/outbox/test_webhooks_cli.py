"""``nextbest webhooks ...`` through click's CliRunner (SQLite), delivering to a real receiver."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from outboxkit import PEPPER
from receiver import Receiver, running, verify

from nextbest.commands.webhooks import register_webhook_commands
from nextbest.store import open_store


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("nextbest")
    register_webhook_commands(group)
    return group


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", PEPPER.decode())
    monkeypatch.delenv("NEXTBEST_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("NEXTBEST_DATABASE_URL", url)
    with open_store(url, pepper=PEPPER) as store:
        store.upgrade()
        store.create_tenant("acme")
    return url


def run(cli: click.Group, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_endpoints_deliveries_and_the_deliverer(cli: click.Group, url: str) -> None:
    with running(Receiver(lambda r, n: (500, {}, b"") if n == 1 else (200, {}, b""))) as rx:
        refused = CliRunner().invoke(
            cli, ["webhooks", "endpoints", "add", rx.url, "--tenant", "acme"]
        )
        assert refused.exit_code == 2 and "loopback" in refused.output
        secret = run(
            cli, "webhooks", "endpoints", "add", rx.url, "--tenant", "acme",
            "--allow-private-targets", "--event-type", "webhook.test", "--description", "local",
        ).strip()  # fmt: skip
        assert secret.startswith("whsec_")
        [endpoint] = json.loads(run(cli, "webhooks", "endpoints", "list", "--tenant", "acme"))
        assert endpoint["eventTypes"] == ["webhook.test"] and "secret" not in endpoint
        event_id = run(cli, "webhooks", "endpoints", "test", endpoint["id"], "--tenant", "acme")
        deliver = [
            "webhooks",
            "deliver",
            "--once",
            "--allow-private-targets",
            "--retry-schedule",
            "",
        ]
        run(cli, *deliver)  # the first answer is a 500 and the schedule has no retry
        listed = json.loads(
            run(cli, "webhooks", "deliveries", "list", "--tenant", "acme", "--status", "failed")
        )
        [failed] = listed["items"]
        assert failed["eventId"] == event_id.strip() and failed["lastStatusCode"] == 500
        run(cli, "webhooks", "deliveries", "redeliver", str(failed["id"]), "--tenant", "acme")
        run(cli, *deliver)
        shown = json.loads(
            run(cli, "webhooks", "deliveries", "show", str(failed["id"]), "--tenant", "acme")
        )
        assert shown["status"] == "delivered" and shown["payload"]["endpointId"] == endpoint["id"]
        rotated = run(
            cli, "webhooks", "endpoints", "rotate", endpoint["id"], "--tenant", "acme",
            "--grace", "1h",
        ).strip()  # fmt: skip
        assert rotated.startswith("whsec_") and rotated != secret
        out = run(
            cli, "webhooks", "endpoints", "replay", endpoint["id"], "--tenant", "acme",
            "--since", "2020-01-01T00:00:00Z",
        )  # fmt: skip
        assert out.startswith("0 failed deliveries")
    assert all(verify(secret, r.headers, r.body) for r in rx.requests) and len(rx.requests) == 2
    run(cli, "webhooks", "endpoints", "remove", endpoint["id"], "--tenant", "acme")
    assert json.loads(run(cli, "webhooks", "endpoints", "list", "--tenant", "acme")) == []


def test_errors_are_clear(cli: click.Group, url: str) -> None:
    out = CliRunner().invoke(cli, ["webhooks", "endpoints", "remove", "ep_x", "--tenant", "acme"])
    assert out.exit_code == 1 and "no endpoint 'ep_x'" in out.output
    out = CliRunner().invoke(cli, ["webhooks", "endpoints", "list", "--tenant", "nobody"])
    assert out.exit_code == 1 and "does not exist" in out.output
    out = CliRunner().invoke(cli, ["webhooks", "deliver", "--once", "--retry-schedule", "soon"])
    assert out.exit_code == 2 and "not a duration" in out.output
    out = CliRunner().invoke(cli, ["webhooks", "endpoints", "add", "ftp://x", "--tenant", "acme"])
    assert out.exit_code == 2 and "http://" in out.output
    out = CliRunner().invoke(
        cli, ["webhooks", "endpoints", "replay", "ep_x", "--tenant", "acme", "--since", "x"]
    )
    assert out.exit_code == 2 and "--since" in out.output


def test_purge_and_the_deliverers_retention(
    cli: click.Group, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from nextbest.outbox import Deliverer, WebhookSettings
    from nextbest.store import OutboxEvent

    def old_events(*ids: str, days_ago: float) -> None:
        with open_store(url, pepper=PEPPER) as store:
            then = store.clock() - days_ago * 86400
            store.clock = lambda: then  # type: ignore[method-assign]
            at = datetime.fromtimestamp(then, UTC)
            store.publish_events([OutboxEvent("acme", i, "a.b", at, {}) for i in ids])

    old_events("e-40", days_ago=40)  # no endpoint: finished at once
    old_events("e-10", days_ago=10)
    monkeypatch.setenv("NEXTBEST_WEBHOOK_RETRY_SCHEDULE", "soon")  # not the purge's business
    out = run(cli, "webhooks", "purge")  # the default: 30 days
    monkeypatch.delenv("NEXTBEST_WEBHOOK_RETRY_SCHEDULE")
    assert out.startswith("1 finished outbox events older than 30 days purged"), out
    out = run(cli, "webhooks", "purge", "--older-than-days", "5")
    assert out.startswith("1 finished"), out
    out = CliRunner().invoke(cli, ["webhooks", "purge", "--older-than-days", "0"])
    assert out.exit_code == 2 and "--older-than-days" in out.output

    old_events("e-50", days_ago=50)
    with open_store(url, pepper=PEPPER) as store:
        assert Deliverer(store, WebhookSettings(retention_days=0)).purge() is None  # forever
        assert Deliverer(store, WebhookSettings(retention_days=60)).purge() == 0
        with store.try_lock("nextbest.outbox.purge"):  # another process is purging
            assert Deliverer(store, WebhookSettings(retention_days=30)).purge() is None
        assert Deliverer(store, WebhookSettings(retention_days=30)).purge() == 1
    monkeypatch.setenv("NEXTBEST_WEBHOOK_RETENTION_DAYS", "a month")
    out = CliRunner().invoke(cli, ["webhooks", "deliver", "--once"])
    assert out.exit_code == 2 and "NEXTBEST_WEBHOOK_RETENTION_DAYS" in out.output
    monkeypatch.setenv("NEXTBEST_WEBHOOK_RETENTION_DAYS", "-1")
    out = CliRunner().invoke(cli, ["webhooks", "deliver", "--once"])
    assert out.exit_code == 2 and "RETENTION_DAYS must be from 0" in out.output
