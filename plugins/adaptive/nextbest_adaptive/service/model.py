"""The decision-time model: a learned propensity per candidate (the value provider) and, after
ranking, the probability that the policy picked each returned offer in its slot."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

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


class Learner:
    """Learned propensities for one host (kept in ``host.plugin_state``)."""

    def __init__(self, counts: CountsService) -> None:
        self.counts = counts
        self._labels: dict[tuple[str | None, str | None, Any], str] = {}

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
        decision, in the candidates' (tie-break) order."""
        config = batch.config
        assert isinstance(config, AdaptiveConfig)
        settings = config.adaptive
        if settings is None:
            return [None] * len(batch.offers)
        channel = batch.lookup("request.channel")
        channel = channel if isinstance(channel, str) else None
        value = None if settings.predictor is None else batch.lookup(settings.predictor)
        label = self._label(channel, settings.predictor, value)
        counts = self.counts.tenant_counts(batch.tenant_id)
        priors: list[float] = []
        ns: list[float] = []
        ks: list[float] = []
        sources = []
        default = batch.default
        nothing = (0, 0)
        for offer in batch.offers:
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
            ns.append(got[0])
            ks.append(got[1])
            sources.append("learned" if got[0] > 0 else source)
        prior = np.array(priors)
        n = np.array(ns, dtype=np.float64)
        k = np.array(ks, dtype=np.float64)
        known = ~np.isnan(prior)
        immature = n < settings.min_impressions
        strength = settings.prior_strength
        m = np.clip(np.where(known, prior, 0.5), 1e-6, 1 - 1e-6)  # as core.beta.posterior
        a = m * strength + k
        b = (1 - m) * strength + (n - k)  # counts keep k <= n
        means = a / (a + b)
        thompson = settings.mode == "thompson"
        if immature.any():  # explored: the evidence under a uniform prior, not the catalog's
            a = np.where(immature, EXPLORATION_PRIOR + k, a)
            b = np.where(immature, EXPLORATION_PRIOR + (n - k), b)
        if thompson:
            seed = decision_seed(batch.tenant_id, batch.lookup("customer.id"), batch.as_of)
            digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
            p = np.random.default_rng(int.from_bytes(digest, "big")).beta(a, b)
        else:
            p = means.copy()
            if immature.any():  # an optimistic value
                p[immature] = quantile(a[immature], b[immature], settings.exploration_quantile)
        random = np.full(len(p), thompson)
        rows = _Rows(
            {  # arrays read one element at a time, only for the notes kept
                "propensity": p,
                "source": sources,
                "immature": immature,
                "random": random,
                "impressions": n,
                "positives": k,
                "mean": means,
                "alpha": a,
                "beta": b,
            },
            {
                "mode": settings.mode,
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
            },
        )
        out: list[float | None] = []
        for i, (notes, has_prior, pi) in enumerate(
            zip(batch.annotations, known.tolist(), p.tolist(), strict=True)
        ):
            if has_prior:
                out.append(pi)
                notes[NOTE] = _PendingNote(rows, i)
            else:
                out.append(None)
        return out

    def annotate(
        self, decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
    ) -> None:
        """Note on each returned offer the probability that the policy picks it in its slot
        (``pickProbability``) and on every scored offer that of the first slot
        (``topProbability``)."""
        notes = [(c.annotations or {}).get(NOTE) for c in scored]
        if all(n is None for n in notes):
            return
        # notes are written in full for the offers returned (stored) and, when the decision
        # is explained, for every scored one (the trace); the others stay pending
        for note in notes if decision.request.explain else (
            (c.annotations or {}).get(NOTE) for c in ranked
        ):  # fmt: skip
            if isinstance(note, _PendingNote):
                note.fill()
        if not ranked:
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
        first = notes[0]
        batch = isinstance(first, _PendingNote) and all(
            isinstance(n, _PendingNote) and n._rows is first._rows for n in notes
        )  # one batch's notes (the usual case): its columns are read at once
        if isinstance(first, _PendingNote) and batch:
            random = [bool(first._rows.columns["random"].any())]
        else:
            random = [bool(n is not None and n["random"]) for n in notes]
        if not any(random):  # a deterministic policy: the offers shown had probability 1
            for position, cand in enumerate(ranked):
                note = notes[index[id(cand)]]
                if note is not None:
                    note["pickProbability"] = 1.0
                    note["topProbability"] = 1.0 if position == 0 else 0.0
            return
        if batch:
            self._pick_from_batch(decision, ranked, scored, notes, index)
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
        self._pick(
            decision, ranked, notes, index, (rest, weight, alpha, beta, random, fixed), draws
        )

    def _pick_from_batch(
        self,
        decision: DecisionView,
        ranked: list[Candidate],
        scored: list[Candidate],
        notes: list[Any],
        index: dict[int, int],
    ) -> None:
        rows: _Rows = notes[0]._rows
        rows_at = np.fromiter((n._index for n in notes), dtype=np.intp, count=len(notes))
        cols, common = rows.columns, rows.common
        p = cols["propensity"][rows_at]
        w = float(common["weight"])
        scores = np.fromiter((c.score or 0.0 for c in scored), dtype=np.float64, count=len(scored))
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = np.where(p > 0, scores / p**w, 0.0)
        columns = (
            rest,
            np.full(len(notes), w),
            cols["alpha"][rows_at],
            cols["beta"][rows_at],
            cols["random"][rows_at],
            p,
        )
        self._pick(decision, ranked, notes, index, columns, int(common["draws"]))

    def _pick(
        self,
        decision: DecisionView,
        ranked: list[Candidate],
        notes: list[Any],
        index: dict[int, int],
        columns: tuple[Any, ...],
        draws: int,
    ) -> None:
        """Estimate and note the pick probabilities from the candidates' columns (rest of the
        score, weight, alpha, beta, random, propensity used)."""
        rest, weight, alpha, beta, random, fixed = columns
        seed = decision_seed(decision.tenant_id, decision.request.customer_id, decision.as_of)
        digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
        slots = max(1, len(ranked))
        # draw only for the candidates that may reach a returned slot (the others' chances
        # are below 1e-5): usually a handful of the 50
        keep = contenders(rest, weight, alpha, beta, random, fixed, slots)
        for cand in ranked:
            keep[index[id(cand)]] = True
        kept = np.flatnonzero(keep)
        probs = np.zeros((len(notes), slots))
        sub = [np.asarray(x)[kept] for x in (rest, weight, alpha, beta, random, fixed)]
        probs[kept] = pick_probabilities(
            sub[0], sub[1], sub[2], sub[3], sub[4], sub[5], slots, draws,
            int.from_bytes(digest, "big"),
        )  # fmt: skip
        floor = 1.0 / (2 * draws)  # never 0 for an offer the policy did pick
        for i, note in enumerate(notes):
            if note is not None:
                note["topProbability"] = float(probs[i, 0])
        for position, cand in enumerate(ranked):
            note = notes[index[id(cand)]]
            if note is not None:
                note["pickProbability"] = max(floor, float(probs[index[id(cand)], position]))


