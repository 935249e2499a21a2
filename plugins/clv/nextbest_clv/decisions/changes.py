"""Telling the host when CLV records change (``host.context_changed``), so its triggers see
``customer.clv_score`` / ``customer.clv.*`` move without waiting for a decision.

- After an outcome, when the host watches a CLV name for the tenant (an active trigger reads
  one), the customer's record is recomputed at once (not only invalidated) and the new values
  are passed with the previous stored ones.
- After a batch compute, every stored record is passed as columns (one notification).
"""

from __future__ import annotations

import logging
from typing import Any

from nextbest import ContextChange, HostAPI
from nextbest_clv.decisions.context import CONTEXT_FIELDS
from nextbest_clv.errors import ClvError
from nextbest_clv.service import RECORDS_NAMESPACE, ClvService
from nextbest_clv.service.tenant_batch import BatchResult

__all__ = ["PROVIDER", "notify_batch", "notify_outcome", "watches_clv"]

log = logging.getLogger("nextbest_clv")
#: The provider name the changes carry (the context provider's).
PROVIDER = "clv"
_NAMES = frozenset(CONTEXT_FIELDS)
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


def notify_outcome(host: HostAPI, service: ClvService, tenant_id: str, customer_id: str) -> None:
    """Recompute the customer's record now and tell the host, when a CLV name is watched."""
    if host.store is None or not watches_clv(host, tenant_id):
        return
    stored = host.store.get_documents(RECORDS_NAMESPACE, tenant_id, [customer_id])
    before = stored.get(customer_id)
    try:
        record = service.recompute(tenant_id, customer_id)
    except ClvError as exc:  # no record for this customer: nothing changed that a name shows
        log.info("no CLV record for %r of tenant %r: %s", customer_id, tenant_id, exc)
        return
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


def notify_batch(host: HostAPI, tenant_id: str, result: BatchResult) -> None:
    """Tell the host about every record a batch stored (when a CLV name is watched)."""
    if not result.customer_ids or not watches_clv(host, tenant_id):
        return
    values = {
        name: result.columns[field]
        for name, field in CONTEXT_FIELDS.items()
        if field in result.columns
    }
    host.context_changed(
        tenant_id,
        ContextChange(
            customer_ids=result.customer_ids,
            values=values,
            as_of=result.as_of,
            provider=PROVIDER,
        ),
    )
