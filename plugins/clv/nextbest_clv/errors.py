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
    "ModelFitError",
    "ModelNotFittedError",
    "NoInteractionsError",
    "NoStoreError",
    "NoTransactionsError",
    "UnknownModelError",
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
    """A computation cannot run with these inputs (e.g. ``asOf`` before the last interaction)."""

    code = "clv_invalid_input"


class AsOfBeforeLastInteractionError(ClvInputError):
    """A record was asked for as of a time before the customer's last interaction (records come
    from all-time summaries, which cannot be cut at an earlier time). Same API code as
    :class:`ClvInputError` (HTTP 400); the CLI reports it as a usage error of --as-of."""


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