_INTEGERS = frozenset({"impressions", "positives"})


class _Rows:
    """A batch's values per candidate (columns: lists or numpy arrays) and those common to
    all."""

    __slots__ = ("columns", "common")

    def __init__(self, columns: dict[str, Any], common: dict[str, Any]) -> None:
        self.columns = columns
        self.common = common


class _PendingNote(dict):
    """A candidate's note read from its batch's columns (``note[key]`` works at once) and
    written out in full by :meth:`fill` only when it is kept (stored or traced): most of a
    decision's candidates are neither, and building their notes would cost more than the
    model itself."""

    __slots__ = ("_filled", "_index", "_rows")

    def __init__(self, rows: _Rows, index: int) -> None:
        super().__init__()
        self._rows = rows
        self._index = index
        self._filled = False

    def __missing__(self, key: str) -> Any:
        rows = self._rows
        column = rows.columns.get(key)
        if column is None:
            return rows.common[key]
        value = column[self._index]
        if isinstance(value, np.generic):  # JSON takes plain numbers only
            return int(value) if key in _INTEGERS else value.item()
        return value

    def fill(self) -> None:
        """Write every field into the dict (keeping the ones already set)."""
        if self._filled:
            return
        self._filled = True
        rows = self._rows
        for key in rows.columns:
            if key not in self:
                self[key] = self.__missing__(key)
        for key, value in rows.common.items():
            self.setdefault(key, value)


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
