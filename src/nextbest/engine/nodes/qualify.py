"""The ``qualify`` node: rules per offer in priority order; hard stages drop, soft ones weigh.

Rule types come from plugins (``register_rule_types``); this node prepares each rule once per
flow and evaluates it per offer, answering customer-level rules once per decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, create_model

from ...expressions import ExpressionError
from ...models.base import CamelModel
from ...models.decision import Drop
from ...models.flows import HARD_STAGES
from ...plugin_api import RuleContext, RuleOutcome, RuleType
from ..formulas import function_owner
from ..state import DecisionState, jsonable
from .base import SELECTION, BuildContext, NodeType, RawFormulas, SchemaParts

DEFAULT_SOFT_MULTIPLIER = 0.5
FIT_MIN, FIT_MAX = 0.1, 1.0


@dataclass(frozen=True, slots=True)
class PreparedRule:
    id: str
    stage: str
    hard: bool
    scope: str
    scope_id: str | None
    multiplier: float | None
    rule_type: RuleType
    prepared: Any
    plugin: str
    memo_key: int | None = None  # set for customer-level rules: evaluated once per decision
    bypassable: bool = True  # mandatory offers skip it
    evaluate: Any = None  # the rule type's evaluator, hoisted for the hot loop

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluate", self.rule_type.evaluate)


@dataclass
class QualifyStep:
    """Evaluates rules per offer in priority order; the first hard failure drops the offer.

    Customer-level rules (``RuleType.per_customer``) give one answer for every offer, so each
    distinct one is evaluated once, before the offers; when all of them pass, each offer runs
    only its offer-level rules (the passing ones would change nothing). Otherwise every offer
    walks its full list in order, reusing the customer-level answers.
    """

    node_id: str
    rules: tuple[PreparedRule, ...]
    node_type: str = "qualify"

    def __post_init__(self) -> None:
        self._bypassable = any(r.bypassable for r in self.rules)
        # offer id -> (offer, its rules, its offer-level rules), checked by identity
        self._static: dict[str, tuple[Any, tuple[PreparedRule, ...], tuple[PreparedRule, ...]]]
        self._static = {}
        self._dynamic = any(r.scope in ("channel", "segment") for r in self.rules)
        self._customer_level: dict[int, PreparedRule] = {}
        for rule in self.rules:
            if rule.memo_key is not None:
                self._customer_level.setdefault(rule.memo_key, rule)

    def _rules_for(
        self, offer: Any, channel: str | None, segments: Any, offer_level_only: bool
    ) -> Sequence[PreparedRule]:
        cached = self._static.get(offer.id)
        if cached is None or cached[0] is not offer:
            static = tuple(r for r in self.rules if _static_scope_matches(r, offer))
            # keyed by id, checked by identity: another catalog's offer with the same id
            # simply replaces the entry (both results are correct for their offer)
            cached = (offer, static, tuple(r for r in static if r.memo_key is None))
            self._static[offer.id] = cached
        rules = cached[2] if offer_level_only else cached[1]
        if not self._dynamic:
            return rules
        return [
            r
            for r in rules
            if (r.scope != "channel" or r.scope_id == channel)
            and (r.scope != "segment" or r.scope_id in segments)
        ]

    def _customer_answers(self, ctx: RuleContext) -> tuple[dict[int, Any], bool]:
        """Each distinct customer-level rule evaluated once; whether all passed plainly."""
        answers: dict[int, Any] = {}
        all_pass = True
        for key, rule in self._customer_level.items():
            try:
                answer = rule.evaluate(rule.prepared, ctx)
            except Exception as exc:  # raised again for each offer that reaches the rule
                answer = _Raised(exc)
            answers[key] = answer
            if answer is not True:
                all_pass = False
        return answers, all_pass

    def run(self, state: DecisionState) -> None:
        request = state.request
        trace = state.trace
        explain = trace is not None
        if not state.candidates:
            return
        # one context per decision, re-pointed at each candidate (rules must not keep it)
        first = state.candidates[0]
        ctx = RuleContext(
            first.offer, request, state.customer_value, first.computed, state.as_of, explain,
            first.scope, tenant_id=state.tenant_id, host=state.host,
        )  # fmt: skip
        memo, offer_level_only = self._customer_answers(ctx)
        static_rules, dynamic = self._static, self._dynamic
        kept = []
        for cand in state.candidates:
            offer = cand.offer
            ctx.offer, ctx.computed, ctx.scope = offer, cand.computed, cand.scope
            dropped = False
            rules: Sequence[PreparedRule]
            cached = static_rules.get(offer.id)
            if cached is not None and cached[0] is offer and not dynamic:
                rules = cached[2] if offer_level_only else cached[1]  # without a method call
            else:
                rules = self._rules_for(offer, request.channel, request.segments,
                                        offer_level_only)  # fmt: skip
            if offer.mandatory and self._bypassable:
                rules = self._bypass(state, offer.id, rules)
            for rule in rules:
                try:
                    key = rule.memo_key
                    if key is None:
                        result = rule.evaluate(rule.prepared, ctx)
                    else:
                        result = memo[key]
                        if type(result) is _Raised:
                            raise result.error
                    if result is True:
                        continue
                    if isinstance(result, RuleOutcome):
                        passed = result.passed
                        factor = None if passed or rule.hard else _soft_factor(result, rule)
                    elif isinstance(result, bool):
                        passed, result = result, None
                        factor = None if passed or rule.hard else _soft_factor(None, rule)
                    else:
                        raise TypeError(
                            f"rule type {rule.rule_type.name!r} returned {result!r}; "
                            "return a bool or a RuleOutcome"
                        )
                except Exception as exc:
                    # a plugin function inside a formula rule is that plugin's failure
                    owner = function_owner(state, exc)
                    state.plugin_failed(
                        owner or rule.plugin,
                        f"function {exc.function}"  # type: ignore[attr-defined]
                        if owner
                        else f"rule type {rule.rule_type.name}",
                        exc,
                        offer.id,
                        "offer dropped",
                    )
                    state.drop(
                        cand,
                        Drop(
                            offer.id,
                            self.node_id,
                            f"rule failed: {exc}",
                            rule.id,
                            rule.stage,
                            None,
                            rule.plugin,
                        ),
                    )
                    dropped = True
                    break
                if passed:
                    continue
                if rule.hard:
                    if explain:
                        reason = (result.reason if result else "") or "rule not satisfied"
                        inputs = _trace_inputs(result)
                        state.drop(
                            cand,
                            Drop(
                                offer.id,
                                self.node_id,
                                reason,
                                rule.id,
                                rule.stage,
                                inputs,
                                rule.plugin,
                            ),
                        )
                    dropped = True
                    break
                assert factor is not None
                before = cand.fit_multiplier
                cand.fit_multiplier = min(FIT_MAX, max(FIT_MIN, before * factor))
                if trace is not None:
                    trace.adjustments.setdefault(offer.id, []).append(
                        {
                            "nodeId": self.node_id,
                            "ruleId": rule.id,
                            "stage": rule.stage,
                            "multiplier": factor,
                            "fitMultiplier": cand.fit_multiplier,
                            "reason": (result.reason if result else "") or "rule not satisfied",
                            "inputs": _trace_inputs(result),
                            "plugin": rule.plugin,
                        }
                    )
            if not dropped:
                if cand.fit_multiplier != 1.0:  # the scope starts at 1.0
                    cand.scope["fitMultiplier"] = cand.fit_multiplier
                kept.append(cand)
        state.candidates = kept

    def _bypass(
        self, state: DecisionState, offer_id: str, rules: Sequence[PreparedRule]
    ) -> Sequence[PreparedRule]:
        """A mandatory offer's rules without the bypassable ones (each noted in the trace as
        an adjustment with ``bypassed: true``): mandatory offers bypass qualification except
        rules marked ``bypassable: false``."""
        kept = [r for r in rules if not r.bypassable]
        trace = state.trace
        if trace is not None:
            for rule in rules:
                if rule.bypassable:
                    trace.adjustments.setdefault(offer_id, []).append(
                        {
                            "nodeId": self.node_id,
                            "ruleId": rule.id,
                            "stage": rule.stage,
                            "bypassed": True,
                            "reason": "mandatory offer: bypassable rule skipped",
                            "plugin": rule.plugin,
                        }
                    )
        return kept


def _trace_inputs(result: RuleOutcome | None) -> dict[str, Any]:
    """A rule's inputs as the trace keeps them: JSON values, non-finite numbers as null."""
    if result is None or not result.inputs:
        return {}
    return {str(k): jsonable(v) for k, v in result.inputs.items()}


