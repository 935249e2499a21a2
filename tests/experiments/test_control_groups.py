"""Control-group assignment: the documented rule, stable across processes, the configured share
(binomial test), re-drawn by the salt; the setting's validation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from scipy import stats

from nextbest.experiments import (
    CONTROL,
    ControlGroupSettings,
    assign,
    assignment_draw,
    control_group_problem,
)

IDS = [f"customer-{i}" for i in range(20_000)]


def test_the_draw_follows_the_documented_rule() -> None:
    # docs/learning.md: the first 8 bytes of SHA-256("nextbest-control" US tenant US customer
    # US salt), top 53 bits, over 2**53
    text = "\x1f".join(("nextbest-control", "acme", "c-42", "spring"))
    digest = hashlib.sha256(text.encode()).digest()
    expected = (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    assert assignment_draw("acme", "c-42", "spring") == expected
    # pinned (computed with `sha256sum`): a change of the rule would move every customer
    assert assignment_draw("acme", "c-42", "") == 0.2871437422781222


def test_assignment_is_the_same_in_another_process() -> None:
    settings = ControlGroupSettings(share=0.2, salt="s1")
    here = [assign(settings, "acme", c).group for c in IDS[:3000]]
    script = (
        "import json, sys\n"
        "from nextbest.experiments import ControlGroupSettings, assign\n"
        "s = ControlGroupSettings(share=0.2, salt='s1')\n"
        "ids = [f'customer-{i}' for i in range(3000)]\n"
        "json.dump([assign(s, 'acme', c).group for c in ids], sys.stdout)\n"
    )
    # a fresh interpreter with another hash seed: nothing may depend on Python's hash()
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout
    assert json.loads(out) == here


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_the_control_group_has_the_configured_share(share: float) -> None:
    settings = ControlGroupSettings(share=share, salt="binomial")
    control = sum(assign(settings, "acme", c).group == CONTROL for c in IDS)
    result = stats.binomtest(control, len(IDS), share)
    print(f"share {share}: {control}/{len(IDS)} in control, binomial p = {result.pvalue:.3f}")
    assert result.pvalue > 0.001


def _control(share: float, salt: str, tenant: str = "t") -> set[str]:
    settings = ControlGroupSettings(share=share, salt=salt)
    return {c for c in IDS if assign(settings, tenant, c).group == CONTROL}


def test_a_new_salt_redraws_and_a_larger_share_keeps_control_customers() -> None:
    first, second = _control(0.2, "a"), _control(0.2, "b")
    # independent draws: the overlap is about share**2 of the customers (800), not 4000
    overlap = len(first & second)
    assert stats.binomtest(overlap, len(IDS), 0.04).pvalue > 0.001
    assert first <= _control(0.3, "a")
    assert len(first & _control(0.2, "a", tenant="u")) < len(first) / 2


def test_share_zero_has_no_control_group() -> None:
    settings = ControlGroupSettings(share=0.0)
    assert all(assign(settings, "t", c).group == "treatment" for c in IDS[:1000])


def test_explain_says_why() -> None:
    assignment = assign(ControlGroupSettings(share=0.5, mode="random"), "t", "c1", source="tenant")
    reason = assignment.explain()
    assert reason["group"] == assignment.group
    assert reason["source"] == "tenant" and reason["mode"] == "random"
    assert f"{assignment.draw:.6f}" in reason["reason"] and "share 0.5" in reason["reason"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"share": 0.6}, "controlGroup.share"),
        ({"share": -0.1}, "controlGroup.share"),
        ({"share": "0.1"}, "controlGroup.share"),
        ({"share": True}, "controlGroup.share"),
        ({"share": float("nan")}, "controlGroup.share"),
        ({}, "controlGroup.share"),
        ({"share": 0.1, "mode": "half"}, "controlGroup.mode"),
        ({"share": 0.1, "salt": "a\nb"}, "controlGroup.salt"),
        ({"share": 0.1, "salt": "x" * 257}, "controlGroup.salt"),
        ({"share": 0.1, "color": "red"}, "controlGroup.color"),
        ("0.1", "object"),
    ],
)
def test_bad_settings_are_named(value: object, fragment: str) -> None:
    problem = control_group_problem(value)
    assert problem is not None and fragment in problem, problem


def test_good_settings_pass() -> None:
    assert control_group_problem({"share": 0.1, "salt": "2026-q4", "mode": "random"}) is None
    assert control_group_problem({"share": 0}) is None
