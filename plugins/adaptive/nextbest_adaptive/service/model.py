"""The decision-time model: a learned propensity per candidate (the value provider) and, after
ranking, the probability that the policy picked each returned offer in its slot."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from nextbest import Candidate, DecisionView, HostAPI, ValueProvider, ValueRequest

from ..core.beta import (
    contenders,
    pick_probabilities,
    posterior_scalar,
    quantile_scalar,
    seeded_uniform,
)
from .cells import NOTE, cell
from .config import AdaptiveConfig, AdaptiveSettings
from .counts import CountsService

#: the prior strength of an immature cell: weak, so its draws (or optimistic quantile) range
#: widely and the offer gets shown until it has evidence
IMMATURE_STRENGTH = 2.0
_STATE_KEY = "nextbest_adaptive"


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

    def annotate(
        self, decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
    ) -> None:
        """Note on each returned offer the probability that the policy picks it in its slot
        (``pickProbability``) and on every scored offer that of the first slot
        (``topProbability``)."""
        notes = [(c.annotations or {}).get(NOTE) for c in scored]
        if not any(notes):
            return
        index = {id(c): i for i, c in enumerate(scored)}
        random = [bool(n and n["random"]) for n in notes]
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
        digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
        slots = max(1, len(ranked))
        # draw only for the candidates that may reach a returned slot (the others' chances
        # are below 1e-5): usually a handful of the 50
        keep = contenders(rest, weight, alpha, beta, random, fixed, slots)
        for cand in ranked:
            keep[index[id(cand)]] = True
        kept = np.flatnonzero(keep)
        probs = np.zeros((len(scored), slots))
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


def _estimate(
    settings: AdaptiveSettings,
    prior: float,
    n: int,
    k: int,
    request: ValueRequest,
    label: str,
) -> tuple[float, dict[str, Any]]:
    immature = n < settings.min_impressions
    strength = (
        min(settings.prior_strength, IMMATURE_STRENGTH) if immature else (settings.prior_strength)
    )
    a, b = posterior_scalar(prior, strength, n, k)
    random = settings.mode == "thompson"
    if random:
        customer = request.lookup("customer.id")
        seed = decision_seed(request.tenant_id, customer, request.as_of)
        p = quantile_scalar(a, b, seeded_uniform(seed, request.offer.id, label))
    elif immature:
        p = quantile_scalar(a, b, settings.exploration_quantile)
    else:
        p = a / (a + b)
    if not math.isfinite(p):
        p = a / (a + b)
    note: dict[str, Any] = {
        "propensity": p,
        "mode": settings.mode,
        "random": random,
        "immature": immature,
        "impressions": int(n),
        "positives": int(k),
        "mean": a / (a + b),
        "alpha": a,
        "beta": b,
        "weight": request.weight,
        "draws": settings.pick_draws,
    }
    if settings.predictor is not None:
        note["cell"] = label
        note["predictor"] = settings.predictor
        note["predictorValue"] = request.lookup(settings.predictor)
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


ADAPTIVE_PROPENSITY = ValueProvider(
    name="adaptive",
    dimension="propensity",
    config_model=AdaptiveConfig,
    compute=_compute,
    mode="estimate",
    requires=_requires,
    description="the propensity learned from recorded outcomes (Beta-Bernoulli posterior "
    "per offer, channel and optional predictor; mean or Thompson draw)",
)
