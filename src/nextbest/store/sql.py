"""The SQL store both dialects share: :class:`SqlStore`, one mixin per concern over
:class:`~nextbest.store.core_sql.SqlCore` (the dialect hooks, migrations and shared helpers).

The concerns: tenants and API keys (``tenants_sql``), the catalog of offers and flows
(``catalog_sql``), interactions and summaries (``interactions_sql``), plugin documents and
leases (``documents_sql``), triggers (``triggers_sql``), webhook endpoints
(``webhooks_sql``), the outbox of events and their deliveries (``outbox_sql``) and the lift
aggregates of control groups (``lift_sql``), and offers' activity per period
(``report_sql``). Both
dialects accept the same SQL (``?`` placeholders are rewritten for psycopg), so ``sqlite.py``
and ``postgres.py`` only supply connections and transactions, the migration lock, the fastest
way to insert a chunk of interactions, and how a claim of deliveries locks its rows.
"""

from __future__ import annotations

from nextbest.store.catalog_sql import CatalogSql
from nextbest.store.documents_sql import DocumentsSql
from nextbest.store.interactions_sql import InteractionsSql
from nextbest.store.lift_sql import LiftSql
from nextbest.store.outbox_sql import OutboxSql
from nextbest.store.report_sql import ReportSql
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
):
    """Implementation of :class:`nextbest.store.Store` over a SQL connection."""
