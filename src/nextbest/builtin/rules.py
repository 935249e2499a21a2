"""Built-in qualification rule types: segment_required, attribute_condition, recency_check,
metric_condition and expression."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..engine.names import is_offer_name
from ..expressions import DEFAULT_FUNCTIONS, CompiledExpression, EvaluationError
from ..plugin_api import FormulaCompiler, RuleContext, RuleOutcome, RuleType
from ..store.limits import document_problem
from .patterns import MAX_REGEX_INPUT, compile_pattern


class _Config(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


Operator = Literal[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "regex",
    "exists",
    "not_exists",
]
_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
    "starts_with": lambda a, b: str(a).startswith(str(b)),
}


class _Condition(_Config):
    operator: Operator
    value: Any = Field(None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("operator")
        if op is None or op in ("exists", "not_exists"):
            return value
        if value is None:
            raise ValueError(f"operator {op!r} needs a 'value'")
        problem = document_problem(value)
        if problem is not None:  # NaN compares false with everything: refuse it here
            raise ValueError(f"'value' {problem}")
        if op in ("in", "not_in") and not isinstance(value, list | tuple):
            raise ValueError(f"operator {op!r} needs a list 'value'")
        if op == "regex":
            compile_pattern(str(value))  # a ValueError saying what is wrong with the pattern
        return value


class _Check:
    """A condition with its operator and value bound once at flow load (the hot path calls
    ``test`` only)."""

    __slots__ = ("cfg", "test")

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        op, expected = cfg.operator, cfg.value
        if op == "exists":
            self.test: Callable[[Any], bool] = lambda actual: actual is not None
        elif op == "not_exists":
            self.test = lambda actual: actual is None
        elif op == "regex":
            pattern = compile_pattern(str(expected))

            def search(actual: Any) -> bool:
                text = actual if isinstance(actual, str) else str(actual)
                if len(text) > MAX_REGEX_INPUT:
                    raise TypeError(f"value longer than {MAX_REGEX_INPUT} characters")
                return pattern.search(text)

            self.test = search
        else:
            binary = _BINARY[op]
            self.test = lambda actual: bool(binary(actual, expected))


def _compare(check: _Check, actual: Any) -> tuple[bool, str]:
    cfg = check.cfg
    if isinstance(actual, float) and not math.isfinite(actual):
        return False, f"{_short(actual)} is not a finite number"
    try:
        return check.test(actual), ""
    except (TypeError, ValueError) as exc:  # ValueError: str() of a huge int, lone surrogates
        return False, f"cannot compare {_short(actual)} {cfg.operator} {_short(cfg.value)}: {exc}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- segment_required --------------------------------------------------------------------------
class SegmentRequiredConfig(_Config):
    """All of ``requiredSegments`` must be among the request's segments (empty passes)."""

    required_segments: tuple[str, ...] = ()


def _segment_required(cfg: SegmentRequiredConfig, ctx: RuleContext) -> RuleOutcome | bool:
    have = ctx.request.segments
    for segment in cfg.required_segments:
        if segment not in have:
            break
    else:
        return True
    if not ctx.explain:
        return False
    missing = [s for s in cfg.required_segments if s not in have]
    return RuleOutcome(
        False,
        reason=f"missing segments {missing}",
        inputs={"segments": list(have), "requiredSegments": list(cfg.required_segments)},
    )


# -- attribute_condition -------------------------------------------------------------------------
class AttributeConditionConfig(_Condition):
    """Compares a request attribute; a missing attribute passes except for exists/not_exists."""

    attribute: str = Field(min_length=1)


def _attribute_condition(check: _Check, ctx: RuleContext) -> RuleOutcome | bool:
    cfg = check.cfg
    attributes = ctx.request.attributes
    if cfg.attribute not in attributes and cfg.operator not in ("exists", "not_exists"):
        return True
    actual = attributes.get(cfg.attribute)
    passed, problem = _compare(check, actual)
    if passed or not ctx.explain:
        return passed
    return RuleOutcome(
        False,
        reason=problem
        or f"attribute {cfg.attribute!r} = {actual!r} fails {cfg.operator} {cfg.value!r}",
        inputs={
            "attribute": cfg.attribute,
            "actual": actual,
            "operator": cfg.operator,
            "value": cfg.value,
        },
    )


# -- recency_check -------------------------------------------------------------------------------
class RecencyCheckConfig(_Config):
    """Days since the customer last saw this offer must lie in [minDays, maxDays].
    An offer the customer never saw passes."""

    min_days: int | None = Field(None, ge=0)
    max_days: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RecencyCheckConfig:
        if self.min_days is None and self.max_days is None:
            raise ValueError("give minDays and/or maxDays")
        if (
            self.min_days is not None
            and self.max_days is not None
            and self.min_days > self.max_days
        ):
            raise ValueError("minDays must not exceed maxDays")
        return self


