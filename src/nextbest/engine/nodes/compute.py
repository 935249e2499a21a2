"""The ``compute`` node: computed fields per offer (before scoring, or on the output after
ranking), each converted to its declared type."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...expressions import CompiledExpression, EvaluationError
from ...models.decision import Candidate, PluginFailure
from ...models.flows import ComputeConfig
from ..formulas import formula_failed
from ..state import DecisionState
from .base import (
    OUTPUT,
    SELECTION,
    BuildContext,
    Misplacements,
    NodeType,
    RawFormulas,
    static_config,
)


@dataclass
class ComputeStep:
    node_id: str
    fields: tuple[tuple[str, CompiledExpression, str], ...]
    output_phase: bool
    node_type: str = "compute"

    def __post_init__(self) -> None:
        self._labels = {name: f"computed field {name}" for name, _, _ in self.fields}

    def run(self, state: DecisionState) -> None:
        targets = state.ranked if self.output_phase else state.candidates
        trace = state.trace
        for cand in targets or ():
            scope = cand.scope
            computed = cand.computed
            for name, expr, output_type in self.fields:
                try:
                    value = expr.evaluate(scope)
                except EvaluationError as exc:
                    formula_failed(state, cand, self._labels[name], exc)
                    value = None
                # the common case (a finite float for "number") needs no conversion call
                if (
                    value is not None
                    and output_type != "any"
                    and not (output_type == "number" and type(value) is float and _finite(value))
                    and not (output_type == "integer" and type(value) is int)
                ):
                    value = _convert(state, cand, name, value, output_type)
                scope[name] = value
                computed[name] = value
            if trace is not None:
                trace.computed.setdefault(cand.offer.id, {}).update(
                    {name: cand.computed[name] for name, _, _ in self.fields}
                )


_finite = math.isfinite


def _convert(state: DecisionState, cand: Candidate, name: str, value: Any, kind: str) -> Any:
    try:
        if kind == "number":
            out: Any = float(value)
            if not math.isfinite(out):
                raise ValueError(f"{out} is not finite")
            return out
        if kind == "integer":
            return round(float(value))
        if kind == "string":
            return str(value)
        return bool(value)
    except (TypeError, ValueError, OverflowError) as exc:
        if state.trace is not None:
            state.trace.failures.append(
                PluginFailure(
                    "formula",
                    f"computed field {name}",
                    f"cannot convert to {kind}: {exc}",
                    cand.offer.id,
                    "value is null",
                )
            )
        return None


def _build(node: Any, ctx: BuildContext) -> ComputeStep:
    fields = []
    for index, field in enumerate(node.config.fields):
        try:
            fields.append((field.name, ctx.compiler.compile(field.formula), field.output_type))
        except Exception as exc:
            ctx.problem(f".config.fields[{index}].formula", str(exc))
        ctx.compiler.define(field.name)  # later fields of the same node may use it
    return ComputeStep(node.id, tuple(fields), ctx.compiler.output_phase)


def _placement(types: Sequence[str], index: int, node: Any) -> Misplacements:
    # after scoring, a compute node shapes the output: it needs the ranking done
    if "score" in types[:index] and "rank" not in types[:index]:
        yield "", "an output compute node must come after rank"


def _defines(node: Any) -> Iterable[tuple[str, str]]:
    for index, field in enumerate(node.config.fields):
        yield f".config.fields[{index}].name", field.name


def _raw_formulas(config: Mapping[str, Any]) -> RawFormulas:
    for j, field in enumerate(config.get("fields") or []):
        if isinstance(field, Mapping) and isinstance(field.get("formula"), str):
            yield f"fields[{j}].formula", field["formula"]


COMPUTE = NodeType(
    name="compute",
    phases=(SELECTION, OUTPUT),
    config=static_config(ComputeConfig, required=True),
    build=_build,
    raw_formulas=_raw_formulas,
    placement=_placement,
    defines=_defines,
    description="computed fields per offer, before scoring or after ranking",
)
