"""Impressions and positives per (offer, cell), kept exact in plugin documents.

- An impression is an offer of a *stored* recommendation (what recommend returned and saved;
  a decide without saving shows nothing). ``recommendation_saved`` adds 1 to the offer's
  channel cell and, when the decision split by a predictor, to that cell too.
- A positive is an outcome of a success class that cites a stored recommendation (its
  ``recommendationId`` and rank, or its offer); it is credited at most once per impression
  (a click then a conversion of the same offer count once), checked in the same transaction as
  the increment, so concurrent and retried outcomes never count twice. Outcomes citing no
  recommendation have no impression to be compared with and are not counted.

Every update is one ``update_documents`` call (locks per document: exact across threads and
processes). A respond's positive is written inside the outcome's own transaction (the host's
``outcome_recording`` hook: one commit for the outcome and its count); corrections, imports and
impressions use ``store.update_documents``. Decisions read the tenant's counts from a cache
refreshed after ``ttl`` seconds and updated at once by this process's own writes (a respond's
after its commit, from ``outcome_recorded``). A respond citing a recommendation this process
saved uses the saved one instead of reading it back.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nextbest import HostAPI, Interaction
from nextbest.store import OutcomeTransaction, Recommendation, RecommendationItem, Store

from .cells import COUNTS, CREDITS, NOTE, item_cells

#: tenant setting: the outcome names that count as success (default: every outcome classified
#: positive: click, conversion, share, save and the tenant's own positive types)
SUCCESS_SETTING = "adaptive.successOutcomes"
_SETTINGS_TTL = 5.0
#: a bulk import of more customers than this is read in one pass over the tenant's outcomes
IMPORT_RECHECK_LIMIT = 1000
#: responds whose in-transaction writes wait for their commit to reach the cache (entries are
#: taken right after the commit; a rolled-back outcome's would stay: bounded)
_PENDING_LIMIT = 10_000

#: recommendations saved by this process kept to credit their outcomes without a read
_SAVED_LIMIT = 20_000

Written = dict[tuple[str, str], Any]
_GENERATIONS = itertools.count(1)
#: offers changed by this process's writes remembered between two reads of a tenant's counts
_CHANGES_LIMIT = 10_000
Update = Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]]

Cells = Mapping[str, list[int]]  # cell -> [impressions, positives]


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild found and wrote."""

    recommendations: int
    impressions: int
    positives: int
    offers: int


def _cells_of(doc: Any) -> dict[str, list[int]]:
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, dict):
        return {}
    return {k: [int(v[0]), int(v[1])] for k, v in cells.items()}


def _item_at(rec: Recommendation, rank: int | None, offer_id: str | None) -> RecommendationItem:
    for item in rec.items:
        if (rank is not None and item.rank == rank) or (rank is None and item.offer_id == offer_id):
            return item
    raise LookupError(f"recommendation {rec.recommendation_id} has no such item")


