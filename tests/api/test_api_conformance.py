"""The served OpenAPI tells the truth: a schemathesis run against the ASGI app, in process.

Every operation of the served spec (the host's and the CLV plugin's) is exercised with
generated requests, valid and invalid, through the documented security scheme (a bearer key of
the seeded ``acme`` tenant, which is also the ``X-Tenant-Id``). The run is bounded (a fixed
number of examples per operation and phase) and deterministic (a fixed seed, no example
database). Checks, besides the four the issue names (not_a_server_error,
status_code_conformance, content_type_conformance, response_schema_conformance):
response_headers_conformance, negative_data_rejection (invalid input is a 4xx),
missing_required_header, ignored_auth (no key or a wrong one is 401), unsupported_method and
allow_header_conformance (405 with an ``Allow`` header naming every method of the path).
positive_data_acceptance is not enabled: offers, flows and CLV settings are documents the
server validates against the loaded plugins, which the spec describes as free-form objects.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from apikit import seed
from schemathesis.engine import events, from_schema

from nextbest import Host
from nextbest.api import create_app
from nextbest.store import Store

SEED = 20260109
MAX_EXAMPLES = 40
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
)


def conformance_config(key: str, tenant: str) -> Any:
    """The schemathesis configuration of the run (see the module docstring)."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "parameters": {"header.X-Tenant-Id": tenant},
            "auth": {"openapi": {"bearerAuth": {"bearer": key}}},
            "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "database": "none"},
            "checks": {"enabled": False} | {name: {"enabled": True} for name in CHECKS},
            "phases": {
                "examples": {"enabled": False},
                "stateful": {"enabled": True, "generation": {"max-examples": 10}},
            },
        }
    )


def run_conformance(app: Any, key: str, tenant: str) -> tuple[list[str], set[str]]:
    """Run every phase against ``app``; the failures found (one line each) and the operations
    that were exercised."""
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=conformance_config(key, tenant)
    )
    failures: set[str] = set()
    exercised: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            exercised.update(case.value.operation.label for case in recorder.cases.values())
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.add(
                            f"{recorder.label}: {check.name}: {failure.title}\n"
                            f"    {check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            failures.add(f"{event.label}: error: {event.info}")
        elif isinstance(event, events.FatalError):
            failures.add(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            failures.update(f"{f.title}: {f.message}" for f in event.failures)
    return sorted(failures), exercised


# Its run time grows with every operation (about 2 s each on SQLite, more on PostgreSQL): the
# suite's 120 s per test is too short for it on a busy machine.
@pytest.mark.timeout(900)
def test_the_served_spec_holds_for_every_operation(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXTBEST_PLUGINS", "builtin,clv")
    keys = seed(store)
    app = create_app(Host(store=store), store)
    operations = {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    }
    assert "GET /api/v1/customers/{customerId}/clv" in operations  # the CLV plugin is in

    failures, exercised = run_conformance(app, keys[("acme", "admin")], "acme")

    assert failures == [], "\n".join(failures)
    assert operations <= exercised, sorted(operations - exercised)
