"""Context values for triggers: from a :class:`~nextbest.ContextChange` (columns the notifier
passed), else through the context providers one customer at a time (as a decision would)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..host import Host
from ..models.request import DecisionRequest
from ..plugin_api import ContextProvider, ContextRequest
from ..service import customer_metrics

log = logging.getLogger("nextbest.triggers")

__all__ = ["column", "json_value", "resolve_customer"]


def json_value(value: Any) -> Any:
    """A context value as plain JSON: numpy scalars unwrapped, non-finite numbers null."""
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, str | bytes):
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
