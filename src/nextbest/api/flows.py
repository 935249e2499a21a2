"""Flow management: ``/api/v1/flows`` (save versions, read, list, validate, publish)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from ..errors import FlowValidationError
from ..store import MAX_FLOW_VERSION, FlowInfo, FlowVersion, InvalidInputError
from .auth import READ_ROLES, WRITE_ROLES, AuthContext, get_host, get_store, require_role
from .errors import ApiError, check_path_id, field_error, flow_issues_error
from .routing import JsonRoute
from .schemas import FLOW_KEY_SCHEMA, FLOW_VERSION_SCHEMA, Id

router = APIRouter(prefix="/api/v1/flows", tags=["flows"], route_class=JsonRoute)
Reader = Annotated[AuthContext, Depends(require_role(*READ_ROLES))]
Writer = Annotated[AuthContext, Depends(require_role(*WRITE_ROLES))]
Host = Annotated[Any, Depends(get_host)]
Store = Annotated[Any, Depends(get_store)]
Document = Annotated[
    dict[str, Any],
    Body(
        description="A flow (see `nextbest schema flow`; the loaded plugins' node and rule "
        "types decide the rest of its shape).",
        json_schema_extra={
            "required": ["key", "version", "nodes"],
            "properties": {"key": FLOW_KEY_SCHEMA, "version": FLOW_VERSION_SCHEMA},
        },
    ),
]
FlowKey = Annotated[Id, Path()]


def version_json(flow: FlowVersion, with_document: bool = True) -> dict[str, Any]:
    """The JSON of one saved flow version."""
    out: dict[str, Any] = {
        "key": flow.key,
        "version": flow.version,
        "published": flow.published,
        "publishedAt": flow.published_at.isoformat() if flow.published_at else None,
        "createdAt": flow.created_at.isoformat(),
    }
    if with_document:
        out["document"] = flow.document
    return out


def info_json(info: FlowInfo) -> dict[str, Any]:
    """The JSON of a flow key in a list."""
    return {
        "key": info.key,
        "latestVersion": info.latest_version,
        "publishedVersion": info.published_version,
        "updatedAt": info.updated_at.isoformat(),
    }


def _missing(key: str, version: int | None = None) -> ApiError:
    what = f"flow {key!r}" + ("" if version is None else f" version {version}")
    return ApiError(404, f"{what} not found", code="flow_not_found")


@router.post("", status_code=201, summary="Save a new draft version of a flow")
def save_flow(document: Document, auth: Writer, host: Host, store: Store) -> dict[str, Any]:
    """Validate the flow (400 lists every issue with its path) and save it as a new,
    unpublished version under its ``key``. Publish a version to run it."""
    try:
        flow = host.load_flow(document)
    except FlowValidationError as exc:
        raise flow_issues_error(exc) from None
    check_path_id("body.key", flow.key)
    version = store.save_flow(auth.tenant_id, flow.key, document)
    saved = store.get_flow(auth.tenant_id, flow.key, version)
    return version_json(saved, with_document=False)


@router.get("", summary="List flows (cursor pagination)")
def list_flows(
    auth: Reader,
    store: Store,
    cursor: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Flow keys with their latest and published versions, by key."""
    try:
        page = store.list_flows(auth.tenant_id, cursor=cursor, limit=limit)
    except InvalidInputError as exc:
        raise field_error("query.cursor", str(exc)) from None
    return {"items": [info_json(i) for i in page.items], "nextCursor": page.next_cursor}


@router.get("/{key}", summary="Read a flow version")
def get_flow(
    key: FlowKey,
    auth: Reader,
    store: Store,
    version: Annotated[int | None, Query(ge=1, le=MAX_FLOW_VERSION)] = None,
    published: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """The latest version, or ``version``, or the published one with ``published=true``."""
    flow = store.get_flow(auth.tenant_id, key, version, published_only=published)
    if flow is None:
        raise _missing(key, version)
    return version_json(flow)


@router.post("/{key}/validate", summary="Validate a flow document")
def validate_flow(
    key: FlowKey,
    auth: Reader,
    host: Host,
    store: Store,
    document: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """Validate the posted document (or, without a body, the latest saved version) and list
    every issue; nothing is saved. ``valid`` is false when there are issues."""
    if document is None:
        saved = store.get_flow(auth.tenant_id, key)
        if saved is None:
            raise _missing(key)
        document = saved.document
    issues: list[dict[str, str]] = []
    if document.get("key") not in (None, key):
        issues.append({"path": "key", "message": f"must equal the flow key in the path ({key!r})"})
    try:
        flow = host.load_flow(document)
    except FlowValidationError as exc:
        issues.extend({"path": i.path, "message": i.message} for i in exc.issues)
        flow = None
    return {
        "key": key,
        "valid": not issues,
        "issues": issues,
        "nodes": len(flow.steps) if flow is not None else None,
    }


@router.post("/{key}/versions/{version}/publish", summary="Publish a flow version")
def publish_flow(
    key: FlowKey,
    version: Annotated[int, Path(ge=1, le=MAX_FLOW_VERSION)],
    auth: Writer,
    host: Host,
    store: Store,
) -> dict[str, Any]:
    """Make ``version`` the one that runs for ``key`` (checked again against the loaded
    plugins first)."""
    saved = store.get_flow(auth.tenant_id, key, version)
    if saved is None:
        raise _missing(key, version)
    try:
        host.load_flow(saved.document)
    except FlowValidationError as exc:
        raise flow_issues_error(exc, prefix="document") from None
    return version_json(store.publish_flow(auth.tenant_id, key, version), with_document=False)


__all__ = ["info_json", "router", "version_json"]
