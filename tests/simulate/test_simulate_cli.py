"""``nextbest simulate``: JSON and text output, the same result as the library, stored as a run
(done, or failed with its error); errors naming the option; no progress bar when the output is
not a terminal; refused while the tenant's last run has not finished."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from populationkit import AS_OF_TEXT, seed_tenant, service

from nextbest.cli import build_cli
from nextbest.simulate import list_simulations, parse_options, run_simulation
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
    run_id = printed.pop("simulationId")
    raw = {"flow": "retention", "asOf": AS_OF_TEXT, "sample": 12, "seed": 3,
           "compare": "retention@2"}  # fmt: skip
    want = run_simulation(service(store), "acme", parse_options(raw, now=datetime.now(UTC)))
    assert printed == json.loads(json.dumps(want))
    assert "Simulating" not in result.output  # type: ignore[attr-defined]
    # the run is stored like one the API started: listed, done, with the printed result
    runs = list_simulations(store, "acme").items
    assert [r.simulation_id for r in runs] == [run_id]
    stored = store.get_simulation("acme", run_id)
    assert stored is not None and stored.status == "done"
    assert stored.inputs["compare"] == "retention@2"
    assert (stored.done, stored.total) == (12, 12)
    assert stored.result == printed


def test_text_report(store: Store) -> None:
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT,
                    "--compare", "retention@2")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "flow retention@1:" in out and "flow retention@2:" in out
    assert "customer.clv.segment = " in out
    assert "top offer changed for" in out
    (run,) = store.list_simulations("acme").items
    assert out.startswith(f"simulation {run.simulation_id} of tenant 'acme'")


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


def test_a_run_that_fails_is_stored_failed(store: Store) -> None:
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT, "--segment", "nobody")
    assert result.exit_code != 0  # type: ignore[attr-defined]
    (run,) = store.list_simulations("acme").items
    assert run.status == "failed" and run.error is not None and "segment" in run.error


def test_refused_while_the_tenants_run_is_under_way(store: Store) -> None:
    running = store.create_simulation("acme", "sim_other", {"flow": "retention"})
    store.update_simulation("acme", running.simulation_id, status="running")
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT)
    assert result.exit_code != 0  # type: ignore[attr-defined]
    assert "simulation 'sim_other' of the tenant is running" in result.output  # type: ignore[attr-defined]
    assert len(store.list_simulations("acme").items) == 1  # nothing stored


def test_a_stopped_command_marks_its_run_failed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nextbest.simulate import jobs

    def stopped(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "run_simulation", stopped)
    result = invoke(store, "--flow", "retention", "--as-of", AS_OF_TEXT)
    assert result.exit_code != 0  # type: ignore[attr-defined]
    (run,) = store.list_simulations("acme").items
    assert (run.status, run.error) == ("failed", "interrupted: KeyboardInterrupt")
    assert jobs._active == {}  # the process's slot is free again
