"""Customer attributes: ``PUT``/``GET /api/v1/customers/{customerId}/attributes`` for one
customer and ``POST /api/v1/customer-attributes`` for many (docs/api.md).

Attributes are a flat object of strings, finite numbers, booleans and nulls (null: not known,
not stored); the host stores them and plugins read them (e.g. as model covariates).
A write replaces the customer's attributes, or with ``merge`` updates only the names given.
Bad input is a 400 naming the field and the rule; nothing of a refused bulk request is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from ..store import Store, id_problem
from ..store.customer_attributes_sql import attributes_problem
from .auth import READ_ROLES, WRITE_ROLES, AuthContext, get_store, require_role
from .errors import ApiError, field_error
from .routing import JsonRoute
from .schemas import Id

router = APIRouter(prefix="/api/v1", tags=["customer attributes"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
StoreDep = Annotated[Store, Depends(get_store)]
CustomerId = Annotated[Id, Path(alias="customerId")]
Merge = Annotated[bool, Query(description="Update only the attributes given (a null removes one).")]
#: The most customers one bulk request may write.
MAX_BULK_CUSTOMERS = 1000


def _attributes_json(store: Store, tenant_id: str, customer_id: str) -> dict[str, Any]:
    found = store.get_customer_attributes(tenant_id, [customer_id]).get(customer_id)
    if found is None:
        raise ApiError(
            404,
            f"customer {customer_id!r} has no attributes",
            code="customer_attributes_not_found",
        )
    updated = store.customer_attributes_updated_at(tenant_id, customer_id)
    return {
        "customerId": customer_id,
        "attributes": found,
        "updatedAt": None
        if updated is None
        else datetime.fromtimestamp(updated, UTC).isoformat().replace("+00:00", "Z"),
    }


def _checked(field: str, attributes: object) -> dict[str, Any]:
    problem = attributes_problem(attributes)
    if problem is not None:
        raise field_error(field, problem)
    return dict(attributes)  # type: ignore[call-overload]  # checked: a mapping


@router.put("/customers/{customerId}/attributes", summary="Write a customer's attributes")
def put_attributes(
    customer_id: CustomerId,
    auth: Writer,
    store: StoreDep,
    body: Annotated[
        Any,
        Body(
            description="The attributes: names to strings, numbers, booleans or null.",
            examples=[{"channel": "web", "firstOrderValue": 42.5, "region": "north"}],
        ),
    ],
    merge: Merge = False,
) -> dict[str, Any]:
    """Replace the customer's attributes by the body (with ``merge=true``: update only the
    names given). Answers the stored attributes."""
    attributes = _checked("body", body)
    store.put_customer_attributes(auth.tenant_id, {customer_id: attributes}, merge=merge)
    return _attributes_json(store, auth.tenant_id, customer_id)


@router.get("/customers/{customerId}/attributes", summary="Read a customer's attributes")
def get_attributes(customer_id: CustomerId, auth: Reader, store: StoreDep) -> dict[str, Any]:
    """The customer's stored attributes and when they were written; 404 when they have none."""
    return _attributes_json(store, auth.tenant_id, customer_id)


@router.post("/customer-attributes", summary="Write many customers' attributes")
def post_attributes(
    auth: Writer,
    store: StoreDep,
    body: Annotated[
        Any,
        Body(
            description="`customers`: a list of `{customerId, attributes}` (at most "
            f"{MAX_BULK_CUSTOMERS}, each customer once); `merge` (default false).",
            examples=[
                {
                    "customers": [
                        {"customerId": "c1", "attributes": {"channel": "web"}},
                        {"customerId": "c2", "attributes": {"channel": "shop"}},
                    ]
                }
            ],
        ),
    ],
) -> dict[str, Any]:
    """Write the attributes of many customers in one transaction; any bad entry refuses the
    whole request (400 naming it). Answers ``{written}``."""
    if not isinstance(body, dict):
        raise field_error("body", "must be an object with a `customers` list")
    stray = sorted(set(body) - {"customers", "merge"})
    if stray:
        raise field_error(f"body.{stray[0]}", "is not a field of this request")
    merge = body.get("merge", False)
    if not isinstance(merge, bool):
        raise field_error("body.merge", "must be true or false")
    customers = body.get("customers")
    if not isinstance(customers, list) or not customers:
        raise field_error("body.customers", "must be a non-empty list")
    if len(customers) > MAX_BULK_CUSTOMERS:
        raise field_error(
            "body.customers",
            f"must have at most {MAX_BULK_CUSTOMERS} entries (it has {len(customers)})",
        )
    written: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(customers):
        at = f"body.customers[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"customerId", "attributes"}:
            raise field_error(at, "must be an object with exactly customerId and attributes")
        customer_id = entry["customerId"]
        problem = id_problem(customer_id)
        if problem is not None:
            raise field_error(f"{at}.customerId", problem)
        if customer_id in written:
            raise field_error(f"{at}.customerId", f"{customer_id!r} is in the list twice")
        written[customer_id] = _checked(f"{at}.attributes", entry["attributes"])
    return {"written": store.put_customer_attributes(auth.tenant_id, written, merge=merge)}


__all__ = ["router"]
