"""Offers and offer catalogs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..store import time_problem
from .base import CamelModel, Id

#: The statuses an offer may have. Only ``active`` offers enter a flow unless its ``inventory``
#: node lists other statuses; any other value (``Active``, say) is a load error naming these.
OfferStatus = Literal["active", "inactive", "draft", "paused", "retired", "archived"]
OFFER_STATUSES: tuple[str, ...] = ("active", "inactive", "draft", "paused", "retired", "archived")


class OfferBudget(CamelModel):
    """What positive outcomes' values may consume of an offer: per UTC day and over its life.
    The offer drops out of decisions once either is spent (see docs/flows.md)."""

    daily: float | None = Field(None, gt=0, allow_inf_nan=False)
    lifetime: float | None = Field(None, gt=0, allow_inf_nan=False)


class Offer(CamelModel):
    """One offer in the catalog."""

    id: Id
    name: str = ""
    category: str | None = None
    sub_category: str | None = None
    status: OfferStatus = "active"
    priority: float = Field(50, ge=0, le=100)
    weight: float = Field(50, ge=0, le=100)
    business_value: float = Field(0.0, ge=0, allow_inf_nan=False)
    propensity: float | None = Field(None, ge=0, le=1)
    channels: tuple[str, ...] = ()
    placements: tuple[str, ...] = ()
    attributes: dict[str, Any] = Field(default_factory=dict)
    mandatory: bool = False
    #: the offer's lifecycle (UTC): it enters a decision made as of ``startAt`` or later and
    #: before ``endAt``; a time without a zone is taken as UTC
    start_at: datetime | None = None
    end_at: datetime | None = None
    #: constraints consumed by positive outcomes in respond: a budget of outcome value and a
    #: stock of units (one per positive outcome); the offer drops out once one is used up
    budget: OfferBudget | None = None
    stock: int | None = Field(None, ge=0, le=2**53)

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc_time(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        problem = time_problem(value)  # first: a far time may not convert to UTC
        if problem is not None:
            raise ValueError(problem)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _default_name(self) -> Offer:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError(
                f"endAt ({self.end_at.isoformat()}) must be after startAt "
                f"({self.start_at.isoformat()})"
            )
        return self

    def live_problem(self, as_of: datetime) -> str | None:
        """Why the offer is outside its lifecycle at ``as_of`` (UTC), or None when it is in."""
        if self.start_at is not None and as_of < self.start_at:
            return f"not started: startAt {self.start_at.isoformat()} is after {as_of.isoformat()}"
        if self.end_at is not None and as_of >= self.end_at:
            return f"ended: endAt {self.end_at.isoformat()} is at or before {as_of.isoformat()}"
        return None

    @property
    def constrained(self) -> bool:
        """Whether the offer has a budget or a stock."""
        return self.stock is not None or (
            self.budget is not None
            and (self.budget.daily is not None or self.budget.lifetime is not None)
        )


class OfferCatalog(CamelModel):
    """A set of offers with unique ids (a file, or the store's offers for a tenant)."""

    offers: tuple[Offer, ...] = ()

    @field_validator("offers")
    @classmethod
    def _unique_ids(cls, offers: tuple[Offer, ...]) -> tuple[Offer, ...]:
        seen: set[str] = set()
        for offer in offers:
            if offer.id in seen:
                raise ValueError(f"duplicate offer id {offer.id!r}")
            seen.add(offer.id)
        return offers

    def by_id(self) -> dict[str, Offer]:
        """Offers keyed by id."""
        return {o.id: o for o in self.offers}
