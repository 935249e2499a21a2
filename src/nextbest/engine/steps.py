"""Node executors: one small class per node type, built once per flow, run per decision."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import FlowIssue
from ..expressions import CompiledExpression, EvaluationError, ExpressionError
from ..models.decision import Candidate, Drop, PluginFailure
from ..models.flows import HARD_STAGES, RankingProfile
from ..registry import RuleContext, RuleOutcome, RuleType
from .compiler import ExpressionCompiler
from .names import is_offer_name

if TYPE_CHECKING:
    from ..registry import Registry
    from .state import DecisionState

DEFAULT_SOFT_MULTIPLIER = 0.5
FIT_MIN, FIT_MAX = 0.1, 1.0


class Step(Protocol):
    """A runnable node."""

    node_id: str
    node_type: str

    def run(self, state: DecisionState) -> None: ...


BUILTIN_PLUGIN = "builtin"


def evaluate(state: DecisionState, expr: CompiledExpression, cand: Candidate, what: str) -> Any:
    """Evaluate a formula for one candidate; a failure is null plus a trace entry."""
    try:
        return expr.evaluate(cand.scope)
    except EvaluationError as exc:
        formula_failed(state, cand, what, exc)
        return None


def formula_failed(state: DecisionState, cand: Candidate, what: str, exc: EvaluationError) -> None:
    """A formula failed at decision time: its value becomes null.

    When a function registered by a plugin (other than the built-in one) raised, the failure is
    the plugin's: it is recorded under the plugin's name and the flow's plugin-error policy
    applies (``fail`` fails the decision). Any other failure (division by zero, ``log(0)``, null
    arithmetic) is a formula error: null plus a trace entry, never an exception.
    """
    owner = _function_owner(state, exc)
    if owner is not None:
        state.plugin_failed(owner, f"function {exc.function}", exc, cand.offer.id,
                            f"{what}: value is null")  # fmt: skip
    elif state.trace is not None:
        state.trace.failures.append(
            PluginFailure("formula", what, exc.reason, cand.offer.id, "value is null")
        )


def _function_owner(state: DecisionState, exc: BaseException) -> str | None:
    """The plugin whose formula function raised ``exc``, unless it is the built-in plugin."""
    function = getattr(exc, "function", None)
    if not isinstance(exc, EvaluationError) or function is None:
        return None
    owner = state.flow.registry.owner("function", function)
    return None if owner == BUILTIN_PLUGIN else owner


def lookup_for(state: DecisionState, cand: Candidate) -> Callable[[str], Any]:
    """Name lookup for rules and value providers: offer names from the candidate, the rest from
    the decision's customer context."""
    scope = cand.scope

    def lookup(name: str) -> Any:
        if is_offer_name(name):
            return scope.get(name)
        return state.customer_value(name)

    return lookup


# -- phase 1 ---------------------------------------------------------------------------------
@dataclass
class InventoryStep:
    node_id: str
    config: Any
    node_type: str = "inventory"

    def __post_init__(self) -> None:
        # catalog id -> (catalog, the selected offers with their base scopes); a flow and a
        # catalog are both immutable, so the selection is computed once per pair
        self._selected: dict[int, tuple[Any, tuple[tuple[Any, dict[str, Any]], ...]]] = {}

    def _select(self, state: DecisionState) -> tuple[tuple[Any, dict[str, Any]], ...]:
        catalog = state.catalog
        cached = self._selected.get(id(catalog))
        if cached is not None and cached[0] is catalog:
            return cached[1]
        cfg = self.config
        statuses = set(cfg.statuses)
        categories = set(cfg.categories) if cfg.scope == "category" else None
        ids = set(cfg.offer_ids) if cfg.scope == "offers" else None
        # offer attributes a formula references but an offer lacks resolve to None
        optional = [n for n in state.flow.offer_names if n.startswith("offer.attributes.")]
        selected = []
        for offer, static in catalog.entries:
            if statuses and offer.status not in statuses:
                continue
            if categories is not None and offer.category not in categories:
                continue
            if ids is not None and offer.id not in ids:
                continue
            base = dict(static)
            for name in optional:
                base.setdefault(name, None)
            selected.append((offer, base))
        entry = tuple(selected)
        if len(self._selected) > 64:  # bound the cache when catalogs are rebuilt often
            self._selected.clear()
        self._selected[id(catalog)] = (catalog, entry)
        return entry

    def run(self, state: DecisionState) -> None:
        customer = {n: state.customer.get(n) for n in state.flow.customer_names}
        customer["fitMultiplier"] = 1.0
        history = state.request.offer_history if state.flow.uses_offer_history else None
        as_of = state.as_of
        out = []
        for offer, base in self._select(state):
            scope = dict(base)
            scope.update(customer)  # holds fitMultiplier = 1.0 too
            if history is not None:
                seen = history.get(offer.id)
                last = seen.last_seen_at if seen is not None else None
                scope["offer.lastSeenDays"] = None if last is None else _days_between(last, as_of)
            out.append(Candidate(offer, scope))
        state.candidates = out


def _days_between(earlier: Any, later: Any) -> int:
    from datetime import UTC

    if earlier.tzinfo is None:
        earlier = earlier.replace(tzinfo=UTC)
    return math.floor((later - earlier).total_seconds() / 86400)


