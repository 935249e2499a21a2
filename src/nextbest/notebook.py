"""Notebooks: a store's data as pandas DataFrames, and decisions for a table of customers.

::

    import nextbest.notebook

    nb = nextbest.notebook.open("sqlite:///nextbest.db")
    nb.summaries("acme")                 # one row per customer: all-time summary
    nb.interactions("acme")              # one row per recorded interaction
    nb.decide("acme", customers_frame)   # one row per (customer, rank)

pandas is an optional extra (``pip install 'nextbest[pandas]'``); it is imported only when a
frame is built, and its absence is an ImportError naming the extra. Each frame is read in one
store query (no round trip per customer). Column names and dtypes are documented on each
method and in docs/notebooks.md.

Plugins add frames of their own as functions that take the notebook: they reach the store as
:attr:`Notebook.store`, the host (and so their per-host state) as :attr:`Notebook.host`, and
build frames with :meth:`Notebook.frame`, so the host never imports them and pandas is handled
in one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import NextbestError
from .host import Host
from .models.decision import Decision
from .models.request import DecisionRequest
from .service import DecisionService
from .store import (
    Store,
    StoreError,
    TenantNotFoundError,
    open_store,
    parse_time,
    time_problem,
    to_epoch,
)

if TYPE_CHECKING:  # pandas is optional: imported when a frame is built (see _pandas)
    import pandas as pd


__all__ = ["PANDAS_EXTRA", "TEXT", "TIME_DTYPE", "Notebook", "open"]

#: What to install for the frames.
PANDAS_EXTRA = "pip install 'nextbest[pandas]'"
#: dtype of every time column: the store keeps whole microseconds, UTC.
TIME_DTYPE = "datetime64[us, UTC]"
#: :meth:`Notebook.frame`'s name for pandas' default string dtype.
TEXT = "text"
#: Request fields a ``customers`` column may set; every other column is an attribute.
_REQUEST_COLUMNS = ("customer_id", "channel", "placement", "as_of", "segments")


def _pandas() -> Any:
    """The pandas module, or an ImportError that says which extra to install."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            f"nextbest's notebook frames need pandas, an optional extra: {PANDAS_EXTRA}"
        ) from exc
    return pandas


def open(  # nextbest.notebook.open(url), like open_store(url); shadows open() here only
    url: str | None = None,
    *,
    schema: str | None = None,
    plugins: Iterable[object] = (),
    load_entry_points: bool = True,
) -> Notebook:
    """Open the store at ``url`` (as :func:`nextbest.store.open_store`: ``sqlite:///path.db``,
    ``postgresql://...``; default ``NEXTBEST_DATABASE_URL``, else ``sqlite:///nextbest.db``)
    with a host on it (the installed plugins, plus ``plugins``). The schema is not migrated:
    run ``nextbest db upgrade`` first. Close it with :meth:`Notebook.close` (or ``with``)."""
    store = open_store(url, schema=schema)
    try:
        host = Host(store=store, plugins=plugins, load_entry_points=load_entry_points)
    except BaseException:
        store.close()
        raise
    return Notebook(store, host)


