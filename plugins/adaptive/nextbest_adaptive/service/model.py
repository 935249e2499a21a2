"""The decision-time model: a learned propensity per candidate (the value provider) and, after
ranking, the probability that the policy picked each returned offer in its slot."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from nextbest import Candidate, DecisionView, HostAPI, ValueBatch, ValueProvider, ValueRequest

from ..core.beta import (
    contenders,
    pick_probabilities,
    posterior_scalar,
    quantile,
    quantile_scalar,
    seeded_uniform,
)
from .cells import NOTE, cell
from .config import AdaptiveConfig, AdaptiveSettings
from .counts import CountsService

#: the prior of an immature cell's exploration value: Beta(1, 1), uniform (the catalog's guess
#: is not trusted to hold an offer back before it has evidence)
EXPLORATION_PRIOR = 1.0
_STATE_KEY = "nextbest_adaptive"


def _plain(value: Any) -> Any:
    """A predictor's value as stored in a note: JSON scalars as they are (finite numbers),
    anything else as its text, so a note never makes a recommendation unstorable."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def decision_seed(tenant_id: str, customer_id: Any, as_of: Any) -> str:
    """The seed of a decision's draws: who it is for and the time it is made as of."""
    when = as_of.isoformat() if hasattr(as_of, "isoformat") else str(as_of)
    return f"{tenant_id}\x1f{customer_id}\x1f{when}"


_GENERATORS = threading.local()


def seeded_generator(seed: str) -> np.random.Generator:
    """This thread's generator set to the state ``seed`` determines (PCG64: a 128-bit state
    and an odd increment from the seed's BLAKE2b digest), so the same decision draws the same
    values. Setting the state of one generator costs a fraction of creating one per decision
    (``default_rng`` hashes its seed through a SeedSequence)."""
    digest = hashlib.blake2b(seed.encode(), digest_size=32).digest()
    generator: np.random.Generator | None = getattr(_GENERATORS, "generator", None)
    if generator is None:
        generator = _GENERATORS.generator = np.random.Generator(np.random.PCG64(0))
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": int.from_bytes(digest[:16], "big"),
            "inc": int.from_bytes(digest[16:], "big") | 1,
        },
        "has_uint32": 0,
        "uinteger": 0,
    }
    return generator


