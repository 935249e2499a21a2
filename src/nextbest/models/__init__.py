"""Pydantic models for offers, flows, requests and decisions."""

from .decision import Candidate, Decision, DecisionItem, Drop, ScoreBreakdown, Trace
from .flows import (
    ComputeConfig,
    ComputedField,
    ExtensionPointConfig,
    FilterConfig,
    FlowSettings,
    InventoryConfig,
    RankConfig,
    RankingProfile,
    ResponseConfig,
    Rule,
)
from .offers import Offer, OfferCatalog
from .request import DecisionRequest, OfferHistory

__all__ = [
    "Candidate",
    "ComputeConfig",
    "ComputedField",
    "Decision",
    "DecisionItem",
    "DecisionRequest",
    "Drop",
    "ExtensionPointConfig",
    "FilterConfig",
    "FlowSettings",
    "InventoryConfig",
    "Offer",
    "OfferCatalog",
    "OfferHistory",
    "RankConfig",
    "RankingProfile",
    "ResponseConfig",
    "Rule",
    "ScoreBreakdown",
    "Trace",
]
