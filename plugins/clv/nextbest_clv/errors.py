"""Exceptions raised by the CLV plugin. Each message says what to do about it.

The base class and the errors of the numeric core (:class:`ModelFitError`,
:class:`UnknownModelError`) are defined in :mod:`nextbest_clv.core.errors` and re-exported here,
so this module names every error the plugin raises.
"""

from __future__ import annotations

from nextbest_clv.core.errors import ClvError, ModelFitError, UnknownModelError

__all__ = [
    "AsOfBeforeLastInteractionError",
    "ClvError",
    "ClvInputError",
    "ClvSettingsError",
    "HorizonNotPassedError",
    "ModelFitError",
    "ModelNotFittedError",
    "NoInteractionsError",
    "NoStoreError",
    "NoTransactionsError",
    "SnapshotNotFoundError",
    "UnknownModelError",
    "UnscorableCustomerError",
]


class NoInteractionsError(ClvError, LookupError):
    """The customer has no recorded interactions, so it has no CLV record."""

    code = "clv_no_interactions"

    def __init__(self, tenant_id: str, customer_id: str) -> None:
        super().__init__(
            f"customer {customer_id!r} of tenant {tenant_id!r} has no recorded interactions, "
            "so it has no CLV record: record an outcome for it first"
        )
        self.tenant_id = tenant_id
        self.customer_id = customer_id


class ClvSettingsError(ClvError, ValueError):
    """CLV settings that fail validation; ``problems`` lists ``(field, message)`` pairs."""

    code = "clv_invalid_settings"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        text = "; ".join(f"{field or 'settings'}: {msg}" for field, msg in problems)
        super().__init__(f"invalid CLV settings: {text}")
        self.problems = problems


class ClvInputError(ClvError, ValueError):
    """A computation cannot run with these inputs (e.g. ``asOf`` before the last interaction).

    ``field`` names the input when one is to blame (``asOf``, ``end``, ``calibrationEnd``), so
    an edge can name it in its own terms (``query.asOf``, ``--as-of``).
    """

    code = "clv_invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AsOfBeforeLastInteractionError(ClvInputError):
    """A record was asked for as of a time before the customer's last interaction (records come
    from all-time summaries, which cannot be cut at an earlier time). Same API code as
    :class:`ClvInputError` (HTTP 400); the CLI reports it as a usage error of --as-of."""


class UnscorableCustomerError(ClvError, ValueError):
    """The customer's stored data cannot give a CLV record: a summary or transaction value that
    is unusable (e.g. written before the store refused values over 1e12, or by another writer),
    or a record whose numbers would not be finite. Batches skip and report such a customer; a
    single-customer read raises this (HTTP 422)."""

    code = "clv_unscorable_customer"

    def __init__(self, tenant_id: str, customer_id: str, reason: str) -> None:
        super().__init__(
            f"customer {customer_id!r} of tenant {tenant_id!r} cannot be scored: {reason}"
        )
        self.tenant_id = tenant_id
        self.customer_id = customer_id
        self.reason = reason


class NoStoreError(ClvError, RuntimeError):
    """The host has no store attached, so there are no interactions to compute CLV from."""

    code = "clv_no_store"


class NoTransactionsError(ClvError, LookupError):
    """The tenant has no transactions (or subscriptions) to fit or back-test a model on."""

    code = "clv_no_transactions"


class ModelNotFittedError(ClvError, LookupError):
    """The tenant's CLV model is a probabilistic one that has never been fitted."""

    code = "clv_model_not_fitted"

    def __init__(self, tenant_id: str, model: str) -> None:
        super().__init__(
            f"tenant {tenant_id!r} uses the CLV model {model!r}, which has never been fitted: "
            f"run `nextbest clv fit --tenant {tenant_id} --model {model}` (or set the model "
            "back to 'rfm')"
        )
        self.tenant_id = tenant_id
        self.model = model


class SnapshotNotFoundError(ClvError, LookupError):
    """No CLV snapshot with this id for this tenant (another tenant's ids are not found
    either); ``field`` names the input that gave the id (``id``, ``from``, ``to``, ...)."""

    code = "clv_snapshot_not_found"

    def __init__(self, tenant_id: str, snapshot_id: str, *, field: str = "id") -> None:
        super().__init__(
            f"tenant {tenant_id!r} has no CLV snapshot {snapshot_id!r}: list them with "
            "GET /api/v1/clv/snapshots or `nextbest clv snapshots`"
        )
        self.tenant_id = tenant_id
        self.snapshot_id = snapshot_id
        self.field = field


class HorizonNotPassedError(ClvError, ValueError):
    """A snapshot's predictions were to be scored before the end of their horizon."""

    code = "clv_horizon_not_passed"

    def __init__(self, snapshot_id: str, horizon_end: str, *, field: str = "snapshot") -> None:
        super().__init__(
            f"the predictions of snapshot {snapshot_id!r} run until {horizon_end}: they can be "
            "scored against what happened only after that"
        )
        self.snapshot_id = snapshot_id
        self.horizon_end = horizon_end
        self.field = field
