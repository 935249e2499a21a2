"""The plugin's base error and the errors its numeric core raises (beyond the models' own
:class:`~nextbest_clv.core.models.DataError` and :class:`~nextbest_clv.core.models.FitError`).

:mod:`nextbest_clv.errors` re-exports them next to the service's errors. Each message says what
to do about it.
"""

from __future__ import annotations

__all__ = ["ClvError", "ModelFitError", "UnknownModelError"]


class ClvError(Exception):
    """Base class of every error raised by :mod:`nextbest_clv`."""


class UnknownModelError(ClvError, ValueError):
    """A model name that is not one of the CLV models."""

    code = "clv_unknown_model"


class ModelFitError(ClvError, ValueError):
    """A model cannot be fitted to (or back-tested on) the tenant's data; the message says why."""

    code = "clv_fit_failed"
