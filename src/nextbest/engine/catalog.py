"""Offer catalogs compiled for decisions: offers in tie-break order with their static names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..errors import FlowIssue, FlowValidationError
from ..models.offers import Offer, OfferCatalog
from ..store.limits import document_problem
from .names import offer_scope


@dataclass(frozen=True)
class CompiledCatalog:
    """Offers with their formula names precomputed; immutable and shareable."""

    entries: tuple[tuple[Offer, dict[str, Any]], ...]

    @classmethod
    def build(cls, catalog: OfferCatalog) -> CompiledCatalog:
        """Sort ``catalog`` in rank tie-break order and precompute each offer's names.

        Raises:
            FlowValidationError: an offer's ``attributes`` are not a valid stored document
                (a non-finite number, nesting over the depth limit, ...): formulas and rules
                could not use them safely.
        """
        issues = [
            FlowIssue(f"offers[{index}].attributes", problem)
            for index, offer in enumerate(catalog.offers)
            if offer.attributes and (problem := document_problem(offer.attributes)) is not None
        ]
        if issues:
            raise FlowValidationError(issues)
        # Kept in rank tie-break order (priority descending, then id), so ranking only needs a
        # stable sort by score: candidates keep this order through every step.
        offers = sorted(catalog.offers, key=lambda o: (-o.priority, o.id))
        return cls(tuple((offer, offer_scope(offer)) for offer in offers))

    @cached_property
    def by_id(self) -> dict[str, tuple[Offer, dict[str, Any]]]:
        """Each offer with its static names, keyed by id (built on first use)."""
        return {offer.id: (offer, static) for offer, static in self.entries}

    @cached_property
    def constrained(self) -> tuple[Offer, ...]:
        """The offers with a budget or a stock (built on first use)."""
        return tuple(offer for offer, _ in self.entries if offer.constrained)

    @property
    def offers(self) -> tuple[Offer, ...]:
        """The offers, in tie-break order."""
        return tuple(offer for offer, _ in self.entries)
