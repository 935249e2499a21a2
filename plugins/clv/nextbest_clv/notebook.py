"""CLV frames for notebooks: functions that take a :class:`nextbest.notebook.Notebook`.

::

    import nextbest.notebook
    from nextbest_clv import notebook as clv

    nb = nextbest.notebook.open("sqlite:///nextbest.db")
    clv.clv_records(nb, "acme")                        # one row per customer, as of now
    clv.clv_records(nb, "acme", as_of="1998-06-30")    # ... as of a time
    clv.backtests(nb, "acme")                          # one row per stored back-test
    clv.fits(nb, "acme")                               # one row per stored model fit

Functions rather than methods: the host's notebook knows nothing of CLV (it never imports a
plugin), and a function that takes the notebook needs no registration mechanism. They use the
notebook's store (``nb.store``), the CLV service of its host (``nb.host``: the same settings
and fit caches as the host's decisions) and its frame builder (``nb.frame``: pandas is
imported only there, with an error naming the extra when it is missing). Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from nextbest import HostAPI
from nextbest.store import Store, parse_time
from nextbest_clv.backtest.runs import list_backtests
from nextbest_clv.service import service_for
from nextbest_clv.service.fits import check_model, list_fits
from nextbest_clv.service.record_columns import record_columns
from nextbest_clv.service.tenant_data import require_tenant
from nextbest_clv.service.times import epoch_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NotebookLike", "backtests", "clv_records", "fits"]

#: The dtypes ``Notebook.frame`` documents for times and text (``nextbest.notebook.TIME_DTYPE``
#: and ``TEXT``).
_TIME = "datetime64[us, UTC]"
_TEXT = "text"
#: Record field -> frame column, in frame order (``computed_at`` follows).
RECORD_COLUMNS: Mapping[str, str] = {
    "customerId": "customer_id",
    "clvScore": "clv_score",
    "predictedRevenue": "predicted_revenue",
    "churnProbability": "churn_probability",
    "rfmRecency": "rfm_recency",
    "rfmFrequency": "rfm_frequency",
    "rfmMonetary": "rfm_monetary",
    "segment": "segment",
    "probabilityAlive": "probability_alive",
    "expectedPurchases90d": "expected_purchases_90d",
    "expectedRevenue12m": "expected_revenue_12m",
    "clv": "clv",
    "model": "model",
}


class NotebookLike(Protocol):
    """What these functions use of a :class:`nextbest.notebook.Notebook`."""

    @property
    def store(self) -> Store: ...

    @property
    def host(self) -> HostAPI: ...

    def frame(
        self, columns: Mapping[str, Any], dtypes: Mapping[str, str] | None = None
    ) -> pd.DataFrame: ...


def clv_records(
    nb: NotebookLike, tenant_id: str, as_of: datetime | str | float | None = None
) -> pd.DataFrame:
    """Every customer's CLV record as of ``as_of`` (a datetime, ISO-8601 text or epoch
    seconds; default now), computed the way a batch would (nothing stored), one row per
    customer in id order: each row equals ``GET /api/v1/customers/{id}/clv?asOf=`` for that
    time.

    Columns: ``customer_id``, ``segment``, ``model`` (text), ``clv_score``, ``rfm_recency``,
    ``rfm_frequency`` (``int64``), ``predicted_revenue``, ``churn_probability``,
    ``rfm_monetary``, ``probability_alive``, ``expected_purchases_90d``,
    ``expected_revenue_12m``, ``clv`` (``float64``; the last four NaN for the ``rfm`` model
    or a customer without data), ``computed_at`` (``datetime64[us, UTC]``). Customers that
    have no record (a batch's failures) are listed in ``frame.attrs["failures"]``
    (``customerId``, ``reason``).

    Raises:
        ClvInputError: ``as_of`` not a time in the store's window.
        TenantNotFoundError: no such tenant.
        ModelNotFittedError: the tenant's model is probabilistic and was never fitted.
    """
    when = epoch_of(as_of, "as_of")
    result = record_columns(service_for(nb.host), tenant_id, when)
    columns = dict(result.columns)
    n = len(columns["customerId"])
    for name in ("probabilityAlive", "expectedPurchases90d", "expectedRevenue12m", "clv"):
        columns.setdefault(name, np.full(n, np.nan))
    columns.setdefault("model", np.full(n, result.model, dtype=object))
    data = {RECORD_COLUMNS[name]: columns[name] for name in RECORD_COLUMNS}
    data["customer_id"] = columns["customerId"].tolist()
    data["segment"] = columns["segment"].tolist()
    data["model"] = list(columns["model"])
    data["computed_at"] = np.full(n, result.as_of)
    frame = nb.frame(
        data,
        {
            "clv_score": "int64",
            "rfm_recency": "int64",
            "rfm_frequency": "int64",
            **dict.fromkeys(
                (
                    "predicted_revenue",
                    "churn_probability",
                    "rfm_monetary",
                    "probability_alive",
                    "expected_purchases_90d",
                    "expected_revenue_12m",
                    "clv",
                ),
                "float64",
            ),
            "computed_at": _TIME,
            **dict.fromkeys(("customer_id", "segment", "model"), _TEXT),
        },
    )
    frame.attrs["failures"] = result.failures
    return frame


def backtests(nb: NotebookLike, tenant_id: str, model: str | None = None) -> pd.DataFrame:
    """The tenant's stored back-tests (optionally of one model), newest first, one row per run.

    Columns: ``id``, ``model`` (text), ``run_at``, ``calibration_start``, ``calibration_end``,
    ``holdout_end`` (``datetime64[us, UTC]``; the three periods are whole days),
    ``holdout_weeks``, ``log_likelihood``, ``penalizer`` (``float64``), ``customers``,
    ``repeat_customers`` (``int64``), ``excluded_customers`` (``Int64``: missing in runs
    stored before it was recorded), ``transactions_predicted``, ``transactions_actual``,
    ``transactions_mae``, ``transactions_rmse``, ``transactions_bias`` and the same five for
    ``revenue_`` (``float64``), and as stored: ``outcomes`` (list), ``params``,
    ``spend_model``, ``weekly`` (dicts), ``deciles`` (list of dicts).

    Raises:
        TenantNotFoundError: no such tenant.
    """
    require_tenant(nb.store, tenant_id)
    runs = list_backtests(nb.store, tenant_id, model=model)
    stats = ("predicted", "actual", "mae", "rmse", "bias")
    data: dict[str, list[Any]] = {
        "id": [r["id"] for r in runs],
        "model": [r["model"] for r in runs],
        "run_at": [_epoch(r["runAt"]) for r in runs],
        "calibration_start": [_epoch(r["calibrationStart"]) for r in runs],
        "calibration_end": [_epoch(r["calibrationEnd"]) for r in runs],
        "holdout_end": [_epoch(r["holdoutEnd"]) for r in runs],
        "holdout_weeks": [r["holdoutWeeks"] for r in runs],
        "customers": [r["customers"] for r in runs],
        "repeat_customers": [r["repeatCustomers"] for r in runs],
        "excluded_customers": [r.get("excludedCustomers") for r in runs],
        "log_likelihood": [r["logLikelihood"] for r in runs],
        "penalizer": [r.get("penalizer", 0.0) for r in runs],
    }
    for part in ("transactions", "revenue"):
        for stat in stats:
            data[f"{part}_{stat}"] = [r[part][stat] for r in runs]
    data["outcomes"] = [r.get("outcomes") for r in runs]
    data["params"] = [r["params"] for r in runs]
    data["spend_model"] = [r.get("spendModel") for r in runs]
    data["weekly"] = [r["weekly"] for r in runs]
    data["deciles"] = [r["deciles"] for r in runs]
    floats = ["holdout_weeks", "log_likelihood", "penalizer"]
    floats += [f"{part}_{stat}" for part in ("transactions", "revenue") for stat in stats]
    return nb.frame(
        data,
        {
            **dict.fromkeys(("run_at", "calibration_start", "calibration_end"), _TIME),
            "holdout_end": _TIME,
            "customers": "int64",
            "repeat_customers": "int64",
            "excluded_customers": "Int64",
            **dict.fromkeys(floats, "float64"),
            **dict.fromkeys(("id", "model"), _TEXT),
            **dict.fromkeys(("outcomes", "params", "spend_model", "weekly", "deciles"), "object"),
        },
    )


def fits(nb: NotebookLike, tenant_id: str, model: str | None = None) -> pd.DataFrame:
    """The tenant's stored model fits (every version; optionally of one model), newest first,
    one row per fit.

    Columns: ``model`` (text), ``version`` (``int64``), ``fitted_at``, ``data_start``,
    ``data_end`` (``datetime64[us, UTC]``), ``log_likelihood``, ``penalizer`` (``float64``),
    ``customers``, ``repeat_customers`` (transaction models), ``churned`` (``sbg``),
    ``transactions``, ``subscriptions``, ``excluded_customers`` (``Int64``, missing where
    they do not apply), ``spend_model`` (text: ``gammagamma``, ``mean``; missing for ``sbg``),
    ``spend_mean_value`` (``float64``), one ``param_<name>`` column (``float64``) per
    parameter of any listed fit (NaN where a model has no such parameter), and as stored:
    ``params``, ``standard_errors`` (dicts).

    Raises:
        TenantNotFoundError: no such tenant.
        UnknownModelError: ``model`` is not a fitted model.
    """
    require_tenant(nb.store, tenant_id)
    if model is not None:
        check_model(model)
    docs = list_fits(nb.store, tenant_id, model=model)
    spans = [d.get("dataSpan") or {} for d in docs]
    spends = [d.get("spend") or {} for d in docs]
    data: dict[str, list[Any]] = {
        "model": [d["model"] for d in docs],
        "version": [d["version"] for d in docs],
        "fitted_at": [_epoch(d["fittedAt"]) for d in docs],
        "data_start": [_epoch(s.get("start")) for s in spans],
        "data_end": [_epoch(s.get("end")) for s in spans],
        "log_likelihood": [d.get("logLikelihood") for d in docs],
        "penalizer": [d.get("penalizer", 0.0) for d in docs],
        "customers": [d.get("customers") for d in docs],
        "repeat_customers": [d.get("repeatCustomers") for d in docs],
        "churned": [d.get("churned") for d in docs],
        "transactions": [s.get("transactions") for s in spans],
        "subscriptions": [s.get("subscriptions") for s in spans],
        "excluded_customers": [d.get("excludedCustomers") for d in docs],
        "spend_model": [s.get("model") for s in spends],
        "spend_mean_value": [s.get("meanValue") for s in spends],
    }
    names = sorted({name for d in docs for name in d.get("params", {})})
    for name in names:
        data[f"param_{name}"] = [d.get("params", {}).get(name) for d in docs]
    data["params"] = [d.get("params") for d in docs]
    data["standard_errors"] = [d.get("standardErrors") for d in docs]
    counts = ("customers", "repeat_customers", "churned", "transactions", "subscriptions")
    floats = ("log_likelihood", "penalizer", "spend_mean_value", *(f"param_{n}" for n in names))
    return nb.frame(
        data,
        {
            "version": "int64",
            **dict.fromkeys(("fitted_at", "data_start", "data_end"), _TIME),
            **dict.fromkeys((*counts, "excluded_customers"), "Int64"),
            **dict.fromkeys(floats, "float64"),
            **dict.fromkeys(("model", "spend_model"), _TEXT),
            **dict.fromkeys(("params", "standard_errors"), "object"),
        },
    )


def _epoch(text: str | None) -> float | None:
    """Epoch seconds of a stored ISO-8601 date or time (None for None)."""
    return None if text is None else parse_time(text).timestamp()
