"""Probabilistic customer-lifetime-value models (buy-till-you-die family), pure numpy/scipy."""

from .errors import DataError, FitError, ModelError

__all__ = ["DataError", "FitError", "ModelError"]
