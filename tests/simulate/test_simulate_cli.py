"""``nextbest simulate``: JSON and text output, the same result as the library, errors naming
the option; no progress bar when the output is not a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from populationkit import AS_OF_TEXT, seed_tenant, service

from nextbest.cli import build_cli
from nextbest.simulate import parse_options, run_simulation
from nextbest.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: the command opens the database by URL (the store parts run on both
    dialects in the run and API tests)."""
    with open_store(f"sqlite:///{tmp_path / 'cli.db'}", pepper=b"test") as s:
        s.upgrade()
        s.create_tenant("acme")
        seed_tenant(s)
        yield s


def invoke(store: Store, *args: str) -> object:
    return CliRunner().invoke(
        build_cli(), ["simulate", "--tenant", "acme", "--database", store.url, *args]
    )


def test_json_equals_the_library(store: Store) -> None:
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT, "--sample", "12",
                    "--seed", "3", "--compare", "retention@2", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    printed = json.loads(result.stdout)  # type: ignore[attr-defined]
    raw = {"flow": "retention", "asOf": AS_OF_TEXT, "sample": 12, "seed": 3,
           "compare": "retention@2"}  # fmt: skip
    want = run_simulation(service(store), "acme", parse_options(raw, now=datetime.now(UTC)))
    assert printed == json.loads(json.dumps(want))
    assert "Simulating" not in result.output  # type: ignore[attr-defined]


def test_text_report(store: Store) -> None:
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT,
                    "--compare", "retention@2")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "flow retention@1:" in out and "flow retention@2:" in out
    assert "customer.clv.segment = " in out
    assert "top offer changed for" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flow", "nope"], "flow: flow 'nope' has no published version"),
        (["--flow", "retention", "--version", "9"], "version: flow 'retention' has no version 9"),
        (["--flow", "retention", "--sample", "x", "--seed", "1"], "Invalid value for --sample"),
        (["--flow", "retention", "--seed", "1"], "Invalid value for --seed"),
        (["--flow", "retention", "--as-of", "noon"], "Invalid value for --as-of"),
        (["--flow", "retention", "--compare", "a@b"], "Invalid value for --compare"),
        (
            ["--flow", "retention", "--as-of", AS_OF_TEXT, "--segment", "nobody"],
            "Invalid value for --segment: segment: no customer has",
        ),
        (["--flow", "retention", "--by", "customer.nobody"], "Invalid value for --by"),
    ],
)
def test_errors_name_the_option(store: Store, args: list[str], message: str) -> None:
    result = invoke(store, *args)
    assert result.exit_code != 0  # type: ignore[attr-defined]
    assert message in result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
