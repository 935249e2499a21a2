"""Covariates in the product, end to end through the CLI on a small seeded tenant: customer
attributes imported with ``nextbest ingest --customers``, the ``covariates`` setting, ``clv
fit`` storing coefficients, standard errors and the likelihood-ratio test, the missing policy,
and the fit route showing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from clvkit import T0
from fastapi.testclient import TestClient
from modelkit import add_buyers

from nextbest import Host
from nextbest.api import create_app
from nextbest.cli import build_cli
from nextbest.store import Store

N = 150
END = "2024-07-01T00:00:00Z"


def _channel(i: int) -> str:
    return "web" if i % 5 in (0, 1) else ("shop" if i % 5 in (2, 3) else "phone")


@pytest.fixture
def db(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", "test")
    add_buyers(store, "acme", T0, n=N)
    return ["--tenant", "acme", "--database", f"sqlite:///{tmp_path / 'clv.db'}"]


def _run(*args: str) -> tuple[int, str]:
    """Exit code and stdout plus stderr."""
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.output


def _fit(*args: str) -> dict:
    """The fit document ``clv fit --json`` prints on stdout."""
    result = CliRunner().invoke(build_cli(), ["clv", "fit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _set_covariates(db: list[str], covariates: dict) -> None:
    code, out = _run("clv", "settings", *db, "--set", f"covariates={json.dumps(covariates)}")
    assert code == 0, out


def test_fit_with_covariates_through_the_cli(db: list[str], store: Store, tmp_path: Path) -> None:
    lines = ["customerId,channel,firstOrderValue"]
    lines += [f"c{i},{_channel(i)},{10 + (i * 7) % 40}" for i in range(N)]
    (tmp_path / "customers.csv").write_text("\n".join(lines) + "\n")
    code, out = _run("ingest", "--customers", str(tmp_path / "customers.csv"), *db)
    assert code == 0 and f"customers stored: {N}, rejected: 0" in out, out
    plain = _fit(*db, "--model", "bgnbd", "--end", END)
    assert "covariates" not in plain

    _set_covariates(db, {"purchase": ["channel"], "dropout": ["firstOrderValue"]})
    doc = _fit(*db, "--model", "bgnbd", "--end", END)
    # the records keep using the plain model's parameters
    assert doc["params"] == plain["params"] and doc["spend"] == plain["spend"]
    section = doc["covariates"]
    assert section["customers"] == N and section["excludedCustomers"] == 0
    # web and shop tie (60 customers each): the reference is the first in sort order
    assert section["encodings"]["purchase"] == [
        {"name": "channel", "kind": "categorical", "reference": "shop", "levels": ["phone", "web"]}
    ]
    assert section["encodings"]["dropout"][0]["kind"] == "numeric"
    assert set(section["coefficients"]) == {"purchase", "dropout_a", "dropout_b"}
    assert set(section["coefficients"]["purchase"]) == {"channel=phone", "channel=web"}
    assert set(section["coefficients"]["dropout_a"]) == {"firstOrderValue"}
    assert set(section["standardErrors"]["purchase"]) == {"channel=phone", "channel=web"}
    assert set(section["standardErrors"]["params"]) == {"r", "alpha", "a", "b"}
    assert section["lrTest"]["df"] == 4
    assert 0.0 <= section["lrTest"]["pValue"] <= 1.0
    # the covariate model nests the plain one: its likelihood is at least as high
    assert section["logLikelihood"] >= section["lrTest"]["logLikelihoodWithout"] - 1e-6
    assert section["lrTest"]["logLikelihoodWithout"] == pytest.approx(plain["logLikelihood"])
    assert "spend" not in section
    code, out = _run("clv", "fit", *db, "--model", "bgnbd", "--end", END)
    assert code == 0 and "covariates: 150 customers" in out
    assert "purchase   channel=web" in out and "LR test vs no covariates" in out

    # the fit route shows them
    client = TestClient(create_app(Host(store=store), store))
    key = store.create_api_key("acme", "viewer")[1]
    listed = client.get(
        "/api/v1/clv/fits", headers={"Authorization": f"Bearer {key}", "X-Tenant-Id": "acme"}
    ).json()["fits"]
    assert listed[0]["covariates"]["coefficients"] == section["coefficients"]
    assert "covariates" not in listed[-1]  # the first, plain fit


def test_missing_attributes_refuse_or_exclude(db: list[str], store: Store) -> None:
    store.put_customer_attributes("acme", {f"c{i}": {"channel": _channel(i)} for i in range(N - 4)})
    _set_covariates(db, {"purchase": ["channel"]})
    code, out = _run("clv", "fit", *db, "--model", "bgnbd", "--end", END)
    assert code == 1
    assert f"of {N} customers, 4 lack 'channel'" in out
    assert "nextbest ingest --customers" in out
    _set_covariates(db, {"purchase": ["channel"], "missing": "exclude"})
    doc = _fit(*db, "--model", "bgnbd", "--end", END)
    section = doc["covariates"]
    assert section["customers"] == N - 4 and section["excludedCustomers"] == 4
    assert {e["customerId"] for e in section["excluded"]} == {f"c{i}" for i in range(N - 4, N)}
    assert section["excluded"][0]["reason"] == "lacks covariate attributes 'channel'"
    assert doc["excludedCustomers"] == 0  # the plain fit (the records' model) keeps everyone


def test_models_without_a_covariate_fit_and_penalizer_are_refused(db: list[str]) -> None:
    _set_covariates(db, {"purchase": ["channel"]})
    code, out = _run("clv", "fit", *db, "--model", "paretonbd", "--end", END)
    assert code == 1 and "applies to bgnbd only" in out
    code, out = _run("clv", "fit", *db, "--model", "bgnbd", "--end", END, "--penalizer", "0.1")
    assert code == 1 and "not penalised" in out
