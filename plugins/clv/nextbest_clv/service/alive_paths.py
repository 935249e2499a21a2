"""The alive path of one customer from the tenant's active transaction model (for the API's
``GET /api/v1/customers/{customerId}/clv/alive-path``); see
:mod:`nextbest_clv.core.alive_path`. Times are transaction days (several transactions on one
day count once, as in the fits), in weeks from the first one."""

from __future__ import annotations

from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.core.alive_path import alive_path
from nextbest_clv.core.estimators import TRANSACTION_MODELS, transaction_model_from_params
from nextbest_clv.core.subscriptions import DAY_SECONDS
from nextbest_clv.errors import ModelFitError, NoTransactionsError, UnscorableCustomerError
from nextbest_clv.service.fits import require_fit
from nextbest_clv.service.records import iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import customer_transactions, epoch_day

__all__ = ["customer_alive_path"]

_WEEK_DAYS = 7.0


def customer_alive_path(
    store: Store,
    tenant_id: str,
    customer_id: str,
    settings: ClvSettings,
    when: float,
    *,
    grid_points: int = 100,
) -> dict[str, Any]:
    """``{"customerId", "model", "fit", "asOf", "firstPurchaseAt", "purchases": [ISO days],
    "points": [{"at", "purchases", "probabilityAlive"}]}`` as of ``when`` (epoch seconds).

    Raises:
        ModelFitError: the tenant's model is not a transaction model.
        ModelNotFittedError: it was never fitted.
        NoTransactionsError: the customer has no transaction by ``when``.
        UnscorableCustomerError: the customer has an event the store's rules refuse.
    """
    if settings.model not in TRANSACTION_MODELS:
        raise ModelFitError(
            f"the alive path needs a transaction model ({', '.join(TRANSACTION_MODELS)}); "
            f"tenant {tenant_id!r} uses {settings.model!r}: switch with `nextbest clv settings "
            f"--tenant {tenant_id} --set model=bgnbd` and fit it"
        )
    fit = require_fit(store, tenant_id, settings.model)
    data = customer_transactions(store, tenant_id, customer_id, settings.transaction_outcomes, when)
    if customer_id in data.rejected:
        raise UnscorableCustomerError(tenant_id, customer_id, data.rejected[customer_id])
    if len(data) == 0:
        raise NoTransactionsError(
            f"customer {customer_id!r} of tenant {tenant_id!r} has no transactions "
            f"(outcomes {list(settings.transaction_outcomes)}) by the asOf time"
        )
    days = np.unique(data.days)
    first = days[0]
    repeat_weeks = (days[1:] - first).astype(np.float64) / _WEEK_DAYS
    observed_weeks = float((epoch_day(when) - first).astype(np.float64)) / _WEEK_DAYS
    model = transaction_model_from_params(fit["model"], fit["params"])
    path = alive_path(model, repeat_weeks, observed_weeks, grid_points=grid_points)
    first_at = float(first.astype("datetime64[s]").astype(np.int64))
    week = _WEEK_DAYS * DAY_SECONDS
    return {
        "customerId": customer_id,
        "model": fit["model"],
        "fit": f"{fit['model']}/v{fit['version']}",
        "asOf": iso_time(when),
        "firstPurchaseAt": iso_time(first_at),
        "purchases": [iso_time(first_at + w * week) for w in repeat_weeks.tolist()],
        "points": [
            {"at": iso_time(first_at + t * week), "purchases": int(n), "probabilityAlive": p}
            for t, n, p in zip(
                path.times.tolist(),
                path.purchases.tolist(),
                path.probability_alive.tolist(),
                strict=True,
            )
        ],
    }
