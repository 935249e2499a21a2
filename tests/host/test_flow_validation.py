"""Flow loading: phase and order errors naming the node, error paths, formula hardening."""

from __future__ import annotations

from typing import Any

import pytest
from hostkit import (
    compute,
    extension,
    flow,
    inventory,
    issue_paths,
    qualify,
    rank,
    rule,
    score,
)

from nextbest import FlowValidationError, Host

FILTER = {"type": "filter", "id": "f", "config": {"requireChannelMatch": True}}
RESPONSE = {"type": "response", "id": "out", "config": {}}


def load_errors(h: Host, *nodes: dict[str, Any], **extra: Any) -> list[Any]:
    with pytest.raises(FlowValidationError) as info:
        h.load_flow(flow(*nodes, **extra))
    return info.value.issues


def test_valid_flow_with_every_node_type(host: Host) -> None:
    compiled = host.load_flow(
        flow(
            inventory(),
            FILTER,
            qualify(rule("r", "segment_required", {})),
            compute(("x", "businessValue * 2")),
            extension("pre_score"),
            score(),
            extension("score_override"),
            rank(),
            extension("post_rank"),
            compute(("y", "x + rank"), node_id="c3"),
            RESPONSE,
        )
    )
    assert [step.node_id for step in compiled.steps] == [
        "inv", "f", "q", "c", "pre_score", "sc", "score_override", "rk", "post_rank", "c3", "out",
    ]  # fmt: skip


def test_a_computed_field_defined_twice_is_named_where_it_is_redefined(host: Host) -> None:
    issues = load_errors(
        host,
        inventory(),
        compute(("x", "1"), ("y", "2")),
        compute(("x", "3"), ("priority", "4"), node_id="c2"),
        score(),
        rank(),
    )
    assert [(i.path, i.message) for i in issues] == [
        ("nodes[2].config.fields[0].name", "field 'x' is defined twice"),
        ("nodes[2].config.fields[1].name", "field 'priority' is defined twice"),
    ]


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (
            (qualify(rule("r", "segment_required", {})), inventory(), score(), rank()),
            [
                ("nodes[0]", "'q'", "must start with inventory"),
                ("nodes[1]", "'inv'", "must be first"),
            ],
        ),
        ((inventory(), rank(), score()), [("nodes[2]", "'sc'", "before rank")]),
        (
            (inventory(), score(), compute(("x", "1")), rank()),
            [("nodes[2]", "'c'", "output compute node must come after rank")],
        ),
        (
            (inventory(), score(), rank(), FILTER),
            [("nodes[3]", "'f'", "belongs to phase 1")],
        ),
        (
            (inventory(), score(), RESPONSE, rank()),
            [("nodes[3]", "'rk'", "belongs to phase 2")],
        ),
        (
            (inventory(), extension("post_rank", "late"), score(), rank()),
            [("nodes[1].config.hook", "'late'", "post_rank must come after rank")],
        ),
        (
            (inventory(), score(), extension("pre_score", "early"), rank()),
            [("nodes[2].config.hook", "'early'", "pre_score must come before score")],
        ),
        (
            (inventory(), score(), rank(), extension("score_override", "ov")),
            [("nodes[3].config.hook", "'ov'", "between score and rank")],
        ),
        (
            (
                inventory(),
                qualify(rule("r", "segment_required", {}), node_id="inv"),
                score(),
                rank(),
            ),
            [("nodes[1].id", "'inv'", "used twice")],
        ),
    ],
)
def test_phase_and_order_errors_name_the_node(
    host: Host, nodes: tuple, expected: list[tuple[str, str, str]]
) -> None:
    issues = load_errors(host, *nodes)
    for path, node_id, text in expected:
        assert any(i.path == path and node_id in i.message and text in i.message for i in issues), (
            path,
            node_id,
            text,
            issues,
        )


def test_flow_level_node_counts(host: Host) -> None:
    issues = load_errors(host, inventory(), score(), score("sc2"), rank(), rank("rk2"))
    messages = [str(i) for i in issues]
    assert "nodes: at most one score node is allowed" in messages
    assert "nodes: at most one rank node is allowed" in messages
    assert "nodes: a flow needs a rank node" in [
        str(i) for i in load_errors(host, inventory(), score())
    ]


