"""Shifted-beta-geometric: Fader & Hardie (2007) cohorts, per-subscriber fit, DERL, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nextbest_clv.core.models.errors import DataError, FitError
from nextbest_clv.core.models.sbg import ShiftedBetaGeometricModel
from scipy.special import betaln

# Fader & Hardie (2007), "How to Project Customer Retention": customers alive at the start of
# years 0..12 out of 1,000 (published figures; see shared/data/retention/README.md).
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]
# Published maximum-likelihood fits on years 0-7.
PUBLISHED = {
    "regular": (REGULAR, 0.704, 1.182, -1680.27),
    "high_end": (HIGH_END, 0.668, 3.806, -1611.16),
}


def _expand(alive: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The cohort as subscriber records: churn period for the lost, periods seen for the rest."""
    counts = np.asarray(alive)
    lost = counts[:-1] - counts[1:]
    periods = np.concatenate(
        [np.repeat(np.arange(1, counts.size), lost), np.full(counts[-1], counts.size - 1)]
    )
    churned = np.concatenate([np.ones(lost.sum(), bool), np.zeros(counts[-1], bool)])
    return periods, churned


@pytest.fixture(scope="module", params=sorted(PUBLISHED))
def cohort(request: pytest.FixtureRequest) -> tuple[str, ShiftedBetaGeometricModel]:
    alive = PUBLISHED[request.param][0]
    return request.param, ShiftedBetaGeometricModel.fit_cohort(alive[:8])


def test_cohort_fit_matches_published(cohort: tuple[str, ShiftedBetaGeometricModel]) -> None:
    name, model = cohort
    _, alpha, beta, ll = PUBLISHED[name]
    assert round(model.alpha, 3) == pytest.approx(alpha, abs=1e-9)
    assert round(model.beta, 3) == pytest.approx(beta, abs=1e-9)
    assert round(model.log_likelihood, 2) == pytest.approx(ll, abs=1e-9)
    assert model.n_subscribers == 1000
    assert all(math.isfinite(v) and v > 0 for v in model.standard_errors.values())


def test_log_likelihood_by_hand(cohort: tuple[str, ShiftedBetaGeometricModel]) -> None:
    # LL = sum_t lost_t log P(T=t) + alive_7 log S(7), with P and S from the recursions
    # P(1) = a/(a+b), P(t) = P(t-1) (b+t-2)/(a+b+t-1), S(t) = S(t-1) - P(t).
    name, model = cohort
    alive = PUBLISHED[name][0][:8]
    a, b = model.alpha, model.beta
    p, surv, ll = a / (a + b), 1.0, 0.0
    for t in range(1, 8):
        if t > 1:
            p *= (b + t - 2) / (a + b + t - 1)
        surv -= p
        ll += (alive[t - 1] - alive[t]) * math.log(p)
    ll += alive[7] * math.log(surv)
    assert model.log_likelihood == pytest.approx(ll, rel=1e-12)


def test_projection_of_years_8_to_12(cohort: tuple[str, ShiftedBetaGeometricModel]) -> None:
    # The paper's figure: the sBG fitted on years 0-7 tracks years 8-12 closely (within a few
    # percent, slightly under for the high-end cohort).
    name, model = cohort
    actual = np.asarray(PUBLISHED[name][0], dtype=float)
    projected = model.project_alive(1000, 12)
    assert projected.shape == (13,)
    assert projected[0] == pytest.approx(1000.0)
    error = projected[8:] / actual[8:] - 1.0
    assert np.all(np.abs(error) < 0.05), error
    # Exact values at the published parameters: 1000 B(a, b+t) / B(a, b).
    _, alpha, beta, _ = PUBLISHED[name]
    published = ShiftedBetaGeometricModel.from_params(alpha, beta)
    t = np.arange(8, 13)
    np.testing.assert_allclose(
        published.project_alive(1000, 12)[8:],
        1000 * np.exp(betaln(alpha, beta + t) - betaln(alpha, beta)),
        rtol=1e-12,
    )


def test_regular_projection_values_at_published_parameters() -> None:
    model = ShiftedBetaGeometricModel.from_params(0.704, 1.182)
    # Retention rates rise towards 1: r(t) = (b + t - 1) / (a + b + t - 1).
    r = model.retention_rate(np.arange(1, 13))
    assert np.all(np.diff(r) > 0)
    assert r[0] == pytest.approx(1.182 / (0.704 + 1.182))
    s = model.survival(np.arange(13))
    np.testing.assert_allclose(s[1:] / s[:-1], r, rtol=1e-12)
    # churn probabilities sum with survival to one
    p = model.churn_probability(np.arange(1, 13))
    assert p.sum() + s[12] == pytest.approx(1.0, rel=1e-12)


def test_individual_fit_recovers_cohort_fit(cohort: tuple[str, ShiftedBetaGeometricModel]) -> None:
    name, model = cohort
    periods, churned = _expand(PUBLISHED[name][0][:8])
    assert periods.size == 1000
    individual = ShiftedBetaGeometricModel.fit_subscribers(periods, churned)
    assert individual.alpha == pytest.approx(model.alpha, rel=1e-8)
    assert individual.beta == pytest.approx(model.beta, rel=1e-8)
    assert individual.log_likelihood == pytest.approx(model.log_likelihood, rel=1e-12)
    assert individual.log_likelihood_of(periods, churned).sum() == pytest.approx(
        model.log_likelihood, rel=1e-12
    )