class Learner:
    """Learned propensities for one host (kept in ``host.plugin_state``)."""

    def __init__(self, counts: CountsService) -> None:
        self.counts = counts
        self._labels: dict[tuple[str | None, str | None, Any], str] = {}
        self._models: dict[tuple[Any, ...], _Model] = {}

    def _label(self, channel: str | None, predictor: str | None, value: Any) -> str:
        """The cell's label, remembered for hashable values (labels are asked per offer)."""
        if not isinstance(value, str | int | float | bool | None):
            return cell(channel, predictor, value)
        key = (channel, predictor, value)
        label = self._labels.get(key)
        if label is None:
            label = cell(channel) if predictor is None else cell(channel, predictor, value)
            if len(self._labels) < 10_000:  # predictors have few values; bound it anyway
                self._labels[key] = label
        return label

    def propensity(self, request: ValueRequest) -> float | None:
        """The candidate's propensity under the node's ``adaptive`` settings (None: the
        settings are absent or there is no prior), noted in the candidate's annotations."""
        config = request.config
        assert isinstance(config, AdaptiveConfig)
        settings = config.adaptive
        if settings is None:
            return None
        offer = request.offer
        if offer.propensity is not None:
            prior, source = float(offer.propensity), "catalog"
        elif request.default is not None:
            prior, source = float(request.default), "default"
        else:
            return None
        channel = request.lookup("request.channel")
        channel = channel if isinstance(channel, str) else None
        value = None if settings.predictor is None else request.lookup(settings.predictor)
        label = self._label(channel, settings.predictor, value)
        n, k = self.counts.offer_cells(request.tenant_id, offer.id).get(label, (0, 0))
        p, note = _estimate(settings, prior, n, k, request, label)
        note["source"] = "learned" if n > 0 else source
        if request.annotations is not None:
            request.annotations[NOTE] = note
        return p

    def propensities(self, batch: ValueBatch) -> list[float | None]:
        """Every candidate's propensity at once (the decision's hot path): the same model as
        :meth:`propensity`, vectorised; Thompson draws come from one generator seeded by the
        decision, in the candidates' (tie-break) order. What depends only on the counts, the
        offers and the settings is computed once and reused while they stay the same (a
        ``mean`` decision is then a lookup); each candidate's note is one shared marker until
        :meth:`annotate` writes out the notes that are kept."""
        config = batch.config
        assert isinstance(config, AdaptiveConfig)
        settings = config.adaptive
        if settings is None:
            return [None] * len(batch.offers)
        channel = batch.lookup("request.channel")
        channel = channel if isinstance(channel, str) else None
        value = None if settings.predictor is None else batch.lookup(settings.predictor)
        label = self._label(channel, settings.predictor, value)
        generation, counts = self.counts.tenant_counts_generation(batch.tenant_id)
        offers = batch.offers
        key = (batch.tenant_id, label, settings, batch.default, batch.weight)
        model = self._models.get(key)
        if model is not None and model.generation != generation:
            changed = self.counts.changed_since(batch.tenant_id, model.generation)
            model = None if changed is None else model.updated(changed, counts, generation)
        at = None if model is None else model.positions(offers)
        if at is None:  # offers the model lacks (or another catalog's): a model with them
            model = _Model.build(
                settings, counts, generation, label, value, batch, None if model is None
                else model.offers,
            )  # fmt: skip
            at = model.positions(offers)
        assert model is not None and at is not None
        if model is not self._models.get(key):
            if len(self._models) >= _MODELS_LIMIT:
                self._models.clear()  # (a bound; the working set is a few flows' cells)
            self._models[key] = model
        same = at is _SAME
        if model.thompson:
            seed = decision_seed(batch.tenant_id, batch.lookup("customer.id"), batch.as_of)
            generator = seeded_generator(seed)
            if same:
                drawn = generator.beta(model.a, model.b)
                rows = _Rows(model, drawn)
                values: list[float] = rows.propensity
            else:
                where = np.fromiter(at, dtype=np.intp, count=len(offers))
                drawn = generator.beta(model.a[where], model.b[where])
                full = np.zeros(len(model.offers))
                full[where] = drawn
                rows = _Rows(model, full)
                values = drawn.tolist()
        else:
            assert model.rows is not None
            rows = model.rows
            values = rows.propensity if same else [rows.propensity[i] for i in at]
        known = model.known if same else [model.known[i] for i in at]
        everyone = model.all_known or all(known)
        out = _unmasked(values) if everyone else _masked(values, known)
        marker = _Marker(rows)
        if everyone:
            for notes in batch.annotations:
                notes[NOTE] = marker
        else:
            for notes, has_prior in zip(batch.annotations, known, strict=True):
                if has_prior:
                    notes[NOTE] = marker
        return out

    def annotate(
        self, decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
    ) -> None:
        """Note on each returned offer the probability that the policy picks it in its slot
        (``pickProbability``) and on every scored offer that of the first slot
        (``topProbability``). Under Thompson sampling these need many draws: they are computed
        here when the decision is explained, else only when the recommendation is saved
        (:meth:`complete`, the ``recommendation_saving`` hook), with the same seed."""
        probe = ranked[0] if ranked else (scored[0] if scored else None)
        marker = None if probe is None else (probe.annotations or {}).get(NOTE)
        if isinstance(marker, _Marker):
            self._annotate_batch(decision, ranked, scored, marker.rows)
            return
        self._annotate_notes(decision, ranked, scored)

    def _annotate_batch(
        self,
        decision: DecisionView,
        ranked: list[Candidate],
        scored: list[Candidate],
        rows: _Rows,
    ) -> None:
        """:meth:`annotate` for the notes of one batch (:meth:`propensities`)."""
        explain = decision.request.explain
        index = rows.model.index
        for cand in scored if explain else ranked:  # the notes kept: written out
            notes = cand.annotations
            if notes is not None and isinstance(notes.get(NOTE), _Marker):
                notes[NOTE] = rows.note(index[cand.offer.id])
        if not ranked:
            return
        if decision.random_pick:  # a control customer's offer: uniform over the candidates
            for cand in ranked:
                note = (cand.annotations or {}).get(NOTE)
                if isinstance(note, dict):
                    note["pickProbability"] = 1.0 / len(scored)
                    note["topProbability"] = 1.0 / len(scored)
                    note["controlRandom"] = True
            return
        if not rows.model.thompson:  # a deterministic policy: the offers shown had probability 1
            for position, cand in enumerate(ranked):
                note = (cand.annotations or {}).get(NOTE)
                if isinstance(note, dict):
                    note["pickProbability"] = 1.0
                    note["topProbability"] = 1.0 if position == 0 else 0.0
            return
        pick = _LazyPick(
            rows,
            [c.score or 0.0 for c in scored],
            [c.offer.id for c in scored],
            decision_seed(decision.tenant_id, decision.request.customer_id, decision.as_of),
        )
        ranked_notes = [(c.annotations or {}).get(NOTE) for c in ranked]
        ranked_ids = [c.offer.id for c in ranked]
        if explain:
            scored_notes = [(c.annotations or {}).get(NOTE) for c in scored]
            pick.resolve(ranked_ids, ranked_notes, scored_notes)
            return
        for note in ranked_notes:
            if isinstance(note, _Note):
                note.pick = pick

    @staticmethod
    def complete(items: Sequence[Any]) -> None:
        """Before a decision is saved (``recommendation_saving``): the pick probabilities its
        notes left for later are computed now (the same seed as an explained decision)."""
        notes = [(item.annotations or {}).get(NOTE) for item in items]
        picks = {id(n.pick): n.pick for n in notes if isinstance(n, _Note) and n.pick is not None}
        for pick in picks.values():
            pick.resolve([item.offer_id for item in items], notes)

    def _annotate_notes(
        self, decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
    ) -> None:
        """:meth:`annotate` for notes written offer by offer (:meth:`propensity`)."""
        notes = [(c.annotations or {}).get(NOTE) for c in scored]
        if all(n is None for n in notes) or not ranked:
            return
        index = {id(c): i for i, c in enumerate(scored)}
        if decision.random_pick:  # a control customer's offer: uniform over the candidates
            for cand in ranked:
                note = notes[index[id(cand)]] if id(cand) in index else None
                if note is not None:
                    note["pickProbability"] = 1.0 / len(scored)
                    note["topProbability"] = 1.0 / len(scored)
                    note["controlRandom"] = True
            return
        random = [bool(n is not None and n["random"]) for n in notes]
        if not any(random):  # a deterministic policy: the offers shown had probability 1
            for position, cand in enumerate(ranked):
                note = notes[index[id(cand)]]
                if note is not None:
                    note["pickProbability"] = 1.0
                    note["topProbability"] = 1.0 if position == 0 else 0.0
            return
        rest, weight, alpha, beta, fixed = [], [], [], [], []
        draws = 10
        for cand, note in zip(scored, notes, strict=True):
            score = cand.score or 0.0
            if note is None:
                rest.append(score)
                weight.append(1.0)
                alpha.append(1.0)
                beta.append(1.0)
                fixed.append(1.0)
                continue
            p, w = note["propensity"], note["weight"]
            rest.append(score / p**w if p > 0 else 0.0)
            weight.append(w)
            alpha.append(note["alpha"])
            beta.append(note["beta"])
            fixed.append(p)
            draws = max(draws, int(note["draws"]))
        seed = decision_seed(decision.tenant_id, decision.request.customer_id, decision.as_of)
        probs = _pick_probabilities(
            (rest, weight, alpha, beta, random, fixed),
            [index[id(c)] for c in ranked],
            draws,
            seed,
        )
        _note_picks(notes, probs, [index[id(c)] for c in ranked], draws)