@dataclass
class FilterStep:
    node_id: str
    expression: CompiledExpression | None
    require_channel_match: bool
    exclude_categories: frozenset[str]
    node_type: str = "filter"

    def run(self, state: DecisionState) -> None:
        channel = state.request.channel
        kept = []
        for cand in state.candidates:
            offer = cand.offer
            reason = None
            if offer.category is not None and offer.category in self.exclude_categories:
                reason = f"category {offer.category!r} is excluded"
            elif self.require_channel_match and offer.channels and channel not in offer.channels:
                reason = f"offer is not available on channel {channel!r}"
            elif self.expression is not None:
                value = evaluate(state, self.expression, cand, f"filter {self.node_id}")
                if not value:
                    reason = f"filter {self.expression.source!r} is {value!r}"
            if reason is None:
                kept.append(cand)
            else:
                state.drop(cand, Drop(offer.id, self.node_id, reason))
        state.candidates = kept


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
            first.scope,
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
                    owner = _function_owner(state, exc)
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
                        inputs = dict(result.inputs) if result else {}
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
                            "inputs": dict(result.inputs) if result else {},
                            "plugin": rule.plugin,
                        }
                    )
            if not dropped:
                if cand.fit_multiplier != 1.0:  # the scope starts at 1.0
                    cand.scope["fitMultiplier"] = cand.fit_multiplier
                kept.append(cand)
        state.candidates = kept


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


# -- phase 2 ---------------------------------------------------------------------------------
@dataclass
class RankStep:
    node_id: str
    max_candidates: int
    node_type: str = "rank"

    def run(self, state: DecisionState) -> None:
        limit = self.max_candidates
        if state.request.limit is not None:
            limit = min(limit, state.request.limit)
        # candidates arrive in tie-break order (see CompiledCatalog.build); a stable sort by
        # score, then mandatory offers first, gives score desc, priority desc, id
        ordered = sorted(state.candidates, key=_score_of, reverse=True)
        if any(c.offer.mandatory for c in ordered):
            ordered.sort(key=_not_mandatory)
        state.ranked = ordered[:limit]
        if state.trace is not None:
            for position, cand in enumerate(ordered[limit:], start=limit + 1):
                state.drop(
                    cand,
                    Drop(
                        cand.offer.id,
                        self.node_id,
                        f"ranked {position}, below the cut-off of {limit}",
                    ),
                )
        for position, cand in enumerate(state.ranked, start=1):
            cand.scope["score"] = cand.score
            cand.scope["rank"] = position


def _score_of(cand: Candidate) -> float:
    return cand.score or 0.0


def _not_mandatory(cand: Candidate) -> bool:
    return not cand.offer.mandatory


@dataclass
class ResponseStep:
    node_id: str
    fields: tuple[str, ...] | None
    node_type: str = "response"

    def run(self, state: DecisionState) -> None:
        state.response_fields = self.fields


@dataclass
class ExtensionStep:
    node_id: str
    hook: str
    node_type: str = "extension_point"

    def run(self, state: DecisionState) -> None:
        from .extensions import run_extension

        run_extension(self, state)


def build_step(
    node: Any,
    path: str,
    compiler: ExpressionCompiler,
    registry: Registry,
    profiles: dict[str, RankingProfile],
    issues: list[FlowIssue],
) -> Step | None:
    """Build the executor of one validated node, adding problems to ``issues``."""
    cfg = node.config
    if node.type == "inventory":
        return InventoryStep(node.id, cfg)
    if node.type == "filter":
        try:
            expr = compiler.compile(cfg.expression) if cfg.expression else None
        except ExpressionError as exc:
            issues.append(FlowIssue(f"{path}.config.expression", str(exc)))
            expr = None
        return FilterStep(
            node.id, expr, cfg.require_channel_match, frozenset(cfg.exclude_categories)
        )
    if node.type == "qualify":
        return _build_qualify(node, path, compiler, registry, issues)
    if node.type == "compute":
        fields = []
        for index, field in enumerate(cfg.fields):
            try:
                fields.append((field.name, compiler.compile(field.formula), field.output_type))
            except Exception as exc:
                issues.append(FlowIssue(f"{path}.config.fields[{index}].formula", str(exc)))
            compiler.define(field.name)  # later fields of the same node may use it
        return ComputeStep(node.id, tuple(fields), compiler.output_phase)
    if node.type == "score":
        from .scoring import build_score_step

        return build_score_step(node, path, compiler, registry, profiles, issues)
    if node.type == "rank":
        return RankStep(node.id, cfg.max_candidates)
    if node.type == "response":
        return ResponseStep(node.id, cfg.fields)
    if node.type == "extension_point":
        return ExtensionStep(node.id, cfg.hook)
    raise AssertionError(f"unhandled node type {node.type}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _build_qualify(
    node: Any, path: str, compiler: ExpressionCompiler, registry: Registry, issues: list[FlowIssue]
) -> QualifyStep:
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
            where = f"{path}.config.rules[{index}].config"
            if isinstance(exc, ExpressionError):  # point at the field holding the formula
                field = next((k for k, v in rule.config if v == exc.source), None)
                where = f"{where}.{_camel(field)}" if field else where
            issues.append(FlowIssue(where, str(exc)))
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
                ),
            )
        )
    prepared.sort(key=lambda item: (item[0], item[1]))
    return QualifyStep(node.id, tuple(item[2] for item in prepared))
