"""Contact policies: per-tenant documents that limit how often and when a customer is contacted.

A policy has a name, a rule type with its config, a scope (as for qualification rules: which
offers or requests it applies to), a priority and a status. The service loads a tenant's
active policies and the counts they need from the store's summaries (:class:`PolicyCounts`)
and passes both into the decision (:class:`PolicyInputs`); the engine applies them after
qualification and before scoring (``nextbest.engine.policies``). Every period is a UTC period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, create_model, field_validator, model_validator

from ..store import OfferOutcome
from .base import CamelModel, Id
from .flows import SLUG

#: The rule types of contact policies.
POLICY_TYPES = (
    "frequency_cap",
    "customer_total_cap",
    "cross_channel_cap",
    "cooldown",
    "outcome_based",
    "segment_exclusion",
    "time_window",
    "mutual_exclusion",
    "allow_override",
)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: The days of the week in ``datetime.weekday()`` order (Monday first).
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: What a cap counts: impressions (interactions of kind impression: offers shown), responses
#: (the other kind: clicks, dismissals, conversions, ...), conversions (outcome
#: ``conversion``) or every recorded interaction.
Counted = Literal["impressions", "responses", "conversions", "interactions"]
#: Every ``Counted`` value.
COUNTED: tuple[str, ...] = ("impressions", "responses", "conversions", "interactions")
#: Scopes whose caps count only the contacts in scope (a segment is the request's, so a
#: segment-scoped cap counts all the customer's contacts).
COUNTED_SCOPES = frozenset({"offer", "category", "subcategory", "channel"})
_MAX_COUNT = 1_000_000


class FrequencyCapConfig(CamelModel):
    """At most ``max`` contacts of the customer in the current UTC ``period`` (a calendar day,
    an ISO week from Monday, a calendar month) in the policy's scope: with an offer, a category
    or subcategory, or on a channel (global and segment scopes: every contact)."""

    max: int = Field(ge=0, le=_MAX_COUNT)
    period: Literal["day", "week", "month"]
    counts: Counted = "impressions"


class CustomerTotalCapConfig(CamelModel):
    """At most ``max`` contacts of the customer over all time in the policy's scope."""

    max: int = Field(ge=0, le=_MAX_COUNT)
    counts: Counted = "impressions"


class CrossChannelCapConfig(CamelModel):
    """At most ``maxChannels`` distinct channels on which the customer was contacted in the
    current UTC ``period``: once reached, offers go out only on those channels."""

    max_channels: int = Field(ge=1, le=1000)
    period: Literal["day", "week", "month"]
    counts: Counted = "impressions"


class CooldownConfig(CamelModel):
    """At least ``hours`` since the candidate offer was last shown to the customer: the latest
    recorded interaction of kind ``impression`` with it (a recommendation is not a showing)."""

    hours: float = Field(gt=0, le=24 * 3660, allow_inf_nan=False)


class OutcomeBasedConfig(CamelModel):
    """Suppress an offer for ``days`` after an outcome with it: while the latest ``outcome`` of
    that type (whatever came after it) is less than ``days`` old, or while at least
    ``minCount`` responses of a ``classification`` (positive / negative) were recorded on the
    UTC days of the last ``days`` days (from the UTC day of ``asOf - days`` through today)."""

    days: float = Field(gt=0, le=3660, allow_inf_nan=False)
    outcome: Id | None = None
    classification: Literal["positive", "negative"] | None = None
    min_count: int = Field(1, ge=1, le=_MAX_COUNT)

    @model_validator(mode="after")
    def _one_trigger(self) -> OutcomeBasedConfig:
        if (self.outcome is None) == (self.classification is None):
            raise ValueError("give exactly one of 'outcome' or 'classification'")
        if self.outcome is not None and self.min_count != 1:
            raise ValueError(
                "'minCount' needs 'classification' (responses are counted per day by "
                "classification; per outcome type only the latest time is kept)"
            )
        return self


class SegmentExclusionConfig(CamelModel):
    """No offer for a request naming one of ``segments``."""

    segments: tuple[Id, ...] = Field(min_length=1, max_length=100)


class TimeWindowConfig(CamelModel):
    """Contacts only on ``days`` between ``fromHour`` (inclusive) and ``toHour`` (exclusive),
    UTC."""

    days: tuple[Weekday, ...] = WEEKDAYS
    from_hour: int = Field(0, ge=0, le=23)
    to_hour: int = Field(24, ge=1, le=24)

    @model_validator(mode="after")
    def _hours(self) -> TimeWindowConfig:
        if self.to_hour <= self.from_hour:
            raise ValueError(
                f"toHour ({self.to_hour}) must be after fromHour ({self.from_hour}); "
                "a window across midnight is two policies"
            )
        if not self.days:
            raise ValueError("'days' needs at least one day")
        return self


class MutualExclusionConfig(CamelModel):
    """At most one of ``offers`` in a decision: the best ranked one stays."""

    offers: tuple[Id, ...] = Field(min_length=2, max_length=100)

    @field_validator("offers")
    @classmethod
    def _unique(cls, offers: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(offers)) != len(offers):
            raise ValueError("offers must be unique")
        return offers


