"""Off-policy estimators of a target policy's mean reward from logged decisions.

Each logged decision ``i`` took action ``a_i`` with probability ``logged[i]`` under the logging
policy and earned ``reward[i]``; ``target[i]`` is the probability that the target policy takes
``a_i`` in the same situation, ``model[i]`` a reward model's prediction for ``a_i`` and
``model_target[i]`` its expectation under the target policy (Σ_a π(a|x_i)·q̂(x_i, a)).

- IPS: mean of w_i·r_i with w_i = target / logged (unbiased when ``logged`` is right and
  positive wherever the target acts).
- Doubly robust: mean of model_target_i + w_i·(r_i - model_i): unbiased when either the
  propensities or the reward model are right, with less variance than IPS when the model is
  good.

Both are means of independent terms; their intervals are normal ones from the terms' standard
error (the central limit theorem; fine for hundreds of logged decisions and more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """An estimate of a mean with its standard error and a two-sided interval."""

    value: float
    std_error: float
    low: float
    high: float
    n: int

    def covers(self, truth: float) -> bool:
        """Whether the interval holds ``truth``."""
        return self.low <= truth <= self.high


def _mean_interval(terms: npt.NDArray[np.float64], level: float) -> Estimate:
    n = int(terms.size)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = float(stats.norm.ppf(0.5 + level / 2))
    return Estimate(value, se, value - z * se, value + z * se, n)


def _weights(target: npt.ArrayLike, logged: npt.ArrayLike, clip: float | None) -> np.ndarray:
    t = np.asarray(target, dtype=np.float64)
    lg = np.asarray(logged, dtype=np.float64)
    if np.any(lg <= 0) or np.any(~np.isfinite(lg)):
        raise ValueError("logged probabilities must be finite and > 0")
    w = t / lg
    return w if clip is None else np.minimum(w, clip)


def ips(
    reward: npt.ArrayLike,
    target: npt.ArrayLike,
    logged: npt.ArrayLike,
    *,
    level: float = 0.95,
    clip: float | None = None,
) -> Estimate:
    """The inverse propensity scoring estimate (weights optionally clipped at ``clip``)."""
    w = _weights(target, logged, clip)
    return _mean_interval(w * np.asarray(reward, dtype=np.float64), level)


def doubly_robust(
    reward: npt.ArrayLike,
    target: npt.ArrayLike,
    logged: npt.ArrayLike,
    model: npt.ArrayLike,
    model_target: npt.ArrayLike,
    *,
    level: float = 0.95,
    clip: float | None = None,
) -> Estimate:
    """The doubly-robust estimate."""
    w = _weights(target, logged, clip)
    r = np.asarray(reward, dtype=np.float64)
    q = np.asarray(model, dtype=np.float64)
    terms = np.asarray(model_target, dtype=np.float64) + w * (r - q)
    return _mean_interval(terms, level)
