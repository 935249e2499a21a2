"""Telling the host when CLV records change (``host.context_changed``), so its triggers see
``customer.clv_score`` / ``customer.clv.*`` move without waiting for a decision.

- After an outcome, when the host watches a CLV name for the tenant (an active trigger reads
  one), the customer's record is recomputed at once (not only invalidated) and the new values
  are passed with the previous stored ones.
- After a batch compute, every stored record is passed as columns (one notification).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from nextbest import ContextChange, HostAPI
from nextbest_clv.decisions.context import CONTEXT_FIELDS
from nextbest_clv.errors import ClvError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService
from nextbest_clv.service.batch_compute import compute_records
from nextbest_clv.service.record_columns import record_columns
from nextbest_clv.service.tenant_batch import BatchResult

__all__ = [
    "ONE_BY_ONE",
    "PROVIDER",
    "notify_batch",
    "notify_outcome",
    "population_columns",
    "previous_wanted",
    "refresh_customers",
    "watches_clv",
]

log = logging.getLogger("nextbest_clv")
#: The provider name the changes carry (the context provider's).
PROVIDER = "clv"
#: Above this many changed customers, a watched tenant is recomputed as one batch.
ONE_BY_ONE = 500
_NAMES = frozenset(CONTEXT_FIELDS)
_CHURN_NAME = "customer.clv.churn_probability"
_MODEL_NAMES = {
    name
    for name, field in CONTEXT_FIELDS.items()
    if field in ("probabilityAlive", "expectedPurchases90d", "expectedRevenue12m", "clv", "model")
}


def watches_clv(host: HostAPI, tenant_id: str) -> bool:
    """Whether something on the host watches a CLV name for the tenant."""
    return not _NAMES.isdisjoint(host.watched_context_names(tenant_id))


def _values(record: dict[str, Any]) -> dict[str, Any]:
    record = {"model": "rfm", **record}
    return {name: record.get(field) for name, field in CONTEXT_FIELDS.items()}


def notify_outcome(host: HostAPI, service: ClvService, tenant_id: str, customer_id: str) -> bool:
    """Recompute the customer's record now and tell the host, when a CLV name is watched.
    Returns whether a record was recomputed."""
    if host.store is None or not watches_clv(host, tenant_id):
        return False
    stored = host.store.get_documents(RECORDS_NAMESPACE, tenant_id, [customer_id])
    before = stored.get(customer_id)
    try:
        record = service.recompute(tenant_id, customer_id)
    except ClvError as exc:  # no record for this customer: nothing changed that a name shows
        log.info("no CLV record for %r of tenant %r: %s", customer_id, tenant_id, exc)
        return False
    after = _values(record)
    previous = _values(before) if isinstance(before, dict) else {}
    if isinstance(before, dict) and "model" not in before:
        # a stored RFM-only document: the model fields were not in it
        previous = {n: v for n, v in previous.items() if n not in _MODEL_NAMES}
    host.context_changed(
        tenant_id,
        ContextChange(
            customer_ids=[customer_id],
            values={name: [value] for name, value in after.items()},
            as_of=service.clock(),
            provider=PROVIDER,
            previous={name: [value] for name, value in previous.items()},
        ),
    )
    return True


def refresh_customers(
    host: HostAPI, service: ClvService, tenant_id: str, customer_ids: Iterable[str]
) -> None:
    """Bring the records of customers whose interactions changed (corrected, deleted,
    imported in bulk) up to date. Unwatched: their stored records are dropped, so the next
    read computes them. Watched by a trigger: recomputed now and the host told, one by one for
    a few customers, as one batch of the tenant (its listeners tell the host) for many."""
    customers = sorted(set(customer_ids))
    if not customers:
        return
    if host.store is None or not watches_clv(host, tenant_id):
        service.customers_changed(tenant_id, customers)
        return
    if len(customers) > ONE_BY_ONE:
        service.customers_changed(tenant_id, customers)
        compute_records(service, tenant_id)
        return
    gone = [c for c in customers if not notify_outcome(host, service, tenant_id, c)]
    if gone:  # no interactions left: no record to keep
        service.customers_changed(tenant_id, gone)


def _batch_values(columns: dict[str, Any]) -> dict[str, Any]:
    return {name: columns[field] for name, field in CONTEXT_FIELDS.items() if field in columns}


def previous_wanted(
    host: HostAPI, tenant_id: str, ids: list[str], columns: dict[str, Any], as_of: float
) -> frozenset[str]:
    """Before a batch stores its records: the customers whose stored records the host wants
    as the previous values (``host.previous_wanted``: e.g. those a trigger may fire for)."""
    if not ids or not watches_clv(host, tenant_id):
        return frozenset()
    change = ContextChange(ids, _batch_values(columns), as_of=as_of, provider=PROVIDER)
    return host.previous_wanted(tenant_id, change)


def notify_batch(host: HostAPI, tenant_id: str, result: BatchResult) -> None:
    """Tell the host about every record a batch stored (when a CLV name is watched), with
    the previous values of the customers it asked for before the batch wrote."""
    if not result.customer_ids or not watches_clv(host, tenant_id):
        return
    values = _batch_values(result.columns)
    previous: dict[str, list[Any]] = {}
    if result.previous:
        # The records read before the write are the RFM ones: with a model, its names (and
        # its churn, on another scale than the RFM rule's) have no previous value there.
        rfm_only = "model" in result.columns
        known = [n for n in values if not (rfm_only and (n in _MODEL_NAMES or n == _CHURN_NAME))]
        previous = {name: [None] * len(result.customer_ids) for name in known}
        for i, customer in enumerate(result.customer_ids):
            before = result.previous.get(customer)
            if isinstance(before, dict):
                old = _values(before)
                for name, column in previous.items():
                    column[i] = old.get(name)
    host.context_changed(
        tenant_id,
        ContextChange(
            customer_ids=result.customer_ids,
            values=values,
            as_of=result.as_of,
            provider=PROVIDER,
            previous=previous,
        ),
    )


def population_columns(
    service: ClvService, tenant_id: str, names: frozenset[str], as_of: float
) -> ContextChange | None:
    """Every customer's values of the CLV names among ``names``, computed as of ``as_of``
    (the records a batch as of that time would store; nothing is stored), or None when no
    CLV name is asked for or the records cannot be computed (e.g. a model never fitted: the
    names are then resolved one customer at a time)."""
    wanted = {name: field for name, field in CONTEXT_FIELDS.items() if name in names}
    if not wanted:
        return None
    try:
        records = record_columns(service, tenant_id, as_of)
    except ClvError as exc:
        log.info("no CLV columns for tenant %r: %s", tenant_id, exc)
        return None
    columns = records.columns
    ids = columns["customerId"].tolist()
    values: dict[str, Any] = {}
    for name, field in wanted.items():
        if field in columns:
            values[name] = columns[field]
        elif field == "model":  # the RFM records carry no model field
            values[name] = [records.model] * len(ids)
        else:  # a model field of an rfm tenant: null, as the provider answers
            values[name] = [None] * len(ids)
    return ContextChange(ids, values, as_of=records.as_of, provider=PROVIDER)
