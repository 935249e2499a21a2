"""Probabilistic customer-lifetime-value models (buy-till-you-die family), pure numpy/scipy.

- :func:`summarize_transactions`: transaction log -> per-customer x, t_x, T, average value
  (optionally with a calibration/holdout split);
- :class:`BetaGeoModel` (BG/NBD) and :class:`ParetoNBDModel` (Pareto/NBD): repeat purchases,
  probability alive, expected purchases;
- :class:`ModifiedBetaGeoModel` (MBG/NBD): BG/NBD with a dropout chance after the first
  purchase too;
- :class:`BetaGeoBetaBinomModel` (BG/BB): discrete transaction opportunities;
- :mod:`.counts`, :mod:`.dert`, :mod:`.fit_quality`: count probabilities, discounted
  expected residual transactions, the calibration histogram and the tracking curve;
- :class:`GammaGammaModel`: expected value per transaction;
- :func:`customer_lifetime_value`: discounted CLV over a horizon of months;
- :class:`ShiftedBetaGeometricModel`: contractual (subscription) retention.

Reference data to fit them on (CDNOW) is read by :mod:`nextbest_clv.datasets`.

Every fit raises :class:`FitError` (a ``ValueError``) rather than return NaN parameters, and
every prediction raises :class:`DataError` (a ``ValueError``) on invalid input.
"""

from ._optim import MLEResult, fit_mle
from .bgbb import BetaGeoBetaBinomModel
from .bgnbd import BetaGeoModel, SampledCustomers
from .clv import DAYS_PER_MONTH, TransactionModel, customer_lifetime_value
from .errors import DataError, FitError, ModelError
from .gammagamma import GammaGammaModel
from .mbgnbd import ModifiedBetaGeoModel
from .paretonbd import ParetoNBDModel, ParetoNBDSample, pareto_nbd_log_likelihood
from .sbg import ShiftedBetaGeometricModel
from .summary import CustomerSummary, summarize_transactions

__all__ = [
    "DAYS_PER_MONTH",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "CustomerSummary",
    "DataError",
    "FitError",
    "GammaGammaModel",
    "MLEResult",
    "ModelError",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "ParetoNBDSample",
    "SampledCustomers",
    "ShiftedBetaGeometricModel",
    "TransactionModel",
    "customer_lifetime_value",
    "fit_mle",
    "pareto_nbd_log_likelihood",
    "summarize_transactions",
]
