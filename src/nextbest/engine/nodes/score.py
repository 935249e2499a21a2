"""The ``score`` node: priority_weighted, propensity, and the PRIE formula with value providers.

PRIE: score = P^Wp · R^Wr · I^(Wi + Σ terms) · E^We · fitMultiplier, where value providers may
add exponent terms to a dimension (skipped when they have no value) or supply its base value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from ...expressions import CompiledExpression, EvaluationError
from ...models.decision import Candidate, Drop, PluginFailure, ScoreBreakdown
from ...models.flows import DEFAULT_WEIGHTS, ScoreConfigBase
from ...plugin_api import ValueBatch, ValueProvider, ValueRequest
from ..formulas import evaluate, formula_failed, lookup_for
from ..state import DecisionState
from .base import RANKING, BuildContext, Misplacements, NodeType, RawFormulas, SchemaParts

DIMENSIONS = ("propensity", "relevance", "impact", "emphasis")
_LABELS = {dim: f"score {dim} formula" for dim in DIMENSIONS}


@dataclass(frozen=True)
class Profile:
    """Resolved weights plus the value providers configured for them."""

    name: str | None
    weights: dict[str, float]
    providers: tuple[tuple[ValueProvider, BaseModel, str], ...]  # provider, config, plugin
    #: whether a provider estimates the propensity even of offers that carry one
    estimates: bool = False
    #: whether a provider adds exponent terms (else a score needs no per-offer dicts)
    terms: bool = False

    @property
    def vector(self) -> tuple[float, float, float, float]:
        """The weights in DIMENSIONS order."""
        w = self.weights
        return (w["propensity"], w["relevance"], w["impact"], w["emphasis"])


@dataclass
class ScoreStep:
    node_id: str
    method: str
    default: Profile
    by_category: dict[str, Profile]
    by_channel: dict[str, Profile]
    max_value: float | None
    relevance_penalty: float
    default_propensity: float
    formulas: dict[str, CompiledExpression]
    node_type: str = "score"

    def run(self, state: DecisionState) -> None:
        if self.method == "priority_weighted":
            self._simple(state, lambda c: (c.offer.priority / 100) * (c.offer.weight / 100))
        elif self.method == "propensity":
            batch = self._batch(state, self.default) if "propensity" not in self.formulas else None
            if batch is None:
                self._simple(state, lambda c: self._propensity(state, c, self.default)[0])
            else:
                estimated = dict(zip(map(id, state.candidates), batch, strict=True))
                self._simple(state, lambda c: self._estimated(state, c, estimated[id(c)])[0])
        else:
            self._prie(state)

    def _simple(self, state: DecisionState, base: Any) -> None:
        for cand in state.candidates:
            value = base(cand)
            cand.score = value * cand.fit_multiplier
            if state.trace is not None:
                cand.breakdown = ScoreBreakdown(
                    self.method, cand.score, cand.fit_multiplier, {"base": value}
                )
                state.trace.scores[cand.offer.id] = cand.breakdown

    def _profile(self, state: DecisionState, cand: Candidate) -> Profile:
        if self.by_category and cand.offer.category in self.by_category:
            return self.by_category[cand.offer.category]
        if self.by_channel and state.request.channel in self.by_channel:
            return self.by_channel[state.request.channel]
        return self.default

    def _raw(self, state: DecisionState, cand: Candidate, dim: str) -> float | None:
        if dim not in self.formulas:
            return None
        value = evaluate(state, self.formulas[dim], cand, _LABELS[dim])
        return None if value is None else _number(state, cand, dim, value)

    def _impact(self, state: DecisionState, cand: Candidate, expr: CompiledExpression) -> float:
        try:
            raw = expr.evaluate(cand.scope)
        except EvaluationError as exc:
            formula_failed(state, cand, _LABELS["impact"], exc)
            raw = None
        number = None if raw is None else _number(state, cand, "impact", raw)
        if number is None:
            return max(0.0, cand.offer.business_value)
        return max(0.0, number)

    def _propensity(
        self, state: DecisionState, cand: Candidate, prof: Profile
    ) -> tuple[float, str]:
        raw = self._raw(state, cand, "propensity")
        if raw is not None:
            return _unit(raw), "formula"
        if prof.estimates:
            weight = 1.0 if self.method == "propensity" else prof.weights["propensity"]
            for provider, config, plugin in prof.providers:
                if provider.mode == "estimate":
                    value = _call_provider(state, provider, config, plugin, cand, self, weight)
                    if value is not None:
                        return _unit(value), plugin
        if cand.offer.propensity is not None:
            return cand.offer.propensity, "offer"
        for provider, config, plugin in prof.providers:
            if provider.dimension == "propensity" and provider.mode == "value":
                value = _call_provider(state, provider, config, plugin, cand, self)
                if value is not None:
                    return _unit(value), plugin
        return self.default_propensity, "default"

    def _batch(self, state: DecisionState, prof: Profile) -> list[float | None] | None:
        """Every candidate's estimated propensity from the profile's first ``estimate``
        provider with ``compute_batch`` (None: no such provider, or it failed: then each
        candidate is asked on its own)."""
        if not prof.estimates:
            return None
        if not state.candidates:  # everything was removed upstream: nothing to estimate
            return []
        for provider, config, plugin in prof.providers:
            if provider.mode != "estimate" or provider.compute_batch is None:
                continue
            candidates = state.candidates
            notes = []
            for cand in candidates:
                if cand.annotations is None:
                    cand.annotations = {}
                notes.append(cand.annotations)
            weight = 1.0 if self.method == "propensity" else prof.weights["propensity"]
            try:
                values = list(
                    provider.compute_batch(
                        ValueBatch(
                            [c.offer for c in candidates],
                            config,
                            state.customer_value,
                            notes,
                            state.tenant_id,
                            state.host,
                            self.default_propensity,
                            state.as_of,
                            weight,
                        )
                    )
                )
                if len(values) != len(candidates):
                    raise ValueError(
                        f"compute_batch returned {len(values)} values for {len(candidates)} offers"
                    )
                if None not in values and _all_units(values):  # the usual case, at once
                    return [float(v) for v in values if v is not None]
                out: list[float | None] = []
                for value in values:
                    if value is None:
                        out.append(None)
                        continue
                    number = float(value)
                    if not math.isfinite(number):
                        raise ValueError(f"value provider returned {number}")
                    out.append(_unit(number))
            except Exception as exc:
                state.plugin_failed(
                    plugin, f"value provider {provider.name}", exc, None, "asked offer by offer"
                )
                return None
            return out
        return None

    def _estimated(
        self, state: DecisionState, cand: Candidate, value: float | None
    ) -> tuple[float, str]:
        """A candidate's propensity given its batch estimate (None: the usual sources)."""
        if value is not None:
            return value, self._batch_owner
        if cand.offer.propensity is not None:
            return cand.offer.propensity, "offer"
        return self._propensity_without_estimates(state, cand)

    def _propensity_without_estimates(
        self, state: DecisionState, cand: Candidate
    ) -> tuple[float, str]:
        for provider, config, plugin in self.default.providers:
            if provider.dimension == "propensity" and provider.mode == "value":
                value = _call_provider(state, provider, config, plugin, cand, self)
                if value is not None:
                    return _unit(value), plugin
        return self.default_propensity, "default"

    @cached_property
    def _batch_owner(self) -> str:
        return next(
            plugin
            for provider, _, plugin in self.default.providers
            if provider.mode == "estimate" and provider.compute_batch is not None
        )

    def _prie(self, state: DecisionState) -> None:
        explain = state.trace is not None
        formulas = self.formulas
        overrides = bool(self.by_category or self.by_channel)
        has_p, has_r, has_e = ("propensity" in formulas, "relevance" in formulas,
                               "emphasis" in formulas)  # fmt: skip
        candidates = state.candidates
        if "impact" in formulas:
            impacts = [self._impact(state, cand, formulas["impact"]) for cand in candidates]
        else:
            impacts = [max(0.0, cand.offer.business_value) for cand in candidates]
        top = self.max_value or max(impacts, default=0.0)
        channel, placement = state.request.channel, state.request.placement
        penalty = self.relevance_penalty
        default_vector = self.default.vector
        if not (explain or overrides or has_p or has_r or has_e or self.default.providers):
            self._prie_plain(state, impacts, top, default_vector)
            return
        batch = None if (overrides or has_p) else self._batch(state, self.default)
        if batch is not None and not (explain or has_r or has_e or self.default.terms):
            # only a batch estimate of the propensity: the plain loop, with its values
            self._prie_estimated(state, impacts, top, default_vector, batch)
            return
        kept = []
        for index, (cand, impact) in enumerate(zip(candidates, impacts, strict=True)):
            offer = cand.offer
            prof = self._profile(state, cand) if overrides else self.default
            if batch is not None:
                p, p_src = self._estimated(state, cand, batch[index])
            elif offer.propensity is not None and not has_p and not prof.estimates:
                p, p_src = offer.propensity, "offer"
            else:
                p, p_src = self._propensity(state, cand, prof)
            r_raw = self._raw(state, cand, "relevance") if has_r else None
            if r_raw is not None:
                r, r_src = _unit(r_raw), "formula"
            else:
                fits = (not offer.channels or channel in offer.channels) and (
                    not offer.placements or placement in offer.placements
                )
                r, r_src = (1.0 if fits else penalty), "channel"
            i = min(1.0, impact / top) if top > 0 else 0.0
            e_raw = self._raw(state, cand, "emphasis") if has_e else None
            e = _unit(e_raw) if e_raw is not None else offer.priority / 100
            fit = cand.fit_multiplier
            if not (explain or prof.terms):  # fast path: no dicts, no provider terms
                wp, wr, wi, we = prof.vector if overrides else default_vector
                if (
                    (p == 0 and wp > 0)
                    or (r == 0 and wr > 0)
                    or (i == 0 and wi > 0)
                    or (e == 0 and we > 0)
                ):
                    factors = {"propensity": p, "relevance": r, "impact": i, "emphasis": e}
                    self._eliminate(state, cand, factors, dict(prof.weights))
                    continue
                cand.score = fit * p**wp * r**wr * i**wi * e**we
                kept.append(cand)
                continue
            factors = {"propensity": p, "relevance": r, "impact": i, "emphasis": e}
            exponents = dict(prof.weights)
            terms = []
            for provider, config, plugin in prof.providers:
                if provider.mode != "exponent":
                    continue
                term = _call_provider(state, provider, config, plugin, cand)
                if term is None:
                    continue
                # a term may lower an exponent but never below 0: a factor never divides
                exponents[provider.dimension] = max(0.0, exponents[provider.dimension] + term)
                terms.append(
                    {
                        "provider": provider.name,
                        "plugin": plugin,
                        "dimension": provider.dimension,
                        "exponent": term,
                    }
                )
            if any(factors[d] == 0 and exponents[d] > 0 for d in DIMENSIONS):
                self._eliminate(state, cand, factors, exponents)
                continue
            score = fit
            for dim in DIMENSIONS:
                if exponents[dim]:
                    score *= factors[dim] ** exponents[dim]
            cand.score = score
            kept.append(cand)
            if explain:
                cand.breakdown = ScoreBreakdown(
                    "formula",
                    score,
                    fit,
                    factors,
                    exponents,
                    terms,
                    {
                        "propensity": p_src,
                        "relevance": r_src,
                        "impact": "formula" if "impact" in formulas else "businessValue",
                        "emphasis": "formula" if "emphasis" in formulas else "priority",
                    },
                    prof.name,
                )
                state.trace.scores[offer.id] = cand.breakdown  # type: ignore[union-attr]
        state.candidates = kept

    def _prie_plain(
        self,
        state: DecisionState,
        impacts: list[float],
        top: float,
        weights: tuple[float, float, float, float],
    ) -> None:
        """PRIE for the common case (one profile, no dimension formulas, no value providers,
        no trace): the same arithmetic as the general loop, without its bookkeeping."""
        wp, wr, wi, we = weights
        channel, placement = state.request.channel, state.request.placement
        penalty, default_p = self.relevance_penalty, self.default_propensity
        kept = []
        for cand, impact in zip(state.candidates, impacts, strict=True):
            offer = cand.offer
            p = offer.propensity
            if p is None:
                p = default_p
            channels, placements = offer.channels, offer.placements
            fits = (not channels or channel in channels) and (
                not placements or placement in placements
            )
            r = 1.0 if fits else penalty
            i = min(1.0, impact / top) if top > 0 else 0.0
            e = offer.priority / 100
            if (
                (p == 0 and wp > 0)
                or (r == 0 and wr > 0)
                or (i == 0 and wi > 0)
                or (e == 0 and we > 0)
            ):
                factors = {"propensity": p, "relevance": r, "impact": i, "emphasis": e}
                self._eliminate(state, cand, factors, dict(self.default.weights))
                continue
            cand.score = cand.fit_multiplier * p**wp * r**wr * i**wi * e**we
            kept.append(cand)
        state.candidates = kept

    def _prie_estimated(
        self,
        state: DecisionState,
        impacts: list[float],
        top: float,
        weights: tuple[float, float, float, float],
        estimates: list[float | None],
    ) -> None:
        """:meth:`_prie_plain` with the propensities a batch provider estimated (an offer it
        did not estimate takes the usual sources); kept apart so the catalog case stays as
        lean as it is."""
        wp, wr, wi, we = weights
        channel, placement = state.request.channel, state.request.placement
        penalty = self.relevance_penalty
        kept = []
        for cand, impact, estimate in zip(state.candidates, impacts, estimates, strict=True):
            offer = cand.offer
            p = estimate if estimate is not None else self._estimated(state, cand, None)[0]
            channels, placements = offer.channels, offer.placements
            fits = (not channels or channel in channels) and (
                not placements or placement in placements
            )
            r = 1.0 if fits else penalty
            i = min(1.0, impact / top) if top > 0 else 0.0
            e = offer.priority / 100
            if (
                (p == 0 and wp > 0)
                or (r == 0 and wr > 0)
                or (i == 0 and wi > 0)
                or (e == 0 and we > 0)
            ):
                factors = {"propensity": p, "relevance": r, "impact": i, "emphasis": e}
                self._eliminate(state, cand, factors, dict(self.default.weights))
                continue
            cand.score = cand.fit_multiplier * p**wp * r**wr * i**wi * e**we
            kept.append(cand)
        state.candidates = kept

    def _eliminate(
        self,
        state: DecisionState,
        cand: Candidate,
        factors: dict[str, float],
        exponents: dict[str, float],
    ) -> None:
        zero = next(d for d in DIMENSIONS if factors[d] == 0 and exponents[d] > 0)
        state.drop(
            cand,
            Drop(
                cand.offer.id,
                self.node_id,
                f"{zero} factor is 0, which eliminates the offer",
                inputs={"factors": factors, "weights": exponents},
            ),
        )


