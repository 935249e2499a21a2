"""Per-tenant CLV settings: the RFM model's settings plus the plugin's operational ones."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from nextbest_clv.core.rfm_settings import RfmSettings
from nextbest_clv.errors import ClvSettingsError

__all__ = [
    "MODEL_FIELDS",
    "MODEL_NAMES",
    "ClvSettings",
    "CovariateSettings",
    "ModelName",
    "merge_settings",
    "settings_fingerprint",
]

#: The per-tenant ``model`` setting: the spec's RFM record or a probabilistic model.
ModelName = Literal["rfm", "bgnbd", "paretonbd", "mbgnbd", "bgbb", "sbg"]
MODEL_NAMES: tuple[str, ...] = ("rfm", "bgnbd", "paretonbd", "mbgnbd", "bgbb", "sbg")

#: Fields that change the records (weights, thresholds, percentiles); a change of any of them
#: makes stored records stale. TTLs and the schedule do not.
MODEL_FIELDS: tuple[str, ...] = (
    "recency_weight",
    "frequency_weight",
    "monetary_weight",
    "at_risk_days",
    "churn_midpoint_days",
    "churn_slope",
    "lifespan_months",
    "segment_high_percentile",
    "segment_low_percentile",
)


#: The longest customer attribute name (the host's rule: nextbest.store.customer_attributes_sql).
_MAX_ATTRIBUTE_NAME = 64


class CovariateSettings(BaseModel):
    """The ``covariates`` setting: which customer attributes (``nextbest ingest --customers``)
    enter the fit of ``bgnbd``/``paretonbd`` as covariates of the purchase rate (``purchase``),
    of the dropout (``dropout``) and of the Gamma-Gamma spend (``spend``), and what to do with a
    customer who lacks one when fitting (``missing``: ``error``, the default, refuses the fit
    naming how many customers lack which attribute; ``exclude`` leaves them out of the fit and
    lists them). At least one name in all; no name twice in one list."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    purchase: tuple[str, ...] = Field(default=(), alias="purchase")
    dropout: tuple[str, ...] = Field(default=(), alias="dropout")
    spend: tuple[str, ...] = Field(default=(), alias="spend")
    missing: Literal["error", "exclude"] = Field(default="error", alias="missing")

    @field_validator("purchase", "dropout", "spend")
    @classmethod
    def _attribute_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not 0 < len(name) <= _MAX_ATTRIBUTE_NAME or not name.isprintable():
                raise ValueError(
                    f"{name!r} is not an attribute name (1 to {_MAX_ATTRIBUTE_NAME} printable "
                    "characters)"
                )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"names {', '.join(map(repr, twice))} more than once")
        return names

    @model_validator(mode="after")
    def _some_names(self) -> CovariateSettings:
        if not (self.purchase or self.dropout or self.spend):
            raise ValueError(
                "name at least one attribute in purchase, dropout or spend (or set covariates "
                "to null for no covariates)"
            )
        return self


