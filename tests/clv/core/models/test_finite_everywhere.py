"""Every model's closed forms are finite over a grid of parameters and customers, and BG/NBD's
expectations and survival are right where its hypergeometric terms misbehave (issue 12,
section 1): a + b < 1 (the term turns negative; it was NaN), a + b = 1 (a pole of 2F1 at
x = 0), z near 1 and busy customers (scipy's 2F1 gives NaN for some parameters). The
references are lifetimes' published values and numerical integration over p with the Beta
weight handled exactly (QUADPACK's QAWS)."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from nextbest_clv.core.errors import ModelFitError
from nextbest_clv.core.estimators import NEW_CUSTOMER_T, fit_transaction_model
from nextbest_clv.core.models.bgbb import BetaGeoBetaBinomModel
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.mbgnbd import ModifiedBetaGeoModel
from nextbest_clv.core.models.paretonbd import ParetoNBDModel
from nextbest_clv.core.models.sbg import ShiftedBetaGeometricModel
from nextbest_clv.core.probabilistic import alive_after
from scipy import integrate, special

T_VALUES = (1e-6, 0.01, 1.0, 39.0, 1000.0)
HORIZONS = np.array([[0.5], [10.0], [365.0]])
COUNTS = np.array([0.0, 1.0, 7.0, 100.0])


def _customers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [
        (x, f * t, t)
        for x in (0, 1, 5, 50, 500)
        for t in T_VALUES
        for f in ((0.0,) if x == 0 else (0.0, 0.5, 1.0))
    ]
    x, tx, big_t = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    return x, tx, big_t


def _new_customer_purchases(
    r: float, alpha: float, a: float, b: float, big_t: float, t: float
) -> float:
    """E[Y(t) | x = 0, T]: lambda ~ Gamma(r, alpha + T) a posteriori, p ~ Beta(a, b), and the
    expected purchases of an active customer (1/p)(1 - E exp(-lambda p t))."""

    def f(p: float) -> float:
        if p == 0:  # the limit
            return r * t / (alpha + big_t)
        return float(-np.expm1(-r * np.log1p(p * t / (alpha + big_t))) / p)

    value, _ = integrate.quad(
        f, 0, 1, weight="alg", wvar=(a - 1, b - 1), epsabs=0, epsrel=1e-12, limit=200
    )
    return float(value / special.beta(a, b))


def test_bgnbd_with_a_plus_b_below_one_matches_lifetimes_and_integration() -> None:
    model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.3, b=0.5)
    got = model.expected_purchases([10.0, 39.0, 100.0])
    np.testing.assert_allclose(got, [0.4084, 1.1687, 2.3131], atol=5e-5)  # lifetimes
    for t, value in zip((10.0, 39.0, 100.0), got, strict=True):
        assert value == pytest.approx(_new_customer_purchases(0.243, 4.414, 0.3, 0.5, 0, t), 1e-8)
    for big_t in (1e-6, 0.01, 0.1, 1.0):  # a customer first seen at (or near) the end
        value = float(model.conditional_expected_purchases(90.0, 0, 0, big_t))
        expected = _new_customer_purchases(0.243, 4.414, 0.3, 0.5, big_t, 90.0)
        assert value == pytest.approx(expected, rel=1e-8)


def test_bgnbd_new_customer_expectations_over_a_parameter_grid() -> None:
    errors = []
    grid = itertools.product(
        (0.05, 0.5, 5.0), (0.1, 5.0, 500.0), (0.05, 0.3, 1.0, 3.0), (0.05, 0.7, 5.0)
    )
    for r, alpha, a, b in grid:  # a + b = 1 (0.3, 0.7) is a pole of 2F1 at x = 0
        model = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=b)
        for big_t, t in itertools.product((0.01, 39.0), (0.5, 365.0)):
            value = float(model.conditional_expected_purchases(t, 0, 0, big_t))
            expected = _new_customer_purchases(r, alpha, a, b, big_t, t)
            errors.append(abs(value - expected) / expected)
    assert all(error < 1e-6 for error in errors), max(errors)  # NaN fails too


def test_bgnbd_survival_over_a_horizon_over_a_parameter_grid() -> None:
    """P(alive at T + h) / P(alive at T) = E[(1 + p h / (alpha + T))^-(r + x)] over
    p ~ Beta(a, b + x): the churn of the records, right also where 2F1's argument is below -1
    and scipy's 2F1 fails (busy customers, a small alpha)."""
    errors = []
    grid = itertools.product((0.05, 5.0), (0.1, 500.0), (0.05, 3.0), (0.05, 5.0))
    for r, alpha, a, b in grid:
        model = BetaGeoModel.from_params(r=r, alpha=alpha, a=a, b=b)
        for x, big_t, h in itertools.product((0, 5, 500), (1e-6, 39.0), (0.5, 13.0)):
            tx = big_t / 2 if x else 0.0
            alive = float(model.probability_alive(x, tx, big_t))
            value = float(alive_after(model, x, tx, big_t, h)) / alive
            k = h / (alpha + big_t)

            def f(p: float, n: float = r + x, k: float = k) -> float:
                return float(np.exp(-n * np.log1p(p * k)))

            wvar = (a - 1, b + x - 1)
            integral, _ = integrate.quad(
                f, 0, 1, weight="alg", wvar=wvar, epsabs=0, epsrel=1e-12, limit=200
            )
            expected = integral / special.beta(a, b + x)
            errors.append(abs(value - expected) / expected)
    assert all(error < 1e-7 for error in errors), max(errors)


