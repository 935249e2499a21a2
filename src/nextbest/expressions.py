"""Hardened formulas: compile once when a flow is loaded, evaluate many times per decision.

Formulas are used by computed fields and by the ``expression`` rule type. The language is a small
subset of Python expressions, parsed with :mod:`ast` and restricted far beyond simpleeval's
deny-list sandbox; the operator semantics and the size limits come from simpleeval
(``simpleeval.DEFAULT_OPERATORS``, ``safe_add``, ``safe_mult``, ``MAX_STRING_LENGTH``), with
stricter replacements where simpleeval's defaults are unsafe (power, ``%``).

What a formula may contain
--------------------------
- literals: numbers (int, float), strings, ``True``, ``False``, ``None``;
- arithmetic ``+ - * / // % **``, unary ``- + not``;
- comparisons ``== != < <= > >=`` (chained too: ``0 <= x < 10``), ``in`` / ``not in`` (the right
  side may be a list or tuple literal, the only place such literals are allowed, or any other
  expression), ``is None`` / ``is not None``;
- ``and``, ``or``, and the conditional expression ``a if cond else b``;
- calls of known functions, by bare name and with positional arguments only;
- names. Names are *flat*: a chain of attribute accesses on a bare name is one name whose string is
  the dotted path, so ``customer.score``, ``offer.businessValue``, ``attributes.tier`` and
  ``customer.loyalty.tier`` are each looked up as a single key in the mapping given to
  :meth:`CompiledExpression.evaluate`. A key that is not a Python identifier can be written as a
  string subscript on a name chain: ``attributes['loyalty-tier']`` is the flat name
  ``attributes.loyalty-tier``. No name part may start with ``_``.

Everything else is rejected when the formula is compiled, with an :class:`ExpressionError` naming
the construct: attribute access on anything but a name chain (``'x'.__class__``, ``f(x).y``),
other subscripts, lambdas, comprehensions, f-strings, walrus, starred and keyword arguments,
dict/set literals, bitwise and shift operators, complex/bytes literals. Unknown names (when the
caller gives ``is_known_name``) and unknown functions are compile errors naming them. A source
longer than ``max_length`` characters, with more than ``max_nodes`` expression nodes or nested
deeper than :data:`MAX_DEPTH` is rejected.

Constant sub-expressions (no names, no calls) are evaluated at compile time; one that fails, such as
``4000000**4000000``, ``'a' * 10**9`` or ``1e308 * 10`` (not finite), is a compile error, and so is
a literal too large for a float (``1e309``).

Resource limits at evaluation time
----------------------------------
``a ** b`` is refused before computing it when the result would need more than
:data:`MAX_INT_BITS` bits (integers) and fails with overflow for floats; integer products are capped
the same way; strings and sequences built by ``+``, ``*`` and ``concat`` are capped at
``simpleeval.MAX_STRING_LENGTH`` items; ``%`` is numeric only (no ``printf``-style formatting).
Every other operation is bounded by the size of its operands (``in`` on strings is CPython's
linear-time substring search; there are no loops, comprehensions or user-defined functions), so
one evaluation costs at most the number of nodes times the work of the largest operation.

Finite numbers only
-------------------
Infinity and NaN never come out of a formula: an operation whose float result is not finite
(``1e308 * 10``, ``exp(709) * x``, ``x - x`` with ``x`` infinite), a function returning a
non-finite number (also inside a list or tuple), or a name whose value is a non-finite float
raises :class:`EvaluationError`; the engine turns it into null plus a trace entry. Comparisons,
``and``/``or`` and conditionals only pass values on, so every result is finite.

None handling
-------------
Arithmetic on ``None`` (``x + 1`` with ``x`` None) raises :class:`EvaluationError`; the engine
turns that into a null field plus a trace entry. ``x == None``, ``x != None``, ``x is None`` and
``x in (None, 1)`` work. Ordering comparisons with ``None`` (``None > 1``) raise
:class:`EvaluationError`. Use ``coalesce(x, default)`` to supply a default. ``concat`` renders
``None`` as an empty string.

Thread safety
-------------
Compilation turns the validated AST into a tree of small closures that hold no mutable state, so a
:class:`CompiledExpression` can be evaluated from any number of threads at once.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import simpleeval

__all__ = [
    "DEFAULT_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_SEQUENCE_LENGTH",
    "CompiledExpression",
    "EvaluationError",
    "ExpressionError",
    "compile_expression",
    "non_finite",
    "plain_number",
]

MAX_DEPTH = 100
"""Deepest nesting of expression nodes accepted (keeps compile and evaluation recursion bounded)."""

MAX_INT_BITS = 4096
"""Largest integer (in bits, about 1233 decimal digits) that ``**`` and ``*`` may produce."""

MAX_SEQUENCE_LENGTH: int = simpleeval.MAX_STRING_LENGTH
"""Longest string or sequence that ``+``, ``*`` and ``concat`` may produce."""

_Evaluator = Callable[[Mapping[str, Any]], Any]


class ExpressionError(ValueError):
    """A formula cannot be compiled (raised when a flow is loaded).

    Covers syntax errors, unknown names and functions, disallowed constructs (attribute access on
    anything but a name chain, lambdas, comprehensions, f-strings, dunder names...), sources that
    are too long or too large, and constant sub-expressions that cannot be evaluated. The message
    names the problem and the offending name or construct.

    Attributes:
        source: the formula as written.
        reason: what is wrong, without the formula.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"invalid formula {_shorten(source)!r}: {reason}")


