"""Benchmark of the BG/NBD and Gamma-Gamma numeric core against lifetimes 0.11.3, same process.

Figures (ratios against lifetimes run in the same process, plus absolute seconds):

1. BG/NBD fit on the CDNOW sample (2,357 customers, calibration to 1997-09-30, weeks) against
   ``lifetimes.BetaGeoFitter``; the fitted parameters must agree to 4 significant figures.
   Target: >= 10x faster.
2. BG/NBD fit on 1,000,000 synthetic customers drawn from the model with known parameters
   (seeded; observation lengths at day resolution, as a transaction summary produces them,
   and, as the hard case for the sufficient-statistics likelihood, continuous ones), with the
   parameter recovery error. lifetimes runs on a subsample and is extrapolated linearly in
   the number of customers (its likelihood is a per-customer sum). Target: <= 2 s.
3. 12-month discounted CLV (BG/NBD + Gamma-Gamma spend, 1% monthly) for the same 1M customers
   against ``GammaGammaFitter.customer_lifetime_value`` on a subsample, extrapolated; values
   are checked equal (1e-6 relative) on the subsample. Target: <= 1 s.

On a busy machine, idle OpenBLAS worker threads slow down every BLAS call, including the ones
inside scipy's L-BFGS-B; ``--blas-threads 1`` pins BLAS to one thread for both libraries
(it must be set before numpy is imported, hence the environment variables below).

Run: ``.venv/bin/python benchmarks/models.py [--customers N] [--baseline-sample K]
[--blas-threads T]``
"""

from __future__ import annotations

import os
import sys

if "--blas-threads" in sys.argv[:-1]:
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = _threads

import argparse
import math
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import models_intervals  # benchmarks/ is on sys.path when this file runs as a script
import numpy as np
from models_more import run_more  # benchmarks/ is the script's directory
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.clv import DAYS_PER_MONTH, customer_lifetime_value
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.summary import summarize_transactions
from nextbest_clv.datasets import load_cdnow_sample