def _recency_check(cfg: RecencyCheckConfig, ctx: RuleContext) -> RuleOutcome | bool:
    days = ctx.get("offer.lastSeenDays")
    if days is None:
        return True
    passed = (cfg.min_days is None or days >= cfg.min_days) and (
        cfg.max_days is None or days <= cfg.max_days
    )
    if passed or not ctx.explain:
        return passed
    return RuleOutcome(
        False,
        reason=f"offer last seen {days} day(s) ago; "
        + (
            f"needs at least {cfg.min_days}"
            if cfg.min_days is not None and days < cfg.min_days
            else f"needs at most {cfg.max_days}"
        ),
        inputs={"lastSeenDays": days, "minDays": cfg.min_days, "maxDays": cfg.max_days},
    )


# -- metric_condition ----------------------------------------------------------------------------
class MetricConditionConfig(_Condition):
    """Compares a named context metric (``metrics.orders``, ``customer.score``, ...).
    A missing metric fails unless ``missing: pass`` (exists/not_exists test presence)."""

    metric: str = Field(min_length=1)
    missing: Literal["pass", "fail"] = "fail"


def _prepare_metric(cfg: MetricConditionConfig, compiler: FormulaCompiler) -> _Check:
    if not compiler.is_known(cfg.metric):
        raise ValueError(f"unknown metric {cfg.metric!r}: no context provider supplies it")
    return _Check(cfg)


def _metric_condition(check: _Check, ctx: RuleContext) -> RuleOutcome | bool:
    cfg = check.cfg
    actual = ctx.get(cfg.metric)
    if actual is None and cfg.operator not in ("exists", "not_exists"):
        passed, problem = cfg.missing == "pass", f"metric {cfg.metric!r} has no value"
    else:
        passed, problem = _compare(check, actual)
    if passed or not ctx.explain:
        return passed
    return RuleOutcome(
        False,
        reason=problem or f"metric {cfg.metric!r} = {actual!r} fails {cfg.operator} {cfg.value!r}",
        inputs={
            "metric": cfg.metric,
            "actual": actual,
            "operator": cfg.operator,
            "value": cfg.value,
        },
    )


# -- expression ----------------------------------------------------------------------------------
class ExpressionConfig(_Config):
    """A formula that must be true (a failing formula counts as false)."""

    expression: str = Field(min_length=1)


def _prepare_expression(cfg: ExpressionConfig, compiler: FormulaCompiler) -> CompiledExpression:
    compiled: CompiledExpression = compiler.compile(cfg.expression)
    return compiled


def _expression(expr: CompiledExpression, ctx: RuleContext) -> RuleOutcome | bool:
    scope = ctx.scope
    if scope is None:
        scope = {name: ctx.get(name) for name in expr.names}
    try:
        value = expr.evaluate(scope)
    except EvaluationError as exc:
        if exc.function is not None and exc.function not in DEFAULT_FUNCTIONS:
            raise  # a plugin's function failed: the engine applies the plugin-error policy
        inputs = {name: scope.get(name) for name in expr.names}
        return RuleOutcome(False, reason=f"formula failed: {exc.reason}", inputs=inputs)
    if value or not ctx.explain:
        return bool(value)
    inputs = {name: scope.get(name) for name in expr.names}
    return RuleOutcome(False, reason=f"{expr.source!r} is {value!r}", inputs=inputs)


RULE_TYPES = (
    RuleType(
        "segment_required",
        SegmentRequiredConfig,
        _segment_required,
        "eligibility",
        per_customer=lambda cfg: True,
        description="customer must be in every required segment",
    ),
    RuleType(
        "attribute_condition",
        AttributeConditionConfig,
        _attribute_condition,
        "eligibility",
        prepare=lambda cfg, compiler: _Check(cfg),
        per_customer=lambda check: True,
        description="compare a request attribute with a value",
    ),
    RuleType(
        "recency_check",
        RecencyCheckConfig,
        _recency_check,
        "match",
        requires=lambda cfg: ("offer.lastSeenDays",),
        description="days since the customer last saw the offer",
    ),
    RuleType(
        "metric_condition",
        MetricConditionConfig,
        _metric_condition,
        "eligibility",
        requires=lambda cfg: (cfg.metric,),
        prepare=_prepare_metric,
        per_customer=lambda check: not is_offer_name(check.cfg.metric),
        description="compare a named context metric with a value",
    ),
    RuleType(
        "expression",
        ExpressionConfig,
        _expression,
        "eligibility",
        prepare=_prepare_expression,
        per_customer=lambda expr: not any(is_offer_name(name) for name in expr.names),
        description="a formula that must be true",
    ),
)
