"""The covariates of a tenant's fit, from the customer attributes the host stores
(``nextbest ingest --customers``, ``PUT /api/v1/customers/{id}/attributes``) and the tenant's
``covariates`` setting (:class:`~nextbest_clv.service.settings.CovariateSettings`).

At fit time :func:`fit_covariates` reads the attributes of the fitted customers, applies the
``missing`` policy (``error``: a :class:`~nextbest_clv.errors.ModelFitError` saying how many
customers lack which attribute and how to import them; ``exclude``: those customers are left
out of the fit, with the reason) and learns the encoding of each process's attributes
(:mod:`nextbest_clv.core.covariate_design`). The encoding is kept in the fit document so that
:func:`prediction_covariates` builds the same columns for any customer later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nextbest.store import Store
from nextbest_clv.core.covariate_design import (
    CovariateDataError,
    Design,
    MissingCovariatesError,
    design_matrix,
    learn_encoding,
    missing_attributes,
)
from nextbest_clv.errors import ModelFitError
from nextbest_clv.service.settings import CovariateSettings

__all__ = ["PROCESSES", "FitCovariates", "fit_covariates", "prediction_covariates"]

#: The processes covariates act on, in the order of the setting.
PROCESSES: tuple[str, ...] = ("purchase", "dropout", "spend")


@dataclass(frozen=True, slots=True)
class FitCovariates:
    """The covariates of the customers kept for a fit: ``keep`` (a mask over the customers
    given), ``designs`` (process -> :class:`Design` over the kept customers; a process without
    attributes has zero columns), ``encodings`` (process -> learned encoding, for the fit
    document) and ``excluded`` (customer id -> reason, under the ``exclude`` policy)."""

    keep: npt.NDArray[np.bool_]
    designs: dict[str, Design]
    encodings: dict[str, list[dict[str, Any]]]
    excluded: dict[str, str]


def _names(settings: CovariateSettings, process: str) -> tuple[str, ...]:
    names: tuple[str, ...] = getattr(settings, process)
    return names


def fit_covariates(
    store: Store,
    tenant_id: str,
    customer_ids: Sequence[str],
    settings: CovariateSettings,
    *,
    spend_mask: npt.NDArray[np.bool_] | None = None,
) -> FitCovariates:
    """The covariates of ``customer_ids`` for a fit (see the module docstring). ``spend_mask``
    marks the customers the spend model is fitted to (repeat buyers): only they need the spend
    attributes, and the spend encoding is learned from them.

    Raises:
        ModelFitError: customers lack attributes (policy ``error``), no customer is left
            (policy ``exclude``), or an attribute cannot be a covariate (one level, mixed
            numbers and text, too many levels).
    """
    attributes = store.get_customer_attributes(tenant_id, customer_ids)
    rows: list[Mapping[str, Any] | None] = [attributes.get(c) for c in customer_ids]
    n = len(customer_ids)
    spend = np.ones(n, dtype=bool) if spend_mask is None else np.asarray(spend_mask, dtype=bool)
    model_names = sorted({*settings.purchase, *settings.dropout})
    lacking = missing_attributes(rows, model_names)
    lacking_spend = missing_attributes(rows, settings.spend) & spend
    if settings.missing == "error":
        needed = [(name, np.ones(n, dtype=bool)) for name in model_names]
        needed += [(name, spend) for name in settings.spend if name not in model_names]
        counts = {
            name: int(np.count_nonzero(missing_attributes(rows, [name]) & among))
            for name, among in needed
        }
        counts = {name: count for name, count in counts.items() if count}
        if counts:
            problem = MissingCovariatesError(counts, n)
            raise ModelFitError(
                f"cannot fit with covariates for tenant {tenant_id!r}: {problem}; import them "
                "with `nextbest ingest --customers FILE`, or set covariates.missing to "
                "'exclude' to leave those customers out"
            )
    keep = ~(lacking | lacking_spend)
    excluded: dict[str, str] = {}
    for i in np.flatnonzero(~keep).tolist():
        row = rows[i] or {}
        needs = (*model_names, *(settings.spend if spend[i] else ()))
        absent = dict.fromkeys(name for name in needs if row.get(name) is None)
        excluded[customer_ids[i]] = f"lacks covariate attributes {', '.join(map(repr, absent))}"
    if not keep.any():
        raise ModelFitError(
            f"cannot fit with covariates for tenant {tenant_id!r}: none of its {n:,} customers "
            "has every covariate attribute; import them with `nextbest ingest --customers FILE`"
        )
    kept = [r for r, k in zip(rows, keep, strict=True) if k]
    kept_spend = spend[keep]
    designs: dict[str, Design] = {}
    encodings: dict[str, list[dict[str, Any]]] = {}
    try:
        for process in PROCESSES:
            names = _names(settings, process)
            learned_from = (
                [r for r, s in zip(kept, kept_spend, strict=True) if s]
                if process == "spend"
                else kept
            )
            encodings[process] = learn_encoding(learned_from, names) if names else []
            designs[process] = design_matrix(kept, encodings[process])
    except CovariateDataError as exc:
        raise ModelFitError(f"cannot fit with covariates for tenant {tenant_id!r}: {exc}") from exc
    return FitCovariates(keep, designs, encodings, excluded)


def prediction_covariates(
    store: Store,
    tenant_id: str,
    customer_ids: Sequence[str],
    encodings: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, Design]:
    """The covariate columns of ``customer_ids`` under a fit's ``encodings`` (process ->
    encoding): a customer lacking an attribute, or with a level the fit did not see, gets the
    baseline (the fitted mean, the reference level), counted in ``Design.imputed``."""
    attributes = store.get_customer_attributes(tenant_id, customer_ids)
    rows: list[Mapping[str, Any] | None] = [attributes.get(c) for c in customer_ids]
    return {process: design_matrix(rows, encodings.get(process, [])) for process in PROCESSES}
