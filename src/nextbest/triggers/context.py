"""Context values for triggers: from a :class:`~nextbest.ContextChange` (columns the notifier
passed), else through the context providers one customer at a time (as a decision would)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..host import Host
from ..models.request import DecisionRequest
from ..plugin_api import ContextChange, ContextProvider, ContextRequest
from ..service import NEW_CUSTOMER_METRICS, customer_metrics

log = logging.getLogger("nextbest.triggers")

__all__ = [
    "METRICS_COLUMNS",
    "column",
    "json_value",
    "metrics_columns",
    "population",
    "resolve_customer",
]

#: The ``metrics.*`` names computed for a whole tenant from its summary columns (the others,
#: e.g. ``metrics.impressions``, are resolved one customer at a time).
METRICS_COLUMNS = frozenset(
    "metrics." + n
    for n in (
        "interactions",
        "conversions",
        "total_value",
        "average_value",
        "days_since_last_contact",
        "days_since_first_contact",
    )
)


def json_value(value: Any) -> Any:
    """A context value as plain JSON: numpy scalars unwrapped (``numpy.str_`` too), non-finite
    numbers null."""
    if isinstance(value, str):
        return value if type(value) is str else str(value)
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, bytes):
        value = item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def column(values: Sequence[Any]) -> list[Any]:
    """A column as a Python list (numpy arrays converted at C speed)."""
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if tolist is not None else list(values)


def resolve_customer(
    host: Host, tenant_id: str, customer_id: str, names: Iterable[str], as_of: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The values of ``names`` for one customer, each from its provider (``metrics.*`` from
    the customer's summary, as decisions get them); a failing provider leaves its names null.
    Returns the values and, by provider, the records read."""
    wanted = sorted(set(names))
    metrics: dict[str, Any] = {}
    if any(n.startswith("metrics.") for n in wanted) and host.store is not None:
        metrics = customer_metrics(
            host.store, tenant_id, customer_id, datetime.fromtimestamp(as_of, UTC)
        )
    request = DecisionRequest(customer_id=customer_id, metrics=metrics)
    by_provider: dict[str, tuple[ContextProvider, set[str]]] = {}
    for name in wanted:
        provider = host.registry.provider_for(name)
        if provider is not None:
            by_provider.setdefault(provider.name, (provider, set()))[1].add(name)
    values: dict[str, Any] = dict.fromkeys(wanted)
    records: dict[str, dict[str, Any]] = {}
    when = datetime.fromtimestamp(as_of, UTC)
    for provider_name, (provider, provided) in by_provider.items():
        try:
            got: Mapping[str, Any] = provider.resolve(
                ContextRequest(tenant_id, request, when, frozenset(provided), host)
            )
        except Exception:
            log.exception("context provider %r failed for a trigger", provider_name)
            continue
        record = {n: json_value(got.get(n)) for n in sorted(provided)}
        values.update(record)
        records[provider_name] = record
    return values, records


def population(host: Host, tenant_id: str, names: Iterable[str], as_of: float) -> ContextChange:
    """Every customer of the tenant (every customer with interactions, and any a plugin has
    values for) with the values of ``names`` as columns, as of ``as_of``: ``metrics.*`` from
    the summaries (:data:`METRICS_COLUMNS`), the plugins' names from their ``context_columns``
    answers. Names nobody answers for are not in ``values`` (resolve them per customer)."""
    wanted = frozenset(names)
    values: dict[str, Any] = {}
    ids: list[str] = []
    if host.store is not None:
        summary = host.store.customer_summary_columns(tenant_id)
        ids = summary.customer_ids.tolist()
        values = _metrics_of(summary, wanted, as_of)
    answers = host.context_columns(tenant_id, wanted - METRICS_COLUMNS, as_of)
    known = set(ids)
    extra = list(dict.fromkeys(c for a in answers for c in a.customer_ids if c not in known))
    if extra:  # customers without interactions: the metrics of a new customer
        ids = ids + extra
        values = {n: col + [_NEW_CUSTOMER.get(n)] * len(extra) for n, col in values.items()}
    position = {c: i for i, c in enumerate(ids)}
    for answer in answers:
        given = column(answer.customer_ids)
        for name, col in answer.values.items():
            if name not in wanted or name in values:
                continue
            listed = column(col)
            if given == ids:
                values[name] = listed
                continue
            aligned: list[Any] = [None] * len(ids)
            for cid, value in zip(given, listed, strict=True):
                aligned[position[cid]] = value
            values[name] = aligned
    return ContextChange(ids, values, as_of=as_of, provider="population")


#: The ``metrics.*`` of a customer without interactions (as :func:`customer_metrics` gives).
_NEW_CUSTOMER: dict[str, Any] = {f"metrics.{k}": v for k, v in NEW_CUSTOMER_METRICS.items()}


def _metrics_of(summary: Any, wanted: frozenset[str], as_of: float) -> dict[str, list[Any]]:
    """The :data:`METRICS_COLUMNS` among ``wanted`` from a tenant's summary columns, as lists
    aligned with ``summary.customer_ids``."""
    names = wanted & METRICS_COLUMNS
    if not names:
        return {}
    days = 86_400.0
    conversions = summary.conversions
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(conversions > 0, summary.total_value / conversions, np.nan)
    metrics: dict[str, Any] = {
        "metrics.interactions": summary.interactions,
        "metrics.conversions": conversions,
        "metrics.total_value": summary.total_value,
        "metrics.average_value": average,
        "metrics.days_since_last_contact": np.maximum(0.0, (as_of - summary.last_at) / days),
        "metrics.days_since_first_contact": np.maximum(0.0, (as_of - summary.first_at) / days),
    }
    values = {n: column(c) for n, c in metrics.items() if n in names}
    if "metrics.average_value" in values:  # None without a conversion, as decisions see it
        values["metrics.average_value"] = [json_value(v) for v in values["metrics.average_value"]]
    return values


def metrics_columns(
    host: Host, tenant_id: str, customer_ids: Sequence[str], names: Iterable[str], as_of: float
) -> dict[str, list[Any]]:
    """The :data:`METRICS_COLUMNS` among ``names`` for ``customer_ids`` (aligned with them),
    from one read of the tenant's summary columns instead of one summary per customer."""
    wanted = frozenset(names)
    if host.store is None or not wanted & METRICS_COLUMNS:
        return {}
    summary = host.store.customer_summary_columns(tenant_id)
    every = _metrics_of(summary, wanted, as_of)
    ids = summary.customer_ids.tolist()
    if ids == list(customer_ids):
        return every
    position = {c: i for i, c in enumerate(ids)}
    at = [position.get(c) for c in customer_ids]
    return {
        n: [_NEW_CUSTOMER.get(n) if i is None else col[i] for i in at] for n, col in every.items()
    }
