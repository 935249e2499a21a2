"""Beta-Bernoulli posteriors of a response rate, their means, quantiles and draws.

The prior of a cell is Beta(m·s, (1-m)·s): mean ``m`` (the offer's catalog propensity or the
flow's default) and strength ``s`` (worth ``s`` impressions). After ``n`` impressions with ``k``
positives the posterior is Beta(m·s + k, (1-m)·s + n - k).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
#: a prior mean is kept inside (0, 1) so both Beta parameters stay positive
_EDGE = 1e-6


def posterior(
    prior_mean: npt.ArrayLike,
    strength: npt.ArrayLike,
    impressions: npt.ArrayLike,
    positives: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """The posterior (alpha, beta) of each cell; positives beyond impressions are capped."""
    m = np.clip(np.asarray(prior_mean, dtype=np.float64), _EDGE, 1 - _EDGE)
    s = np.maximum(np.asarray(strength, dtype=np.float64), _EDGE)
    n = np.maximum(np.asarray(impressions, dtype=np.float64), 0.0)
    k = np.clip(np.asarray(positives, dtype=np.float64), 0.0, n)
    return m * s + k, (1 - m) * s + n - k


def mean(alpha: npt.ArrayLike, beta: npt.ArrayLike) -> FloatArray:
    """The posterior mean alpha / (alpha + beta)."""
    a = np.asarray(alpha, dtype=np.float64)
    return a / (a + np.asarray(beta, dtype=np.float64))


def quantile(alpha: npt.ArrayLike, beta: npt.ArrayLike, q: npt.ArrayLike) -> FloatArray:
    """The ``q`` quantile of Beta(alpha, beta) (a draw when ``q`` is uniform)."""
    return np.asarray(special.betaincinv(alpha, beta, q), dtype=np.float64)


def seeded_uniform(*parts: str) -> float:
    """A uniform number in (0, 1) determined by ``parts`` (a decision's seed and an offer), so
    the same decision replayed draws the same values."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def pick_probabilities(
    rest: npt.ArrayLike,
    weight: npt.ArrayLike,
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    random: npt.ArrayLike,
    fixed: npt.ArrayLike,
    slots: int,
    draws: int,
    seed: int,
) -> FloatArray:
    """Monte Carlo probabilities that a score-ranking policy puts each candidate in each slot.

    Candidate ``i`` scores ``rest[i] · p^weight[i]`` where ``p`` is drawn from
    Beta(alpha[i], beta[i]) when ``random[i]``, else ``p = fixed[i]``; candidates are given in
    tie-break order (a stable sort by descending score ranks them). Returns an array of shape
    (candidates, slots): column ``j`` is the probability of holding rank ``j + 1``.
    """
    rest_a = np.asarray(rest, dtype=np.float64)
    n = rest_a.size
    out = np.zeros((n, slots), dtype=np.float64)
    if n == 0 or slots <= 0:
        return out
    rng = np.random.default_rng(seed)
    rand = np.asarray(random, dtype=bool)
    p = np.broadcast_to(np.asarray(fixed, dtype=np.float64), (draws, n)).copy()
    if rand.any():
        a = np.asarray(alpha, dtype=np.float64)[rand]
        b = np.asarray(beta, dtype=np.float64)[rand]
        p[:, rand] = rng.beta(a, b, size=(draws, int(rand.sum())))
    scores = rest_a * p ** np.asarray(weight, dtype=np.float64)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :slots]
    for j in range(min(slots, n)):
        out[:, j] = np.bincount(order[:, j], minlength=n) / draws
    return out


def posterior_scalar(
    prior_mean: float, strength: float, impressions: float, positives: float
) -> tuple[float, float]:
    """:func:`posterior` of one cell with plain floats (the per-offer hot path)."""
    m = min(1 - _EDGE, max(_EDGE, prior_mean))
    s = max(_EDGE, strength)
    n = max(0.0, impressions)
    k = min(n, max(0.0, positives))
    return m * s + k, (1 - m) * s + n - k


def quantile_scalar(alpha: float, beta: float, q: float) -> float:
    """:func:`quantile` of one distribution, as a float."""
    return float(special.betaincinv(alpha, beta, q))


#: standard deviations beyond which a draw is taken as impossible when pruning (a normal
#: tail of 3e-6; Beta tails are thinner than that wherever the normal bound is below 1)
PRUNE_SDS = 4.5


def contenders(
    rest: npt.ArrayLike,
    weight: npt.ArrayLike,
    alpha: npt.ArrayLike,
    beta: npt.ArrayLike,
    random: npt.ArrayLike,
    fixed: npt.ArrayLike,
    slots: int,
) -> npt.NDArray[np.bool_]:
    """The candidates that may reach one of the first ``slots`` ranks: those whose highest
    plausible score (posterior mean + PRUNE_SDS standard deviations, at most 1) reaches the
    ``slots``-th largest lowest plausible score. The others' pick probabilities are ~0, so
    :func:`pick_probabilities` need not draw for them."""
    r = np.asarray(rest, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    rand = np.asarray(random, dtype=bool)
    p = np.asarray(fixed, dtype=np.float64)
    m = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    lo_p = np.where(rand, np.clip(m - PRUNE_SDS * sd, 0.0, 1.0), p)
    hi_p = np.where(rand, np.clip(m + PRUNE_SDS * sd, 0.0, 1.0), p)
    lo, hi = r * lo_p**w, r * hi_p**w
    if slots >= r.size:
        return np.ones(r.size, dtype=bool)
    threshold = np.partition(lo, r.size - slots)[r.size - slots]
    return np.asarray(hi >= threshold)
