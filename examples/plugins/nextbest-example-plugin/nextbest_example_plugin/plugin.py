"""Hook implementations of the example plugin.

``attribute_between``: a request attribute must lie in ``[min, max]`` (either bound optional).
A missing or non-numeric attribute fails, with a reason saying so.

``percent_of(a, b)``: ``a`` as a percentage of ``b``; ``b == 0`` raises, which turns the
formula's value into null (with a trace entry) instead of failing the decision.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from nextbest import (
    RegisterFunction,
    RegisterRuleType,
    RuleContext,
    RuleOutcome,
    RuleType,
    hookimpl,
)


class AttributeBetweenConfig(BaseModel):
    """Config of an ``attribute_between`` rule: ``{attribute, min, max}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> AttributeBetweenConfig:
        if self.min is None and self.max is None:
            raise ValueError("give 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        return self


def attribute_between(cfg: AttributeBetweenConfig, ctx: RuleContext) -> RuleOutcome:
    """Pass when the request attribute is a number within the configured bounds."""
    value = ctx.request.attributes.get(cfg.attribute)
    inputs = {"attribute": cfg.attribute, "actual": value, "min": cfg.min, "max": cfg.max}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return RuleOutcome(
            False, reason=f"attribute {cfg.attribute!r} is not a number", inputs=inputs
        )
    passed = (cfg.min is None or value >= cfg.min) and (cfg.max is None or value <= cfg.max)
    reason = "" if passed else f"{cfg.attribute} = {value} is outside [{cfg.min}, {cfg.max}]"
    return RuleOutcome(passed, reason=reason, inputs=inputs)


def percent_of(part: Any, whole: Any) -> float:
    """``part`` as a percentage of ``whole``."""
    if whole == 0:
        raise ValueError("percent_of() of a zero whole")
    return 100.0 * part / whole


@hookimpl
def register_rule_types(register: RegisterRuleType) -> None:
    register(
        RuleType(
            "attribute_between",
            AttributeBetweenConfig,
            attribute_between,
            default_stage="eligibility",
            description="a numeric request attribute must lie within [min, max]",
        )
    )


@hookimpl
def register_functions(register: RegisterFunction) -> None:
    register("percent_of", percent_of)