class EvaluationError(Exception):
    """A compiled formula failed at evaluation time.

    Raised for division by zero, type errors (including arithmetic on None), size limits, a
    non-finite number (an operation's result, a function's result or a name's value), a
    function raising, or a referenced name missing from the mapping. The engine turns it into a
    null value plus a trace entry.

    Attributes:
        source: the formula as written.
        reason: what went wrong, without the formula.
        function: the name of the function that raised, when a function call failed.
    """

    def __init__(self, source: str, reason: str, function: str | None = None) -> None:
        self.source = source
        self.reason = reason
        self.function = function
        super().__init__(f"formula {_shorten(source)!r} failed: {reason}")


class _Failure(Exception):
    """Internal evaluation failure; :meth:`CompiledExpression.evaluate` adds the source."""

    def __init__(self, message: str, function: str | None = None) -> None:
        super().__init__(message)
        self.function = function


def _shorten(source: object, limit: int = 120) -> str:
    text = str(source)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_PLAIN = (str, int, type(None))


def plain_number(value: numbers.Real) -> int | float:
    """A number of another type (numpy's ``float64``, ``int64``, ...) as a Python ``int`` or
    ``float``, which formulas check and compute with (numpy integers would overflow silently)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def non_finite(value: Any) -> float | None:
    """The first infinite or NaN number in ``value`` (a number, or lists, tuples and dicts of
    them, at any depth), or None when every number in it is finite.

    Used wherever a number enters a decision: formula results, plugin function results, context
    values. Numbers of other types (numpy scalars) count by their float value.
    """
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item - item != 0.0:
                return item
        elif isinstance(item, _PLAIN):  # bool is an int
            continue
        elif isinstance(item, list | tuple | dict):
            if id(item) in seen:  # a container holding itself
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
        elif isinstance(item, numbers.Real):
            number = float(item)
            if not math.isfinite(number):
                return number
    return None


@dataclass(frozen=True)
class CompiledExpression:
    """A validated formula, ready to evaluate any number of times from any number of threads.

    Attributes:
        source: the formula as written.
        names: the flat names it references (``{"customer.score", "priority"}``).
        functions: the names of the functions it calls.
    """

    source: str
    names: frozenset[str]
    functions: frozenset[str]
    _evaluator: _Evaluator = field(repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate the formula with ``names`` mapping each flat name to its value.

        Raises:
            EvaluationError: on any failure (a name missing from ``names``, division by zero,
                arithmetic on None, a size limit, a function raising...).
        """
        try:
            return self._evaluator(names)
        except _Failure as exc:
            raise EvaluationError(self.source, str(exc), exc.function) from None
        except Exception as exc:
            raise EvaluationError(self.source, _describe(exc)) from exc


# --- operators ------------------------------------------------------------------------------
# Plain operators come straight from simpleeval's table. ``+`` and ``*`` wrap simpleeval's
# length-limited versions with an integer size cap; ``**`` and ``%`` replace simpleeval's, whose
# power limit still lets ``4000000**4000000`` burn ~30 s of CPU and whose ``%`` allows
# ``'%999999999d' % 1``.

_SIMPLEEVAL_OPS = simpleeval.DEFAULT_OPERATORS


_NUMERIC = frozenset({int, float, bool})


def _fmt(value: Any) -> str:
    """A short rendering of an operand for messages (huge ints cannot even be str()-ed)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<{value.bit_length()}-bit integer>"
    return _shorten(repr(value), 40)


def _check_int_bits(bits: float, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise _Failure(f"{what} would exceed {MAX_INT_BITS} bits")


def _not_finite(a: Any, symbol: str, b: Any, result: float) -> _Failure:
    return _Failure(f"{_fmt(a)} {symbol} {_fmt(b)} is not a finite number ({result})")


# Each float result is checked with ``r - r != 0.0``: true exactly for inf and NaN, and cheaper
# than a call of math.isfinite on the hot path. Operands are always finite (literals, names and
# function results are checked), so only the operations that can overflow silently need the
# check: ``+`` and ``*`` here, ``- / //`` (C functions, no Python frame) in the closure that
# calls them (_finite_binop). ``isinstance`` rather than ``type() is`` covers numpy's float64.


def _add(a: Any, b: Any) -> Any:
    if type(a) in _NUMERIC and type(b) in _NUMERIC:
        result = a + b
        if isinstance(result, float) and result - result != 0.0:
            raise _not_finite(a, "+", b, result)
        return result
    try:
        result = simpleeval.safe_add(a, b)
    except simpleeval.IterableTooLong:
        raise _Failure(f"'+' would build a value longer than {MAX_SEQUENCE_LENGTH}") from None
    if isinstance(result, float) and result - result != 0.0:  # numpy's float64
        raise _not_finite(a, "+", b, result)
    return result


def _mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is float or tb is float:
        result = a * b
        if isinstance(result, float) and result - result != 0.0:
            raise _not_finite(a, "*", b, result)
        return result
    if ta is int and tb is int:
        _check_int_bits(a.bit_length() + b.bit_length() - 1, "integer product")
        return a * b
    try:
        result = simpleeval.safe_mult(a, b)
    except simpleeval.IterableTooLong:
        raise _Failure(f"'*' would build a value longer than {MAX_SEQUENCE_LENGTH}") from None
    if isinstance(result, float) and result - result != 0.0:  # numpy's float64
        raise _not_finite(a, "*", b, result)
    return result


def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        # |a|**b has b*log2|a| bits: refuse before Python spends time and memory computing it.
        what = f"{_fmt(a)} ** {_fmt(b)}"
        _check_int_bits(b, what)  # |a| >= 2, so the result has at least b bits
        _check_int_bits(b * math.log2(abs(a)), what)
    result = a**b  # a float result that overflows raises OverflowError: never inf
    if type(result) is complex:
        raise _Failure(f"{_fmt(a)} ** {_fmt(b)} has no real result")
    return result


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise _Failure("'%' is arithmetic only; use concat() to build strings")
    return a % b  # |a % b| <= |b|: finite operands give a finite result


def _finite_binop(
    op: Callable[[Any, Any], Any], symbol: str, left: _Node, right: _Node
) -> _Evaluator:
    """The closure of ``left op right`` that fails on a non-finite float result."""
    lf, rf = left.fn, right.fn
    if right.constant:
        rv = right.value

        def run(names: Mapping[str, Any]) -> Any:
            a = lf(names)
            result = op(a, rv)
            if isinstance(result, float) and result - result != 0.0:
                raise _not_finite(a, symbol, rv, result)
            return result

    elif left.constant:
        lv = left.value

        def run(names: Mapping[str, Any]) -> Any:
            b = rf(names)
            result = op(lv, b)
            if isinstance(result, float) and result - result != 0.0:
                raise _not_finite(lv, symbol, b, result)
            return result

    else:

        def run(names: Mapping[str, Any]) -> Any:
            a = lf(names)
            b = rf(names)
            result = op(a, b)
            if isinstance(result, float) and result - result != 0.0:
                raise _not_finite(a, symbol, b, result)
            return result

    return run


def _is(a: Any, b: Any) -> bool:
    return a is b


def _is_not(a: Any, b: Any) -> bool:
    return a is not b


_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _SIMPLEEVAL_OPS[ast.Sub],
    ast.Mult: _mul,
    ast.Div: _SIMPLEEVAL_OPS[ast.Div],
    ast.FloorDiv: _SIMPLEEVAL_OPS[ast.FloorDiv],
    ast.Mod: _mod,
    ast.Pow: _pow,
}

#: Operators whose float result the compiled closure checks (see _finite_binop), with symbols.
_CHECKED_IN_CLOSURE: dict[type[ast.operator], str] = {
    ast.Sub: "-",
    ast.Div: "/",
    ast.FloorDiv: "//",
}

_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: _SIMPLEEVAL_OPS[ast.USub],
    ast.UAdd: _SIMPLEEVAL_OPS[ast.UAdd],
    ast.Not: _SIMPLEEVAL_OPS[ast.Not],
}

_COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: _SIMPLEEVAL_OPS[ast.Eq],
    ast.NotEq: _SIMPLEEVAL_OPS[ast.NotEq],
    ast.Lt: _SIMPLEEVAL_OPS[ast.Lt],
    ast.LtE: _SIMPLEEVAL_OPS[ast.LtE],
    ast.Gt: _SIMPLEEVAL_OPS[ast.Gt],
    ast.GtE: _SIMPLEEVAL_OPS[ast.GtE],
    ast.In: _SIMPLEEVAL_OPS[ast.In],
    ast.NotIn: _SIMPLEEVAL_OPS[ast.NotIn],
    ast.Is: _is,
    ast.IsNot: _is_not,
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
}


# --- default functions ----------------------------------------------------------------------


def _coalesce(*args: Any) -> Any:
    """Return the first argument that is not None, or None."""
    for value in args:
        if value is not None:
            return value
    return None


def _concat(*args: Any) -> str:
    """Join the string form of every argument; None contributes an empty string."""
    parts = ["" if value is None else str(value) for value in args]
    if sum(len(part) for part in parts) > MAX_SEQUENCE_LENGTH:
        raise ValueError(f"result would be longer than {MAX_SEQUENCE_LENGTH} characters")
    return "".join(parts)


def _clamp(value: Any, low: Any, high: Any) -> Any:
    """Limit ``value`` to ``[low, high]``."""
    if low > high:
        raise ValueError(f"lower bound {low!r} is above upper bound {high!r}")
    return min(max(value, low), high)


def _log(value: Any, base: Any = math.e) -> float:
    """Natural logarithm, or logarithm in ``base``; ``value`` must be positive."""
    if value <= 0:
        raise ValueError(f"logarithm of a non-positive value ({value!r})")
    if base <= 0 or base == 1:
        raise ValueError(f"logarithm base must be positive and not 1 (got {base!r})")
    return math.log(value, base)


#: ``round``'s ndigits is bounded: integers are capped far below 10**MAX_ROUND_DIGITS and floats
#: have no digits beyond it, while ``round(1, -10**9)`` would compute 10**(10**9).
MAX_ROUND_DIGITS = 1300


def _round(value: Any, ndigits: Any = None) -> Any:
    """``round(value)`` or ``round(value, ndigits)`` with ``|ndigits| <= MAX_ROUND_DIGITS``."""
    if ndigits is None:
        return round(value)
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ValueError(f"ndigits must lie in [-{MAX_ROUND_DIGITS}, {MAX_ROUND_DIGITS}]")
    return round(value, ndigits)


def _exp(value: Any) -> float:
    """``e ** value``; overflow is an error."""
    return math.exp(value)


DEFAULT_FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "min": min,
        "max": max,
        "round": _round,
        "abs": abs,
        "coalesce": _coalesce,
        "concat": _concat,
        "clamp": _clamp,
        "log": _log,
        "exp": _exp,
    }
)
"""Functions every formula may use; plugin functions are merged into these by the caller."""


# --- compiler -------------------------------------------------------------------------------


class _Node(NamedTuple):
    """A compiled sub-expression: its evaluator, and its value when it is a constant."""

    fn: _Evaluator
    constant: bool = False
    value: Any = None


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _constant(value: Any) -> _Node:
    return _Node(lambda _names: value, True, value)


def _name_part_problem(part: str) -> str | None:
    if not part:
        return "an empty name part"
    if part.startswith("_") or "__" in part:
        return f"name part {part!r} starts with '_' or contains '__'"
    if "." in part:
        return f"key {part!r} contains '.'"
    return None


class _Compiler:
    def __init__(
        self,
        source: str,
        functions: Mapping[str, Callable[..., Any]],
        is_known_name: Callable[[str], bool] | None,
    ) -> None:
        self.source = source
        self.functions = functions
        self.is_known_name = is_known_name
        self.names: set[str] = set()
        self.called: set[str] = set()

    def error(self, reason: str) -> ExpressionError:
        return ExpressionError(self.source, reason)

    def compile(self, node: ast.expr) -> _Node:
        method = getattr(self, f"_compile_{type(node).__name__.lower()}", None)
        if method is None:
            raise self.error(f"{_construct_name(node)} is not allowed in formulas")
        result: _Node = method(node)
        return result

    def fold(self, node: ast.expr, built: _Node, children: list[_Node]) -> _Node:
        """Evaluate ``built`` now when all of its children are constants."""
        if not all(child.constant for child in children):
            return built
        try:
            value = built.fn(_EMPTY)
        except _Failure as exc:
            reason = str(exc)
        except Exception as exc:
            reason = _describe(exc)
        else:
            return _constant(value)
        raise self.error(
            f"constant sub-expression `{_shorten(ast.unparse(node), 60)}` fails: {reason}"
        )

    # literals

    def _compile_constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, float) and not math.isfinite(value):  # 1e309 parses as inf
            written = ast.get_source_segment(self.source.strip(), node) or ast.unparse(node)
            raise self.error(
                f"literal {_shorten(written, 40)} is not a finite number (too large for a float)"
            )
        if value is None or isinstance(value, bool | int | float | str):
            return _constant(value)
        raise self.error(f"literal {_shorten(ast.unparse(node), 40)} is not allowed in formulas")

    # names

    def _compile_name(self, node: ast.Name) -> _Node:
        return self.lookup(node, [node.id])

    def _compile_attribute(self, node: ast.Attribute) -> _Node:
        return self.lookup(node, self.name_chain(node))

    def _compile_subscript(self, node: ast.Subscript) -> _Node:
        return self.lookup(node, self.name_chain(node))

    def name_chain(self, node: ast.expr) -> list[str]:
        """``a.b['c'].d`` -> ``['a', 'b', 'c', 'd']``; anything else is a compile error."""
        parts: list[str] = []
        current = node
        while True:
            if isinstance(current, ast.Attribute):
                parts.append(current.attr)
                current = current.value
            elif isinstance(current, ast.Subscript):
                key = current.slice
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    raise self.error(
                        f"subscript `{_shorten(ast.unparse(current), 60)}` is not allowed: "
                        "only a string key on a name is (attributes['some-key'])"
                    )
                parts.append(key.value)
                current = current.value
            elif isinstance(current, ast.Name):
                parts.append(current.id)
                return parts[::-1]
            else:
                kind = "attribute access" if isinstance(node, ast.Attribute) else "subscript"
                raise self.error(
                    f"{kind} `{_shorten(ast.unparse(node), 60)}` is not allowed: only flat "
                    "names such as customer.score can be used"
                )

    def lookup(self, node: ast.expr, parts: list[str]) -> _Node:
        for part in parts:
            problem = _name_part_problem(part)
            if problem is not None:
                raise self.error(f"`{_shorten(ast.unparse(node), 60)}` is not allowed: {problem}")
        name = ".".join(parts)
        if self.is_known_name is not None and not self.is_known_name(name):
            raise self.error(f"unknown name {name!r}")
        self.names.add(name)

        def get(names: Mapping[str, Any]) -> Any:
            try:
                value = names[name]
            except KeyError:
                raise _Failure(f"name {name!r} has no value") from None
            if isinstance(value, float) and value - value != 0.0:
                raise _Failure(f"name {name!r} is not a finite number ({value})")
            return value

        return _Node(get)

    # operators

    def _compile_binop(self, node: ast.BinOp) -> _Node:
        fn = _BINARY_OPS.get(type(node.op))
        if fn is None:
            raise self.error(f"operator {_symbol(node.op)!r} is not allowed in formulas")
        left, right = self.compile(node.left), self.compile(node.right)
        lf, rf = left.fn, right.fn
        symbol = _CHECKED_IN_CLOSURE.get(type(node.op))
        if symbol is not None:
            built = _Node(_finite_binop(fn, symbol, left, right))
        elif right.constant:
            rv = right.value
            built = _Node(lambda names: fn(lf(names), rv))
        elif left.constant:
            lv = left.value
            built = _Node(lambda names: fn(lv, rf(names)))
        else:
            built = _Node(lambda names: fn(lf(names), rf(names)))
        return self.fold(node, built, [left, right])

    def _compile_unaryop(self, node: ast.UnaryOp) -> _Node:
        fn = _UNARY_OPS.get(type(node.op))
        if fn is None:
            raise self.error(f"operator {_symbol(node.op)!r} is not allowed in formulas")
        operand = self.compile(node.operand)
        of = operand.fn
        return self.fold(node, _Node(lambda names: fn(of(names))), [operand])

    def _compile_boolop(self, node: ast.BoolOp) -> _Node:
        values = [self.compile(value) for value in node.values]
        fns = tuple(value.fn for value in values)
        if isinstance(node.op, ast.And):

            def run(names: Mapping[str, Any]) -> Any:
                result: Any = True
                for fn in fns:
                    result = fn(names)
                    if not result:
                        return result
                return result

        else:

            def run(names: Mapping[str, Any]) -> Any:
                result: Any = False
                for fn in fns:
                    result = fn(names)
                    if result:
                        return result
                return result

        return self.fold(node, _Node(run), values)

    def _compile_ifexp(self, node: ast.IfExp) -> _Node:
        test, body, orelse = (self.compile(n) for n in (node.test, node.body, node.orelse))
        tf, bf, of = test.fn, body.fn, orelse.fn
        built = _Node(lambda names: bf(names) if tf(names) else of(names))
        return self.fold(node, built, [test, body, orelse])

    def _compile_compare(self, node: ast.Compare) -> _Node:
        left = self.compile(node.left)
        operands = [left]
        steps: list[tuple[Callable[[Any, Any], Any], _Evaluator]] = []
        previous: ast.expr = node.left
        for cmp, comparator in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE_OPS.get(type(cmp))
            if fn is None:  # pragma: no cover - every ast.cmpop is in the table
                raise self.error(f"comparison {type(cmp).__name__} is not allowed")
            if isinstance(cmp, ast.Is | ast.IsNot) and not (
                _is_none(previous) or _is_none(comparator)
            ):
                raise self.error("'is' and 'is not' may only compare with None; use == or !=")
            if isinstance(cmp, ast.In | ast.NotIn) and isinstance(comparator, ast.List | ast.Tuple):
                right = self.sequence(comparator)
            else:
                right = self.compile(comparator)
            operands.append(right)
            steps.append((fn, right.fn))
            previous = comparator
        first = left.fn
        if len(steps) == 1:
            compare, second = steps[0]
            built = _Node(lambda names: compare(first(names), second(names)))
        else:
            chain = tuple(steps)

            def run(names: Mapping[str, Any]) -> Any:
                current = first(names)
                result: Any = True
                for compare, operand in chain:
                    following = operand(names)
                    result = compare(current, following)
                    if not result:
                        return result
                    current = following
                return result

            built = _Node(run)
        return self.fold(node, built, operands)

    def sequence(self, node: ast.List | ast.Tuple) -> _Node:
        """A list/tuple literal on the right of ``in``, evaluated to a tuple."""
        items = [self.compile(item) for item in node.elts]
        if all(item.constant for item in items):
            return _constant(tuple(item.value for item in items))
        fns = tuple(item.fn for item in items)
        return _Node(lambda names: tuple(fn(names) for fn in fns))

    def _compile_list(self, node: ast.List) -> _Node:
        raise self.error("list literals are only allowed on the right of 'in' / 'not in'")

    def _compile_tuple(self, node: ast.Tuple) -> _Node:
        raise self.error("tuple literals are only allowed on the right of 'in' / 'not in'")

    # calls

    def _compile_call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self.error(
                f"call of `{_shorten(ast.unparse(node.func), 60)}` is not allowed: only functions "
                "called by name, such as max(a, b)"
            )
        name = node.func.id
        function = self.functions.get(name)
        if function is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise self.error(f"unknown function {name!r} (known functions: {known})")
        if node.keywords:
            raise self.error(f"keyword arguments are not allowed (in the call of {name}())")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error(f"starred arguments are not allowed (in the call of {name}())")
        _check_arity(self, name, function, len(node.args))
        self.called.add(name)
        args = tuple(self.compile(arg).fn for arg in node.args)

        def call(names: Mapping[str, Any]) -> Any:
            values = [fn(names) for fn in args]
            try:
                result = function(*values)
            except Exception as exc:
                raise _Failure(f"function {name}() failed: {_describe(exc)}", name) from exc
            kind = type(result)
            if kind is float:
                if result - result == 0.0:
                    return result
                bad: float | None = result
            elif kind in _FINITE_TYPES:
                return result
            elif isinstance(result, numbers.Real):  # numpy's: a plain number from here on
                result = plain_number(result)
                if type(result) is int or result - result == 0.0:
                    return result
                bad = result
            else:
                bad = non_finite(result)
            if bad is not None:
                raise _Failure(f"function {name}() returned {bad}, not a finite number", name)
            return result

        return _Node(call)


#: Result types of function calls that hold no number that could be infinite or NaN.
_FINITE_TYPES = frozenset({int, bool, str, type(None)})


def _check_arity(compiler: _Compiler, name: str, function: Callable[..., Any], count: int) -> None:
    """Reject a call whose argument count the function cannot accept, when that is knowable."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        if function in (min, max) and count == 0:
            raise compiler.error(f"{name}() needs at least one argument") from None
        return
    try:
        signature.bind(*range(count))
    except TypeError as exc:
        raise compiler.error(f"wrong number of arguments for {name}(): {exc}") from None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _symbol(op_node: ast.AST) -> str:
    return _OPERATOR_SYMBOLS.get(type(op_node), type(op_node).__name__)