class AllowOverrideConfig(CamelModel):
    """Exempts the offers in the policy's scope from every lower-priority policy."""


class _PolicyBase(CamelModel):
    name: str = Field(min_length=1, max_length=128, pattern=SLUG)
    description: str = Field("", max_length=1000)
    scope: Literal["global", "category", "subcategory", "offer", "channel", "segment"] = "global"
    scope_id: Id | None = None
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    status: Literal["active", "inactive"] = "active"
    #: mandatory offers skip a bypassable policy; ``bypassable: false`` applies to them too
    bypassable: bool = True

    @model_validator(mode="after")
    def _scope_id(self) -> _PolicyBase:
        if self.scope != "global" and not self.scope_id:
            raise ValueError(f"scope {self.scope!r} needs a scopeId")
        if self.scope == "global" and self.scope_id is not None:
            raise ValueError("scope 'global' takes no scopeId")
        if getattr(self, "rule_type", None) == "cross_channel_cap" and self.scope == "channel":
            raise ValueError(
                "a cross_channel_cap counts channels: its scope is global, category, "
                "subcategory, offer or segment, not channel"
            )
        if getattr(self, "rule_type", None) == "mutual_exclusion" and self.scope not in (
            "global",
            "channel",
            "segment",
        ):
            raise ValueError(
                "a mutual_exclusion policy names its offers: its scope is global, channel or "
                "segment"
            )
        return self


def _policy(rule_type: str, config: type[CamelModel], required: bool = True) -> type[_PolicyBase]:
    fields: dict[str, Any] = {
        "rule_type": (Literal[rule_type], Field(alias="ruleType")),
        "config": (config, ... if required else Field(default_factory=config)),
    }
    return create_model(f"ContactPolicy_{rule_type}", __base__=_PolicyBase, **fields)


_MODELS = (
    _policy("frequency_cap", FrequencyCapConfig),
    _policy("customer_total_cap", CustomerTotalCapConfig),
    _policy("cross_channel_cap", CrossChannelCapConfig),
    _policy("cooldown", CooldownConfig),
    _policy("outcome_based", OutcomeBasedConfig),
    _policy("segment_exclusion", SegmentExclusionConfig),
    _policy("time_window", TimeWindowConfig, required=False),
    _policy("mutual_exclusion", MutualExclusionConfig),
    _policy("allow_override", AllowOverrideConfig, required=False),
)
#: A contact policy document (a union discriminated by ``ruleType``).
ContactPolicy = Annotated[Union[_MODELS], Field(discriminator="rule_type")]  # type: ignore[valid-type]  # noqa: UP007
POLICY_ADAPTER: TypeAdapter[Any] = TypeAdapter(ContactPolicy)


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a contact policy document (``nextbest schema contact-policy``)."""
    return POLICY_ADAPTER.json_schema(by_alias=True)


@dataclass(frozen=True, slots=True)
class PolicyCounts:
    """What the store's summaries say about one customer, as of a decision's time (UTC).

    ``periods``: contacts in the current day, week and month, each as ``{counted: n}`` (every
    :data:`COUNTED` value); ``all_time`` the same over every day; ``outcomes`` per offer id,
    per outcome type, the latest time and count (``cooldown``, ``outcome_based``);
    ``classified`` per (classification, first UTC day) the responses of that classification
    per offer id from that day through the decision's (``outcome_based`` with a
    classification). ``scoped``: for caps scoped to an
    offer, category, subcategory or channel, by scope label (``offer:X``), the contacts in
    that scope per period and over all time (``"all"``). ``channels``: per period, the
    customer's contacts on each channel (for ``cross_channel_cap``).
    """

    periods: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    all_time: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[str, Mapping[str, OfferOutcome]] = field(default_factory=dict)
    classified: Mapping[tuple[str, date], Mapping[str, int]] = field(default_factory=dict)
    scoped: Mapping[str, Mapping[str, Mapping[str, int]]] = field(default_factory=dict)
    channels: Mapping[str, Mapping[str, Mapping[str, int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """A tenant's active policies (highest priority first, then by name) and the counts they
    read, and the offers whose budget or stock is used up (offer id -> reason): what the
    service passes into a decision."""

    policies: tuple[Any, ...] = ()
    counts: PolicyCounts = field(default_factory=PolicyCounts)
    exhausted: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to apply."""
        return not self.policies and not self.exhausted


def window_start(as_of: datetime, days: float) -> date:
    """The first UTC day of an ``outcome_based`` window of ``days`` days ending at ``as_of``
    (whatever offset ``as_of`` carries; naive is UTC)."""
    start = as_of - timedelta(days=days)
    return (start if start.tzinfo is None else start.astimezone(UTC)).date()


def period_starts(as_of: datetime) -> dict[str, date]:
    """The first day (UTC) of the day, ISO week (Monday) and calendar month holding ``as_of``."""
    day = as_of.date()
    return {
        "day": day,
        "week": day - timedelta(days=day.weekday()),
        "month": day.replace(day=1),
    }
