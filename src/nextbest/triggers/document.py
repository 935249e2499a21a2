"""Trigger documents: the model (``nextbest schema trigger``) and compiling one.

A trigger is data, validated like a flow: every problem is a :class:`~nextbest.FlowIssue`
with its path (``when``, ``actions.webhook``). ``when`` and ``rearm`` are formulas in the
flows' hardened language, compiled once; a name no registered context provider supplies is
a load error, as in flows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, ValidationError

from ..engine.compiler import validation_issues
from ..errors import FlowIssue, FlowValidationError
from ..expressions import CompiledExpression, ExpressionError, compile_expression
from ..models.base import CamelModel, Id
from ..plugin_api import Registry

__all__ = [
    "ENDPOINT_ID_RULE",
    "CompiledTrigger",
    "TriggerActions",
    "TriggerDocument",
    "TriggerValidationError",
    "compile_trigger",
    "trigger_schema",
]

_ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: What a webhook endpoint id may be.
ENDPOINT_ID_RULE = (
    "an endpoint id is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
)
_SECONDS_PER_DAY = 86_400.0
_MAX_FORMULA = 2_000


def _endpoint_id(value: str) -> str:
    if not _ENDPOINT_ID.fullmatch(value):
        raise ValueError(ENDPOINT_ID_RULE)
    return value


class TriggerActions(CamelModel):
    """What a firing does besides being stored: ``webhook`` names a webhook endpoint of the
    tenant (the firing is written to the outbox for it in the firing's transaction and
    delivered, signed, at least once), ``hook`` calls the ``trigger_fired`` plugin hook after
    the commit."""

    webhook: Annotated[str, AfterValidator(_endpoint_id)] | None = None
    hook: StrictBool = False


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool | str):  # a JSON true is not one day, nor "7" seven
        raise ValueError(f"must be a number of days, not a {type(value).__name__}")
    return value


class TriggerDocument(CamelModel):
    """A trigger: fire when ``when`` turns true for a customer while armed (see
    docs/triggers.md)."""

    key: Id
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "paused"] = "active"
    when: str = Field(min_length=1, max_length=_MAX_FORMULA)
    rearm: str | None = Field(None, min_length=1, max_length=_MAX_FORMULA)
    cooldown_days: Annotated[float, BeforeValidator(_not_bool)] | None = Field(None, ge=0, le=3650)
    flow: Id | None = None
    actions: TriggerActions = Field(default_factory=TriggerActions)


class TriggerValidationError(FlowValidationError):
    """A trigger document failed validation; ``issues`` lists every problem with its path."""


@dataclass(frozen=True)
class CompiledTrigger:
    """A validated trigger with its formulas compiled; immutable, shared between threads.

    ``names`` are the context names ``when`` and ``rearm`` read, sorted.
    """

    document: TriggerDocument
    when: CompiledExpression
    rearm: CompiledExpression | None
    names: tuple[str, ...]

    @property
    def key(self) -> str:
        """The trigger's key."""
        return self.document.key

    @property
    def cooldown_seconds(self) -> float:
        """The cooldown in seconds (0: none)."""
        return (self.document.cooldown_days or 0.0) * _SECONDS_PER_DAY

    def to_json(self) -> dict[str, Any]:
        """The document as JSON (camelCase, unset optional fields left out)."""
        return self.document.model_dump(by_alias=True, exclude_none=True, mode="json")


def compile_trigger(
    data: Mapping[str, Any] | Any,
    registry: Registry,
    functions: Mapping[str, Callable[..., Any]],
) -> CompiledTrigger:
    """Validate and compile a trigger document.

    Raises:
        TriggerValidationError: every problem, each with its path.
    """
    if not isinstance(data, Mapping):
        raise TriggerValidationError(
            [FlowIssue("", "a trigger document must be a mapping (YAML/JSON object)")]
        )
    try:
        document = TriggerDocument.model_validate(data)
    except ValidationError as exc:
        raise TriggerValidationError(validation_issues(exc, frozenset())) from None

    def known(name: str) -> bool:
        return registry.provider_for(name) is not None

    issues: list[FlowIssue] = []
    compiled: dict[str, CompiledExpression] = {}
    for field, source in (("when", document.when), ("rearm", document.rearm)):
        if source is None:
            continue
        try:
            compiled[field] = compile_expression(source, functions=functions, is_known_name=known)
        except ExpressionError as exc:
            issues.append(FlowIssue(field, exc.reason))
    if issues:
        raise TriggerValidationError(issues)
    names = set(compiled["when"].names)
    if "rearm" in compiled:
        names.update(compiled["rearm"].names)
    return CompiledTrigger(document, compiled["when"], compiled.get("rearm"), tuple(sorted(names)))


def trigger_schema() -> dict[str, Any]:
    """The JSON Schema of trigger documents (``nextbest schema trigger``)."""
    schema = TriggerDocument.model_json_schema(by_alias=True)
    schema["title"] = "nextbest trigger"
    return schema
