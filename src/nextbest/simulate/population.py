"""A tenant's customers read in bulk for a simulation: who they are, the plugins' context columns
(``host.context_columns``) and the store's summaries, each read once for the whole tenant."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..host import Host
from ..store import (
    ContactCount,
    CustomerSummary,
    DailySummary,
    InvalidInputError,
    OfferOutcome,
    OfferSummary,
    Store,
)


def _column(values: Any) -> list[Any]:
    """A column as a Python list with plain values (numpy arrays converted at C speed)."""
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if tolist is not None else list(values)


@dataclass(slots=True)
class Population:
    """The customers a simulation runs over (sorted by id unless sampled) and what is known
    about them, read once: ``context`` columns by name aligned with ``customer_ids`` (the
    names some plugin answered for in bulk), all-time ``summaries``, per-offer summaries, offer
    outcomes, daily summaries and contact counts (the latter four only when the flows or the
    contact policies read them)."""

    customer_ids: list[str]
    context: dict[str, list[Any]]
    summaries: dict[str, CustomerSummary]
    offer_summaries: dict[str, dict[str, OfferSummary]] = field(default_factory=dict)
    offer_outcomes: dict[str, list[OfferOutcome]] = field(default_factory=dict)
    daily: dict[str, list[DailySummary]] = field(default_factory=dict)
    contacts: dict[str, list[ContactCount]] = field(default_factory=dict)
    #: how many customers the tenant has (before a segment or a sample)
    tenant_customers: int = 0

    def select(self, keep: Sequence[int]) -> None:
        """Keep the customers at the positions ``keep`` (in that order), columns too."""
        self.customer_ids = [self.customer_ids[i] for i in keep]
        self.context = {n: [col[i] for i in keep] for n, col in self.context.items()}


def load_population(
    host: Host,
    store: Store,
    tenant_id: str,
    names: Iterable[str],
    as_of: datetime,
    *,
    offer_summaries: bool = False,
    offer_outcomes: bool = False,
    daily_from: date | None = None,
    contacts: bool = False,
    contacts_from: date | None = None,
) -> Population:
    """Every customer of the tenant (those with interactions and any a plugin has values for)
    with the plugins' columns of ``names`` as of ``as_of``; ``offer_summaries``: also every
    customer's per-offer summaries; ``offer_outcomes``: also every customer's latest time per
    (offer, outcome type); ``daily_from``: also the daily summaries from that day to
    ``as_of``'s day; ``contacts``: also the contact counts from ``contacts_from`` (all when
    None)."""
    summaries = store.customer_summaries(tenant_id)
    answers = host.context_columns(tenant_id, frozenset(names), as_of.timestamp())
    ids = set(summaries)
    for answer in answers:
        ids.update(_column(answer.customer_ids))
    ordered = sorted(ids)
    position = {c: i for i, c in enumerate(ordered)}
    context: dict[str, list[Any]] = {}
    wanted = frozenset(names)
    for answer in answers:
        given = _column(answer.customer_ids)
        for name, values in answer.values.items():
            if name not in wanted or name in context:
                continue
            listed = _column(values)
            if given == ordered:
                context[name] = listed
                continue
            aligned: list[Any] = [None] * len(ordered)
            for cid, value in zip(given, listed, strict=True):
                aligned[position[cid]] = value
            context[name] = aligned
    population = Population(ordered, context, summaries, tenant_customers=len(ordered))
    if offer_summaries:
        population.offer_summaries = store.tenant_offer_summaries(tenant_id)
    if offer_outcomes:
        population.offer_outcomes = store.tenant_offer_outcomes(tenant_id)
    if daily_from is not None:
        population.daily = store.tenant_daily_summaries(tenant_id, daily_from, as_of.date())
    if contacts:
        population.contacts = store.tenant_contact_counts(tenant_id, contacts_from)
    return population


def narrow(
    population: Population,
    *,
    by: str | None,
    segment: str | None,
    sample: int | None,
    seed: int | None,
    by_values: list[str | None] | None,
) -> None:
    """Keep the customers whose ``by`` value (``by_values``, as results key them) is
    ``segment`` (InvalidInputError naming ``segment`` when none has it), then a sample of
    ``sample`` drawn with ``seed`` (the same seed over the same customers draws the same
    sample; kept in id order)."""
    if segment is not None:
        if by is None or by_values is None:
            raise InvalidInputError(
                "segment: no breakdown to take a segment of; name one with by (no plugin "
                "suggests one for this tenant)",
                field="segment",
            )
        keep = [i for i, v in enumerate(by_values) if v == segment]
        if not keep:
            present = sorted({str(v) for v in by_values if v is not None})[:20]
            raise InvalidInputError(
                f"segment: no customer has {by} = {segment!r}"
                + (f" (values present: {', '.join(present)})" if present else ""),
                field="segment",
            )
        population.select(keep)
    if sample is not None and sample < len(population.customer_ids):
        keep = sorted(random.Random(seed).sample(range(len(population.customer_ids)), sample))
        population.select(keep)