#: reused models per learner: (tenant, cell, settings, default, weight) at most
_MODELS_LIMIT = 1024


def _pick_probabilities(
    columns: tuple[Any, ...], ranked_at: list[int], draws: int, seed: str
) -> npt.NDArray[np.float64]:
    """Monte Carlo pick probabilities (candidates x returned slots) from the candidates'
    columns (rest of the score, weight, alpha, beta, random, propensity used), drawn only for
    the candidates that may reach a returned slot and those returned."""
    rest, weight, alpha, beta, random, fixed = (np.asarray(c) for c in columns)
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    slots = max(1, len(ranked_at))
    # draw only for the candidates that may reach a returned slot (the others' chances
    # are below 1e-5): usually a handful of the 50
    keep = contenders(rest, weight, alpha, beta, random, fixed, slots)
    keep[ranked_at] = True
    kept = np.flatnonzero(keep)
    probs = np.zeros((rest.size, slots))
    probs[kept] = pick_probabilities(
        rest[kept], weight[kept], alpha[kept], beta[kept], random[kept], fixed[kept], slots,
        draws, int.from_bytes(digest, "big"),
    )  # fmt: skip
    return probs


def _note_picks(
    notes: Sequence[Any], probs: npt.NDArray[np.float64], ranked_at: list[int], draws: int
) -> None:
    """Write ``topProbability`` on every note and ``pickProbability`` on the returned ones."""
    floor = 1.0 / (2 * draws)  # never 0 for an offer the policy did pick
    for i, note in enumerate(notes):
        if note is not None:
            note["topProbability"] = float(probs[i, 0])
    for position, i in enumerate(ranked_at):
        note = notes[i]
        if note is not None:
            note["pickProbability"] = max(floor, float(probs[i, position]))


