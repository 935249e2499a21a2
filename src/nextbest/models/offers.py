"""Offers and offer catalogs."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import CamelModel, Id


class Offer(CamelModel):
    """One offer in the catalog."""

    id: Id
    name: str = ""
    category: str | None = None
    sub_category: str | None = None
    status: str = "active"
    priority: float = Field(50, ge=0, le=100)
    weight: float = Field(50, ge=0, le=100)
    business_value: float = Field(0.0, ge=0, allow_inf_nan=False)
    propensity: float | None = Field(None, ge=0, le=1)
    channels: tuple[str, ...] = ()
    placements: tuple[str, ...] = ()
    attributes: dict[str, Any] = Field(default_factory=dict)
    mandatory: bool = False

    @model_validator(mode="after")
    def _default_name(self) -> Offer:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self


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
