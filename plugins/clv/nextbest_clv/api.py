"""The plugin's HTTP routes (added through ``register_routes``), under the host's tenant and key
rules (``nextbest.api.require_role``) and its one error shape (``nextbest.api.ApiError``).

- ``GET  /api/v1/customers/{customerId}/clv``: the record (``cached`` or ``computed``); any role.
- ``POST /api/v1/customers/{customerId}/clv``: recompute now; editor, admin.
- ``GET  /api/v1/customers/{customerId}/clv/alive-path``: P(alive) along the customer's
  history under the tenant's transaction model; any role.
- ``POST /api/v1/clv/compute``: batch (``{"segment"?, "asOf"?}``); editor, admin.
- ``GET  /api/v1/clv/settings``: any role; ``PUT``: replace the settings; admin.
- ``GET  /api/v1/clv/distribution``: counts per segment and score histogram; any role.
- ``GET  /api/v1/clv/backtests``: stored back-tests, newest first (``?model=``, ``?limit=``);
  any role.
- ``GET  /api/v1/clv/fits``: stored model fits, newest first (``?model=``); any role.
- ``GET  /api/v1/clv/snapshots``: the CLV history's snapshots, newest first (``?limit=``,
  ``?cursor=``); ``GET /api/v1/clv/snapshots/{snapshotId}``: one; any role.
- ``GET  /api/v1/clv/migration``: segment migration between two snapshots (``?from=&to=``,
  default the two newest); any role.
- ``GET  /api/v1/clv/drift``: predicted vs actual: the stored scores and the snapshots waiting
  for their horizon, or (``?snapshot=``) one snapshot scored now; any role.

Every ``asOf`` is ISO-8601 text within the store's window of times (``nextbest.store.parse_time``:
[1900-01-01, 2200-01-01) UTC); anything else answers 400 naming the field (``query.asOf``,
``body.asOf``). A customer without interactions answers 404 with code ``clv_no_interactions``;
a customer whose stored data cannot give a record (unusable values, numbers that would not be
finite) 422 ``clv_unscorable_customer``; a probabilistic model that was never fitted 409
``clv_model_not_fitted``; a fit that fails 422 ``clv_fit_failed``. A snapshot id that is not one
of the tenant's snapshots answers 404 ``clv_snapshot_not_found`` naming the parameter; scoring a
snapshot before its horizon has passed 409 ``clv_horizon_not_passed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from nextbest import HostAPI
from nextbest.api import ApiError, AuthContext, Id, Time, require_role
from nextbest_clv.backtest.runs import list_backtests
from nextbest_clv.errors import (
    ClvInputError,
    ClvSettingsError,
    HorizonNotPassedError,
    ModelFitError,
    ModelNotFittedError,
    NoInteractionsError,
    NoTransactionsError,
    SnapshotNotFoundError,
    UnknownModelError,
    UnscorableCustomerError,
)
from nextbest_clv.scheduler import ClvScheduler
from nextbest_clv.service import ClvService, attach, service_for
from nextbest_clv.service.batch_compute import compute_records, result_json
from nextbest_clv.service.fits import list_fits
from nextbest_clv.service.history import get_snapshot, list_snapshots
from nextbest_clv.service.history_compare import drift_report, migration, score_snapshot

__all__ = ["add_routes"]

_READ = require_role("viewer", "editor", "admin")
_WRITE = require_role("editor", "admin")
_ADMIN = require_role("admin")
Reader = Annotated[AuthContext, Depends(_READ)]
Writer = Annotated[AuthContext, Depends(_WRITE)]
Admin = Annotated[AuthContext, Depends(_ADMIN)]
CustomerId = Annotated[Id, Path(alias="customerId")]
AsOfQuery = Annotated[
    Time | None,
    Query(
        alias="asOf",
        description="ISO-8601 time the record is computed as of (1900-01-01 to 2200-01-01 "
        "UTC); default now",
    ),
]
# The plugin's own error answers, per kind of route (the host documents its common ones on
# every route); each lists only what the route's service call can raise.
_RECORD_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The model was never fitted (clv_model_not_fitted)."},
    422: {
        "description": "The customer's record cannot be computed from their values "
        "(clv_unscorable_customer), or a model fit failed (clv_fit_failed)."
    },
}
_ALIVE_PATH_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The model was never fitted (clv_model_not_fitted)."},
    422: {
        "description": "The tenant's model is not a transaction model (clv_fit_failed), the "
        "customer has no transactions (clv_no_transactions) or cannot be scored "
        "(clv_unscorable_customer)."
    },
}
_BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The model was never fitted (clv_model_not_fitted)."},
    422: {"description": "A model fit failed (clv_fit_failed)."},
}


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class RecomputeBody(_Body):
    """Optional body of ``POST /customers/{id}/clv``."""

    as_of: Time | None = Field(None, alias="asOf")


class ComputeBody(_Body):
    """Body of ``POST /clv/compute`` (both fields optional)."""

    segment: Literal["at_risk", "high", "medium", "low"] | None = None
    as_of: Time | None = Field(None, alias="asOf")


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()  # Time is aware UTC


@contextmanager
def _errors(as_of: str = "asOf", fields: Mapping[str, str] | None = None) -> Iterator[None]:
    """CLV errors in the host's error shape; an error about ``asOf`` names it as the route
    received it (``as_of``: ``query.asOf`` or ``body.asOf``), an error about another input as
    ``fields`` maps it (``from`` -> ``query.from``)."""
    names = dict(fields or {})
    try:
        yield
    except SnapshotNotFoundError as exc:
        field = names.get(exc.field, exc.field)
        details = [{"field": field, "message": str(exc)}]
        raise ApiError(404, str(exc), code=exc.code, details=details) from None
    except HorizonNotPassedError as exc:
        field = names.get(exc.field, exc.field)
        details = [{"field": field, "message": str(exc)}]
        raise ApiError(409, str(exc), code=exc.code, details=details) from None
    except NoInteractionsError as exc:
        raise ApiError(404, str(exc), code=exc.code) from None
    except UnscorableCustomerError as exc:
        raise ApiError(422, str(exc), code=exc.code) from None
    except ClvSettingsError as exc:
        details = [{"field": f"body.{f}" if f else "body", "message": m} for f, m in exc.problems]
        raise ApiError(400, str(exc), code=exc.code, details=details) from None
    except ClvInputError as exc:
        named = as_of if exc.field == "asOf" else names.get(exc.field or "", exc.field)
        details = [] if named is None else [{"field": named, "message": str(exc)}]
        raise ApiError(400, str(exc), code=exc.code, details=details) from None
    except ModelNotFittedError as exc:
        raise ApiError(409, str(exc), code=exc.code) from None
    except (ModelFitError, NoTransactionsError) as exc:
        raise ApiError(422, str(exc), code=exc.code) from None
    except UnknownModelError as exc:
        raise ApiError(400, str(exc), code=exc.code) from None


def add_routes(router: APIRouter, host: HostAPI) -> None:
    """Add the CLV routes to ``router``, and run the CLV scheduler for the app's lifetime;
    both use ``host``'s service."""

    def service() -> ClvService:
        return service_for(host)

    @router.get(
        "/api/v1/customers/{customerId}/clv",
        tags=["clv"],
        summary="CLV record",
        responses=_RECORD_ERRORS,
    )
    def get_clv(
        auth: Reader,
        customer_id: CustomerId,
        as_of: AsOfQuery = None,
    ) -> dict[str, Any]:
        """The customer's CLV record: stored or cached (``source: cached``), else computed
        and stored (``source: computed``)."""
        with _errors("query.asOf"):
            return service().get(auth.tenant_id, customer_id, as_of=_epoch(as_of))

    @router.get(
        "/api/v1/customers/{customerId}/clv/alive-path",
        tags=["clv"],
        summary="P(alive) along the customer's history",
        responses=_ALIVE_PATH_ERRORS,
    )
    def get_alive_path(
        auth: Reader,
        customer_id: CustomerId,
        as_of: AsOfQuery = None,
    ) -> dict[str, Any]:
        """P(alive) after each of the customer's transactions and between them, under the
        tenant's fitted transaction model, for a plot (``points``: ``at``, ``purchases``,
        ``probabilityAlive``)."""
        with _errors("query.asOf"):
            return service().alive_path(auth.tenant_id, customer_id, as_of=_epoch(as_of))

    @router.post(
        "/api/v1/customers/{customerId}/clv",
        tags=["clv"],
        summary="Recompute CLV",
        responses=_RECORD_ERRORS,
    )
    def post_clv(
        auth: Writer,
        customer_id: CustomerId,
        body: Annotated[RecomputeBody | None, Body()] = None,
    ) -> dict[str, Any]:
        """Recompute the customer's CLV record now (``source: computed``) and store it."""
        as_of = _epoch(body.as_of) if body is not None else None
        with _errors("body.asOf"):
            return service().recompute(auth.tenant_id, customer_id, as_of=as_of)

    @router.post(
        "/api/v1/clv/compute",
        tags=["clv"],
        summary="Batch compute CLV",
        responses=_BATCH_ERRORS,
    )
    def compute(auth: Writer, body: Annotated[ComputeBody | None, Body()] = None) -> dict[str, Any]:
        """Compute and store the records of every customer (or of one segment) as of ``asOf``
        in one transaction; returns counts per segment, failures and duration."""
        body = body or ComputeBody()
        with _errors("body.asOf"):
            result, model_result = compute_records(
                service(), auth.tenant_id, segment=body.segment, as_of=_epoch(body.as_of)
            )
        return result_json(result, model_result)

    @router.get("/api/v1/clv/settings", tags=["clv"], summary="CLV settings")
    def get_settings(auth: Reader) -> dict[str, Any]:
        """The tenant's CLV settings."""
        return service().get_settings(auth.tenant_id).to_json()

    @router.put("/api/v1/clv/settings", tags=["clv"], summary="Replace CLV settings")
    def put_settings(auth: Admin, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Replace the tenant's CLV settings (missing fields take their defaults); cached
        records are invalidated."""
        with _errors():
            settings = service().update_settings(auth.tenant_id, body, replace=True)
        return settings.to_json()

    @router.get(
        "/api/v1/clv/distribution",
        tags=["clv"],
        summary="CLV distribution",
        responses=_BATCH_ERRORS,
    )
    def distribution(auth: Reader, as_of: AsOfQuery = None) -> dict[str, Any]:
        """Customers per segment and a ten-bin score histogram, computed live as of ``asOf``;
        with a probabilistic model active, the model's segments and tiers."""
        with _errors("query.asOf"):
            return service().distribution(auth.tenant_id, as_of=_epoch(as_of))

    @router.get("/api/v1/clv/backtests", tags=["clv"], summary="CLV back-tests")
    def backtests(
        auth: Reader,
        model: Annotated[
            Literal["bgnbd", "paretonbd", "mbgnbd", "bgbb"] | None,
            Query(description="only this model"),
        ] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    ) -> dict[str, Any]:
        """The tenant's stored back-tests (predicted vs actual), newest first."""
        runs = list_backtests(service().store, auth.tenant_id, model=model, limit=limit)
        return {"backtests": runs}

    @router.get("/api/v1/clv/fits", tags=["clv"], summary="CLV model fits")
    def fits(
        auth: Reader,
        model: Annotated[
            Literal["bgnbd", "paretonbd", "mbgnbd", "bgbb", "sbg"] | None,
            Query(description="only this model"),
        ] = None,
    ) -> dict[str, Any]:
        """The tenant's stored model fits (every version), newest first."""
        return {"fits": list_fits(service().store, auth.tenant_id, model=model)}

    @router.get(
        "/api/v1/clv/snapshots",
        tags=["clv"],
        summary="CLV history snapshots",
        responses={404: {"description": "The cursor is not a snapshot (clv_snapshot_not_found)."}},
    )
    def snapshots(
        auth: Reader,
        limit: Annotated[int, Query(ge=1, le=1000, description="snapshots per page")] = 50,
        cursor: Annotated[
            Id | None, Query(description="the last snapshot id of the previous page")
        ] = None,
    ) -> dict[str, Any]:
        """The tenant's stored CLV snapshots (one per full batch compute), newest first;
        ``nextCursor`` gives the next page (null on the last)."""
        with _errors(fields={"cursor": "query.cursor"}):
            page, after = list_snapshots(service().store, auth.tenant_id, limit=limit, after=cursor)
        return {"snapshots": page, "nextCursor": after}

    @router.get(
        "/api/v1/clv/snapshots/{snapshotId}",
        tags=["clv"],
        summary="CLV history snapshot",
        responses={404: {"description": "No such snapshot (clv_snapshot_not_found)."}},
    )
    def snapshot(
        auth: Reader, snapshot_id: Annotated[Id, Path(alias="snapshotId")]
    ) -> dict[str, Any]:
        """One stored CLV snapshot of the tenant."""
        with _errors(fields={"id": "path.snapshotId"}):
            return get_snapshot(service().store, auth.tenant_id, snapshot_id)

    @router.get(
        "/api/v1/clv/migration",
        tags=["clv"],
        summary="CLV segment migration",
        responses={404: {"description": "No such snapshot (clv_snapshot_not_found)."}},
    )
    def segment_migration(
        auth: Reader,
        from_id: Annotated[
            Id | None, Query(alias="from", description="the earlier snapshot id")
        ] = None,
        to_id: Annotated[Id | None, Query(alias="to", description="the later snapshot id")] = None,
    ) -> dict[str, Any]:
        """Customers per segment in one snapshot against another (default: the two newest):
        a from -> to matrix of customer counts, and the customers only in one of them."""
        names = {"from": "query.from", "to": "query.to"}
        with _errors(fields=names):
            return migration(service().store, auth.tenant_id, from_id, to_id)

    @router.get(
        "/api/v1/clv/drift",
        tags=["clv"],
        summary="CLV predicted vs actual",
        responses={
            404: {"description": "No such snapshot (clv_snapshot_not_found)."},
            409: {"description": "The snapshot's horizon has not passed (clv_horizon_not_passed)."},
        },
    )
    def drift(
        auth: Reader,
        snapshot_id: Annotated[
            Id | None, Query(alias="snapshot", description="score this snapshot now")
        ] = None,
    ) -> dict[str, Any]:
        """Predicted vs actual: each snapshot's predictions scored against what its customers
        spent in its horizon (stored once a later batch passes the horizon), newest first, and
        the snapshots still waiting; with ``snapshot``, that one scored now."""
        svc = service()
        names = {"snapshot": "query.snapshot", "id": "query.snapshot"}
        with _errors(fields=names):
            if snapshot_id is None:
                return drift_report(svc.store, auth.tenant_id)
            summary = get_snapshot(svc.store, auth.tenant_id, snapshot_id, field="snapshot")
            settings = svc.get_settings(auth.tenant_id)
            return score_snapshot(svc.store, auth.tenant_id, settings, summary, svc.clock())

    _run_scheduler_with_app(router, host)


def _run_scheduler_with_app(router: APIRouter, host: HostAPI) -> None:
    """Chain a lifespan onto the plugin router (FastAPI merges it into the app's) that runs the
    CLV scheduler while the server is up; a host without a store schedules nothing."""
    previous: Callable[[Any], Any] = router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        service = attach(host)
        scheduler = ClvScheduler(service) if service is not None else None
        if scheduler is not None:
            scheduler.start()
        try:
            async with previous(app) as state:
                yield state
        finally:
            if scheduler is not None:
                scheduler.stop()

    router.lifespan_context = lifespan
