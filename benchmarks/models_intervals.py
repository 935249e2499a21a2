"""Benchmark of per-customer parameter-uncertainty intervals (issue 12 §5 and §7).

For N synthetic BG/NBD customers (default 1,000,000; observation lengths and recencies at day
resolution, as a transaction summary produces them) with Gamma-Gamma spends, times
``customer_intervals`` with D parameter draws (default 200) for P(alive), expected purchases over
90 days and 12-month CLV, against the baseline of the point estimates of the same three figures
for the same customers in the same process. Each run happens in a fresh subprocess so its peak
resident memory (``ru_maxrss``) is its own. Targets: <= 10 s and <= 2 GB at 1M x 200.

Run: ``.venv/bin/python benchmarks/models_intervals.py [--customers N] [--draws D]``
(``benchmarks/models.py`` runs it at the end with its defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from nextbest_clv.core.models.bgnbd import BetaGeoModel
from nextbest_clv.core.models.clv import customer_lifetime_value
from nextbest_clv.core.models.gammagamma import GammaGammaModel
from nextbest_clv.core.models.uncertainty import (
    customer_intervals,
    spend_covariance,
    transaction_covariance,
)

TRUE_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005 CDNOW (weeks)
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader & Hardie 2013 CDNOW
HORIZON_WEEKS = 90 / 7


def customers(n: int) -> tuple[np.ndarray, ...]:
    """N customers in weeks at day resolution, and their average spends."""
    rng = np.random.default_rng(2026)
    ages = rng.integers(7, 365, n) / 7.0
    drawn = BetaGeoModel.from_params(**TRUE_BGNBD).sample(ages, seed=7)
    recency = np.round(drawn.recency * 7.0) / 7.0
    x = drawn.frequency
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["v"], n)
    xs = np.maximum(x, 1.0)
    m = np.where(x > 0, np.round(rng.gamma(TRUE_GG["p"] * xs, 1.0 / (nu * xs)), 2), 0.0)
    return x, recency, drawn.T, np.maximum(m, np.where(x > 0, 0.01, 0.0))


def child(n: int, draws: int, what: str) -> dict[str, float]:
    """One measurement, run in a subprocess: seconds and peak RSS of ``what``."""
    x, tx, t, m = customers(n)
    # Fit on a 50,000-customer subsample: realistic parameter uncertainty, quick setup.
    k = min(n, 50_000)
    model = BetaGeoModel.fit(x[:k], tx[:k], t[:k])
    cov = transaction_covariance(model, x[:k], tx[:k], t[:k])
    repeat = x[:k] > 0
    spend = GammaGammaModel.fit(x[:k][repeat], m[:k][repeat])
    spend_cov = spend_covariance(spend, x[:k], m[:k])
    start = time.perf_counter()
    if what == "point":
        model.probability_alive(x, tx, t)
        model.conditional_expected_purchases(HORIZON_WEEKS, x, tx, t)
        customer_lifetime_value(model, x, tx, t, spend.conditional_expected_average_profit(x, m))
    else:
        customer_intervals(
            model,
            cov,
            x,
            tx,
            t,
            horizon=HORIZON_WEEKS,
            draws=draws,
            seed=1,
            spend_model=spend,
            spend_covariance=spend_cov,
            monetary_value=m,
        )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rows = np.unique(np.column_stack([x, tx, t, np.where(x > 0, m, 0.0)]), axis=0).shape[0]
    return {"seconds": seconds, "peak_mb": peak_mb, "distinct_rows": rows}


def run(n: int, draws: int, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--customers", str(n), "--draws", str(draws)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--child", choices=("point", "intervals"), default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.customers, args.draws, args.child)))
        return
    n, d = args.customers, args.draws
    load_before = os.getloadavg()[0]
    point = run(n, d, "point")
    intervals = run(n, d, "intervals")
    print(f"Intervals: {n:,} customers x {d} draws (BG/NBD + Gamma-Gamma, 90-day purchases, CLV)")
    print(f"   distinct (x, t_x, T, m_x) rows: {intervals['distinct_rows']:,.0f}")
    print(f"   point estimates  {point['seconds']:8.2f} s   peak RSS {point['peak_mb']:7.0f} MB")
    print(
        f"   intervals        {intervals['seconds']:8.2f} s   peak RSS "
        f"{intervals['peak_mb']:7.0f} MB   (targets <= 10 s, <= 2048 MB)"
    )
    print(
        f"   -> {intervals['seconds'] / point['seconds']:.1f}x the point-estimate time; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores)"
    )


if __name__ == "__main__":
    main()