#: :meth:`_Model.positions` of the very offers the model was built from
_SAME: list[int] = []


class _Model:
    """What a batch of offers' estimates derive from the counts, the offers and the settings
    alone: kept by the learner, reused while they are the same and updated for the offers
    whose counts this process changed (a full rebuild when the counts are read again)."""

    __slots__ = (
        "a",
        "all_known",
        "b",
        "columns",
        "common",
        "default",
        "draws",
        "generation",
        "index",
        "known",
        "label",
        "mean_mode_p",
        "offers",
        "out",
        "rows",
        "settings",
        "thompson",
        "weight",
    )  # fmt: skip

    a: npt.NDArray[np.float64]
    b: npt.NDArray[np.float64]
    all_known: bool
    #: per offer, JSON values: source, immature, impressions, positives, mean, alpha, beta
    columns: dict[str, list[Any]]
    #: the notes' fields common to every offer
    common: dict[str, Any]
    default: float | None
    draws: int
    generation: int
    #: offer id -> position in ``offers``
    index: dict[str, int]
    known: list[bool]
    label: str
    #: the propensities of ``mean`` mode (the posterior mean, or the optimistic quantile)
    mean_mode_p: npt.NDArray[np.float64]
    offers: list[Any]
    #: the propensities returned (``mean``; None for an offer without a prior)
    out: list[float | None]
    #: the estimates of a ``mean`` decision (a Thompson one's are drawn per decision)
    rows: _Rows | None
    settings: AdaptiveSettings
    thompson: bool
    weight: float

    def positions(self, offers: Sequence[Any]) -> list[int] | None:
        """Where ``offers`` sit in the model (:data:`_SAME`: they are its own list), or None
        when it lacks one of them (an offer it has not seen, or another catalog's object)."""
        if self.offers == offers:  # identity first: the same candidates match at C speed
            return _SAME
        index, mine = self.index, self.offers
        at = []
        for offer in offers:
            i = index.get(offer.id)
            if i is None or mine[i] is not offer:
                return None
            at.append(i)
        return at

    @classmethod
    def build(
        cls,
        settings: AdaptiveSettings,
        counts: Mapping[str, Mapping[str, list[int]]],
        generation: int,
        label: str,
        value: Any,
        batch: ValueBatch,
        previous: Sequence[Any] | None = None,
    ) -> _Model:
        """A model of the batch's offers (first the ``previous`` model's other offers, so the
        candidate lists of many decisions share one model)."""
        offers = list(batch.offers)
        if previous:
            ids = {offer.id for offer in offers}
            kept = [offer for offer in previous if offer.id not in ids]
            if len(kept) <= 4 * len(offers) + 100:  # (a bound when catalogs churn)
                offers = kept + offers
        model = cls()
        model.settings = settings
        model.label = label
        model.default = batch.default
        model.thompson = settings.mode == "thompson"
        model.generation = generation
        model.offers = offers
        model.index = {offer.id: i for i, offer in enumerate(offers)}
        model.weight = float(batch.weight)
        model.draws = settings.pick_draws
        model.common = {
            "mode": settings.mode,
            "random": model.thompson,
            "weight": batch.weight,
            "draws": settings.pick_draws,
            **(
                {
                    "cell": label,
                    "predictor": settings.predictor,
                    "predictorValue": _plain(value),
                }
                if settings.predictor is not None
                else {}
            ),
        }
        est = model._estimates(offers, counts)
        model.known = est["known"]
        model.a, model.b, model.mean_mode_p = est["a"], est["b"], est["p"]
        model.columns = {k: est[k] for k in _COLUMNS}
        model._finish()
        return model

    def updated(
        self, changed: set[str], counts: Mapping[str, Mapping[str, list[int]]], generation: int
    ) -> _Model:
        """A copy with the ``changed`` offers' estimates recomputed from ``counts`` (this
        model stays as it is: other decisions may be reading it)."""
        model = _Model()
        for name in _Model.__slots__:
            setattr(model, name, getattr(self, name))
        model.generation = generation
        at = [self.index[o] for o in changed if o in self.index]
        if not at:
            return model
        est = self._estimates([self.offers[i] for i in at], counts)
        where = np.asarray(at, dtype=np.intp)
        model.a, model.b, model.mean_mode_p = self.a.copy(), self.b.copy(), self.mean_mode_p.copy()
        model.a[where], model.b[where], model.mean_mode_p[where] = est["a"], est["b"], est["p"]
        model.known = list(self.known)
        model.columns = {k: list(v) for k, v in self.columns.items()}
        for j, i in enumerate(at):
            model.known[i] = est["known"][j]
            for name in _COLUMNS:
                model.columns[name][i] = est[name][j]
        model._finish()
        return model

    def _estimates(
        self, offers: Sequence[Any], counts: Mapping[str, Mapping[str, list[int]]]
    ) -> dict[str, Any]:
        """The posteriors of ``offers`` (arrays ``a``, ``b``, ``p``: the ``mean``-mode value,
        and the note columns as lists)."""
        settings, label, default = self.settings, self.label, self.default
        priors: list[float] = []
        ns: list[int] = []
        ks: list[int] = []
        sources = []
        nothing = (0, 0)
        for offer in offers:
            if offer.propensity is not None:
                priors.append(offer.propensity)
                source = "catalog"
            elif default is not None:
                priors.append(default)
                source = "default"
            else:
                priors.append(math.nan)
                source = ""
            cells = counts.get(offer.id)
            got = cells.get(label, nothing) if cells else nothing
            ns.append(int(got[0]))
            ks.append(int(got[1]))
            sources.append("learned" if got[0] > 0 else source)
        prior = np.array(priors, dtype=np.float64)
        n = np.array(ns, dtype=np.float64)
        k = np.array(ks, dtype=np.float64)
        known = ~np.isnan(prior)
        immature = n < settings.min_impressions
        strength = settings.prior_strength
        m = np.clip(np.where(known, prior, 0.5), 1e-6, 1 - 1e-6)  # as core.beta.posterior
        a = m * strength + k
        b = (1 - m) * strength + (n - k)  # counts keep k <= n
        means = a / (a + b)
        if immature.any():  # explored: the evidence under a uniform prior, not the catalog's
            a = np.where(immature, EXPLORATION_PRIOR + k, a)
            b = np.where(immature, EXPLORATION_PRIOR + (n - k), b)
        p = means.copy()
        if immature.any():  # an optimistic value
            p[immature] = quantile(a[immature], b[immature], settings.exploration_quantile)
        return {
            "a": a,
            "b": b,
            "p": p,
            "known": known.tolist(),
            "source": sources,
            "immature": immature.tolist(),
            "impressions": ns,
            "positives": ks,
            "mean": means.tolist(),
            "alpha": a.tolist(),
            "beta": b.tolist(),
        }

    def _finish(self) -> None:
        self.all_known = all(self.known)
        if self.thompson:
            self.rows, self.out = None, []  # drawn per decision
        else:
            self.rows = _Rows(self, self.mean_mode_p)
            propensity = self.rows.propensity
            self.out = _unmasked(propensity) if self.all_known else _masked(propensity, self.known)


