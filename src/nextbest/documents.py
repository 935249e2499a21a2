"""Reading documents (flows, offers, triggers, requests, settings values) from JSON or YAML text.

Every entry point that parses a caller's text goes through here, so no text can make the
parser itself fail with a traceback or run away:

- nesting deeper than the parser can follow (thousands of ``[``) is a
  :class:`DocumentSyntaxError` naming where it passes ``MAX_DOCUMENT_DEPTH``;
- an integer literal of thousands of digits (``int()`` refuses 4,300 or more) is read as a
  stand-in outside 64 bits, which :func:`nextbest.store.document_problem` then names by path;
- YAML aliases may not expand a document by more than ``MAX_ALIAS_EXPANSION`` nodes (a file of
  a few lines could otherwise stand for billions of nodes), nor refer to themselves.

What a parsed document may hold (depth, finite numbers, 64-bit integers, valid Unicode) is the
store's rule, :func:`nextbest.store.document_problem`, checked by whoever takes the document.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import FlowIssue, FlowValidationError
from .store import MAX_DOCUMENT_DEPTH

#: How many nodes YAML aliases may add to a document when expanded.
MAX_ALIAS_EXPANSION = 100_000

# An integer literal longer than this is outside 64 bits: it is read as a stand-in outside 64
# bits (document_problem names it) instead of being converted digit by digit.
_MAX_INT_CHARS = 20
_BEYOND_INT64 = 2**64
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
# A JSON string (skipped whole) or a bracket: enough to find where nesting gets too deep.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class DocumentSyntaxError(ValueError):
    """A document's text cannot be parsed: ``reason``, with ``line`` and ``column`` (1-based)
    where known; ``too_deep`` when it nests beyond what the parser follows."""

    def __init__(
        self, reason: str, line: int | None = None, column: int | None = None, *, too_deep: bool
    ) -> None:
        where = f" (line {line} column {column})" if line is not None else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.line = line
        self.column = column
        self.too_deep = too_deep


def bounded_int(text: str) -> int:
    """An integer literal; one too long for 64 bits becomes a stand-in outside 64 bits."""
    if len(text.lstrip("+-")) <= _MAX_INT_CHARS:
        return int(text)
    return -_BEYOND_INT64 if text.startswith("-") else _BEYOND_INT64


def parse_json(text: str) -> Any:
    """JSON text as Python values (``NaN`` and ``Infinity`` included: the document rules refuse
    them by path); DocumentSyntaxError when it is not JSON or nests beyond the parser."""
    try:
        return json.loads(text, parse_int=bounded_int, parse_constant=_NON_FINITE.__getitem__)
    except RecursionError:
        line, column = _too_deep_at(text)
        raise DocumentSyntaxError(_TOO_DEEP, line, column, too_deep=True) from None
    except json.JSONDecodeError as exc:
        raise DocumentSyntaxError(exc.msg, exc.lineno, exc.colno, too_deep=False) from None


def parse_yaml(text: str) -> Any:
    """YAML text as Python values, under the bounds of this module; DocumentSyntaxError when it
    is not YAML, nests beyond the parser, or its aliases expand too far."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise DocumentSyntaxError(_TOO_DEEP, too_deep=True) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise DocumentSyntaxError(problem, line, column, too_deep=False) from None
    finally:
        loader.dispose()


def load_document(path: str | Path) -> Any:
    """Parse a .yaml/.yml/.json file (see the module); a file that cannot be read or parsed is a
    FlowValidationError naming the file and the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowValidationError(
            [FlowIssue("", f"cannot read file: {exc}")], source=str(path)
        ) from None
    is_json = path.suffix.lower() == ".json"
    try:
        return parse_json(text) if is_json else parse_yaml(text)
    except DocumentSyntaxError as exc:
        where = f"line {exc.line}" if exc.line is not None else ""
        kind = "" if exc.too_deep else ("invalid JSON: " if is_json else "invalid YAML: ")
        raise FlowValidationError([FlowIssue(where, kind + exc.reason)], source=str(path)) from None


_TOO_DEEP = f"is nested more than {MAX_DOCUMENT_DEPTH} levels deep"


def _too_deep_at(text: str) -> tuple[int | None, int | None]:
    """The line and column where JSON ``text`` opens its level MAX_DOCUMENT_DEPTH + 1."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DOCUMENT_DEPTH:
                start = match.start()
                line = text.count("\n", 0, start) + 1
                return line, start - (text.rfind("\n", 0, start) + 1) + 1
        elif token in "]}":
            depth -= 1
    return None, None


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with bounded integers and bounded alias expansion."""

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = str(node.value).replace("_", "")
        if len(digits.lstrip("+-")) > _MAX_INT_CHARS and digits.lstrip("+-").isdigit():
            return -_BEYOND_INT64 if digits.startswith("-") else _BEYOND_INT64
        return super().construct_yaml_int(node)

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _check_expansion(root: Node) -> None:
    """Raise DocumentSyntaxError when the aliases of the composed document ``root`` make it
    refer to itself or add more than MAX_ALIAS_EXPANSION nodes once expanded."""
    expanded: dict[int, int] = {}  # id(node) -> the node's size with its aliases expanded
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in expanded:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children)
            continue
        if key in open_nodes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                mark = child.start_mark
                raise DocumentSyntaxError(
                    "an alias refers to a node that contains it",
                    mark.line + 1,
                    mark.column + 1,
                    too_deep=False,
                )
            if id(child) not in expanded:
                stack.append((child, False))
    if expanded[id(root)] - len(expanded) > MAX_ALIAS_EXPANSION:
        raise DocumentSyntaxError(
            f"its aliases expand it by {expanded[id(root)] - len(expanded):,} nodes (at most "
            f"{MAX_ALIAS_EXPANSION:,} may be added by aliases)",
            too_deep=False,
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []
