"""Tests for nextbest.expressions: the hardened formula compiler."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from nextbest.expressions import (
    DEFAULT_FUNCTIONS,
    MAX_DEPTH,
    MAX_SEQUENCE_LENGTH,
    CompiledExpression,
    EvaluationError,
    ExpressionError,
    compile_expression,
    non_finite,
)


def compile_(source: str, **kwargs: Any) -> CompiledExpression:
    kwargs.setdefault("functions", DEFAULT_FUNCTIONS)
    return compile_expression(source, **kwargs)


def ev(source: str, names: Mapping[str, Any] | None = None) -> Any:
    return compile_(source).evaluate(names or {})


def compile_error(source: str, **kwargs: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_(source, **kwargs)
    assert info.value.source == source
    return info.value


def eval_error(source: str, names: Mapping[str, Any]) -> EvaluationError:
    compiled = compile_(source)
    with pytest.raises(EvaluationError) as info:
        compiled.evaluate(names)
    assert info.value.source == source
    return info.value


# --- arithmetic, comparisons, logic ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("10 - 4 - 3", 3),
        ("+5 - -5", 10),
        ("'ab' + 'cd'", "abcd"),
        ("'ab' * 3", "ababab"),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 >= 3 > 2 != 1", True),
        ("1 == 1.0", True),
        ("not 0", True),
        ("0 or 'x'", "x"),
        ("2 and 3", 3),
        ("'a' if 1 > 2 else 'b'", "b"),
        ("2 in [1, 2, 3]", True),
        ("'z' not in ('a', 'b')", True),
        ("None == None", True),
        ("2.5 * 4", 10.0),
    ],
)
def test_arithmetic_and_precedence(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


def test_short_circuit_skips_failing_branch() -> None:
    compiled = compile_("x != 0 and 10 / x > 1")
    assert compiled.evaluate({"x": 0}) is False
    assert compiled.evaluate({"x": 5}) is True
    ternary = compile_("1 if x == 0 else 10 / x")
    assert ternary.evaluate({"x": 0}) == 1
    assert ternary.evaluate({"x": 4}) == 2.5


def test_chained_comparison_evaluates_each_operand_once() -> None:
    calls: list[int] = []

    def seen(value: int) -> int:
        calls.append(value)
        return value

    compiled = compile_("0 <= seen(x) < 10", functions={"seen": seen})
    assert compiled.evaluate({"x": 5}) is True
    assert calls == [5]


def test_in_with_names_inside_the_literal_and_on_the_right() -> None:
    assert ev("tier in ('gold', other)", {"tier": "silver", "other": "silver"}) is True
    assert ev("'email' in offer.channels", {"offer.channels": ["sms", "email"]}) is True
    assert ev("'web' not in offer.channels", {"offer.channels": ["sms"]}) is True


def test_is_none() -> None:
    compiled = compile_("x is None or x is not None and x > 1")
    assert compiled.evaluate({"x": None}) is True
    assert compiled.evaluate({"x": 3}) is True
    assert compiled.evaluate({"x": 0}) is False


# --- names ----------------------------------------------------------------------------------


def test_flat_names_are_looked_up_by_dotted_path() -> None:
    src = "offer.businessValue * (1 - customer.clv_score / 200) + max(priority, 10)"
    compiled = compile_(src)
    names = {"offer.businessValue": 120.0, "customer.clv_score": 50, "priority": 40}
    assert compiled.evaluate(names) == pytest.approx(120.0 * 0.75 + 40)
    assert compiled.names == {"offer.businessValue", "customer.clv_score", "priority"}
    assert compiled.functions == {"max"}
    assert compiled.source == src


def test_deep_chains_and_string_keys_are_flat_names() -> None:
    compiled = compile_("customer.clv.segment == 'champion' and attributes['loyalty-tier'] > 2")
    assert compiled.names == {"customer.clv.segment", "attributes.loyalty-tier"}
    values = {"customer.clv.segment": "champion", "attributes.loyalty-tier": 3}
    assert compiled.evaluate(values) is True


def test_names_and_functions_reporting_deduplicates_and_skips_literals() -> None:
    compiled = compile_("coalesce(a, b, a) + round(b) if c in ('x', d) else 'a.b'")
    assert compiled.names == {"a", "b", "c", "d"}
    assert compiled.functions == {"coalesce", "round"}
    assert compile_("1 + 2").names == frozenset()


def test_is_known_name_rejects_unknown_names_with_their_name() -> None:
    known = {"offer.businessValue", "priority"}
    compile_("offer.businessValue + priority", is_known_name=known.__contains__)
    err = compile_error("offer.businessValue + customer.clv_scor", is_known_name=known.__contains__)
    assert "customer.clv_scor" in str(err)
    assert "unknown name" in err.reason


def test_missing_name_at_evaluation_is_an_evaluation_error() -> None:
    err = eval_error("a + b", {"a": 1})
    assert "'b'" in err.reason


@pytest.mark.parametrize(
    "source",
    [
        "_secret",
        "x._y",
        "a.__class__",
        "__builtins__",
        "x['__dict__']",
        "x['_private']",
        "x['a.b']",
    ],
)
def test_underscore_and_dunder_names_are_rejected(source: str) -> None:
    compile_error(source)


# --- functions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("min(xs)", 1),
        ("round(2.567)", 3),
        ("round(2.567, 2)", 2.57),
        ("abs(-4.5)", 4.5),
        ("coalesce(none, 0, 5)", 0),
        ("coalesce(none, none)", None),
        ("concat('a', 1, none, 2.5, True)", "a12.5True"),
        ("concat()", ""),
        ("clamp(15, 0, 10)", 10),
        ("clamp(-1, 0, 10)", 0),
        ("clamp(5, 0, 10)", 5),
        ("log(1)", 0.0),
        ("log(8, 2)", 3.0),
        ("exp(0)", 1.0),
    ],
)
def test_default_functions(source: str, expected: Any) -> None:
    result = ev(source, {"none": None, "xs": [3, 1, 2]})
    assert result == pytest.approx(expected) if isinstance(expected, float) else result == expected


def test_log_and_exp_values() -> None:
    assert ev("log(x)", {"x": math.e**2}) == pytest.approx(2.0)
    assert ev("exp(x)", {"x": 1}) == pytest.approx(math.e)


@pytest.mark.parametrize(
    ("source", "names", "function"),
    [
        ("log(x)", {"x": 0}, "log"),
        ("log(x)", {"x": -1}, "log"),
        ("log(x, 1)", {"x": 5}, "log"),
        ("exp(x)", {"x": 1000}, "exp"),
        ("clamp(x, 10, 0)", {"x": 5}, "clamp"),
        ("max(x, 1)", {"x": None}, "max"),
        ("round(x)", {"x": None}, "round"),
        ("abs(x)", {"x": "a"}, "abs"),
        ("concat(s, s)", {"s": "a" * 60_000}, "concat"),
    ],
)
def test_function_failures_are_evaluation_errors_naming_the_function(
    source: str, names: dict[str, Any], function: str
) -> None:
    err = eval_error(source, names)
    assert f"{function}()" in err.reason


def test_plugin_function_raising_is_an_evaluation_error() -> None:
    def boom(x: Any) -> Any:
        raise RuntimeError("backend down")

    compiled = compile_("boom(a) + 1", functions={**DEFAULT_FUNCTIONS, "boom": boom})
    with pytest.raises(EvaluationError) as info:
        compiled.evaluate({"a": 1})
    assert "boom()" in info.value.reason
    assert "backend down" in info.value.reason


def test_unknown_function_is_a_compile_error_naming_it() -> None:
    err = compile_error("sqrt(x)")
    assert "'sqrt'" in str(err)
    assert "unknown function" in err.reason


@pytest.mark.parametrize("source", ["round(1, 2, 3)", "clamp(1, 2)", "exp()", "min()", "abs(1, 2)"])
def test_wrong_argument_count_is_a_compile_error(source: str) -> None:
    compile_error(source)


def test_keyword_and_starred_arguments_are_rejected() -> None:
    assert "keyword" in compile_error("round(x, ndigits=2)").reason
    assert "starred" in compile_error("max(*xs)").reason


# --- hardening ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "mentions"),
    [
        ("'x'.__class__", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("max(a, b).real", "attribute access"),
        ("a.b(1)", "call of"),
        ("(lambda: 1)()", "call of"),
        ("lambda: 1", "lambda"),
        ("[x for x in y]", "list comprehension"),
        ("{x for x in y}", "set comprehension"),
        ("(x for x in y)", "generator"),
        ("{k: 1 for k in y}", "dict comprehension"),
        ("f'{x}'", "f-string"),
        ("(y := 1)", "assignment expression"),
        ("x[0]", "subscript"),
        ("'abc'[0]", "subscript"),
        ("x[1:2]", "subscript"),
        ("{'a': 1}", "dict literal"),
        ("[1, 2]", "list literals"),
        ("(1, 2)", "tuple literals"),
        ("a << 2", "'<<'"),
        ("a & b", "'&'"),
        ("~a", "'~'"),
        ("1j", "literal"),
        ("b'x'", "literal"),
        ("x is 1", "'is'"),
        ("'%999999999d' % 1", "'%'"),
        ("import os", "syntax error"),
        ("a = 1", "syntax error"),
        ("a; b", "syntax error"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_disallowed_constructs_are_compile_errors(source: str, mentions: str) -> None:
    err = compile_error(source)
    assert mentions in err.reason


def test_dunder_import_is_an_unknown_function() -> None:
    err = compile_error("__import__('os').system('true')")
    assert "__import__" in str(err)


@pytest.mark.timeout(5)
def test_huge_constant_power_is_rejected_at_compile_time() -> None:
    err = compile_error("4000000**4000000 > 1")
    assert "4000000 ** 4000000" in err.reason


@pytest.mark.timeout(5)
def test_huge_power_with_names_fails_at_evaluation() -> None:
    compiled = compile_("a ** b > 1")
    with pytest.raises(EvaluationError, match="bits"):
        compiled.evaluate({"a": 4_000_000, "b": 4_000_000})
    with pytest.raises(EvaluationError, match="bits"):
        compiled.evaluate({"a": 3, "b": 10**30})
    with pytest.raises(EvaluationError):
        compiled.evaluate({"a": 10.0, "b": 400})  # float overflow
    assert compiled.evaluate({"a": 2, "b": 64}) is True
    assert compile_("a ** b").evaluate({"a": 2, "b": -2}) == 0.25


@pytest.mark.timeout(5)
def test_power_guard_catches_nested_powers() -> None:
    compile_error("9 ** 9 ** 9")
    with pytest.raises(EvaluationError):
        compile_("a ** a ** a").evaluate({"a": 9})


def test_negative_base_fractional_power_is_an_evaluation_error() -> None:
    eval_error("a ** 0.5", {"a": -4})


@pytest.mark.timeout(5)
def test_big_string_multiplication_is_rejected() -> None:
    compile_error("'a' * 10**9")
    compile_error("10**9 * 'a'")
    err = eval_error("s * n", {"s": "ab", "n": 10**9})
    assert "longer than" in err.reason
    eval_error("xs * n", {"xs": [1, 2], "n": 10**9})
    assert ev("s * n", {"s": "ab", "n": 3}) == "ababab"


@pytest.mark.timeout(5)
def test_repeated_squaring_of_strings_is_bounded() -> None:
    compiled = compile_("(s + s + s + s) * 30000")
    with pytest.raises(EvaluationError):
        compiled.evaluate({"s": "a" * 1000})


@pytest.mark.timeout(5)
def test_huge_integer_product_is_rejected() -> None:
    eval_error("a * a", {"a": 2**4000})


def test_deeply_nested_parentheses_are_rejected() -> None:
    compile_error("(" * 300 + "1" + ")" * 300)
    err = compile_error("-" * 500 + "1")
    assert str(MAX_DEPTH) in err.reason
    assert ev("(" * 20 + "1" + ")" * 20) == 1


def test_too_long_source_is_rejected() -> None:
    source = "max(" + ", ".join(["1"] * 1000) + ")"
    err = compile_error(source)
    assert "too long" in err.reason
    assert compile_(source, max_length=5000, max_nodes=5000).evaluate({}) == 1


def test_too_many_nodes_is_rejected() -> None:
    source = "max(" + ", ".join(f"x{i}" for i in range(250)) + ")"
    assert "too large" in compile_error(source).reason
    assert len(compile_(source, max_nodes=400).names) == 250


def test_long_left_nested_sums_hit_the_depth_limit() -> None:
    source = " + ".join(["x"] * (MAX_DEPTH + 5))
    assert "nests too deeply" in compile_error(source, max_nodes=1000).reason
    assert ev(" + ".join(["x"] * 50), {"x": 2}) == 100


def test_non_string_source_is_rejected() -> None:
    with pytest.raises(ExpressionError):
        compile_expression(42, functions=DEFAULT_FUNCTIONS)  # type: ignore[arg-type]


def test_expression_error_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)


def test_constant_failures_are_compile_errors() -> None:
    assert "ZeroDivisionError" in compile_error("1 / 0 + x").reason
    compile_error("None + 1")


# --- runtime errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("a / b", {"a": 1, "b": 0}),
        ("a // b", {"a": 1, "b": 0}),
        ("a % b", {"a": 1, "b": 0}),
        ("a + 1", {"a": None}),
        ("a * 2", {"a": None}),
        ("-a", {"a": None}),
        ("a > 1", {"a": None}),
        ("a + b", {"a": "x", "b": 1}),
        ("a / b", {"a": 10**400, "b": 1}),
    ],
)
def test_runtime_failures_are_evaluation_errors(source: str, names: dict[str, Any]) -> None:
    eval_error(source, names)


def test_none_equality_works() -> None:
    compiled = compile_("x == None")
    assert compiled.evaluate({"x": None}) is True
    assert compiled.evaluate({"x": 0}) is False
    assert ev("coalesce(x, 0) + 1", {"x": None}) == 1


def test_compiled_expression_is_reusable_after_a_failure() -> None:
    compiled = compile_("a / b")
    with pytest.raises(EvaluationError):
        compiled.evaluate({"a": 1, "b": 0})
    assert compiled.evaluate({"a": 1, "b": 4}) == 0.25


# --- threads --------------------------------------------------------------------------------


def test_concurrent_evaluation_matches_serial_results() -> None:
    sources = [
        "offer.businessValue * (1 - customer.clv_score / 200) + max(priority, 10)",
        "concat(offer.id, '-', round(customer.clv_score / 3, 1))",
        "clamp(log(offer.businessValue + 1) * priority, 0, 50) if priority > 20 else None",
        "offer.businessValue / (priority - 50)",  # fails for priority == 50
    ]
    compiled = [compile_(src) for src in sources]
    inputs = [
        {
            "offer.businessValue": float(i * 7 % 300),
            "offer.id": f"o{i}",
            "customer.clv_score": i % 101,
            "priority": i % 100,
        }
        for i in range(400)
    ]

    def run_all(rows: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for row in rows:
            for expr in compiled:
                try:
                    out.append(expr.evaluate(row))
                except EvaluationError as exc:
                    out.append(("error", exc.reason))
        return out

    serial = run_all(inputs)
    assert any(isinstance(item, tuple) for item in serial)
    results: dict[int, list[Any]] = {}
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        # each thread walks the inputs in a different rotation so evaluations interleave
        rotated = inputs[index * 50 :] + inputs[: index * 50]
        barrier.wait()
        values = run_all(rotated)
        shift = index * 50 * len(compiled)
        results[index] = values[-shift:] + values[:-shift] if shift else values

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    for values in results.values():
        assert values == serial


# --- finite numbers only --------------------------------------------------------------------


class NpFloat(float):
    """A float subclass, as numpy's float64 is."""


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("x * 10", {"x": 1e308}),
        ("x + x", {"x": 1e308}),
        ("-x - x", {"x": 1e308}),
        ("x / y", {"x": 1e308, "y": 1e-308}),
        ("x // y", {"x": 1e308, "y": 1e-308}),
        ("exp(709) * x", {"x": 10}),
        ("x * 1.0", {"x": math.inf}),  # a name's value
        ("x == x", {"x": math.nan}),  # even where no arithmetic happens
        ("coalesce(x, 1)", {"x": -math.inf}),
        ("f(x)", {"x": 1}),  # a function's result
        ("g(x)", {"x": 1}),  # ... also inside a list
        ("abs(x)", {"x": NpFloat(math.inf)}),  # a numpy-like float
    ],
)
def test_non_finite_numbers_are_evaluation_errors(source: str, names: dict[str, Any]) -> None:
    functions = {**DEFAULT_FUNCTIONS, "f": lambda v: math.nan, "g": lambda v: (1.0, [math.inf])}
    compiled = compile_(source, functions=functions)
    with pytest.raises(EvaluationError, match="not a finite number") as info:
        compiled.evaluate(names)
    if source.startswith(("f(", "g(")):
        assert info.value.function == source[0]  # the engine attributes it to the plugin


def test_finite_results_near_the_limits_still_work() -> None:
    assert ev("x * 10", {"x": 1e307}) == pytest.approx(1e308)
    assert ev("x - x", {"x": 1e308}) == 0.0
    assert ev("exp(709) > 1") is True
    assert ev("round(x)", {"x": 1e308}) > 0
    assert compile_("f(1)", functions={"f": lambda v: NpFloat(2.0)}).evaluate({}) == 2.0


@pytest.mark.parametrize(
    ("source", "mentions"),
    [
        ("1e308 * 10", "constant sub-expression `1e+308 * 10` fails"),
        ("x + (1e308 + 1e308)", "not a finite number"),
        ("1e309", "literal 1e309 is not a finite number"),
        ("x < -1e999", "literal 1e999 is not a finite number"),
        ("2.0 ** 5000", "OverflowError"),
    ],
)
def test_non_finite_constants_are_compile_errors(source: str, mentions: str) -> None:
    assert mentions in compile_error(source).reason


def test_non_finite_finds_the_first_bad_number_at_any_depth() -> None:
    assert non_finite(1.5) is None
    assert non_finite([1, "x", None, True, {"a": (2.0, [3])}]) is None
    assert math.isnan(non_finite({"a": [1.0, {"b": math.nan}]}))  # type: ignore[arg-type]
    assert non_finite((1, NpFloat(-math.inf))) == -math.inf
    loop: list[Any] = [1.0]
    loop.append(loop)
    assert non_finite(loop) is None  # a container holding itself ends the walk


# --- bounded evaluation ---------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_the_costliest_operations_stay_bounded_at_the_size_limits() -> None:
    """Each operation costs at most about the size of its operands, which are capped; the
    largest formula of the largest operations therefore finishes quickly."""
    longest = "a" * (MAX_SEQUENCE_LENGTH - 1) + "b"
    names = {"s": longest, "t": "a" * 99 + "b", "k": MAX_SEQUENCE_LENGTH}
    # substring search, comparisons and repetition at the caps, as many as the size allows
    source = " and ".join(["(t in s)", "(s * 1 >= s)", "(max(s) == 'b')", "('a' * k != s)"] * 9)
    assert compile_(source, max_nodes=200).evaluate(names) is True
    with pytest.raises(EvaluationError, match="longer than"):
        compile_("s + s").evaluate(names)
    with pytest.raises(EvaluationError, match="ValueError"):  # over 4300 digits: no str()
        compile_("concat(n)").evaluate({"n": 10**5000})
    with pytest.raises(EvaluationError, match="bits"):
        compile_("n * n").evaluate({"n": 10**1000})


def test_numpy_like_floats_are_checked_like_floats() -> None:
    big = NpFloat(1e308)
    for source in ("x * 10", "x + x", "x - -x", "x / 1e-10", "10 * x"):
        with pytest.raises(EvaluationError, match="not a finite number"):
            compile_(source).evaluate({"x": big})
    assert ev("x * 2", {"x": NpFloat(2.0)}) == 4.0


def test_numpy_numbers_from_functions_become_plain_numbers() -> None:
    import numpy as np

    functions = {
        "f64": lambda: np.float64(2.5),
        "i64": lambda: np.int64(2**62),
        "inf": lambda x: np.float64(x) * np.float64(np.inf),
    }
    compiled = compile_("f64() * 2", functions=functions)
    assert compiled.evaluate({}) == 5.0 and type(compiled.evaluate({})) is float
    # an int64 would wrap around silently; as a Python int the product is refused instead
    with pytest.raises(EvaluationError, match="bits"):
        compile_("i64() * i64() * i64() * i64() ** 100", functions=functions).evaluate({})
    assert type(compile_("i64()", functions=functions).evaluate({})) is int
    with pytest.raises(EvaluationError, match="not a finite number"):
        compile_("inf(x)", functions=functions).evaluate({"x": 1000.0})
