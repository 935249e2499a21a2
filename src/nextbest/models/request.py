"""A decision request: who the decision is for, where, and what is known about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .base import CamelModel


class OfferHistory(CamelModel):
    """What the customer has seen of one offer (filled from the store's summaries or by hand)."""

    last_seen_at: datetime | None = None
    impressions: int = Field(0, ge=0)
    positive: int = Field(0, ge=0)
    negative: int = Field(0, ge=0)
    conversions: int = Field(0, ge=0)


class DecisionRequest(CamelModel):
    """Input of ``Host.decide``.

    ``attributes`` are visible to formulas as ``attributes.<key>``, ``metrics`` as
    ``metrics.<key>``; ``offerHistory`` feeds ``recency_check`` rules and ``offer.lastSeenDays``.
    ``asOf`` fixes "now" for reproducible decisions (default: the current time, UTC).
    """

    customer_id: str = Field(min_length=1, max_length=200)
    channel: str | None = None
    placement: str | None = None
    limit: int | None = Field(None, ge=1, le=50)
    attributes: dict[str, Any] = Field(default_factory=dict)
    segments: tuple[str, ...] = ()
    metrics: dict[str, float | int | None] = Field(default_factory=dict)
    offer_history: dict[str, OfferHistory] = Field(default_factory=dict)
    decision_flow_key: str | None = None
    as_of: datetime | None = None
    explain: bool = False
