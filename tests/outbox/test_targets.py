"""The SSRF guard: which URLs a webhook may go to (no request is sent by these tests)."""

from __future__ import annotations

import pytest

from nextbest.outbox import TargetPolicy, UnsafeTargetError
from nextbest.outbox.schedule import DEFAULT_SCHEDULE, RetrySchedule, parse_duration

PUBLIC = TargetPolicy(resolver=lambda host, port: ["93.184.216.34"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://[fd12::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://100.100.100.200/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "not a public address"),  # carrier-grade NAT
        ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused_by_default(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=reason):
        TargetPolicy().check(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://x/", "http:// or https://"),
        ("http:///path", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeTargetError, match=reason):
        PUBLIC.check(url)


def test_a_name_is_refused_when_any_address_is_not_public() -> None:
    mixed = TargetPolicy(resolver=lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(UnsafeTargetError, match=r"10\.0\.0\.1"):
        mixed.check("https://hooks.example.com/")


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeTargetError, match="does not resolve"):
        TargetPolicy(resolver=fail).check("https://nowhere.invalid/")


def test_public_targets_and_the_address_to_connect_to() -> None:
    target = PUBLIC.check("https://hooks.example.com/in?a=1")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?a=1",
    )
    assert target.address == "93.184.216.34"
    assert PUBLIC.check("http://hooks.example.com").port == 80


def test_private_targets_when_allowed_but_never_metadata() -> None:
    allowed = TargetPolicy(allow_private=True)
    assert allowed.check("http://127.0.0.1:9000/x").address == "127.0.0.1"
    assert allowed.check("http://10.0.0.8/").address == "10.0.0.8"
    for url in ("http://169.254.169.254/", "http://224.0.0.1/", "http://0.0.0.0/"):
        with pytest.raises(UnsafeTargetError):
            allowed.check(url)


def test_the_retry_schedule() -> None:
    assert DEFAULT_SCHEDULE.max_attempts == 8
    assert sum(DEFAULT_SCHEDULE.pauses) / 3600 == pytest.approx(27.58, abs=0.01)
    assert DEFAULT_SCHEDULE.describe() == "5s,5m,30m,2h,5h,10h,10h"
    fixed = RetrySchedule((10.0, 100.0), jitter=0.2, random=lambda: 1.0)
    assert fixed.pause_after(1) == pytest.approx(12.0)  # +20 % at most
    low = RetrySchedule((10.0, 100.0), jitter=0.2, random=lambda: 0.0)
    assert low.pause_after(2) == pytest.approx(80.0)  # -20 % at least
    assert fixed.pause_after(3) is None  # the third attempt was the last
    assert RetrySchedule.parse("1s, 2m,3h").pauses == (1.0, 120.0, 10800.0)
    assert RetrySchedule.parse("").max_attempts == 1
    assert parse_duration("250ms") == 0.25
    for bad in ("5", "5 weeks", "-1s", "8d,1s"):
        with pytest.raises(ValueError):
            RetrySchedule.parse(bad)