class ClvSettings(RfmSettings):
    """A tenant's CLV settings (JSON names in camelCase, unknown keys rejected).

    Adds to :class:`RfmSettings`: ``snapshotTtlSeconds`` (how long a tenant's distribution
    snapshot is reused before it is rebuilt from the store; default 3600),
    ``recordMaxAgeSeconds`` (a read "as of now" is served from a stored record only while the
    record's asOf is at most this many seconds old; default 86400) and ``schedule`` (a
    five-field cron expression for the scheduled batch compute, UTC; None: no schedule) and
    ``historyRetention`` (how many snapshots of the CLV history a tenant keeps, 2 to 10,000;
    default 100).

    Probabilistic models: ``model`` (``rfm``, ``bgnbd``, ``paretonbd``, ``mbgnbd``, ``bgbb``
    or ``sbg``), ``bgbbPeriodDays`` (one BG/BB transaction opportunity, 1 to 366 days, default
    7: :mod:`nextbest_clv.core.opportunities`),
    ``transactionOutcomes`` (outcomes that count as purchases; default ``conversion``),
    ``subscriptionStartOutcomes`` / ``subscriptionEndOutcomes`` (``subscribe`` / ``cancel``)
    and ``subscriptionPeriodDays`` (one billing period, default a month) for ``sbg``,
    ``clvMonths`` (12 or 24) and ``discountRateMonthly`` (default 0.01) for the ``clv`` field,
    ``atRiskProbabilityAlive`` (default 0.5): with a model active a customer whose P(alive) is
    below it is ``at_risk`` and the others are tiered by the model's ``clv``.
    ``covariates`` (default null: none): customer attributes the ``bgnbd``/``paretonbd`` fit
    uses as covariates (:class:`CovariateSettings`).
    An outcome cannot both start and end a subscription.
    """

    snapshot_ttl_seconds: StrictFloat = Field(default=3600.0, alias="snapshotTtlSeconds", gt=0.0)
    record_max_age_seconds: StrictFloat = Field(
        default=86400.0, alias="recordMaxAgeSeconds", gt=0.0
    )
    schedule: str | None = Field(default=None, alias="schedule")
    history_retention: StrictInt = Field(default=100, alias="historyRetention", ge=2, le=10_000)
    # Probabilistic models (see nextbest_clv.core.probabilistic and docs/clv.md "Models").
    model: ModelName = Field(default="rfm", alias="model")
    transaction_outcomes: tuple[str, ...] = Field(
        default=("conversion",), alias="transactionOutcomes", min_length=1
    )
    subscription_start_outcomes: tuple[str, ...] = Field(
        default=("subscribe",), alias="subscriptionStartOutcomes", min_length=1
    )
    subscription_end_outcomes: tuple[str, ...] = Field(
        default=("cancel",), alias="subscriptionEndOutcomes", min_length=1
    )
    subscription_period_days: StrictFloat = Field(
        default=365.25 / 12, alias="subscriptionPeriodDays", gt=0.0
    )
    # BG/BB: the tenant's transactions become one opportunity per period of this many days.
    bgbb_period_days: StrictFloat = Field(default=7.0, alias="bgbbPeriodDays", ge=1.0, le=366.0)
    clv_months: Literal[12, 24] = Field(default=12, alias="clvMonths")
    discount_rate_monthly: StrictFloat = Field(
        default=0.01, alias="discountRateMonthly", ge=0.0, lt=1.0
    )
    # With a model active, P(alive) below this makes a customer ``at_risk`` (instead of
    # atRiskDays of silence): more likely gone than alive (nextbest_clv.core.model_segments).
    at_risk_probability_alive: StrictFloat = Field(
        default=0.5, alias="atRiskProbabilityAlive", gt=0.0, lt=1.0
    )
    covariates: CovariateSettings | None = Field(default=None, alias="covariates")

    @classmethod
    def cross_field_problems(cls, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """:meth:`RfmSettings.cross_field_problems` plus: no outcome is both a subscription
        start and a subscription end."""
        problems = super().cross_field_problems(values)
        starts = values.get("subscription_start_outcomes")
        ends = values.get("subscription_end_outcomes")
        if isinstance(starts, list | tuple) and isinstance(ends, list | tuple):
            both = sorted({str(o) for o in starts} & {str(o) for o in ends})
            if both:
                problems.append(
                    (
                        "",
                        f"outcome(s) {', '.join(map(repr, both))} cannot both start and end a "
                        "subscription: list each in only one of subscriptionStartOutcomes and "
                        "",
                    )
                )
        return problems

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if len(value.split(" ")) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a five-field cron expression "
                "(minute hour day-of-month month day-of-week), e.g. '15 3 * * *'"
            )
        return value

    def to_json(self) -> dict[str, Any]:
        """The settings as a camelCase JSON object (JSON types only: lists, not tuples, which
        the store refuses in documents)."""
        return self.model_dump(mode="json", by_alias=True)


def merge_settings(current: ClvSettings, changes: Mapping[str, Any]) -> ClvSettings:
    """``current`` with ``changes`` applied (camelCase or snake_case keys), validated.

    Raises:
        ClvSettingsError: listing every problem at once: unknown keys, each field that fails
            (with what is expected) and each cross-field rule that fails among the fields that
            are valid on their own.
    """
    by_name = {**current.model_dump(by_alias=False)}
    aliases = {f.alias: name for name, f in ClvSettings.model_fields.items() if f.alias}
    known = ", ".join(sorted(aliases))
    problems: list[tuple[str, str]] = []
    for key, value in changes.items():
        name = aliases.get(key, key)
        if name not in ClvSettings.model_fields:
            problems.append((key, f"unknown setting; known settings: {known}"))
            continue
        by_name[name] = value
    try:
        settings = ClvSettings.model_validate(by_name)
    except ValidationError as exc:
        failed: set[str] = set()
        for err in exc.errors():
            if not err["loc"]:
                continue  # a cross-field rule: reported below, with the field it names
            name = str(err["loc"][0])
            failed.add(name)
            field = (
                ClvSettings.model_fields[name].alias if name in ClvSettings.model_fields else None
            )
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(((field or name) + loc[len(name) :], err["msg"]))
        valid = {k: v for k, v in by_name.items() if k not in failed}
        problems.extend(ClvSettings.cross_field_problems(valid))
        raise ClvSettingsError(problems) from None
    if problems:
        raise ClvSettingsError(problems)
    return settings


def settings_fingerprint(settings: RfmSettings) -> str:
    """A short hash of the fields that determine a record (see :data:`MODEL_FIELDS`)."""
    values = {name: getattr(settings, name) for name in MODEL_FIELDS}
    text = json.dumps(values, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
