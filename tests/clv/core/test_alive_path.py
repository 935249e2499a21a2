"""The alive path (issue 12, section 2): P(alive) along a customer's history."""

from __future__ import annotations

import numpy as np
import pytest
from nextbest_clv.core.alive_path import alive_path
from nextbest_clv.core.models import BetaGeoModel, DataError, ModifiedBetaGeoModel, ParetoNBDModel

BG = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
PARETO = ParetoNBDModel.from_params(r=0.553, alpha=10.58, s=0.606, beta=11.67)


def test_the_path_is_the_models_probability_at_each_history() -> None:
    purchases = [2.0, 3.5, 10.0]
    path = alive_path(BG, purchases, 39.0, grid_points=40)
    assert path.times[0] == 0.0 and path.times[-1] == 39.0
    assert set(purchases) <= set(path.times.tolist())
    for tau, n, p in zip(path.times, path.purchases, path.probability_alive, strict=True):
        done = [t for t in purchases if t <= tau]
        assert n == len(done)
        # By hand: BG/NBD P(alive) = 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), x > 0.
        if done:
            x, tx = len(done), done[-1]
            odds = BG.a / (BG.b + x - 1) * ((BG.alpha + tau) / (BG.alpha + tx)) ** (BG.r + x)
            assert p == pytest.approx(1 / (1 + odds), rel=1e-12)
        else:
            assert p == 1.0  # BG/NBD: no dropout before the first repeat purchase
    # Just after a purchase BG/NBD's P(alive) is 1 - E[p | x] = 1 / (1 + a/(b+x-1)) (the
    # dropout chance that follows it); it decays during each silence.
    at = np.isin(path.times, purchases)
    x = np.arange(1.0, 4.0)
    np.testing.assert_allclose(path.probability_alive[at], 1 / (1 + BG.a / (BG.b + x - 1)))
    quiet = path.times > 10.0
    assert np.all(np.diff(path.probability_alive[quiet]) < 0)


@pytest.mark.parametrize("model", [PARETO, ModifiedBetaGeoModel.from_params(0.5, 6.0, 0.9, 1.6)])
def test_other_models_jump_up_at_purchases(model: object) -> None:
    path = alive_path(model, [5.0, 6.0], 30.0, grid_points=61)  # type: ignore[arg-type]
    p = path.probability_alive
    expected = model.probability_alive(
        path.purchases,
        [0.0 if n == 0 else (5.0 if n == 1 else 6.0) for n in path.purchases],
        np.maximum(path.times, 1e-6),
    )  # type: ignore[attr-defined]
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    i = int(np.flatnonzero(path.times == 5.0)[0])
    assert p[i] > p[i - 1]  # the purchase at week 5 raises P(alive)
    assert np.all((p > 0) & (p <= 1))


def test_bad_input_is_refused() -> None:
    with pytest.raises(DataError, match="within"):
        alive_path(BG, [40.0], 39.0)
    with pytest.raises(DataError, match="increasing"):
        alive_path(BG, [3.0, 2.0], 39.0)
    with pytest.raises(DataError, match="grid_points"):
        alive_path(BG, [3.0], 39.0, grid_points=1)