_COLUMNS = ("source", "immature", "impressions", "positives", "mean", "alpha", "beta")


def _masked(values: list[float], known: list[bool]) -> list[float | None]:
    """``values`` with None for the offers that have no prior."""
    return [v if k else None for v, k in zip(values, known, strict=True)]


def _unmasked(values: list[float]) -> list[float | None]:
    """``values`` as the provider returns them (every offer has a prior: none is None)."""
    return cast(list[float | None], values)


class _Rows:
    """One decision's estimates: a model and the propensities used (drawn or the model's)."""

    __slots__ = ("model", "p", "propensity")

    def __init__(self, model: _Model, p: npt.NDArray[np.float64]) -> None:
        self.model = model
        self.p = p
        self.propensity: list[float] = p.tolist()

    def note(self, i: int) -> _Note:
        """The note of candidate ``i`` (JSON values only)."""
        columns = self.model.columns
        note = _Note(self.model.common)
        note["propensity"] = self.propensity[i]
        for key, column in columns.items():
            note[key] = column[i]
        return note


class _Marker(dict[str, Any]):
    """What :meth:`Learner.propensities` puts in every candidate's annotations: an empty dict
    (harmless if it were stored) pointing to the batch; :meth:`Learner.annotate` replaces it by
    the full note on the candidates whose notes are kept (returned, or traced). Writing out
    every candidate's note would cost more than the model itself."""

    __slots__ = ("rows",)

    def __init__(self, rows: _Rows) -> None:
        super().__init__()
        self.rows = rows