TRUE_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005 CDNOW estimates
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader & Hardie 2013 CDNOW estimates
LIFETIMES_WEEKS_PER_MONTH = 4.345


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` runs, and the last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def sig4(value: float) -> str:
    return f"{value:.4g}"


def bench_cdnow(lifetimes: Any) -> None:
    ids, dates, values = load_cdnow_sample()
    s = summarize_transactions(ids, dates, values, calibration_end="1997-09-30")
    ours_s, ours = best_of(25, lambda: BetaGeoModel.fit(s.frequency, s.recency, s.T))
    ref_s, ref = best_of(7, lambda: lifetimes.BetaGeoFitter().fit(s.frequency, s.recency, s.T))
    same = all(sig4(v) == sig4(ref.params_[k]) for k, v in ours.params.items())
    print(f"1. BG/NBD fit, CDNOW sample ({len(s):,} customers, weeks)")
    print(f"   nextbest  {ours_s:8.4f} s   {fmt(ours.params)}   LL {ours.log_likelihood:.1f}")
    print(f"   lifetimes {ref_s:8.4f} s   {fmt(dict(ref.params_))}")
    print(f"   -> {ref_s / ours_s:.1f}x faster (target >= 10x); parameters equal to 4 s.f.: {same}")


def synthetic(n: int, seed: int, day_resolution: bool) -> tuple[np.ndarray, ...]:
    """Customers acquired over 78 weeks, observed to the end; BG/NBD purchases, GG spend."""
    rng = np.random.default_rng(seed)
    days = rng.integers(1, 78 * 7 + 1, n) / 7.0
    big_t = days if day_resolution else rng.uniform(1 / 7, 78.0, n)
    x, tx, big_t = BetaGeoModel.from_params(*TRUE_BGNBD.values()).sample(big_t, seed=seed + 1)
    # Average repeat value: x Gamma(p, nu) draws average to Gamma(p x, nu x), nu ~ Gamma(q, v).
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["v"], n)
    shape = np.where(x > 0, TRUE_GG["p"] * x, 1.0)
    monetary = np.where(x > 0, rng.gamma(shape, 1.0 / (nu * np.maximum(x, 1.0))), 0.0)
    return x, tx, big_t, monetary


def bench_fit_1m(lifetimes: Any, n: int, k: int, day_resolution: bool) -> None:
    label = "day-resolution T" if day_resolution else "continuous T (worst case)"
    x, tx, big_t, _ = synthetic(n, seed=2026, day_resolution=day_resolution)
    ours_s, fit = best_of(3, lambda: BetaGeoModel.fit(x, tx, big_t))
    print(f"2. BG/NBD fit, {n:,} synthetic customers, {label}")
    print(f"   nextbest  {ours_s:8.3f} s   {fmt(fit.params)}")
    errors = []
    for name, truth in TRUE_BGNBD.items():
        rel = (fit.params[name] - truth) / truth
        z = (fit.params[name] - truth) / fit.standard_errors[name]
        errors.append(f"{name} {rel:+.2%} ({z:+.1f} SE)")
    print(f"   recovery vs true {fmt(TRUE_BGNBD)}: " + ", ".join(errors))
    if lifetimes is None:
        return
    sub = slice(0, k)
    ref_s, _ = best_of(1, lambda: lifetimes.BetaGeoFitter().fit(x[sub], tx[sub], big_t[sub]))
    extrapolated = ref_s * n / k
    print(f"   lifetimes {ref_s:8.3f} s on {k:,} -> {extrapolated:.1f} s extrapolated to {n:,}")
    print(f"   -> {extrapolated / ours_s:.1f}x faster (target <= 2 s: {ours_s <= 2.0})")


def bench_clv_1m(lifetimes: Any, n: int, k: int, day_resolution: bool) -> None:
    label = "day-resolution T" if day_resolution else "continuous T (worst case)"
    x, tx, big_t, monetary = synthetic(n, seed=7, day_resolution=day_resolution)
    bg = BetaGeoModel.from_params(*TRUE_BGNBD.values())
    gg = GammaGammaModel.from_params(*TRUE_GG.values())

    def ours(sl: slice, days_per_month: float = DAYS_PER_MONTH) -> np.ndarray:
        spend = gg.conditional_expected_average_profit(x[sl], monetary[sl])
        clv = customer_lifetime_value(
            bg, x[sl], tx[sl], big_t[sl], spend, months=12, days_per_month=days_per_month
        )
        return np.asarray(clv, dtype=np.float64)

    ours_s, values = best_of(3, lambda: ours(slice(None)))
    print(f"3. 12-month CLV (BG/NBD + Gamma-Gamma, 1%/month), {n:,} customers, {label}")
    print(f"   nextbest  {ours_s:8.3f} s   total {values.sum():,.0f}")
    if lifetimes is None:
        return
    import pandas as pd

    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = pd.Series(TRUE_BGNBD)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # normally set by fit
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = pd.Series(TRUE_GG)
    sub = slice(0, k)
    series = [pd.Series(a[sub]) for a in (x, tx, big_t, monetary)]
    ref_s, ref = best_of(
        1,
        lambda: ggf.customer_lifetime_value(bgf, *series, time=12, discount_rate=0.01, freq="W"),
    )
    same = np.allclose(
        ours(sub, days_per_month=7 * LIFETIMES_WEEKS_PER_MONTH), ref.to_numpy(), rtol=1e-6, atol=0
    )
    extrapolated = ref_s * n / k
    print(f"   lifetimes {ref_s:8.3f} s on {k:,} -> {extrapolated:.1f} s extrapolated to {n:,}")
    print(
        f"   -> {extrapolated / ours_s:.1f}x faster (target <= 1 s: {ours_s <= 1.0}); "
        f"equal to lifetimes (1e-6 rel, its 4.345-week month) on the subsample: {same}"
    )


def fmt(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={float(v):.4g}" for k, v in params.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=100_000)
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="pin BLAS threads (both libraries)"
    )
    args = parser.parse_args()
    n, k = args.customers, min(args.baseline_sample, args.customers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes 0.11.3 vs pandas 3 deprecation noise
        try:
            import lifetimes
        except ImportError:
            lifetimes = None
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cpu(s), BLAS threads "
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; baseline lifetimes "
        f"{getattr(lifetimes, '__version__', 'not installed')}"
    )
    if lifetimes is not None:
        bench_cdnow(lifetimes)
    for day_resolution in (True, False):
        bench_fit_1m(lifetimes, n, k, day_resolution)
    for day_resolution in (True, False):
        bench_clv_1m(lifetimes, n, k, day_resolution)
    run_more(lifetimes, n, k)  # figures 4-7: MBG/NBD and BG/BB (benchmarks/models_more.py)
    from models_covariates import run as bench_covariates  # benchmarks/ is on sys.path

    bench_covariates(n)
    models_intervals.main(["--customers", str(n)])  # issue 12 §5: intervals, 1M x 200 draws


if __name__ == "__main__":
    main()
