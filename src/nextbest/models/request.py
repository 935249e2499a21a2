"""A decision request: who the decision is for, where, and what is known about them.

Its ids, time and attributes follow :mod:`nextbest.store.limits` (the one definition of what an
id, a time and a document may be), so a request the HTTP API accepts is one this model accepts,
whatever the entry point (API, ``nextbest decide``, ``Host.decide``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..store import MAX_DATA_BYTES, data_problem, time_problem
from .base import CamelModel, Id, check_id

#: The largest encoded size of a request's ``attributes`` (and of an outcome's ``context``):
#: compact UTF-8 JSON, in bytes (the store's one definition).
MAX_ATTRIBUTES_BYTES = MAX_DATA_BYTES
#: How many segments one request may name.
MAX_SEGMENTS = 100
#: The most decisions one request may ask for (``limit``); ranks run from 1 to it.
MAX_DECISIONS = 50


def check_time(value: datetime) -> datetime:
    """``value`` if it lies in the accepted window (:func:`nextbest.store.time_problem`)."""
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_data(value: Any) -> Any:
    """``value`` if :func:`data_problem` finds nothing, else ValueError with the reason."""
    problem = data_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: An id (customer, channel, placement, flow key, segment) as the store takes it.


class OfferHistory(CamelModel):
    """What the customer has seen of one offer (filled from the store's summaries or by hand)."""

    last_seen_at: Annotated[datetime, AfterValidator(check_time)] | None = None
    impressions: int = Field(0, ge=0)
    positive: int = Field(0, ge=0)
    negative: int = Field(0, ge=0)
    conversions: int = Field(0, ge=0)


class DecisionRequest(CamelModel):
    """Input of ``Host.decide``.

    ``attributes`` are visible to formulas as ``attributes.<key>``, ``metrics`` as
    ``metrics.<key>``; ``offerHistory`` feeds ``recency_check`` rules and ``offer.lastSeenDays``.
    ``asOf`` fixes "now" for reproducible decisions (default: the current time, UTC).
    Ids are 1-256 characters without control characters, ``asOf`` lies in the store's time
    window, ``attributes`` is a storable document of at most 16 KiB as JSON.
    """

    customer_id: Id
    channel: Id | None = None
    placement: Id | None = None
    limit: int | None = Field(None, ge=1, le=MAX_DECISIONS)
    attributes: Annotated[dict[str, Any], AfterValidator(check_data)] = Field(default_factory=dict)
    segments: tuple[Id, ...] = Field((), max_length=MAX_SEGMENTS)
    metrics: dict[str, float | int | None] = Field(default_factory=dict)
    offer_history: dict[Id, OfferHistory] = Field(default_factory=dict)
    decision_flow_key: Id | None = None
    as_of: Annotated[datetime, AfterValidator(check_time)] | None = None
    explain: bool = False


__all__ = [
    "MAX_ATTRIBUTES_BYTES",
    "MAX_DECISIONS",
    "MAX_SEGMENTS",
    "DecisionRequest",
    "Id",
    "OfferHistory",
    "check_data",
    "check_id",
    "check_time",
    "data_problem",
]