class CountsService:
    """A host's counts: reads for decisions, exact updates from the host's notifications."""

    def __init__(self, host: HostAPI, ttl: float = 1.0) -> None:
        self.host = host
        self.ttl = ttl
        self._lock = threading.Lock()
        #: tenant -> (when read, counts by offer and cell, generation)
        self._cache: dict[str, tuple[float, dict[str, dict[str, list[int]]], int]] = {}
        self._success: dict[str, tuple[float, frozenset[str] | None]] = {}
        #: tenant -> the generation of its last read, and since then the generations and
        #: offers of this process's writes (in order), so a model updates only those offers
        self._read_at: dict[str, int] = {}
        self._changes: dict[str, tuple[list[int], list[str]]] = {}
        #: (tenant, interaction id) -> what its outcome_recording wrote, until the commit
        self._pending: dict[tuple[str, int], Written] = {}
        #: (tenant, recommendation id) -> the recommendations this process saved (the most
        #: recent ones): a respond citing one need not read it back (stored ones never change)
        self._saved: dict[tuple[str, str], Recommendation] = {}

    @property
    def store(self) -> Store:
        store = self.host.store
        if store is None:
            raise RuntimeError("the adaptive plugin needs a host with a store")
        return store

    # -- reads ---------------------------------------------------------------------------------
    def offer_cells(self, tenant_id: str, offer_id: str) -> dict[str, list[int]]:
        """The cells of one offer (impressions, positives), from the tenant's cached counts."""
        return self.tenant_counts(tenant_id).get(offer_id, {})

    def tenant_counts(self, tenant_id: str) -> dict[str, dict[str, list[int]]]:
        """Every offer's cells (cached for ``ttl`` seconds)."""
        return self.tenant_counts_generation(tenant_id)[1]

    def tenant_counts_generation(
        self, tenant_id: str
    ) -> tuple[int, dict[str, dict[str, list[int]]]]:
        """:meth:`tenant_counts` with their generation: a number that changes whenever the
        cached counts do (a re-read or this process's own write), so what a caller derived
        from them can be reused while it is the same."""
        now = time.monotonic()
        cached = self._cache.get(tenant_id)  # a dict read is atomic: no lock on the hot path
        if cached is not None and now - cached[0] < self.ttl:
            return cached[2], cached[1]
        if self.host.store is None:
            return 0, {}
        docs = self.store.get_documents(COUNTS, tenant_id)
        counts = {key: _cells_of(doc) for key, doc in docs.items()}
        generation = next(_GENERATIONS)
        with self._lock:
            self._cache[tenant_id] = (now, counts, generation)
            self._read_at[tenant_id] = generation
            self._changes[tenant_id] = ([], [])
        return generation, counts

    def changed_since(self, tenant_id: str, generation: int) -> set[str] | None:
        """The offers whose cached cells changed after ``generation`` (a generation of
        :meth:`tenant_counts_generation`), or None when the counts were read again since (any
        offer may have changed)."""
        with self._lock:
            if generation < self._read_at.get(tenant_id, 0):
                return None
            generations, offers = self._changes.get(tenant_id, ([], []))
            return set(offers[bisect.bisect_right(generations, generation) :])

    def success_outcomes(
        self, tenant_id: str, settings: Callable[[], Mapping[str, Any]] | None = None
    ) -> frozenset[str] | None:
        """The tenant's success outcomes (None: every outcome classified positive); read with
        ``settings`` (inside a transaction) when the cached ones are stale."""
        now = time.monotonic()
        with self._lock:
            cached = self._success.get(tenant_id)
        if cached is not None and now - cached[0] < _SETTINGS_TTL:
            return cached[1]
        if settings is None:
            tenant = self.store.get_tenant(tenant_id)
            names = None if tenant is None else tenant.settings.get(SUCCESS_SETTING)
        else:
            names = settings().get(SUCCESS_SETTING)
        success = frozenset(str(n) for n in names) if isinstance(names, list | tuple) else None
        with self._lock:
            self._success[tenant_id] = (now, success)
        return success

    def is_success(
        self,
        tenant_id: str,
        interaction: Interaction,
        settings: Callable[[], Mapping[str, Any]] | None = None,
    ) -> bool:
        """Whether the outcome counts as a success for the tenant."""
        success = self.success_outcomes(tenant_id, settings)
        if success is None:
            return interaction.classification == "positive"
        return interaction.outcome in success

    # -- updates -------------------------------------------------------------------------------
    def _remember(self, tenant_id: str, written: Mapping[tuple[str, str], Any]) -> None:
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is None:
                return
            generation = next(_GENERATIONS)
            generations, offers = self._changes.setdefault(tenant_id, ([], []))
            if len(offers) > _CHANGES_LIMIT:  # as if read again: models are rebuilt
                self._read_at[tenant_id] = generation
                generations.clear()
                offers.clear()
            for (namespace, key), doc in written.items():
                if namespace == COUNTS:
                    cached[1][key] = _cells_of(doc)
                    generations.append(generation)
                    offers.append(key)
            self._cache[tenant_id] = (cached[0], cached[1], generation)

    def record_impressions(self, tenant_id: str, recommendation: Recommendation) -> None:
        """Count the offers of a stored recommendation as impressions."""
        if not recommendation.items:
            return
        with self._lock:
            if len(self._saved) >= _SAVED_LIMIT:
                self._saved.pop(next(iter(self._saved)))
            self._saved[(tenant_id, recommendation.recommendation_id)] = recommendation
        adds: dict[str, list[str]] = {}
        for item in recommendation.items:
            note = (item.annotations or {}).get(NOTE)
            adds.setdefault(item.offer_id, []).extend(item_cells(recommendation.channel, note))

        def update(current: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
            out = {}
            for offer_id, cells in adds.items():
                have = _cells_of(current.get((COUNTS, offer_id)))
                for c in cells:
                    have.setdefault(c, [0, 0])[0] += 1
                out[(COUNTS, offer_id)] = {"cells": have}
            return out

        written = self.store.update_documents(tenant_id, [(COUNTS, o) for o in adds], update)
        self._remember(tenant_id, written)

    def forget(self, tenant_id: str, customer_id: str) -> None:
        """Drop what this process keeps of a forgotten customer's recommendations."""
        with self._lock:
            for key in [
                k
                for k, rec in self._saved.items()
                if k[0] == tenant_id and rec.customer_id == customer_id
            ]:
                del self._saved[key]

    def record_outcome(self, tenant_id: str, interaction: Interaction) -> bool:
        """Credit a success outcome to the impression it cites (once per impression), in a
        transaction of its own; returns whether a positive was added."""
        if interaction.recommendation_id is None or not self.is_success(tenant_id, interaction):
            return False
        return self._set_credit(
            tenant_id, interaction.recommendation_id, interaction.rank, interaction.offer_id, True
        )

    def record_outcome_in(self, transaction: OutcomeTransaction, interaction: Interaction) -> bool:
        """:meth:`record_outcome` inside the transaction recording the outcome (the
        ``outcome_recording`` hook): the credit commits with the outcome. What it wrote reaches
        the cache after the commit (:meth:`recorded`)."""
        tenant_id = transaction.tenant_id
        written: Written = {}
        if interaction.recommendation_id is not None and self.is_success(
            tenant_id, interaction, transaction.tenant_settings
        ):

            def recommendation(rec_id: str, rank: int | None) -> Recommendation | None:
                saved = self._saved.get((tenant_id, rec_id))  # atomic dict read: no lock
                return saved if saved is not None else transaction.get_recommendation(rec_id, rank)

            written = self._credit(
                tenant_id,
                interaction.recommendation_id,
                interaction.rank,
                interaction.offer_id,
                True,
                recommendation,
                transaction.update_documents,
            )
        with self._lock:
            if len(self._pending) >= _PENDING_LIMIT:
                self._pending.pop(next(iter(self._pending)))
            self._pending[(tenant_id, interaction.interaction_id)] = written
        return bool(written)

    def recorded(self, tenant_id: str, interaction: Interaction) -> None:
        """After an outcome's commit (``outcome_recorded``): what :meth:`record_outcome_in`
        wrote reaches the cache; an outcome recorded without it (a caller that stored it
        itself and notified the host) is credited now, in a transaction of its own."""
        with self._lock:
            written = self._pending.pop((tenant_id, interaction.interaction_id), None)
        if written is None:
            self.record_outcome(tenant_id, interaction)
        elif written:
            self._remember(tenant_id, written)

    def recheck(self, tenant_id: str, interactions: Iterable[Interaction]) -> None:
        """After corrections or deletions: the impressions the changed outcomes cite are
        credited exactly when a success outcome citing them is still recorded."""
        seen: set[tuple[str, str, int | None, str | None]] = set()
        for old in interactions:
            if old.recommendation_id is None:
                continue
            key = (old.customer_id, old.recommendation_id, old.rank, old.offer_id)
            if key in seen:
                continue
            seen.add(key)
            still = any(
                i.recommendation_id == old.recommendation_id
                and (i.rank == old.rank if old.rank is not None else i.offer_id == old.offer_id)
                and self.is_success(tenant_id, i)
                for i in self.store.iter_interactions(tenant_id, old.customer_id)
            )
            self._set_credit(tenant_id, old.recommendation_id, old.rank, old.offer_id, still)

    def imported(self, tenant_id: str, customer_ids: Iterable[str]) -> None:
        """After a bulk import: credit the impressions the customers' success outcomes cite,
        each credit its own guarded update (as a respond's), so live traffic during a large
        import loses nothing and an outcome credited already is not credited again. Up to
        ``IMPORT_RECHECK_LIMIT`` customers are read one by one, more in one pass over the
        tenant's outcomes (no rebuild: it would replace counts written meanwhile)."""
        customers = sorted(customer_ids)
        if len(customers) > IMPORT_RECHECK_LIMIT:
            wanted = frozenset(customers)
            outcomes: Iterable[Interaction] = (
                i for i in self.store.iter_interactions(tenant_id) if i.customer_id in wanted
            )
        else:
            outcomes = (i for c in customers for i in self.store.iter_interactions(tenant_id, c))
        # read first, then write: no read cursor stays open across the credits' transactions
        cited = [
            (i.recommendation_id, i.rank, i.offer_id)
            for i in outcomes
            if i.recommendation_id is not None and self.is_success(tenant_id, i)
        ]
        for recommendation_id, rank, offer_id in cited:
            self._set_credit(tenant_id, recommendation_id, rank, offer_id, True)

    def _set_credit(
        self,
        tenant_id: str,
        recommendation_id: str,
        rank: int | None,
        offer_id: str | None,
        credited: bool,
    ) -> bool:
        store = self.store
        written = self._credit(
            tenant_id,
            recommendation_id,
            rank,
            offer_id,
            credited,
            lambda rec_id, _rank: store.get_recommendation(tenant_id, rec_id),
            lambda keys, update: store.update_documents(tenant_id, keys, update),
        )
        self._remember(tenant_id, written)
        return bool(written)

    @staticmethod
    def _credit(
        tenant_id: str,
        recommendation_id: str,
        rank: int | None,
        offer_id: str | None,
        credited: bool,
        get_recommendation: Callable[[str, int | None], Recommendation | None],
        update_documents: Callable[[Iterable[tuple[str, str]], Update], Written],
    ) -> Written:
        """Set whether the impression ``(recommendation, rank or offer)`` is credited with a
        positive, reading and writing through the given functions (the store's, or those of
        an outcome's transaction); returns what was written (nothing when it already was)."""
        rec = get_recommendation(recommendation_id, rank)  # (with rank: that item alone)
        if rec is None:
            return {}
        try:
            item = _item_at(rec, rank, offer_id)
        except LookupError:
            return {}
        cells = item_cells(rec.channel, (item.annotations or {}).get(NOTE))
        keys = [(COUNTS, item.offer_id), (CREDITS, recommendation_id)]

        def update(current: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
            ranks = current.get((CREDITS, recommendation_id))
            ranks = [r for r in ranks if isinstance(r, int)] if isinstance(ranks, list) else []
            if (item.rank in ranks) == credited:
                return {}
            have = _cells_of(current.get((COUNTS, item.offer_id)))
            step = 1 if credited else -1
            for c in cells:
                counts = have.setdefault(c, [0, 0])
                counts[1] = max(0, counts[1] + step)
            ranks = sorted({*ranks, item.rank} if credited else set(ranks) - {item.rank})
            return {(COUNTS, item.offer_id): {"cells": have}, (CREDITS, recommendation_id): ranks}

        return update_documents(keys, update)

    # -- rebuild -------------------------------------------------------------------------------
    def rebuild(self, tenant_id: str) -> RebuildResult:
        """Recount every stored recommendation and outcome of the tenant and replace the
        stored counts (run it while no outcome is being recorded: updates made during the
        rebuild may be overwritten)."""
        store = self.store
        cells: dict[str, dict[str, list[int]]] = {}
        items: dict[tuple[str, int], tuple[str, list[str]]] = {}
        by_offer: dict[tuple[str, str], int] = {}
        recs = impressions = positives = 0
        for rec in store.iter_recommendations(tenant_id):
            recs += 1
            for item in rec.items:
                split = item_cells(rec.channel, (item.annotations or {}).get(NOTE))
                items[(rec.recommendation_id, item.rank)] = (item.offer_id, split)
                by_offer[(rec.recommendation_id, item.offer_id)] = item.rank
                offer = cells.setdefault(item.offer_id, {})
                for c in split:
                    offer.setdefault(c, [0, 0])[0] += 1
                impressions += 1
        credits: dict[str, set[int]] = {}
        for i in store.iter_interactions(tenant_id):
            rec_id = i.recommendation_id
            if rec_id is None or not self.is_success(tenant_id, i):
                continue
            rank = i.rank if i.rank is not None else by_offer.get((rec_id, i.offer_id or ""))
            if rank is None or (rec_id, rank) not in items or rank in credits.get(rec_id, ()):
                continue
            credits.setdefault(rec_id, set()).add(rank)
            offer_id, split = items[(rec_id, rank)]
            for c in split:
                cells[offer_id][c][1] += 1
            positives += 1
        store.put_documents(COUNTS, tenant_id, {o: {"cells": c} for o, c in cells.items()}, True)
        store.put_documents(CREDITS, tenant_id, {r: sorted(v) for r, v in credits.items()}, True)
        with self._lock:
            self._cache.pop(tenant_id, None)
        return RebuildResult(recs, impressions, positives, len(cells))
