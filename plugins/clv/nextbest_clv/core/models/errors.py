"""Exception types raised by the probabilistic CLV models."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every error raised by ``nextbest_clv.core.models``."""


class DataError(ModelError, ValueError):
    """Input arrays are invalid (wrong shape, NaN, negative times, recency after T, ...).

    The message names the offending argument and what a valid value looks like.
    """


class FitError(ModelError, ValueError):
    """A maximum-likelihood fit cannot produce trustworthy parameters.

    Raised for data a model cannot be fitted to (empty, NaN, no repeat customers, ...), for a
    likelihood that is not finite at the start or at the end of the optimisation, and for an
    optimiser that does not converge. The message says what went wrong and what to check.
    """
