"""P(alive) along one customer's history, for a plot (pure: a fitted model and times in).

At a time tau after the first purchase (in the model's unit), the customer's history is
x(tau) repeat purchases, the last at t_x(tau), observed for T = tau; the alive path is
``model.probability_alive(x(tau), t_x(tau), tau)``. It is evaluated just after each repeat
purchase (the history includes it; for BG/NBD P(alive) is then 1 / (1 + a/(b+x-1)), the
dropout chance after that purchase) and on an even grid between, so a plot shows how
P(alive) decays during silences and jumps at each purchase. At tau = 0 the new-customer
limit is used (T = 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nextbest_clv.core.estimators import prediction_T
from nextbest_clv.core.models import DataError

FloatArray = NDArray[np.float64]

__all__ = ["AlivePath", "alive_path"]


class _AliveModel(Protocol):
    def probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


@dataclass(frozen=True)
class AlivePath:
    """``times`` (increasing, from 0 to T), the ``purchases`` counted by then and
    ``probability_alive`` at each."""

    times: FloatArray
    purchases: FloatArray
    probability_alive: FloatArray


def alive_path(
    model: _AliveModel, repeat_times: ArrayLike, T: float, *, grid_points: int = 100
) -> AlivePath:
    """The alive path of a customer with repeat purchases at ``repeat_times`` (since the
    first purchase, increasing, within (0, T]) observed until ``T``; ``grid_points`` even
    points on [0, T] plus one just after each purchase (see the module doc)."""
    purchases = np.asarray(repeat_times, dtype=np.float64).ravel()
    end = float(T)
    if not (np.isfinite(end) and end >= 0):
        raise DataError("T must be a finite time >= 0")
    if not np.all(np.isfinite(purchases)) or np.any(purchases <= 0) or np.any(purchases > end):
        raise DataError("repeat purchase times must be within (0, T]")
    if np.any(np.diff(purchases) < 0):
        raise DataError("repeat purchase times must be increasing")
    if not 2 <= grid_points <= 10_000:
        raise DataError("grid_points must be from 2 to 10000")
    times = np.union1d(np.linspace(0.0, end, grid_points), purchases)
    x = np.searchsorted(purchases, times, side="right").astype(np.float64)
    last = np.where(x > 0, purchases[np.maximum(x.astype(np.intp) - 1, 0)], 0.0)
    observed = prediction_T(times)
    alive = model.probability_alive(x, np.minimum(last, observed), observed)
    return AlivePath(times, x, np.asarray(alive, dtype=np.float64))
