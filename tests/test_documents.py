"""Hostile document texts (files and ``KEY=VALUE`` options) are clear errors at every entry point
that parses them: nesting beyond the parser, integers of thousands of digits, YAML aliases that
expand a few lines into millions of nodes or refer to themselves. None gives a traceback, none
runs away, and nothing of it is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from nextbest import Host
from nextbest.cli import build_cli
from nextbest.documents import (
    MAX_ALIAS_EXPANSION,
    DocumentSyntaxError,
    load_document,
    parse_json,
    parse_yaml,
)
from nextbest.errors import FlowValidationError
from nextbest.store import document_problem, open_store

HUGE_INT = "9" * 5000
DEEP_JSON = "[" * 5000 + "]" * 5000
DEEP_YAML = "[" * 3000 + "]" * 3000


def laughs(levels: int, width: int = 9) -> str:
    """A YAML offer whose attributes expand to ``width ** levels`` strings through aliases."""
    lines = ["id: lol", "attributes:", f"  l0: &l0 [{', '.join(['x'] * width)}]"]
    for level in range(1, levels):
        items = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"  l{level}: &l{level} [{items}]")
    return "\n".join(lines) + "\n"


# -- the parsers ---------------------------------------------------------------------------------


def test_json_nested_beyond_the_parser_names_where_it_passes_the_limit() -> None:
    with pytest.raises(DocumentSyntaxError) as caught:
        parse_json('{"a":\n  ' + DEEP_JSON + "}")
    assert caught.value.too_deep and (caught.value.line, caught.value.column) == (2, 34)
    assert "nested more than 32 levels deep" in str(caught.value)


def test_huge_integers_parse_to_a_stand_in_the_document_rules_name() -> None:
    for value in (parse_json(f'{{"n": [-{HUGE_INT}]}}'), parse_yaml(f"n: [-{HUGE_INT}]")):
        assert document_problem(value) == "holds an integer outside the 64-bit range at n[0]"
    assert parse_yaml("n: 9_223_372_036_854_775_807") == {"n": 2**63 - 1}
    assert parse_json("[12345678901234567890]") == [12345678901234567890]


def test_yaml_nested_beyond_the_parser_is_a_syntax_error() -> None:
    with pytest.raises(DocumentSyntaxError, match="nested more than 32") as caught:
        parse_yaml(DEEP_YAML)
    assert caught.value.too_deep


def test_yaml_aliases_may_reuse_blocks_but_not_explode() -> None:
    shared = parse_yaml("base: &b {tier: gold, min: 3}\nrules: [*b, *b, *b]\n")
    assert shared["rules"] == [{"tier": "gold", "min": 3}] * 3
    assert len(json.dumps(parse_yaml(laughs(4)))) > 0  # 9**4 strings: fine
    started = time.process_time()
    with pytest.raises(DocumentSyntaxError, match="aliases expand it by") as caught:
        parse_yaml(laughs(9))  # 9**9 = 387 million strings once expanded
    assert f"at most {MAX_ALIAS_EXPANSION:,}" in str(caught.value)
    assert time.process_time() - started < 5  # refused before anything is expanded


def test_yaml_aliases_that_refer_to_themselves_are_refused() -> None:
    with pytest.raises(DocumentSyntaxError, match="refers to a node that contains it") as caught:
        parse_yaml("a: &a [1, *a]\n")
    assert caught.value.line == 1


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("a: 1\nx: 2020-13-45", "cannot read the value '2020-13-45': month must be in 1..12", 2),
        ("x: 0000-01-01", "year 0 is out of range", 1),
        ("x: !!int abc", "cannot read the value 'abc'", 1),
        ("x: !!bool maybe", "cannot read the value 'maybe'", 1),
    ],
)
def test_yaml_values_that_cannot_be_built_name_their_line(
    text: str, reason: str, line: int
) -> None:
    with pytest.raises(DocumentSyntaxError, match=reason) as caught:
        parse_yaml(text)
    assert caught.value.line == line and not caught.value.too_deep


def test_yaml_base_60_numbers_are_bounded() -> None:
    assert parse_yaml("x: 1:30") == {"x": 90}
    huge = parse_yaml("x: " + "9" * 5000 + ":00")  # int() refuses 4,300+ digits
    assert document_problem(huge) == "holds an integer outside the 64-bit range at x"
    started = time.process_time()
    long = parse_yaml("x: 1" + ":59" * 200_000)  # quadratic to build in Python
    assert time.process_time() - started < 5
    assert document_problem(long) == "holds an integer outside the 64-bit range at x"
    assert document_problem(parse_yaml("x: 1" + ":59" * 30 + ".5")) == (
        "holds a number that is not finite at x"
    )


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("deep.json", DEEP_JSON, "nested more than 32 levels deep"),
        ("deep.yaml", DEEP_YAML, "nested more than 32 levels deep"),
        ("laughs.yaml", laughs(9), "aliases expand it by"),
        ("bad.json", '{"id": }', "invalid JSON: Expecting value"),
        ("bad.yaml", "id: [", "invalid YAML"),
    ],
)
def test_load_document_names_the_file_and_the_reason(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FlowValidationError, match=reason) as caught:
        load_document(path)
    assert str(path) in str(caught.value)


def test_the_host_refuses_a_huge_integer_in_an_offer_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "offers.json"
    path.write_text(f'[{{"id": "o1", "attributes": {{"n": {HUGE_INT}}}}}]')
    with pytest.raises(FlowValidationError, match="64-bit range") as caught:
        Host().load_offers(path)
    assert "attributes" in str(caught.value)


# -- the commands --------------------------------------------------------------------------------

Run = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTBEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", "pepper")
    with open_store("sqlite:///nextbest.db") as store:
        store.upgrade()
        store.create_tenant("demo")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(build_cli(), list(args))

    return invoke


def offers_in_store(tenant: str = "demo") -> list[Any]:
    with open_store("sqlite:///nextbest.db") as store:
        return list(store.list_offers(tenant).items)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (DEEP_JSON, "nested more than 32 levels deep"),
        (f'{{"id": "o1", "attributes": {{"n": {HUGE_INT}}}}}', "64-bit range"),
    ],
)
def test_offer_and_validate_commands_refuse_hostile_files(
    run: Run, tmp_path: Path, text: str, reason: str
) -> None:
    (tmp_path / "offer.json").write_text(text)
    commands = [("offers", "create", "offer.json", "--tenant", "demo")]
    if text == DEEP_JSON:  # (validate reads a flow: an offer is wrong there for other reasons)
        commands.append(("validate", "offer.json"))
    for args in commands:
        result = run(*args)
        assert result.exit_code != 0, (args, result.output)
        assert reason in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
    assert offers_in_store() == []


def test_an_exploding_yaml_offer_is_refused_quickly(run: Run, tmp_path: Path) -> None:
    (tmp_path / "offer.yaml").write_text(laughs(8))
    result = run("offers", "create", "offer.yaml", "--tenant", "demo")
    assert result.exit_code != 0 and "aliases expand it by" in result.output, result.output
    assert offers_in_store() == []


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "settings", "demo", "--set", "x=" + DEEP_JSON),
        ("tenants", "settings", "demo", "--set", f"x={HUGE_INT}"),
        ("clv", "settings", "--tenant", "demo", "--set", f"atRiskDays={HUGE_INT}"),
        ("clv", "settings", "--tenant", "demo", "--set", "atRiskDays=" + DEEP_JSON),
        ("decide", "--tenant", "demo", "--customer-id", "c1", "--attribute", f"n={HUGE_INT}"),
        ("decide", "--tenant", "demo", "--customer-id", "c1", "--attribute", "n=" + DEEP_JSON),
    ],
)
def test_key_value_options_refuse_hostile_values_naming_the_key(
    run: Run, args: tuple[str, ...]
) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    key = args[-1].split("=", 1)[0]
    assert f"{key}: " in result.output and "Traceback" not in result.output, result.output
    with open_store("sqlite:///nextbest.db") as store:
        assert store.get_tenant("demo").settings == {}  # type: ignore[union-attr]


def test_tenant_settings_take_only_the_settings_the_host_reads(run: Run) -> None:
    result = run("tenants", "settings", "demo", "--set", "acceptUnknownOffers=true")
    assert result.exit_code == 0, result.output
    for value, reason in (("yes", "'yes'"), ("1", "1")):
        result = run("tenants", "settings", "demo", "--set", f"acceptUnknownOffers={value}")
        assert result.exit_code == 2
        assert f"acceptUnknownOffers must be true or false, not {reason}" in result.output
    result = run("tenants", "settings", "demo", "--set", "acceptUnknownOffer=true")
    assert result.exit_code == 2 and "unknown setting 'acceptUnknownOffer'" in result.output
    assert "acceptUnknownOffers, default_flow_key" in result.output
    result = run("tenants", "settings", "demo", "--set", "default_flow_key=retention")
    assert result.exit_code == 0, result.output
    with open_store("sqlite:///nextbest.db") as store:
        settings = store.get_tenant("demo").settings  # type: ignore[union-attr]
    assert settings == {"acceptUnknownOffers": True, "default_flow_key": "retention"}


def test_the_store_checks_the_settings_the_host_reads(tmp_path: Path) -> None:
    from nextbest.store import InvalidInputError

    with open_store(f"sqlite:///{tmp_path / 's.db'}", pepper=b"p") as store:
        store.upgrade()
        with pytest.raises(InvalidInputError, match="must be true or false") as caught:
            store.create_tenant("t", settings={"acceptUnknownOffers": "yes"})
        assert caught.value.field == "settings.acceptUnknownOffers"
        store.create_tenant("t", settings={"theme": "dark"})  # a key the host does not read
        with pytest.raises(InvalidInputError, match="flow key"):
            store.update_tenant_settings("t", {"default_flow_key": "a\x00b"})
        store.update_tenant_settings("t", {"acceptUnknownOffers": False})
        assert store.get_tenant("t").settings == {"theme": "dark", "acceptUnknownOffers": False}  # type: ignore[union-attr]


def test_document_problem_fast_path_agrees_with_the_walk() -> None:
    """The fast check lets through only what the path-naming walk accepts: subclasses of the
    JSON types, non-finite numbers, big integers, bad keys and depth all reach the walk; a
    max_depth beyond the interpreter's stack still gets an answer."""
    import enum

    from nextbest.store.limits import document_problem

    class Flag(enum.IntEnum):
        ON = 1

    class Text(str):
        pass

    deep: list[object] = []
    node = deep
    for _ in range(3000):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    assert document_problem({"a": [1, 2.5, "x", None, True]}) is None
    assert document_problem({"a": Flag.ON}) is None  # an int, as the walk says
    assert document_problem({"a": Text("x")}) is None
    assert "not finite" in (document_problem({"a": [float("nan")]}) or "")
    assert "64-bit" in (document_problem({"a": 1 << 70}) or "")
    assert "not a string" in (document_problem({1: "a"}) or "")
    assert "surrogate" in (document_problem({"a": "\ud800"}) or "")
    assert "nested" in (document_problem(deep) or "")
    assert document_problem(deep, max_depth=5000) is None  # no RecursionError