class _Raised:
    """A customer-level rule's exception, kept to be raised for each offer that reaches it."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _soft_factor(result: RuleOutcome | None, rule: PreparedRule) -> float:
    """The factor a failed soft rule applies: the evaluator's, else the rule's, else 0.5."""
    if result is not None and result.multiplier is not None:
        factor = float(result.multiplier)
        if not factor >= 0.0 or math.isinf(factor):  # NaN fails the comparison
            raise ValueError(f"soft rule multiplier must be a finite number >= 0, got {factor!r}")
        return factor  # the product is clamped to [0.1, 1.0] by the caller
    return rule.multiplier if rule.multiplier is not None else DEFAULT_SOFT_MULTIPLIER


def _static_scope_matches(rule: PreparedRule, offer: Any) -> bool:
    if rule.scope == "category":
        return offer.category == rule.scope_id
    if rule.scope == "subcategory":
        return offer.sub_category == rule.scope_id
    if rule.scope == "offer":
        return offer.id == rule.scope_id
    return True


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _build_qualify(node: Any, ctx: BuildContext) -> QualifyStep:
    compiler, registry = ctx.compiler, ctx.registry
    prepared = []
    memo_keys: dict[tuple[str, str], int] = {}
    for index, rule in enumerate(node.config.rules):
        if rule.status != "active":
            continue
        rule_type = registry.rule_types[rule.rule_type]
        stage = rule.stage or rule_type.default_stage
        if stage == "ranking":
            continue  # stored with the flow, not applied during qualification
        try:
            value = rule.config
            if rule_type.prepare is not None:
                value = rule_type.prepare(rule.config, compiler)
            if rule_type.requires is not None:
                compiler.referenced.update(rule_type.requires(rule.config))
        except Exception as exc:
            where = f".config.rules[{index}].config"
            if isinstance(exc, ExpressionError):  # point at the field holding the formula
                field = next((k for k, v in rule.config if v == exc.source), None)
                where = f"{where}.{_camel(field)}" if field else where
            ctx.problem(where, str(exc))
            continue
        memo_key = None
        if rule_type.per_customer is not None and rule_type.per_customer(value):
            # identical customer-level rules share one evaluation per decision
            identity = (rule_type.name, rule.config.model_dump_json())
            memo_key = memo_keys.setdefault(identity, len(memo_keys))
        prepared.append(
            (
                -rule.priority,
                index,
                PreparedRule(
                    rule.id,
                    stage,
                    stage in HARD_STAGES,
                    rule.scope,
                    rule.scope_id,
                    rule.multiplier,
                    rule_type,
                    value,
                    registry.owner("rule_type", rule_type.name),
                    memo_key,
                    bypassable=rule.bypassable,
                ),
            )
        )
    prepared.sort(key=lambda item: (item[0], item[1]))
    return QualifyStep(node.id, tuple(item[2] for item in prepared))


def _config(parts: SchemaParts) -> tuple[Any, Any]:
    rules: Any = list[parts.rule_union]  # type: ignore[name-defined]
    model = create_model("QualifyConfig", __base__=CamelModel, rules=(rules, Field(min_length=1)))
    return model, ...


def _raw_formulas(config: Mapping[str, Any]) -> RawFormulas:
    # the built-in ``expression`` rule type keeps a formula in its config
    for j, rule in enumerate(config.get("rules") or []):
        if not isinstance(rule, Mapping) or rule.get("ruleType") != "expression":
            continue
        cfg = rule.get("config")
        if isinstance(cfg, Mapping) and isinstance(cfg.get("expression"), str):
            yield f"rules[{j}].config.expression", cfg["expression"]


QUALIFY = NodeType(
    name="qualify",
    phases=(SELECTION,),
    config=_config,
    build=_build_qualify,
    raw_formulas=_raw_formulas,
    description="qualification rules per offer: hard stages drop, soft stages weigh",
)
