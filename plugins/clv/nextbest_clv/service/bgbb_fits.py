"""BG/BB as a tenant model: the fit document and the record fields from a stored fit.

The tenant's transactions (``transactionOutcomes``) become discrete opportunities of
``bgbbPeriodDays`` days (:func:`nextbest_clv.core.opportunities.summarize_opportunities`); the
fit document is the one of :mod:`nextbest_clv.service.fits` with ``timeUnit`` "periods of P
days", ``periodDays`` P, and ``spend`` the Gamma-Gamma model of the value per opportunity with
a transaction. Customers whose first period is not complete (n = 0) carry no information and
are not in the fit; they are predicted for as new customers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nextbest.store import Store
from nextbest_clv.core.estimators import SpendModel, check_fit, fit_spend_model
from nextbest_clv.core.models import BetaGeoBetaBinomModel, DataError, FitError
from nextbest_clv.core.opportunities import OpportunitySummary, bgbb_fields, summarize_opportunities
from nextbest_clv.core.probabilistic import ModelFields
from nextbest_clv.errors import ModelFitError, NoTransactionsError
from nextbest_clv.service.records import iso_time
from nextbest_clv.service.settings import ClvSettings
from nextbest_clv.service.tenant_data import (
    Transactions,
    end_of_day,
    epoch_day,
    load_transactions,
)

__all__ = ["bgbb_record_fields", "fit_bgbb_document", "opportunity_summary"]


def opportunity_summary(data: Transactions, end: float, period_days: float) -> OpportunitySummary:
    """The BG/BB summary of ``data`` as of the UTC day of ``end`` (epoch seconds).

    Raises:
        ModelFitError: the transactions cannot be summarised.
    """
    try:
        return summarize_opportunities(
            data.customer_ids,
            data.days,
            data.values,
            observation_end=epoch_day(end),
            period_days=period_days,
        )
    except DataError as exc:
        raise ModelFitError(f"cannot summarise the transactions: {exc}") from exc


def fit_bgbb_document(
    store: Store, tenant_id: str, settings: ClvSettings, end: float, penalizer: float
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """Fit BG/BB to the tenant's transactions up to the end of the day of ``end``; the fit
    document (without model, version, fittedAt) and the customers left out with the reason.

    Raises:
        NoTransactionsError: no transactions up to ``end``.
        ModelFitError: nobody with a complete opportunity, nobody transacting again, or a
            degenerate fit.
    """
    outcomes = settings.transaction_outcomes
    period = settings.bgbb_period_days
    data = load_transactions(store, tenant_id, outcomes, end=end_of_day(end))
    if len(data) == 0:
        raise NoTransactionsError(
            f"tenant {tenant_id!r} has no transactions (outcomes {list(outcomes)}) up to "
            f"{iso_time(end)}: record or ingest some, or set transactionOutcomes"
        )
    summary = opportunity_summary(data, end, period)
    seen = summary.n_periods >= 1
    if not seen.any():
        raise ModelFitError(
            f"cannot fit bgbb for tenant {tenant_id!r}: no customer has a complete opportunity "
            f"of {period:g} days after their first transaction; wait for more data or set a "
            "shorter bgbbPeriodDays"
        )
    x, tx, n = summary.frequency[seen], summary.recency[seen], summary.n_periods[seen]
    try:
        fit = BetaGeoBetaBinomModel.fit(x, tx, n, penalizer=penalizer)
    except (FitError, DataError) as exc:
        raise ModelFitError(f"cannot fit bgbb for tenant {tenant_id!r}: {exc}") from exc
    horizon = float(n.max())
    check_fit(
        "bgbb",
        dict(fit.params),
        dict(fit.standard_errors),
        {
            "probability alive": fit.probability_alive(x, tx, n),
            "expected transactions over the observed opportunities": (
                fit.conditional_expected_purchases(horizon, x, tx, n)
            ),
        },
        penalizer,
    )
    spend = fit_spend_model(summary.frequency, summary.monetary_value, penalizer=penalizer)
    doc = {
        "params": dict(fit.params),
        "standardErrors": {
            k: float(v) if np.isfinite(v) else None for k, v in fit.standard_errors.items()
        },
        "logLikelihood": float(fit.log_likelihood),
        "customers": int(seen.sum()),
        "repeatCustomers": int(np.count_nonzero(x > 0)),
        "timeUnit": f"periods of {period:g} days",
        "periodDays": period,
        "dataSpan": {
            "start": str(data.days.min()),
            "end": str(epoch_day(end)),
            "transactions": len(data),
        },
        "spend": spend.to_json(),
        "outcomes": list(outcomes),
        "penalizer": penalizer,
    }
    return doc, data.rejected


def bgbb_record_fields(
    fit: Mapping[str, Any], data: Transactions, when: float, settings: ClvSettings
) -> tuple[np.ndarray[Any, Any], ModelFields]:
    """The customers of ``data`` (ids) and their BG/BB record fields as of ``when``, with the
    period of the stored fit (a changed ``bgbbPeriodDays`` needs a new fit)."""
    period = float(fit["periodDays"])
    summary = opportunity_summary(data, when, period)
    model = BetaGeoBetaBinomModel.from_params(**fit["params"])
    spend = SpendModel.from_json(fit["spend"])
    with np.errstate(all="ignore"):  # a NaN or inf is one customer's failure (finite())
        fields = bgbb_fields(
            model,
            spend,
            summary,
            period_days=period,
            clv_months=settings.clv_months,
            discount_rate_monthly=settings.discount_rate_monthly,
        )
    return summary.customer_ids.astype(str), fields
