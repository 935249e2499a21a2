"""The covariate part of a tenant's ``bgnbd`` fit (the ``covariates`` setting), through the
numeric core's covariate fits (:mod:`nextbest_clv.core.models.covariates`).

A fit with covariates configured stores, besides the plain model's fields (``params``,
``spend``, ...: what the records use), a ``covariates`` section::

    {"customers": 2345,                        # customers in the covariate fit
     "encodings": {"purchase": [...], "dropout": [...], "spend": [...]},
     "params": {...},                          # baseline parameters of the covariate model
     "coefficients": {"purchase": {"channel=web": 0.31}, "dropout_a": {...}, "dropout_b": {...}},
     "standardErrors": {"params": {...}, "purchase": {...}, ...},
     "logLikelihood": ..., "lrTest": {"statistic", "df", "pValue", "logLikelihoodWithout"},
     "spend": {...the same for the Gamma-Gamma spend, when spend attributes are named...}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.core.models import CustomerSummary, DataError, FitError
from nextbest_clv.core.models.covariates import (
    CovariateFit,
    fit_bgnbd_covariates,
    fit_gammagamma_covariates,
)
from nextbest_clv.errors import ModelFitError
from nextbest_clv.service.covariate_inputs import fit_covariates
from nextbest_clv.service.settings import CovariateSettings

__all__ = ["COVARIATE_MODELS", "covariate_section"]

#: The models with a covariate fit.
COVARIATE_MODELS: tuple[str, ...] = ("bgnbd",)


def _shown(fit: CovariateFit) -> dict[str, Any]:
    data = fit.to_dict()
    return {
        "params": data["params"],
        "coefficients": data["coefficients"],
        "standardErrors": data["standardErrors"],
        "logLikelihood": data["logLikelihood"],
        "lrTest": data["lrTest"],
    }


def covariate_section(
    store: Store,
    tenant_id: str,
    model: str,
    summary: CustomerSummary,
    covariates: CovariateSettings,
    penalizer: float,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``covariates`` section of ``model``'s fit to ``summary`` (see the module docstring)
    and the customers it left out under the ``exclude`` policy (customer id -> reason).

    Raises:
        ModelFitError: a model without a covariate fit, a penalizer (covariate fits are not
            penalised), attributes that cannot be used (see
            :func:`~nextbest_clv.service.covariate_inputs.fit_covariates`), or a failed fit.
    """
    if model not in COVARIATE_MODELS:
        raise ModelFitError(
            f"the covariates setting applies to {', '.join(COVARIATE_MODELS)} only; {model} has "
            "no covariate fit yet: fit bgnbd, or set covariates to null"
        )
    if penalizer != 0.0:
        raise ModelFitError(
            "covariate fits are not penalised: fit without --penalizer, or set covariates to null"
        )
    ids = [str(c) for c in summary.customer_ids.tolist()]
    repeat = (summary.frequency > 0) & (summary.monetary_value > 0)
    inputs = fit_covariates(store, tenant_id, ids, covariates, spend_mask=repeat)
    keep = inputs.keep
    purchase, dropout = inputs.designs["purchase"], inputs.designs["dropout"]
    section: dict[str, Any] = {
        "customers": int(np.count_nonzero(keep)),
        "encodings": inputs.encodings,
    }
    try:
        if purchase.names or dropout.names:
            fit = fit_bgnbd_covariates(
                summary.frequency[keep],
                summary.recency[keep],
                summary.T[keep],
                purchase.matrix if purchase.names else None,
                dropout.matrix if dropout.names else None,
                list(purchase.names),
                list(dropout.names),
            )
            section.update(_shown(fit))
        spend = inputs.designs["spend"]
        if spend.names:
            buyers = repeat[keep]
            spend_fit = fit_gammagamma_covariates(
                summary.frequency[keep][buyers],
                summary.monetary_value[keep][buyers],
                spend.matrix[buyers],
                list(spend.names),
            )
            section["spend"] = {"customers": int(np.count_nonzero(buyers)), **_shown(spend_fit)}
    except (FitError, DataError) as exc:
        raise ModelFitError(f"cannot fit {model} with covariates: {exc}") from exc
    return section, inputs.excluded
