"""Offer catalogs compiled for decisions: offers in tie-break order with their static names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models.offers import Offer, OfferCatalog
from .names import offer_scope


@dataclass(frozen=True)
class CompiledCatalog:
    """Offers with their formula names precomputed; immutable and shareable."""

    entries: tuple[tuple[Offer, dict[str, Any]], ...]

    @classmethod
    def build(cls, catalog: OfferCatalog) -> CompiledCatalog:
        """Sort ``catalog`` in rank tie-break order and precompute each offer's names."""
        # Kept in rank tie-break order (priority descending, then id), so ranking only needs a
        # stable sort by score: candidates keep this order through every step.
        offers = sorted(catalog.offers, key=lambda o: (-o.priority, o.id))
        return cls(tuple((offer, offer_scope(offer)) for offer in offers))

    @property
    def offers(self) -> tuple[Offer, ...]:
        """The offers, in tie-break order."""
        return tuple(offer for offer, _ in self.entries)