def test_closed_forms_are_finite_everywhere() -> None:
    x, tx, big_t = _customers()
    bad: list[tuple[str, tuple[float, ...]]] = []

    def check(name: str, params: tuple[float, ...], values: object) -> None:
        array = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            bad.append((name, params))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow, 0/0) is a failure too
        for params in itertools.product(
            (0.05, 0.5, 5.0), (0.1, 5.0, 500.0), (0.05, 0.3, 0.9999999, 1.0, 3.0),
            (0.05, 0.5, 0.7, 5.0),
        ):  # fmt: skip
            bg = BetaGeoModel.from_params(*params)
            check("bgnbd probability_alive", params, bg.probability_alive(x, tx, big_t))
            check(
                "bgnbd conditional",
                params,
                bg.conditional_expected_purchases(HORIZONS, x, tx, big_t),
            )
            check("bgnbd expected", params, bg.expected_purchases(HORIZONS))
            check("bgnbd log-likelihood", params, bg.log_likelihood_of(x, tx, big_t))
            for h in (0.5, 13.0, 52.0):
                check("bgnbd alive after h", params, alive_after(bg, x, tx, big_t, h))
            check("bgnbd P(n)", params, bg.probability_of_purchases(HORIZONS, COUNTS))
            check(
                "bgnbd conditional P(n)",
                params,
                bg.conditional_probability_of_purchases(13.0, 2, x, tx, big_t),
            )
            check("bgnbd P(none)", params, bg.probability_of_no_purchase(13.0, x, tx, big_t))
            check("bgnbd wait", params, bg.time_to_next_purchase(x, big_t))
            mbg = ModifiedBetaGeoModel.from_params(*params)
            check("mbgnbd probability_alive", params, mbg.probability_alive(x, tx, big_t))
            check(
                "mbgnbd conditional",
                params,
                mbg.conditional_expected_purchases(HORIZONS, x, tx, big_t),
            )
            check("mbgnbd expected", params, mbg.expected_purchases(HORIZONS))
            check("mbgnbd log-likelihood", params, mbg.log_likelihood_of(x, tx, big_t))
            check("mbgnbd P(n)", params, mbg.probability_of_purchases(HORIZONS, COUNTS))
            check("mbgnbd P(none)", params, mbg.probability_of_no_purchase(13.0, x, tx, big_t))
            check("mbgnbd alive after h", params, alive_after(mbg, x, tx, big_t, 13.0))
        for params in itertools.product(
            (0.05, 0.5, 5.0), (0.1, 5.0, 500.0), (0.05, 0.5, 5.0), (0.1, 5.0, 500.0)
        ):
            pn = ParetoNBDModel.from_params(*params)
            check("paretonbd probability_alive", params, pn.probability_alive(x, tx, big_t))
            check(
                "paretonbd conditional",
                params,
                pn.conditional_expected_purchases(HORIZONS, x, tx, big_t),
            )
            check("paretonbd expected", params, pn.expected_purchases(HORIZONS))
            check("paretonbd log-likelihood", params, pn.log_likelihood_of(x, tx, big_t))
            check("paretonbd alive after h", params, alive_after(pn, x, tx, big_t, 13.0))
            check("paretonbd P(n)", params, pn.probability_of_purchases(HORIZONS, COUNTS))
            check(
                "paretonbd conditional P(n)",
                params,
                pn.conditional_probability_of_purchases(13.0, 2, x, tx, big_t),
            )
            check("paretonbd P(none)", params, pn.probability_of_no_purchase(13.0, x, tx, big_t))
            check(
                "paretonbd DERT",
                params,
                pn.discounted_expected_residual_transactions(0.0027, x, tx, big_t),
            )
        # DERT by quadrature is slower: a coarser grid of BG/NBD and MBG/NBD parameters.
        for params in itertools.product((0.05, 5.0), (0.1, 500.0), (0.05, 1.0, 3.0), (0.05, 5.0)):
            for model in (BetaGeoModel, ModifiedBetaGeoModel):
                fitted = model.from_params(*params)
                dert = fitted.discounted_expected_residual_transactions(0.0027, x, tx, big_t)
                check(f"{model.__name__} DERT", params, dert)
        periods = np.array([1.0, 6.0, 6.0, 6.0, 40.0, 40.0])
        times = np.array([0.0, 1.0, 6.0, 0.0, 40.0, 39.0])
        counts = np.array([0.0, 1.0, 6.0, 0.0, 40.0, 3.0])
        for params in itertools.product((0.05, 1.0, 50.0), repeat=4):
            bb = BetaGeoBetaBinomModel.from_params(*params)
            check("bgbb log-likelihood", params, bb.log_likelihood_of(counts, times, periods))
            check("bgbb probability_alive", params, bb.probability_alive(counts, times, periods))
            check(
                "bgbb conditional",
                params,
                bb.conditional_expected_purchases([[1.0], [10.0]], counts, times, periods),
            )
            check("bgbb expected", params, bb.expected_purchases([1.0, 6.0, 40.0]))
            check("bgbb P(n)", params, bb.probability_of_purchases(40.0, np.arange(41.0)))
        frequency = np.array([1.0, 2.0, 10.0, 200.0])
        spend = np.array([0.01, 5.0, 100.0, 1e5])
        for params in itertools.product((0.1, 1.0, 6.0), (1.01, 1.5, 40.0), (0.1, 10.0, 1e4)):
            gg = GammaGammaModel.from_params(*params)
            check(
                "gammagamma profit",
                params,
                gg.conditional_expected_average_profit(frequency, spend),
            )
            check("gammagamma log-likelihood", params, gg.log_likelihood_of(frequency, spend))
        periods = np.array([1.0, 2.0, 12.0, 500.0])
        churned = np.array([1.0, 0.0, 1.0, 0.0])
        for params in itertools.product((0.05, 1.0, 50.0), (0.05, 1.0, 50.0)):
            sbg = ShiftedBetaGeometricModel.from_params(*params)
            check("sbg survival", params, sbg.survival(periods))
            check("sbg retention", params, sbg.retention_rate(periods))
            check("sbg log-likelihood", params, sbg.log_likelihood_of(periods, churned))
            check("sbg DERL", params, sbg.discounted_expected_residual_lifetime(periods, 0.1))
    assert bad == []


def test_the_fit_check_covers_a_customer_first_seen_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.3, b=0.5)
    sample = model.sample(np.full(2000, 39.0), seed=7)
    fit = fit_transaction_model("bgnbd", sample.frequency, sample.recency, sample.T)
    assert float(fit.conditional_expected_purchases(90.0, 0.0, 0.0, NEW_CUSTOMER_T)) > 0
    # Such a customer is not in the fit's data; the check predicts for one all the same.
    real = BetaGeoModel.conditional_expected_purchases

    def nan_when_new(self: BetaGeoModel, t: Any, x: Any, tx: Any, big_t: Any) -> Any:
        values = real(self, t, x, tx, big_t)
        return np.where(np.asarray(big_t) == NEW_CUSTOMER_T, np.nan, values)

    monkeypatch.setattr(BetaGeoModel, "conditional_expected_purchases", nan_when_new)
    with pytest.raises(ModelFitError, match="first seen at the end"):
        fit_transaction_model("bgnbd", sample.frequency, sample.recency, sample.T)