class _Note(dict[str, Any]):
    """A candidate's note; ``pick``: the pick probabilities still to compute for it (a
    Thompson decision that was not explained, until it is saved)."""

    __slots__ = ("pick",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pick: _LazyPick | None = None


class _LazyPick:
    """The pick probabilities of one Thompson decision, computed on first need from what it
    keeps of the scored candidates (their scores and offers, in order; no reference to the
    candidates or their notes, so nothing forms a cycle)."""

    __slots__ = ("done", "offer_ids", "rows", "scores", "seed")

    def __init__(self, rows: _Rows, scores: list[float], offer_ids: list[str], seed: str) -> None:
        self.rows = rows
        self.scores = scores
        self.offer_ids = offer_ids
        self.seed = seed
        self.done = False

    def resolve(
        self,
        ranked_ids: Sequence[str],
        ranked_notes: Sequence[Any],
        scored_notes: Sequence[Any] | None = None,
    ) -> None:
        """Compute the probabilities (once) and write ``pickProbability`` and
        ``topProbability`` on the returned offers' notes (given in rank order) and
        ``topProbability`` on ``scored_notes`` (the scored candidates', in order) if given."""
        if self.done:
            return
        self.done = True
        rows, model = self.rows, self.rows.model
        w, index, known = model.weight, model.index, model.known
        alphas, betas = model.columns["alpha"], model.columns["beta"]
        rest, weight, alpha, beta, random, fixed = [], [], [], [], [], []
        for score, offer_id in zip(self.scores, self.offer_ids, strict=True):
            i = index.get(offer_id)
            if i is None or not known[i]:  # a candidate the model did not estimate
                rest.append(score)
                weight.append(1.0)
                alpha.append(1.0)
                beta.append(1.0)
                random.append(False)
                fixed.append(1.0)
                continue
            p = rows.propensity[i]
            rest.append(score / p**w if p > 0 else 0.0)
            weight.append(w)
            alpha.append(alphas[i])
            beta.append(betas[i])
            random.append(True)
            fixed.append(p)
        position = {offer_id: j for j, offer_id in enumerate(self.offer_ids)}
        ranked_at = [position[offer_id] for offer_id in ranked_ids]
        probs = _pick_probabilities(
            (rest, weight, alpha, beta, random, fixed), ranked_at, model.draws, self.seed
        )
        if scored_notes is not None:
            for j, note in enumerate(scored_notes):
                if isinstance(note, dict) and not isinstance(note, _Marker):
                    note["topProbability"] = float(probs[j, 0])
        floor = 1.0 / (2 * model.draws)  # never 0 for an offer the policy did pick
        for slot, (j, note) in enumerate(zip(ranked_at, ranked_notes, strict=True)):
            if isinstance(note, dict) and not isinstance(note, _Marker):
                note["topProbability"] = float(probs[j, 0])
                note["pickProbability"] = max(floor, float(probs[j, slot]))
            if isinstance(note, _Note):
                note.pick = None


def _estimate(
    settings: AdaptiveSettings,
    prior: float,
    n: int,
    k: int,
    request: ValueRequest,
    label: str,
) -> tuple[float, dict[str, Any]]:
    immature = n < settings.min_impressions
    a, b = posterior_scalar(prior, settings.prior_strength, n, k)
    mean = a / (a + b)
    if immature:  # explored: the evidence under a uniform prior, not the catalog's
        a, b = EXPLORATION_PRIOR + k, EXPLORATION_PRIOR + n - k
    random = settings.mode == "thompson"
    if random:
        customer = request.lookup("customer.id")
        seed = decision_seed(request.tenant_id, customer, request.as_of)
        p = quantile_scalar(a, b, seeded_uniform(seed, request.offer.id, label))
    elif immature:
        p = quantile_scalar(a, b, settings.exploration_quantile)
    else:
        p = mean
    if not math.isfinite(p):
        p = a / (a + b)
    note: dict[str, Any] = {
        "propensity": p,
        "mode": settings.mode,
        "random": random,
        "immature": immature,
        "impressions": int(n),
        "positives": int(k),
        "mean": mean,
        "alpha": a,
        "beta": b,
        "weight": request.weight,
        "draws": settings.pick_draws,
    }
    if settings.predictor is not None:
        note["cell"] = label
        note["predictor"] = settings.predictor
        note["predictorValue"] = _plain(request.lookup(settings.predictor))
    return p, note


def learner_for(host: HostAPI) -> Learner:
    """The learner of a host (created on first use)."""
    return host.plugin_state(_STATE_KEY, lambda: Learner(CountsService(host)))


def _requires(config: Any) -> tuple[str, ...]:
    settings = config.adaptive if isinstance(config, AdaptiveConfig) else None
    if settings is None:
        return ()
    names = ("request.channel", "customer.id")
    return (*names, settings.predictor) if settings.predictor else names


def _compute(request: ValueRequest) -> float | None:
    if request.host is None or request.host.store is None:
        return None
    return learner_for(request.host).propensity(request)


def _compute_batch(batch: ValueBatch) -> list[float | None]:
    if batch.host is None or batch.host.store is None:
        return [None] * len(batch.offers)
    return learner_for(batch.host).propensities(batch)


ADAPTIVE_PROPENSITY = ValueProvider(
    name="adaptive",
    dimension="propensity",
    config_model=AdaptiveConfig,
    compute=_compute,
    mode="estimate",
    requires=_requires,
    compute_batch=_compute_batch,
    description="the propensity learned from recorded outcomes (Beta-Bernoulli posterior "
    "per offer, channel and optional predictor; mean or Thompson draw)",
)