_CONSTRUCT_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.NamedExpr: "assignment expression (:=)",
    ast.Starred: "starred expression",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
    ast.Slice: "slice",
}


def _construct_name(node: ast.AST) -> str:
    return _CONSTRUCT_NAMES.get(type(node), type(node).__name__)


def _check_size(compiler: _Compiler, tree: ast.expr, max_nodes: int) -> None:
    """Count expression nodes and measure depth without recursion."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if count > max_nodes:
                raise compiler.error(f"formula is too large (more than {max_nodes} nodes)")
            if depth > MAX_DEPTH:
                raise compiler.error(f"formula nests too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def compile_expression(
    source: str,
    *,
    functions: Mapping[str, Callable[..., Any]],
    is_known_name: Callable[[str], bool] | None = None,
    max_length: int = 2000,
    max_nodes: int = 200,
) -> CompiledExpression:
    """Parse and validate ``source`` once; return an object that evaluates it quickly and safely.

    Args:
        source: the formula, e.g. ``offer.businessValue * (1 - customer.score / 200)``.
        functions: the functions the formula may call, by name (usually
            :data:`DEFAULT_FUNCTIONS` merged with plugin functions).
        is_known_name: returns whether a flat name exists; ``None`` accepts any name.
        max_length: longest source accepted, in characters.
        max_nodes: most expression nodes accepted (names, literals, operations, calls).

    Raises:
        ExpressionError: the formula is invalid; the message says what and where.
    """
    if not isinstance(source, str):
        raise ExpressionError(
            repr(source), f"a formula must be a string, not {type(source).__name__}"
        )
    if len(source) > max_length:
        raise ExpressionError(
            source, f"formula is too long ({len(source)} > {max_length} characters)"
        )
    if not source.strip():
        raise ExpressionError(source, "formula is empty")
    compiler = _Compiler(source, functions, is_known_name)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise compiler.error(f"syntax error: {exc.msg} (column {exc.offset})") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise compiler.error(f"cannot parse: {_describe(exc)}") from None
    _check_size(compiler, tree.body, max_nodes)
    compiled = compiler.compile(tree.body)
    return CompiledExpression(
        source=source,
        names=frozenset(compiler.names),
        functions=frozenset(compiler.called),
        _evaluator=compiled.fn,
    )