class Notebook:
    """A store and a host on it, with the store's data as DataFrames (see the module doc).

    Attributes:
        store: the store (plugins read it too).
        host: the host built on ``store`` (plugins keep their per-host state in it).
        decisions: the :class:`~nextbest.service.DecisionService` that :meth:`decide` uses.
    """

    def __init__(self, store: Store, host: Host | None = None) -> None:
        self.store = store
        self.host = host if host is not None else Host(store=store)
        self.decisions = DecisionService(self.host, store)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Notebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building frames -----------------------------------------------------------------
    def frame(
        self, columns: Mapping[str, Any], dtypes: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """A DataFrame of ``columns`` (name -> sequence or array, all of one length), each
        cast to its dtype in ``dtypes`` when given, so an empty frame has the same dtypes as a
        full one: a pandas dtype (``"int64"``, ``"float64"``, ``"Int64"``, ``"object"`` for
        dicts and lists), :data:`TEXT` (pandas' default string dtype: ``str`` in pandas 3,
        ``object`` in pandas 2; a missing value is NaN or None) or :data:`TIME_DTYPE` (from
        epoch seconds; None or NaN is NaT). Raises an ImportError naming the extra when pandas
        is missing."""
        pd = _pandas()
        data: dict[str, Any] = {}
        for name, values in columns.items():
            dtype = (dtypes or {}).get(name)
            if dtype == TIME_DTYPE:
                data[name] = _times(pd, values)
            elif dtype == TEXT:
                data[name] = pd.array(list(values), dtype=pd.Series(["text"]).dtype)
            elif dtype is not None:
                data[name] = pd.array(list(values), dtype=dtype)
            else:
                data[name] = values
        return pd.DataFrame(data, columns=list(columns))

    # -- the store's data ----------------------------------------------------------------
    def summaries(self, tenant_id: str) -> pd.DataFrame:
        """Every customer's all-time summary, one row per customer (ordered by id):

        ``customer_id`` (text), ``first_at`` and ``last_at`` (``datetime64[us, UTC]``: the
        first and last interaction), ``interactions``, ``conversions`` (``int64``),
        ``total_value`` (``float64``: the sum of the conversion values).

        Raises:
            TenantNotFoundError: no such tenant.
        """
        self._require_tenant(tenant_id)
        cols = self.store.customer_summary_columns(tenant_id)
        return self.frame(
            {
                "customer_id": cols.customer_ids.tolist(),
                "first_at": cols.first_at,
                "last_at": cols.last_at,
                "interactions": cols.interactions.astype("int64"),
                "conversions": cols.conversions.astype("int64"),
                "total_value": cols.total_value.astype("float64"),
            },
            {"customer_id": TEXT, "first_at": TIME_DTYPE, "last_at": TIME_DTYPE},
        )

    def interactions(self, tenant_id: str, customer: str | None = None) -> pd.DataFrame:
        """The tenant's recorded interactions (optionally one customer's), in recording order:

        ``interaction_id`` (``int64``), ``customer_id``, ``outcome``, ``classification``,
        ``kind``, ``value`` (``float64``), ``occurred_at``, ``recorded_at``
        (``datetime64[us, UTC]``), ``offer_id``, ``channel``, ``recommendation_id`` (text,
        missing when not given), ``rank`` (``Int64``, nullable), ``idempotency_key`` (text),
        ``context`` (dict or None). Text is pandas' default string dtype (:data:`TEXT`).

        Raises:
            TenantNotFoundError: no such tenant.
        """
        self._require_tenant(tenant_id)
        rows = list(self.store.iter_interactions(tenant_id, customer))
        return self.frame(
            {
                "interaction_id": [r.interaction_id for r in rows],
                "customer_id": [r.customer_id for r in rows],
                "outcome": [r.outcome for r in rows],
                "classification": [str(r.classification) for r in rows],
                "kind": [str(r.kind) for r in rows],
                "value": [r.value for r in rows],
                "occurred_at": [to_epoch(r.occurred_at) for r in rows],
                "recorded_at": [to_epoch(r.recorded_at) for r in rows],
                "offer_id": [r.offer_id for r in rows],
                "channel": [r.channel for r in rows],
                "recommendation_id": [r.recommendation_id for r in rows],
                "rank": [r.rank for r in rows],
                "idempotency_key": [r.idempotency_key for r in rows],
                "context": [r.context for r in rows],
            },
            {
                "interaction_id": "int64",
                "value": "float64",
                "occurred_at": TIME_DTYPE,
                "recorded_at": TIME_DTYPE,
                "rank": "Int64",
                "context": "object",
                **dict.fromkeys(
                    (
                        "customer_id",
                        "outcome",
                        "classification",
                        "kind",
                        "offer_id",
                        "channel",
                        "recommendation_id",
                        "idempotency_key",
                    ),
                    TEXT,
                ),
            },
        )

    # -- decisions -----------------------------------------------------------------------
    def decide(
        self,
        tenant_id: str,
        customers: Any,
        flow: str | None = None,
        *,
        as_of: datetime | str | None = None,
        limit: int | None = None,
        explain: bool = False,
        save: bool = False,
    ) -> pd.DataFrame:
        """Run the tenant's published flow (``flow``: its key; default the tenant's default
        flow) for each customer, as the HTTP recommend does (offers, ``metrics.*`` and offer
        history from the store, the plugins' context providers), without saving recommendations
        unless ``save``.

        ``customers``: a DataFrame with a ``customer_id`` column and optionally ``channel``,
        ``placement``, ``as_of`` (a time per row) and ``segments`` (a list per row); every other
        column becomes a request attribute (``attributes.<column>``; missing values are left
        out). Or any iterable of customer ids. Integer ids are taken as their decimal text.
        ``as_of``: the time of the rows without one (default: now, once for the whole call).

        Returns one row per (customer, rank), customers in input order: ``customer_id``,
        ``rank`` (``Int64``), ``offer_id``, ``name`` (text), ``score`` (``float64``),
        ``personalization`` (dict of the flow's response fields), ``flow_key``,
        ``flow_version`` (``Int64``), ``as_of`` (``datetime64[us, UTC]``),
        ``recommendation_id`` (text, only with ``save``), ``error`` (text). A customer with no
        offer left has one row with ``rank`` missing; a row whose request or decision fails
        (an invalid customer id, a plugin failure under ``onPluginError: fail``) has one row
        with ``error`` set, and the others are decided. With ``explain``: ``dropped`` (the
        customer's dropped offers: ``offerId``, ``nodeId``, ``ruleId``, ``stage``,
        ``reason``, ``inputs``, ``plugin``) and ``plugin_failures``, repeated on each of the
        customer's rows.

        Raises:
            TenantNotFoundError: no such tenant.
            UnknownFlowError: no such published flow.
            ValueError: ``customers`` without a ``customer_id`` column, or ``as_of`` not a
                time in the store's window.
        """
        requests = _requests(customers)
        default_as_of = _time(as_of, "as_of") or datetime.now(UTC)
        self._require_tenant(tenant_id)
        compiled, version = self.decisions.published_flow(tenant_id, flow)
        out: dict[str, list[Any]] = {name: [] for name in _DECISION_COLUMNS}
        if explain:
            out["dropped"], out["plugin_failures"] = [], []
        for fields in requests:
            customer = fields.get("customer_id")
            saved: str | None = None
            decision: Decision | None = None
            error: str | None = None
            try:
                request = _request(fields, default_as_of, flow, limit, explain)
                if save:
                    recommendation = self.decisions.recommend(tenant_id, request)
                    decision, saved = recommendation.decision, recommendation.recommendation_id
                else:
                    decision = self.decisions.decide(tenant_id, request).decision
            except (NextbestError, StoreError, ValueError) as exc:  # ValueError: pydantic's too
                error = f"{type(exc).__name__}: {exc}"
            items: list[Any] = list(decision.items) if decision is not None else []
            for item in items or [None]:
                out["customer_id"].append(customer)
                out["rank"].append(None if item is None else item.rank)
                out["offer_id"].append(None if item is None else item.offer_id)
                out["name"].append(None if item is None else item.name)
                out["score"].append(math.nan if item is None else item.score)
                out["personalization"].append(None if item is None else dict(item.personalization))
                out["flow_key"].append(compiled.key)
                out["flow_version"].append(version)
                out["as_of"].append(None if decision is None else to_epoch(decision.as_of))
                out["recommendation_id"].append(saved)
                out["error"].append(error)
                if explain:
                    trace = decision.trace if decision is not None else None
                    out["dropped"].append([d.to_dict() for d in trace.drops] if trace else [])
                    out["plugin_failures"].append(
                        [f.to_dict() for f in trace.failures] if trace else []
                    )
        text = ("customer_id", "offer_id", "name", "flow_key", "recommendation_id", "error")
        objects = ("personalization", "dropped", "plugin_failures")
        return self.frame(
            out,
            {
                "rank": "Int64",
                "score": "float64",
                "flow_version": "Int64",
                "as_of": TIME_DTYPE,
                **dict.fromkeys(text, TEXT),
                **dict.fromkeys((o for o in objects if o in out), "object"),
            },
        )

    def _require_tenant(self, tenant_id: str) -> None:
        if self.store.get_tenant(tenant_id) is None:
            raise TenantNotFoundError(f"tenant {tenant_id!r} does not exist")


_DECISION_COLUMNS = (
    "customer_id",
    "rank",
    "offer_id",
    "name",
    "score",
    "personalization",
    "flow_key",
    "flow_version",
    "as_of",
    "recommendation_id",
    "error",
)


def _times(pd: Any, seconds: Any) -> Any:
    """Epoch seconds (None or NaN: missing) as ``datetime64[us, UTC]``, exact to the
    microsecond the store keeps (whole microseconds in the window are exact in a float64)."""
    values = np.array(seconds, dtype=np.float64)  # None -> NaN -> NaT
    return pd.to_datetime(np.rint(values * 1e6), unit="us", utc=True).astype(TIME_DTYPE)


def _time(value: Any, field: str) -> datetime | None:
    """A time given as a datetime (naive means UTC; pandas' Timestamp is one) or ISO-8601
    text, in the store's window; None for None or a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
    if isinstance(value, datetime):
        if str(value) == "NaT":
            return None
        problem = time_problem(value)
        if problem is not None:
            raise ValueError(f"{field} {value.isoformat()} {problem}")
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return datetime.fromtimestamp(aware.timestamp(), UTC)
    raise ValueError(f"{field} must be a datetime or ISO-8601 text, not {type(value).__name__}")


def _missing(value: Any) -> bool:
    """Whether a cell holds no value (None, NaN, pandas' NA/NaT)."""
    if value is None:
        return True
    if isinstance(value, list | tuple | dict | str):
        return False
    try:
        return bool(value != value)  # NaN, NA and NaT are not equal to themselves
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A cell as a plain Python value (numpy scalars unwrapped) for a request attribute."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, list | tuple | dict | str):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _customer_id(value: Any) -> Any:
    """A customer id cell: whole numbers (an id column read as integers) as their decimal
    text; anything else as it is (the request's validation names what is wrong)."""
    value = _plain(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _requests(customers: Any) -> list[dict[str, Any]]:
    """The rows of ``customers`` (see :meth:`Notebook.decide`) as request fields."""
    columns = getattr(customers, "columns", None)
    if columns is None:  # ids: a list, a Series, any iterable
        return [{"customer_id": _customer_id(c)} for c in customers]
    names = [str(c) for c in columns]
    if "customer_id" not in names:
        raise ValueError(
            f"customers needs a customer_id column (it has {', '.join(names) or 'none'})"
        )
    rows = []
    for record in customers.to_dict("records"):
        fields: dict[str, Any] = {"attributes": {}}
        for name, value in record.items():
            if _missing(value):
                continue
            if str(name) == "customer_id":
                fields["customer_id"] = _customer_id(value)
            elif str(name) in _REQUEST_COLUMNS:
                fields[str(name)] = value if str(name) == "as_of" else _plain(value)
            else:
                fields["attributes"][str(name)] = _plain(value)
        rows.append(fields)
    return rows


def _request(
    fields: Mapping[str, Any],
    default_as_of: datetime,
    flow: str | None,
    limit: int | None,
    explain: bool,
) -> DecisionRequest:
    """One row's decision request (a ValueError, pydantic's included, names what is wrong)."""
    return DecisionRequest.model_validate(
        {
            "customer_id": fields.get("customer_id"),
            "channel": fields.get("channel"),
            "placement": fields.get("placement"),
            "segments": list(fields.get("segments") or ()),
            "attributes": dict(fields.get("attributes") or {}),
            "as_of": _time(fields.get("as_of"), "as_of") or default_as_of,
            "decision_flow_key": flow,
            "limit": limit,
            "explain": explain,
        }
    )