def _all_units(values: list[Any]) -> bool:
    """Whether every value is a number in [0, 1] (a non-finite one makes the sum non-finite;
    a sum that overflows only sends the values to the one-by-one check). True when empty."""
    if not values:
        return True
    try:
        return math.isfinite(sum(values)) and min(values) >= 0.0 and max(values) <= 1.0
    except TypeError:
        return False


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def _number(state: DecisionState, cand: Candidate, dim: str, value: Any) -> float | None:
    """A dimension formula's result as a finite float, or None plus a trace entry (the
    dimension then falls back to its default source)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:  # a string, an int beyond floats
        problem = f"cannot convert to number: {type(exc).__name__}: {exc}"
    else:
        if math.isfinite(number):
            return number
        problem = f"{number} is not a finite number"
    if state.trace is not None:
        state.trace.failures.append(
            PluginFailure("formula", _LABELS[dim], problem, cand.offer.id, "default used")
        )
    return None


def _call_provider(
    state: DecisionState,
    provider: ValueProvider,
    config: BaseModel,
    plugin: str,
    cand: Candidate,
    step: ScoreStep | None = None,
    weight: float = 1.0,
) -> float | None:
    if cand.annotations is None:
        cand.annotations = {}
    try:
        value = provider.compute(
            ValueRequest(
                cand.offer,
                config,
                lookup_for(state, cand),
                cand.computed,
                state.tenant_id,
                state.host,
                None if step is None else step.default_propensity,
                cand.annotations,
                state.as_of,
                weight,
            )
        )
        if value is None:
            return None
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"value provider returned {value}")
        return value
    except Exception as exc:
        state.plugin_failed(
            plugin,
            f"value provider {provider.name}",
            exc,
            cand.offer.id,
            "neutral factor (term skipped)",
        )
        return None


def _build(node: Any, ctx: BuildContext) -> ScoreStep:
    """Resolve profiles and provider configs of a validated score node."""
    cfg = node.config
    compiler, registry, profiles = ctx.compiler, ctx.registry, ctx.profiles

    def resolve(name: str | None, source: Any, at: str) -> Profile:
        weights = source.weights() if source is not None else dict(DEFAULT_WEIGHTS)
        providers = []
        for provider in registry.value_providers.values():
            values = {}
            for fname in provider.config_model.model_fields:
                for holder in (cfg, source):  # a profile's own setting wins over the node's
                    if holder is not None and getattr(holder, fname, None) is not None:
                        values[fname] = getattr(holder, fname)
            if not values:
                continue
            try:
                config = provider.config_model.model_validate(values)
            except ValidationError as exc:
                ctx.problem(at, f"value provider {provider.name!r}: {exc}")
                continue
            providers.append((provider, config, registry.owner("value_provider", provider.name)))
            for required in provider.requires(config) if provider.requires else ():
                compiler.referenced.add(required)
        estimates = any(provider.mode == "estimate" for provider, _, _ in providers)
        terms = any(provider.mode == "exponent" for provider, _, _ in providers)
        return Profile(name, weights, tuple(providers), estimates, terms)

    def named(name: str, at: str) -> Profile:
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            ctx.problem(at, f"unknown ranking profile {name!r} (profiles: {known})")
            return resolve(None, None, at)
        return resolve(name, profiles[name], at)

    if cfg.profile is not None:
        default = named(cfg.profile, ".config.profile")
    else:
        default = resolve(None, cfg.weights, ".config.weights")
    by_category: dict[str, Profile] = {}
    by_channel: dict[str, Profile] = {}
    for index, override in enumerate(cfg.strategy_overrides):
        prof = named(override.profile, f".config.strategyOverrides[{index}].profile")
        if override.category is not None:
            by_category.setdefault(override.category, prof)
        else:
            by_channel.setdefault(override.channel, prof)
    formulas = {}
    for dim, source in cfg.formulas.items():
        try:
            formulas[dim] = compiler.compile(source)
        except Exception as exc:
            ctx.problem(f".config.formulas.{dim}", str(exc))
    return ScoreStep(
        node.id,
        cfg.method,
        default,
        by_category,
        by_channel,
        cfg.max_value,
        cfg.relevance_penalty,
        cfg.default_propensity,
        formulas,
    )


def _config(parts: SchemaParts) -> tuple[Any, Any]:
    model: Any = create_model(
        "ScoreConfig",
        __base__=ScoreConfigBase,
        weights=(parts.profile_model | None, None),
        **parts.provider_fields,
    )
    return model, Field(default_factory=model)


def _placement(types: Sequence[str], index: int, node: Any) -> Misplacements:
    if "rank" in types[:index]:
        yield "", "score must come before rank"


def _raw_formulas(config: Mapping[str, Any]) -> RawFormulas:
    formulas = config.get("formulas")
    if isinstance(formulas, Mapping):
        yield from ((f"formulas.{k}", v) for k, v in formulas.items() if isinstance(v, str))


SCORE = NodeType(
    name="score",
    phases=(RANKING,),
    config=_config,
    build=_build,
    raw_formulas=_raw_formulas,
    placement=_placement,
    unique=True,
    required=True,
    description="scores candidates: priority_weighted, propensity or the PRIE formula",
)
