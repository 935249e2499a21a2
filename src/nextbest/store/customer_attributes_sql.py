"""Customer attributes of the SQL store: one flat JSON object per (tenant, customer) with when it
was last written (``nextbest ingest --customers``, ``PUT /api/v1/customers/{id}/attributes``).

An attribute object maps names to scalars: strings, finite numbers, booleans or null (null
means "not known" and is not stored). Writing a customer's attributes replaces the object
stored for them, or merges into it with ``merge=True`` (a null then removes the attribute).
The host gives them no meaning; plugins read them (as model covariates, for example).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from nextbest.store.core_sql import (
    Cursor,
    SqlCore,
    batched,
    check_id,
    check_tenant_id,
    dumps,
    shown,
    valid_tenant_id,
)
from nextbest.store.errors import InvalidInputError
from nextbest.store.limits import data_problem

#: The longest attribute name.
MAX_ATTRIBUTE_NAME = 64
#: The most attributes one customer may have.
MAX_ATTRIBUTES = 100
_IN_BATCH = 500
_UPSERT = (
    "INSERT INTO customer_attributes (tenant_id, customer_id, attributes, updated_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, customer_id) DO UPDATE "
    "SET attributes = excluded.attributes, updated_at = excluded.updated_at"
)


def attributes_problem(attributes: object) -> str | None:
    """Why ``attributes`` cannot be stored as a customer's attributes, or None: a JSON object of
    at most :data:`MAX_ATTRIBUTES` names (1 to :data:`MAX_ATTRIBUTE_NAME` printable characters)
    with string, finite number, boolean or null values, at most 16 KiB as JSON."""
    if not isinstance(attributes, Mapping):
        return f"must be an object of attribute names to values, not {type(attributes).__name__}"
    if len(attributes) > MAX_ATTRIBUTES:
        return f"must have at most {MAX_ATTRIBUTES} attributes (it has {len(attributes)})"
    for name, value in attributes.items():
        if (
            not isinstance(name, str)
            or not 0 < len(name) <= MAX_ATTRIBUTE_NAME
            or not name.isprintable()
        ):
            return (
                f"attribute name {shown(name)} is invalid: it must be 1 to "
                f"{MAX_ATTRIBUTE_NAME} printable characters"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            return (
                f"attribute {name!r} must be a string, number, boolean or null, "
                f"not {type(value).__name__}"
            )
    return data_problem(dict(attributes))


def check_attributes(customer_id: str, attributes: object) -> dict[str, Any]:
    """``attributes`` as a dict when :func:`attributes_problem` finds nothing wrong, else
    InvalidInputError naming the customer."""
    problem = attributes_problem(attributes)
    if problem is not None:
        raise InvalidInputError(
            f"attributes of customer {customer_id!r} {problem}", field="attributes"
        )
    return dict(attributes)  # type: ignore[call-overload]  # checked: a Mapping


class CustomerAttributesSql(SqlCore):
    """Customer attributes (see the module docstring)."""

    def put_customer_attributes(
        self,
        tenant_id: str,
        attributes: Mapping[str, Mapping[str, Any]],
        *,
        merge: bool = False,
    ) -> int:
        check_tenant_id(tenant_id)
        checked: dict[str, dict[str, Any]] = {}
        for customer_id, values in attributes.items():
            check_id("customer id", customer_id)
            checked[customer_id] = check_attributes(customer_id, values)
        now = self.clock()
        wanted = sorted(checked)

        def upsert(cur: Cursor) -> int:
            self._require_tenant(cur, tenant_id)
            rows = {c: {k: v for k, v in a.items() if v is not None} for c, a in checked.items()}
            if merge:
                current = self._attributes_in(cur, tenant_id, wanted)
                rows = {}
                for customer_id in wanted:
                    merged = {**current.get(customer_id, {}), **checked[customer_id]}
                    kept = {k: v for k, v in merged.items() if v is not None}
                    rows[customer_id] = check_attributes(customer_id, kept)
            for batch in batched(wanted, _IN_BATCH):
                cur.executemany(_UPSERT, [(tenant_id, c, dumps(rows[c]), now) for c in batch])
            return len(wanted)

        return self._write(upsert)

    def get_customer_attributes(
        self, tenant_id: str, customer_ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        if customer_ids is not None:
            wanted = sorted(set(customer_ids))
            for customer_id in wanted:
                check_id("customer id", customer_id)
        if not valid_tenant_id(tenant_id):
            check_tenant_id(tenant_id)
        with self._read() as cur:
            if customer_ids is None:
                rows = cur.execute(
                    "SELECT customer_id, attributes FROM customer_attributes "
                    "WHERE tenant_id = ? ORDER BY customer_id",
                    (tenant_id,),
                ).fetchall()
                return {customer_id: json.loads(text) for customer_id, text in rows}
            return self._attributes_in(cur, tenant_id, wanted)

    def customer_attributes_updated_at(self, tenant_id: str, customer_id: str) -> float | None:
        check_tenant_id(tenant_id)
        check_id("customer id", customer_id)
        with self._read() as cur:
            row = cur.execute(
                "SELECT updated_at FROM customer_attributes WHERE tenant_id = ? "
                "AND customer_id = ?",
                (tenant_id, customer_id),
            ).fetchone()
        return None if row is None else float(row[0])

    def delete_customer_attributes(self, tenant_id: str, customer_ids: Iterable[str]) -> int:
        check_tenant_id(tenant_id)
        wanted = sorted(set(customer_ids))
        for customer_id in wanted:
            check_id("customer id", customer_id)

        def delete(cur: Cursor) -> int:
            deleted = 0
            for batch in batched(wanted, _IN_BATCH):
                cur.execute(
                    "DELETE FROM customer_attributes WHERE tenant_id = ? "
                    f"AND customer_id IN ({', '.join('?' for _ in batch)})",
                    (tenant_id, *batch),
                )
                deleted += cur.rowcount
            return deleted

        return self._write(delete)

    def _attributes_in(
        self, cur: Cursor, tenant_id: str, wanted: list[str]
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for batch in batched(wanted, _IN_BATCH):
            rows = cur.execute(
                "SELECT customer_id, attributes FROM customer_attributes WHERE tenant_id = ? "
                f"AND customer_id IN ({', '.join('?' for _ in batch)})",
                (tenant_id, *batch),
            ).fetchall()
            for customer_id, text in rows:
                found[customer_id] = json.loads(text)
        return found
