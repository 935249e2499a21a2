"""The SQL store both dialects share: :class:`SqlStore`, one mixin per concern over
:class:`~nextbest.store.core_sql.SqlCore` (the dialect hooks, migrations and shared helpers).

The concerns: tenants and API keys (``tenants_sql``), the catalog of offers and flows
(``catalog_sql``), interactions and summaries (``interactions_sql``), plugin documents and
leases (``documents_sql``), triggers (``triggers_sql``), webhook endpoints
(``webhooks_sql``), the outbox of events and their deliveries (``outbox_sql``) and the lift
aggregates of control groups (``lift_sql``), offers' activity per period
(``report_sql``), population simulations (``simulations_sql``) and customer attributes
(``customer_attributes_sql``). Both
dialects accept the same SQL (``?`` placeholders are rewritten for psycopg), so ``sqlite.py``
and ``postgres.py`` only supply connections and transactions, the migration lock, the fastest
way to insert a chunk of interactions, and how a claim of deliveries locks its rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nextbest.store.base import Recommendation
from nextbest.store.catalog_sql import CatalogSql
from nextbest.store.core_sql import Cursor, check_id
from nextbest.store.customer_attributes_sql import CustomerAttributesSql
from nextbest.store.documents_sql import DocumentsSql, document_update_keys
from nextbest.store.interactions_sql import InteractionsSql, check_rank
from nextbest.store.lift_sql import LiftSql
from nextbest.store.outbox_sql import OutboxSql
from nextbest.store.report_sql import ReportSql
from nextbest.store.simulations_sql import SimulationsSql
from nextbest.store.tenants_sql import TenantsSql
from nextbest.store.triggers_sql import TriggersSql
from nextbest.store.webhooks_sql import WebhooksSql

__all__ = ["SqlStore"]


class SqlStore(
    TenantsSql,
    CatalogSql,
    InteractionsSql,
    DocumentsSql,
    TriggersSql,
    WebhooksSql,
    OutboxSql,
    LiftSql,
    ReportSql,
    SimulationsSql,
    CustomerAttributesSql,
):
    """Implementation of :class:`nextbest.store.Store` over a SQL connection."""

    def _outcome_transaction(self, cur: Cursor, tenant_id: str) -> _OutcomeTransaction:
        return _OutcomeTransaction(self, cur, tenant_id)


class _OutcomeTransaction:
    """:class:`~nextbest.store.base.OutcomeTransaction` over the cursor of the transaction
    recording an outcome."""

    __slots__ = ("_cur", "_store", "tenant_id")

    def __init__(self, store: SqlStore, cur: Cursor, tenant_id: str) -> None:
        self._store = store
        self._cur = cur
        self.tenant_id = tenant_id

    def tenant_settings(self) -> dict[str, Any]:
        row = self._cur.execute(
            "SELECT settings FROM tenants WHERE tenant_id = ?", (self.tenant_id,)
        ).fetchone()
        settings = {} if row is None else json.loads(row[0])
        return settings if isinstance(settings, dict) else {}

    def get_recommendation(
        self, recommendation_id: str, rank: int | None = None
    ) -> Recommendation | None:
        check_id("recommendation id", recommendation_id)
        if rank is not None:
            check_rank(rank)
        return self._store._recommendation_in(self._cur, self.tenant_id, recommendation_id, rank)

    def update_documents(
        self,
        keys: Iterable[tuple[str, str]],
        update: Callable[[dict[tuple[str, str], Any]], Mapping[tuple[str, str], Any]],
    ) -> dict[tuple[str, str], Any]:
        return self._store._update_documents_in(
            self._cur, self.tenant_id, document_update_keys(keys), update, self._store.clock()
        )
