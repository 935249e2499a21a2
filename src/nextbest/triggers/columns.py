"""A trigger condition over whole columns (numpy): which customers of a batch *may* fire.

Evaluating ``when`` one customer at a time costs microseconds per customer; a batch of a
million customers, of whom a handful cross, spends seconds on customers that do not. This
module compiles the common conditions (comparisons, ``and`` / ``or`` / ``not``, arithmetic on
names and constants) to numpy operations over the columns a context change carries, and answers,
per customer, whether the condition may be true. The engine then evaluates only those customers
with the compiled formula, so the row-wise evaluation stays the one definition of the result.

The answer is a superset, never missing a customer the formula would find true: a row whose
value this cannot judge exactly (a null, a string compared by order, a result that is not finite
where the formula would fail, ...) is "unknown", and unknown rows are kept. A formula with any
other construct (a function call, a conditional expression, a subscript) gets no column form
(:func:`column_filter` returns None) and every customer is evaluated row by row.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ColumnFilter", "ColumnTruth", "column_filter"]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class _Unsupported(Exception):
    """The formula (or a column) has no column form."""


@dataclass(frozen=True)
class _Col:
    """A node's value per row: ``values`` (float64 for numbers, object for text) and the rows
    whose value is unknown; ``truth`` marks a boolean result (of a comparison or a logic op)."""

    values: np.ndarray
    unknown: np.ndarray
    numeric: bool
    truth: bool = False


@dataclass(frozen=True)
class ColumnTruth:
    """Per row, what the column form knows of the formula's truth: ``may`` is False only where
    the formula is known to be false; ``sure`` is True only where it is known to be true."""

    may: np.ndarray
    sure: np.ndarray


ColumnFilter = Callable[[Mapping[str, Sequence[Any]], int], ColumnTruth]


def column_filter(source: str, names: frozenset[str]) -> ColumnFilter | None:
    """A function of (columns by name, row count) giving the :class:`ColumnTruth` of the
    formula ``source`` per row (see the module). None when the formula has no column form.
    The function raises KeyError when a name it reads is not among the columns."""
    try:
        tree = ast.parse(source.strip(), mode="eval").body
        _check(tree, names)
    except (SyntaxError, _Unsupported, RecursionError):
        return None

    def run(columns: Mapping[str, Sequence[Any]], rows: int) -> ColumnTruth:
        try:
            result = _truth(_eval(tree, columns, rows))
        except _Unsupported:
            return ColumnTruth(np.ones(rows, dtype=bool), np.zeros(rows, dtype=bool))
        truth = result.values.astype(bool)
        return ColumnTruth(truth | result.unknown, truth & ~result.unknown)

    return run


def _check(node: ast.expr, names: frozenset[str]) -> None:
    """Raise _Unsupported for a construct this module does not evaluate."""
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, bool | int | float | str) and node.value is not None:
            raise _Unsupported
    elif isinstance(node, ast.Name | ast.Attribute):
        if _dotted(node) not in names:
            raise _Unsupported
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise _Unsupported
        for child in (node.left, *node.comparators):
            _check(child, names)
    elif isinstance(node, ast.BoolOp):
        for child in node.values:
            _check(child, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            raise _Unsupported
        _check(node.operand, names)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITHMETIC:
            raise _Unsupported
        _check(node.left, names)
        _check(node.right, names)
    else:
        raise _Unsupported


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise _Unsupported
    parts.append(node.id)
    return ".".join(reversed(parts))


# Integers beyond this lose digits as float64: such rows are unknown.
_EXACT = 2.0**53
_NUMBER_TYPES = (int, float, bool, np.integer, np.floating, np.bool_)


def _numbers(values: np.ndarray, unknown: np.ndarray) -> _Col:
    numbers = values.astype(np.float64)
    with np.errstate(invalid="ignore"):
        inexact = np.abs(numbers) > _EXACT
    # NaN and infinities fail a formula row by row (not a finite number): unknown here.
    return _Col(numbers, unknown | inexact | ~np.isfinite(numbers), numeric=True)


def _column(values: Sequence[Any], rows: int) -> _Col:
    array = np.asarray(values)
    if array.shape != (rows,):
        raise _Unsupported
    known = np.zeros(rows, dtype=bool)
    if array.dtype.kind in "fiub":
        return _numbers(array, known)
    if array.dtype.kind == "U":
        return _Col(array.astype(object), known, numeric=False)
    if array.dtype.kind == "O":
        # Numbers with gaps (None): numbers, the gaps unknown (None >= 1 fails row by row).
        missing = np.fromiter((v is None for v in array), dtype=bool, count=rows)
        number = np.fromiter((isinstance(v, _NUMBER_TYPES) for v in array), dtype=bool, count=rows)
        if (missing | number).all() and number.any():
            return _numbers(np.where(missing, 0.0, array), missing)
        # Text or mixed values: equality is judged element by element, the rest is unknown.
        return _Col(array, known, numeric=False)
    raise _Unsupported


def _constant(value: Any, rows: int) -> _Col:
    known = np.zeros(rows, dtype=bool)
    if value is None:
        return _Col(np.full(rows, None, dtype=object), ~known, numeric=False)
    if isinstance(value, str):
        return _Col(np.full(rows, value, dtype=object), known, numeric=False)
    return _Col(np.full(rows, float(value)), known | (abs(value) > _EXACT), numeric=True)


def _eval(node: ast.expr, columns: Mapping[str, Sequence[Any]], rows: int) -> _Col:
    if isinstance(node, ast.Constant):
        return _constant(node.value, rows)
    if isinstance(node, ast.Name | ast.Attribute):
        return _column(columns[_dotted(node)], rows)
    if isinstance(node, ast.Compare):
        result: _Col | None = None
        left = _eval(node.left, columns, rows)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, columns, rows)
            step = _compare(op, left, right)
            result = step if result is None else _and(result, step)
            left = right
        assert result is not None
        return result
    if isinstance(node, ast.BoolOp):
        parts = [_truth(_eval(v, columns, rows)) for v in node.values]
        combined = parts[0]
        for part in parts[1:]:
            combined = _and(combined, part) if isinstance(node.op, ast.And) else _or(combined, part)
        return combined
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, columns, rows)
        if isinstance(node.op, ast.Not):
            truth = _truth(operand)
            return _Col(~truth.values.astype(bool), truth.unknown, numeric=False, truth=True)
        if not operand.numeric or operand.truth:
            raise _Unsupported
        values = -operand.values if isinstance(node.op, ast.USub) else operand.values
        return _Col(values, operand.unknown, numeric=True)
    if isinstance(node, ast.BinOp):
        return _arithmetic(
            node.op, _eval(node.left, columns, rows), _eval(node.right, columns, rows)
        )
    raise _Unsupported


def _truth(col: _Col) -> _Col:
    """The truth of each row's value (Python's ``bool``); text and mixed values are unknown."""
    if col.truth:
        return col
    if col.numeric:  # bool(nan) is True in Python, as nan != 0 is here
        return _Col(col.values != 0, col.unknown, numeric=False, truth=True)
    return _Col(np.zeros(len(col.values), dtype=bool), np.ones(len(col.values), dtype=bool),
                numeric=False, truth=True)  # fmt: skip


def _and(a: _Col, b: _Col) -> _Col:
    # ``a and b``: false where a is known false; unknown where a is unknown, or a is true and
    # b unknown.
    ta, tb = a.values.astype(bool), b.values.astype(bool)
    unknown = a.unknown | (ta & b.unknown)
    return _Col(ta & tb, unknown, numeric=False, truth=True)


def _or(a: _Col, b: _Col) -> _Col:
    ta, tb = a.values.astype(bool), b.values.astype(bool)
    unknown = a.unknown | (~ta & b.unknown)
    return _Col(ta | tb, unknown, numeric=False, truth=True)


def _compare(op: ast.cmpop, a: _Col, b: _Col) -> _Col:
    rows = len(a.values)
    if a.truth or b.truth:
        raise _Unsupported  # a comparison of comparisons: rare, left to the row evaluation
    unknown = a.unknown | b.unknown
    if a.numeric and b.numeric:
        with np.errstate(invalid="ignore"):
            values = _COMPARE[type(op)](a.values, b.values)
        return _Col(values, unknown, numeric=False, truth=True)
    if isinstance(op, ast.Eq | ast.NotEq) and not a.numeric and not b.numeric:
        # Text (or mixed) equality, element by element as Python compares them.
        values = np.fromiter(
            (x == y for x, y in zip(a.values, b.values, strict=True)), dtype=bool, count=rows
        )
        if isinstance(op, ast.NotEq):
            values = ~values
        return _Col(values, unknown, numeric=False, truth=True)
    # Ordering text, or a number against text: left to the row evaluation.
    return _Col(np.zeros(rows, dtype=bool), np.ones(rows, dtype=bool), numeric=False, truth=True)


def _arithmetic(op: ast.operator, a: _Col, b: _Col) -> _Col:
    if not (a.numeric and b.numeric) or a.truth or b.truth:
        raise _Unsupported
    unknown = a.unknown | b.unknown
    with np.errstate(all="ignore"):
        if isinstance(op, ast.Div):
            zero = b.values == 0
            values = a.values / np.where(zero, 1.0, b.values)
            unknown = unknown | zero  # the formula fails on a division by zero
        else:
            values = _ARITHMETIC[type(op)](a.values, b.values)
    # A result that is not finite is a failed formula row by row (and so is NaN in, NaN out).
    return _Col(values, unknown | ~np.isfinite(values), numeric=True)
