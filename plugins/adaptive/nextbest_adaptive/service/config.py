"""What a score node or ranking profile says about learned propensities: the ``adaptive`` field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AdaptiveSettings(BaseModel):
    """How a score node (or profile) uses learned propensities.

    ``mode``: ``mean`` (the posterior mean) or ``thompson`` (a posterior draw, seeded by the
    decision so a replay with the same ``asOf`` draws the same). ``priorStrength``: how many
    impressions the prior (mean: the offer's catalog ``propensity``, else the flow's
    ``defaultPropensity``) is worth. ``minImpressions``: a cell with fewer impressions is
    immature and explored (see docs/learning.md). ``explorationQuantile``: the optimistic
    quantile an immature cell gets in ``mean`` mode. ``predictor``: a context name with few
    values (``customer.clv.segment``, ``attributes.segment``) that splits the posteriors.
    ``pickDraws``: the draws that estimate, under ``thompson``, the probability that the policy
    picks each returned offer in its slot.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    mode: Literal["mean", "thompson"] = "mean"
    prior_strength: float = Field(10.0, alias="priorStrength", gt=0.0, le=1e6, allow_inf_nan=False)
    min_impressions: int = Field(20, alias="minImpressions", ge=0, le=1_000_000_000)
    exploration_quantile: float = Field(
        0.9, alias="explorationQuantile", gt=0.0, lt=1.0, allow_inf_nan=False
    )
    predictor: str | None = Field(None, min_length=1, max_length=200)
    pick_draws: int = Field(200, alias="pickDraws", ge=10, le=10_000)


class AdaptiveConfig(BaseModel):
    """The score-node / profile field ``adaptive`` (absent: the plugin is not used there)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    adaptive: AdaptiveSettings | None = None