def test_every_formula_issue_is_reported_at_once(host: Host) -> None:
    exc = issues_of(host, compute(("a", "nope"), ("b", "'x'.__class__"), ("c", "a + b")))
    assert issue_paths(exc) == [
        "nodes[1].config.fields[0].formula",
        "nodes[1].config.fields[1].formula",
    ]


def issues_of(h: Host, *middle: dict[str, Any]) -> Any:
    with pytest.raises(FlowValidationError) as info:
        h.load_flow(flow(inventory(), *middle, score(), rank()))
    return info.value


@pytest.mark.parametrize(
    ("middle", "path"),
    [
        (
            qualify(rule("r", "recency_check", {"minDays": -1})),
            "nodes[1].config.rules[0].config.minDays",
        ),
        (
            qualify(
                rule("ok", "segment_required", {}), rule("r", "recency_check", {"maxDays": "x"})
            ),
            "nodes[1].config.rules[1].config.maxDays",
        ),
        (
            qualify(rule("r", "segment_required", {"requiredSegments": ["a"], "extra": 1})),
            "nodes[1].config.rules[0].config.extra",
        ),
        (
            qualify(rule("r", "segment_required", {}, priority="high")),
            "nodes[1].config.rules[0].priority",
        ),
        (qualify(rule("r", "no_such_type", {})), "nodes[1].config.rules[0]"),
        (qualify(rule("bad id!", "segment_required", {})), "nodes[1].config.rules[0].id"),
        ({"type": "teleport", "id": "x", "config": {}}, "nodes[1]"),
        ({"type": "compute", "id": "c", "config": {"fields": []}}, "nodes[1].config.fields"),
    ],
)
def test_error_paths(host: Host, middle: dict[str, Any], path: str) -> None:
    assert path in issue_paths(issues_of(host, middle))


def test_document_level_errors(host: Host) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_flow({"key": "k", "version": 1, "nodes": []})
    assert sorted(issue_paths(info.value)) == ["nodes", "version"]
    with pytest.raises(FlowValidationError):
        host.load_flow({"key": "k", "version": 2, "nodes": [inventory(), score(), rank()], "x": 1})


def test_load_flow_from_file_names_the_source(host: Host, tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: k\nversion: 2\nnodes: [{type: inventory, id: i}, {type: score, id: s}]\n")
    with pytest.raises(FlowValidationError) as info:
        host.load_flow(bad)
    assert info.value.source == str(bad)
    assert str(bad) in str(info.value)
    assert "a flow needs a rank node" in str(info.value)


# -- formula hardening at load ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("'x'.__class__", "attribute access"),
        ("__import__('os')", "unknown function '__import__'"),
        ("().__class__.__bases__[0]", "not allowed"),
        ("nope + 1", "unknown name 'nope'"),
        ("customer.unknown_thing > 1", "unknown name 'customer.unknown_thing'"),
        ("open('x')", "unknown function 'open'"),
        ("4000000**4000000 > 1", "4096 bits"),
        ("'a' * 10**9", "longer than"),
        ("lambda: 1", "lambda"),
        ("score * 2", "unknown name 'score'"),  # output names only exist after ranking
    ],
)
def test_formula_hardening_at_load(host: Host, formula: str, message: str) -> None:
    exc = issues_of(host, compute(("x", formula)))
    (issue,) = exc.issues
    assert issue.path == "nodes[1].config.fields[0].formula"
    assert message in issue.message


@pytest.mark.parametrize(
    "node",
    [
        {"type": "filter", "id": "f", "config": {"expression": "__import__('os')"}},
        qualify(rule("e", "expression", {"expression": "'x'.__class__"})),
    ],
)
def test_formula_hardening_in_filters_and_expression_rules(host: Host, node: dict) -> None:
    exc = issues_of(host, node)
    assert exc.issues[0].path.startswith("nodes[1].config")
    assert "invalid formula" in exc.issues[0].message


def test_offer_catalog_errors_have_paths(host: Host) -> None:
    with pytest.raises(FlowValidationError) as info:
        host.load_offers([{"id": "a", "priority": 101}, {"id": "b", "weight": -1}])
    assert issue_paths(info.value) == ["offers[0].priority", "offers[1].weight"]
    with pytest.raises(FlowValidationError) as info:
        host.load_offers({"offers": [{"id": "a"}, {"id": "a"}]})
    assert "duplicate offer id 'a'" in str(info.value)
