"""The static parts of a flow document. ``schema.build_flow_model`` adds what plugins register
(rule types' config models, value providers' score fields) to make the full flow model."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..experiments.control import ControlGroupSettings
from .base import CamelModel, Id
from .offers import OfferStatus

STAGE_ALIASES = {"qualification": "eligibility", "applicability": "fit", "suitability": "match"}
HARD_STAGES = frozenset({"eligibility", "fit"})
RULE_SCOPES = ("global", "category", "subcategory", "offer", "channel", "segment")
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Rule(CamelModel):
    """A qualification rule; ``config`` is validated by the rule type's own model."""

    id: str = Field(min_length=1, pattern=SLUG)
    name: str = ""
    rule_type: str
    config: Any = None
    stage: Literal["eligibility", "fit", "match", "ranking"] | None = None
    scope: Literal["global", "category", "subcategory", "offer", "channel", "segment"] = "global"
    scope_id: str | None = None
    priority: int = 0
    status: Literal["active", "inactive"] = "active"
    multiplier: float | None = Field(None, ge=0, le=1)
    #: mandatory offers skip a bypassable rule; ``bypassable: false`` (a legal gate such as an
    #: age check) applies to them too, as for contact policies
    bypassable: bool = True

    @field_validator("stage", mode="before")
    @classmethod
    def _legacy_stage(cls, value: Any) -> Any:
        return STAGE_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _scope_id(self) -> Rule:
        if self.scope != "global" and not self.scope_id:
            raise ValueError(f"scope {self.scope!r} needs a scopeId")
        return self


class InventoryConfig(CamelModel):
    """Which offers enter the flow: all, some categories or some offer ids; then by status."""

    scope: Literal["all", "category", "offers"] = "all"
    categories: tuple[str, ...] = ()
    offer_ids: tuple[str, ...] = ()
    statuses: tuple[OfferStatus, ...] = ("active",)

    @model_validator(mode="after")
    def _scope_lists(self) -> InventoryConfig:
        if self.scope == "category" and not self.categories:
            raise ValueError("scope 'category' needs a non-empty 'categories' list")
        if self.scope == "offers" and not self.offer_ids:
            raise ValueError("scope 'offers' needs a non-empty 'offerIds' list")
        return self


class FilterConfig(CamelModel):
    """Drops offers by a formula and/or by the request's channel."""

    expression: str | None = None
    require_channel_match: bool = False
    exclude_categories: tuple[str, ...] = ()


class ComputedField(CamelModel):
    """A named formula evaluated per offer."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    formula: str = Field(min_length=1)
    output_type: Literal["number", "integer", "string", "boolean", "any"] = "any"


class ComputeConfig(CamelModel):
    """Computed fields, evaluated in order (a field may use the ones before it)."""

    fields: tuple[ComputedField, ...] = Field(min_length=1)


class StrategyOverride(CamelModel):
    """Use ranking ``profile`` for offers of ``category`` or for requests on ``channel``."""

    profile: str
    category: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> StrategyOverride:
        if (self.category is None) == (self.channel is None):
            raise ValueError("a strategy override needs exactly one of 'category' or 'channel'")
        return self


_BUSINESS = {
    "conversion": "propensity",
    "recency": "relevance",
    "margin": "impact",
    "fairness": "emphasis",
}
DEFAULT_WEIGHTS = {"propensity": 0.4, "relevance": 0.2, "impact": 0.3, "emphasis": 0.1}


class RankingProfile(CamelModel):
    """PRIE weights, by their own names or by the business names (conversion, recency, margin,
    fairness). Missing weights take the defaults 0.4/0.2/0.3/0.1; they must sum to 1."""

    propensity: float | None = Field(None, ge=0, le=1)
    relevance: float | None = Field(None, ge=0, le=1)
    impact: float | None = Field(None, ge=0, le=1)
    emphasis: float | None = Field(None, ge=0, le=1)
    conversion: float | None = Field(None, ge=0, le=1)
    recency: float | None = Field(None, ge=0, le=1)
    margin: float | None = Field(None, ge=0, le=1)
    fairness: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_family_sums_to_one(self) -> RankingProfile:
        prie = {k: getattr(self, k) for k in DEFAULT_WEIGHTS}
        business = {k: getattr(self, k) for k in _BUSINESS}
        if any(v is not None for v in prie.values()) and any(
            v is not None for v in business.values()
        ):
            raise ValueError(
                "use either propensity/relevance/impact/emphasis or "
                "conversion/recency/margin/fairness, not both"
            )
        weights = self.weights()
        total = sum(weights.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"weights must sum to 1, got {total:g} ({weights})")
        return self

    def weights(self) -> dict[str, float]:
        """The four PRIE weights, defaults filled in."""
        out = dict(DEFAULT_WEIGHTS)
        for business, prie in _BUSINESS.items():
            value = getattr(self, business)
            if value is not None:
                out[prie] = value
        for prie in DEFAULT_WEIGHTS:
            value = getattr(self, prie)
            if value is not None:
                out[prie] = value
        return out


class ScoreConfigBase(CamelModel):
    """How candidates are scored.

    ``priority_weighted``: (priority/100)·(weight/100)·fitMultiplier. ``propensity``:
    propensity·fitMultiplier. ``formula`` (PRIE): P^Wp·R^Wr·I^Wi·E^We·fitMultiplier.
    """

    method: Literal["priority_weighted", "propensity", "formula"] = "formula"
    weights: RankingProfile | None = None
    profile: str | None = None
    strategy_overrides: tuple[StrategyOverride, ...] = ()
    max_value: float | None = Field(None, gt=0, allow_inf_nan=False)
    relevance_penalty: float = Field(0.5, ge=0, le=1)
    default_propensity: float = Field(0.5, ge=0, le=1)
    formulas: dict[Literal["propensity", "relevance", "impact", "emphasis"], str] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _weights_or_profile(self) -> ScoreConfigBase:
        if self.weights is not None and self.profile is not None:
            raise ValueError("give either 'weights' or 'profile', not both")
        return self


class RankConfig(CamelModel):
    """Ranking: score descending, ties by priority descending then offer id."""

    max_candidates: int = Field(5, ge=1, le=50)


class ResponseConfig(CamelModel):
    """What each returned decision carries under ``personalization`` (None: every field)."""

    fields: tuple[str, ...] | None = None


class ExtensionPointConfig(CamelModel):
    """Calls a plugin hook at this point of the flow."""

    hook: Literal["pre_score", "score_override", "post_rank"]


#: The most fallback offers a flow may name (the most decisions a request may ask for).
MAX_FALLBACK_OFFERS = 50


class FlowSettings(CamelModel):
    """Flow-wide settings. ``onPluginError``: ``isolate`` (default) records a failing plugin in
    the trace and applies the documented fallback; ``fail`` fails the whole decision.
    ``controlGroup``: the flow's control group (overrides the tenant setting of that name;
    see docs/learning.md).

    ``fallbackOffers``: offer ids returned, in this order and marked ``fallback``, when no
    offer is left after ranking. Flows and catalogs are stored apart, so an id is checked
    against the catalog at decision time: one that is missing, not ``active`` or outside its
    lifecycle dates is skipped (a trace entry says why)."""

    on_plugin_error: Literal["isolate", "fail"] = "isolate"
    control_group: ControlGroupSettings | None = None
    fallback_offers: tuple[Id, ...] = Field((), max_length=MAX_FALLBACK_OFFERS)

    @field_validator("fallback_offers")
    @classmethod
    def _unique_fallbacks(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"fallback offers must be unique; repeated: {', '.join(repeated)}")
        return ids