def test_individual_fit_on_staggered_cohorts_recovers_parameters() -> None:
    # Subscribers who joined at different times (different observation lengths), simulated
    # from known parameters; the per-subscriber fit recovers them within 3 standard errors.
    alpha, beta = 0.9, 2.5
    rng = np.random.default_rng(7)
    n = 20_000
    theta = rng.beta(alpha, beta, n)
    churn_period = rng.geometric(theta)
    observed = rng.integers(1, 13, n)
    churned = churn_period <= observed
    periods = np.where(churned, churn_period, observed)
    model = ShiftedBetaGeometricModel.fit_subscribers(periods, churned)
    assert abs(model.alpha - alpha) < 3 * model.standard_errors["alpha"]
    assert abs(model.beta - beta) < 3 * model.standard_errors["beta"]
    # subscribers with 0 periods seen add nothing to the likelihood
    with_new = ShiftedBetaGeometricModel.fit_subscribers(
        np.r_[periods, np.zeros(50, int)], np.r_[churned, np.zeros(50, bool)]
    )
    assert with_new.alpha == pytest.approx(model.alpha, rel=1e-6)


def test_derl_against_hand_computation() -> None:
    # DERL(d | n renewals) = sum_{k>=0} S(n+1+k) / S(n) / (1+d)^k: a plain loop over the
    # survival function, against the hypergeometric form used by the model.
    alpha, beta, d = 0.704, 1.182, 0.10
    model = ShiftedBetaGeometricModel.from_params(alpha, beta)

    def survival(t: int) -> float:
        return math.exp(betaln(alpha, beta + t) - betaln(alpha, beta))

    for renewals in (0, 1, 4, 10):
        n = renewals + 1
        by_hand = sum(survival(n + k) / survival(n - 1) / (1 + d) ** k for k in range(5000))
        assert float(model.discounted_expected_residual_lifetime(renewals, d)) == pytest.approx(
            by_hand, rel=1e-10
        )
    # A worked number: for a just-acquired subscriber who has not renewed yet (n = 1), the
    # first term is the renewal probability b/(a+b) = 0.6267; DERL = 2.9647 at 10%.
    assert float(model.discounted_expected_residual_lifetime(0, d)) == pytest.approx(
        2.9647, abs=5e-5
    )
    # Vectorised, and rising with tenure (survivors are the better customers).
    values = model.discounted_expected_residual_lifetime(np.arange(6), d)
    assert values.shape == (6,)
    assert np.all(np.diff(values) > 0)


def test_derl_of_homogeneous_limit() -> None:
    # With alpha, beta large and theta = alpha/(alpha+beta) fixed, retention is constant
    # (1 - theta): DERL -> (1-theta)(1+d)/(d+theta).
    theta, d = 0.2, 0.1
    model = ShiftedBetaGeometricModel.from_params(theta * 1e7, (1 - theta) * 1e7)
    expected = (1 - theta) * (1 + d) / (d + theta)
    assert float(model.discounted_expected_residual_lifetime(3, d)) == pytest.approx(
        expected, rel=1e-5
    )


def test_degenerate_input_raises_fit_error() -> None:
    with pytest.raises(FitError, match="nobody churned"):
        ShiftedBetaGeometricModel.fit_cohort([100, 100, 100])
    with pytest.raises(FitError, match="first period"):
        ShiftedBetaGeometricModel.fit_cohort([100, 0, 0])
    with pytest.raises(FitError, match="must not increase"):
        ShiftedBetaGeometricModel.fit_cohort([100, 80, 90])
    with pytest.raises(FitError, match="at least two"):
        ShiftedBetaGeometricModel.fit_cohort([100])
    with pytest.raises(FitError, match="empty"):
        ShiftedBetaGeometricModel.fit_cohort([0, 0])
    with pytest.raises(FitError, match="nobody churned"):
        ShiftedBetaGeometricModel.fit_subscribers([3, 4, 5], [False, False, False])
    with pytest.raises(FitError, match="first period"):
        ShiftedBetaGeometricModel.fit_subscribers([1, 1, 0], [True, True, False])
    with pytest.raises(FitError, match="whole numbers"):
        ShiftedBetaGeometricModel.fit_subscribers([1.5, 2], [True, False])
    with pytest.raises(FitError, match="periods >= 1"):
        ShiftedBetaGeometricModel.fit_subscribers([0, 2], [True, False])
    with pytest.raises(FitError, match="one length"):
        ShiftedBetaGeometricModel.fit_subscribers([1, 2], [True])


def test_invalid_arguments_raise_data_error() -> None:
    model = ShiftedBetaGeometricModel.from_params(0.704, 1.182)
    with pytest.raises(DataError, match="alpha"):
        ShiftedBetaGeometricModel.from_params(-1.0, 1.0)
    with pytest.raises(DataError, match="discount_rate"):
        model.discounted_expected_residual_lifetime(1, 0.0)
    with pytest.raises(DataError, match="whole numbers >= 1"):
        model.retention_rate(0)
    with pytest.raises(DataError, match="whole numbers >= 0"):
        model.survival(-1)
