"""The adaptive plugin's numeric core: posteriors, draws, pick probabilities and the
off-policy estimators, the last checked for coverage where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_adaptive.core import beta, ope
from scipy import integrate, stats


def test_posterior_is_the_conjugate_update_of_the_catalog_prior() -> None:
    a, b = beta.posterior([0.2, 0.5], [10, 4], [100, 0], [30, 0])
    assert np.allclose(a, [2 + 30, 2]) and np.allclose(b, [8 + 70, 2])
    assert np.allclose(beta.mean(a, b), [32 / 110, 0.5])
    # positives beyond impressions are capped; a prior mean of 0 or 1 stays proper
    a, b = beta.posterior(0.0, 10, 5, 9)
    assert b[()] > 0 and a[()] > 5 and np.isclose(beta.mean(a, b), 5 / 15, atol=1e-5)
    assert beta.posterior_scalar(0.2, 10, 100, 30) == pytest.approx((32, 78))


def test_seeded_draws_are_reproducible_and_beta_distributed() -> None:
    u = np.array([beta.seeded_uniform("seed", str(i)) for i in range(4000)])
    assert beta.seeded_uniform("seed", "1") == u[1] and u.min() > 0 and u.max() < 1
    draws = beta.quantile(3.0, 7.0, u)
    assert stats.kstest(draws, stats.beta(3, 7).cdf).pvalue > 0.001


def test_pick_probabilities_match_the_closed_form_for_two_offers() -> None:
    # P(X > Y) for X ~ Beta(4, 6), Y ~ Beta(3, 3) (both scores = p): an integral
    exact = integrate.quad(lambda x: stats.beta(4, 6).pdf(x) * stats.beta(3, 3).cdf(x), 0, 1)[0]
    probs = beta.pick_probabilities(
        [1, 1], [1, 1], [4, 3], [6, 3], [True, True], [0.4, 0.5], 2, 20_000, 1
    )
    assert probs[0, 0] == pytest.approx(exact, abs=0.015)
    assert np.allclose(probs.sum(axis=0), 1) and np.allclose(probs.sum(axis=1), 1)
    # a fixed offer with a score above every draw's is always first
    probs = beta.pick_probabilities(
        [2, 1], [1, 1], [1, 4], [1, 6], [False, True], [0.9, 0.0], 1, 500, 2
    )
    assert probs[:, 0].tolist() == [1.0, 0.0]


RATES = np.array([[0.30, 0.10, 0.05, 0.15], [0.05, 0.25, 0.05, 0.10]])  # segment x action
LOGGING = np.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]])
TARGET = np.array([[0, 0, 0, 1.0], [1.0, 0, 0, 0]])  # deterministic: d to young, a to senior


def _logs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    x = rng.integers(0, 2, n)
    cum = LOGGING[x].cumsum(axis=1)
    a = (rng.random(n)[:, None] > cum).sum(axis=1)
    r = (rng.random(n) < RATES[x, a]).astype(float)
    model = np.clip(RATES + 0.05, 0, 1)  # a biased reward model: DR must still cover
    return {
        "r": r,
        "t": TARGET[x, a],
        "lp": LOGGING[x, a],
        "q": model[x, a],
        "qt": (TARGET[x] * model[x]).sum(axis=1),
    }


def test_off_policy_intervals_cover_the_true_value_at_about_the_nominal_rate() -> None:
    truth = 0.5 * (TARGET * RATES).sum(axis=1).sum()
    rng = np.random.default_rng(3)
    repeats, covered = 400, {"ips": 0, "dr": 0}
    for _ in range(repeats):
        d = _logs(rng, 2000)
        covered["ips"] += ope.ips(d["r"], d["t"], d["lp"]).covers(truth)
        covered["dr"] += ope.doubly_robust(d["r"], d["t"], d["lp"], d["q"], d["qt"]).covers(truth)
    rates = {k: v / repeats for k, v in covered.items()}
    print(f"95% interval coverage over {repeats} simulated logs: {rates}")
    # binomial standard error at 0.95 over 400 repeats is 0.011: allow about 3 of them
    assert all(0.91 <= c <= 0.985 for c in rates.values())


def test_estimators_refuse_impossible_logging_probabilities() -> None:
    with pytest.raises(ValueError, match="logged probabilities"):
        ope.ips([1.0], [1.0], [0.0])


def test_pruned_candidates_change_the_pick_probabilities_by_almost_nothing() -> None:
    rng = np.random.default_rng(5)
    n, slots = 40, 3
    rest = rng.uniform(0.5, 1.5, n)
    a = rng.uniform(1, 200, n)
    b = rng.uniform(50, 2000, n)
    args = (rest, np.ones(n), a, b, np.ones(n, bool), np.zeros(n))
    keep = beta.contenders(*args, slots)
    assert 0 < keep.sum() < n
    full = beta.pick_probabilities(*args, slots, 4000, 9)
    assert full[~keep].max() < 2 / 4000  # what pruning leaves out is (almost) never picked
