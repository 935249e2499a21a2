"""The store logic shared by the SQLite and PostgreSQL implementations.

Both dialects accept the same SQL here (``?`` placeholders are rewritten for psycopg), so a
subclass only supplies connections and transactions, the migration lock, and the fastest way to
insert a chunk of interactions and learn which of them were new.

:class:`SqlStore` is composed of one mixin per concern over :class:`~nextbest.store.sqlcore.SqlCore`
(the dialect hooks, migrations and shared helpers): tenants and API keys (``tenants_sql``), the
catalog of offers and flows (``catalog_sql``), interactions and summaries (``interactions_sql``),
and plugin documents and leases (``documents_sql``).
"""

from __future__ import annotations

from nextbest.store.catalog_sql import CatalogSql
from nextbest.store.documents_sql import DocumentsSql
from nextbest.store.interactions_sql import InteractionsSql
from nextbest.store.tenants_sql import TenantsSql

__all__ = ["SqlStore"]


class SqlStore(TenantsSql, CatalogSql, InteractionsSql, DocumentsSql):
    """Implementation of :class:`nextbest.store.Store` over a SQL connection."""
