"""Benchmarks of the newer models (issue 12, section 7) against lifetimes 0.11.3, same process.

Called by benchmarks/models.py (figures 4-7); it can also run alone:
``.venv/bin/python benchmarks/models_more.py [--customers N] [--baseline-sample K]``.

4. MBG/NBD fit on the CDNOW sample (2,357 customers, calibration to 1997-09-30, weeks) against
   ``lifetimes.ModifiedBetaGeoFitter``; parameters must agree to 4 significant figures.
5. MBG/NBD fit on N synthetic customers drawn from the model (seeded, day-resolution T), with
   the parameter recovery; lifetimes on a subsample of K, extrapolated linearly in customers
   (its likelihood is a per-customer sum).
6. BG/BB fit on the donations data (11,104 donors in 22 weighted rows; Fader, Hardie & Shang
   2010) against ``lifetimes.BetaGeoBetaBinomFitter`` with the same weights; parameters must
   agree to 4 significant figures.
7. BG/BB fit on N synthetic customers (1 to 12 opportunities each, one row per customer,
   no weights given) with the recovery; lifetimes (which does not converge on one row per
   customer) on the same data grouped into distinct rows with weights, grouping timed with it.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from nextbest_clv.core.models.bgbb import BetaGeoBetaBinomModel
from nextbest_clv.core.models.mbgnbd import ModifiedBetaGeoModel
from nextbest_clv.core.models.summary import summarize_transactions
from nextbest_clv.datasets import load_cdnow_sample

TRUE_MBGNBD = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}  # Batislam et al. 2007
TRUE_BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS 2010


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` runs, and the last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def fmt(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={float(v):.4g}" for k, v in params.items())


def same4(ours: dict[str, float], theirs: Any) -> bool:
    return all(f"{v:.4g}" == f"{float(theirs[k]):.4g}" for k, v in ours.items())


def recovery(params: dict[str, float], errors: dict[str, float], truth: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {(params[k] - t) / t:+.2%} ({(params[k] - t) / errors[k]:+.1f} SE)"
        for k, t in truth.items()
    )


def bench_mbgnbd_cdnow(lifetimes: Any) -> None:
    ids, dates, values = load_cdnow_sample()
    s = summarize_transactions(ids, dates, values, calibration_end="1997-09-30")
    ours_s, ours = best_of(15, lambda: ModifiedBetaGeoModel.fit(s.frequency, s.recency, s.T))
    print(f"4. MBG/NBD fit, CDNOW sample ({len(s):,} customers, weeks)")
    print(f"   nextbest  {ours_s:8.4f} s   {fmt(ours.params)}   LL {ours.log_likelihood:.2f}")
    if lifetimes is None:
        print("   lifetimes not installed: no baseline")
        return
    ref_s, ref = best_of(
        3, lambda: lifetimes.ModifiedBetaGeoFitter().fit(s.frequency, s.recency, s.T)
    )
    print(f"   lifetimes {ref_s:8.4f} s   {fmt(dict(ref.params_))}")
    print(
        f"   -> {ref_s / ours_s:.1f}x faster; parameters equal to 4 s.f.: "
        f"{same4(ours.params, ref.params_)}"
    )


def bench_mbgnbd_synthetic(lifetimes: Any, n: int, k: int) -> None:
    rng = np.random.default_rng(2026)
    big_t = rng.integers(1, 78 * 7 + 1, n) / 7.0
    truth = ModifiedBetaGeoModel.from_params(*TRUE_MBGNBD.values())
    x, tx, big_t = truth.sample(big_t, seed=2027)
    ours_s, fit = best_of(3, lambda: ModifiedBetaGeoModel.fit(x, tx, big_t))
    print(f"5. MBG/NBD fit, {n:,} synthetic customers, day-resolution T")
    print(f"   nextbest  {ours_s:8.3f} s   {fmt(fit.params)}")
    print(
        f"   recovery vs true {fmt(TRUE_MBGNBD)}: "
        + recovery(fit.params, fit.standard_errors, TRUE_MBGNBD)
    )
    if lifetimes is None:
        return
    sub = slice(0, k)
    ref_s, _ = best_of(
        1, lambda: lifetimes.ModifiedBetaGeoFitter().fit(x[sub], tx[sub], big_t[sub])
    )
    extrapolated = ref_s * n / k
    print(f"   lifetimes {ref_s:8.3f} s on {k:,} -> {extrapolated:.1f} s extrapolated to {n:,}")
    print(f"   -> {extrapolated / ours_s:.1f}x faster")


def donations() -> tuple[np.ndarray, ...] | None:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "donations.csv"
    table = np.genfromtxt(path, delimiter=",", names=True)
    return tuple(table[c] for c in ("frequency", "recency", "periods", "weights"))


def bench_bgbb_donations(lifetimes: Any) -> None:
    data = donations()
    if data is None:
        print("6. BG/BB fit, donations: lifetimes (which ships the data) is not installed")
        return
    x, tx, n, w = data
    ours_s, ours = best_of(15, lambda: BetaGeoBetaBinomModel.fit(x, tx, n, weights=w))
    print(f"6. BG/BB fit, donations ({int(w.sum()):,} donors in {x.size} weighted rows)")
    print(f"   nextbest  {ours_s:8.4f} s   {fmt(ours.params)}   LL {ours.log_likelihood:.1f}")
    print(f"   published {fmt(TRUE_BGBB)}   LL -33225.6")
    ref_s, ref = best_of(3, lambda: lifetimes.BetaGeoBetaBinomFitter().fit(x, tx, n, weights=w))
    print(f"   lifetimes {ref_s:8.4f} s   {fmt(dict(ref.params_))}")
    print(
        f"   -> {ref_s / ours_s:.1f}x faster; parameters equal to 4 s.f.: "
        f"{same4(ours.params, ref.params_)}"
    )


def bench_bgbb_synthetic(lifetimes: Any, n: int, k: int) -> None:
    truth = BetaGeoBetaBinomModel.from_params(*TRUE_BGBB.values())
    rng = np.random.default_rng(7)
    periods = rng.integers(1, 13, n).astype(np.float64)
    parts = [truth.sample(periods[i : i + 200_000], seed=i) for i in range(0, n, 200_000)]
    x = np.concatenate([p.frequency for p in parts])
    tx = np.concatenate([p.recency for p in parts])
    nn = np.concatenate([p.n_periods for p in parts])
    ours_s, fit = best_of(3, lambda: BetaGeoBetaBinomModel.fit(x, tx, nn))
    print(f"7. BG/BB fit, {n:,} synthetic customers (1-12 opportunities, one row each)")
    print(f"   nextbest  {ours_s:8.3f} s   {fmt(fit.params)}")
    print(
        f"   recovery vs true {fmt(TRUE_BGBB)}: "
        + recovery(fit.params, fit.standard_errors, TRUE_BGBB)
    )
    if lifetimes is None:
        return
    # lifetimes does not converge on one row per customer (its likelihood overflows), so it
    # gets the rows grouped with weights, as its docs fit the donations data: its best case.

    def grouped() -> Any:
        rows, counts = np.unique(np.stack([x, tx, nn], axis=1), axis=0, return_counts=True)
        return lifetimes.BetaGeoBetaBinomFitter().fit(
            rows[:, 0], rows[:, 1], rows[:, 2], weights=counts
        )

    try:
        ref_s, ref = best_of(1, grouped)
    except Exception as exc:
        print(f"   lifetimes failed on the grouped rows: {type(exc).__name__}")
        return
    print(f"   lifetimes {ref_s:8.3f} s   {fmt(dict(ref.params_))} (rows grouped, weights)")
    print(
        f"   -> {ref_s / ours_s:.1f}x faster; parameters equal to 4 s.f.: "
        f"{same4(fit.params, ref.params_)}"
    )


def run_more(lifetimes: Any, n: int, k: int) -> None:
    """Figures 4-7 (see the module doc); ``lifetimes`` None: our side only."""
    bench_mbgnbd_cdnow(lifetimes)
    bench_mbgnbd_synthetic(lifetimes, n, k)
    if lifetimes is not None:
        bench_bgbb_donations(lifetimes)
    bench_bgbb_synthetic(lifetimes, n, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=100_000)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes 0.11.3 vs pandas 3 deprecation noise
        try:
            import lifetimes
        except ImportError:
            lifetimes = None
    run_more(lifetimes, args.customers, min(args.baseline_sample, args.customers))


if __name__ == "__main__":
    main()
