"""Tallies of a simulation (pure): per flow, the offer mix, coverage and the rules that blocked
customers, expected value and conversions, overall and by the breakdown's values; and the
comparison of two flows' top offers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: How many blocking rules a summary lists (the most frequent first).
TOP_RULES = 10
#: How many failed decisions a result quotes (all are counted).
MAX_ERRORS = 5
#: How many example customers a comparison lists per change of top offer.
MAX_EXAMPLES = 5
#: How many changes of top offer a comparison lists (the most frequent first).
MAX_TRANSITIONS = 50
#: The breakdown value of customers without one.
NONE_VALUE = "(none)"
#: At most this many breakdown values are kept apart (in the order customers are met, by id);
#: customers with further values count under :data:`OTHER_VALUE` (a continuous ``by`` such
#: as ``metrics.total_value`` would otherwise make a result as large as the tenant).
MAX_GROUPS = 100
OTHER_VALUE = "(other)"


class Shown(NamedTuple):
    """One offer a decision would show: its rank, and propensity and value (None: unpriced).
    A named tuple: one is made per offer shown, and tuples are the cheapest to make."""

    offer_id: str
    rank: int
    propensity: float | None
    value: float


@dataclass(slots=True)
class Tally:
    """The counts of one group of customers under one flow."""

    customers: int = 0
    without_offer: int = 0
    mix: dict[str, Counter[int]] = field(default_factory=dict)
    blocking: Counter[str] = field(default_factory=Counter)
    expected_value: float = 0.0
    expected_conversions: float = 0.0
    unpriced: int = 0

    def add(self, shown: Iterable[Shown], blocking: Iterable[str] = ()) -> None:
        """Count one customer: the offers shown (empty: no offer, ``blocking`` the rules that
        dropped offers for it, each counted once per customer)."""
        self.customers += 1
        any_shown = False
        for item in shown:
            any_shown = True
            counts = self.mix.get(item.offer_id)
            if counts is None:
                counts = self.mix[item.offer_id] = Counter()
            counts[item.rank] += 1
            if item.propensity is None:
                self.unpriced += 1
            else:
                self.expected_conversions += item.propensity
                self.expected_value += item.propensity * item.value
        if not any_shown:
            self.without_offer += 1
            self.blocking.update(set(blocking))

    def to_dict(self) -> dict[str, Any]:
        """The tally as JSON (see docs/simulation.md for the fields)."""
        with_offer = self.customers - self.without_offer
        mix = {
            offer: {
                "total": sum(counts.values()),
                "byRank": {str(rank): n for rank, n in sorted(counts.items())},
            }
            for offer, counts in sorted(self.mix.items(), key=lambda kv: (-kv[1][1], kv[0]))
        }
        return {
            "customers": self.customers,
            "withOffer": with_offer,
            "withoutOffer": self.without_offer,
            "coverage": with_offer / self.customers if self.customers else None,
            "offerMix": mix,
            "blockingRules": [
                {"rule": rule, "customers": n}
                for rule, n in sorted(self.blocking.items(), key=lambda kv: (-kv[1], kv[0]))[
                    :TOP_RULES
                ]
            ],
            "expectedValue": round(self.expected_value, 6),
            "expectedConversions": round(self.expected_conversions, 6),
            "unpricedOffersShown": self.unpriced,
        }


@dataclass(slots=True)
class FlowTally:
    """One flow's tallies: overall, by breakdown value, and its failed decisions."""

    key: str
    version: int
    overall: Tally = field(default_factory=Tally)
    by_value: dict[str, Tally] = field(default_factory=dict)
    errors: int = 0
    first_errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, group: str | None, shown: list[Shown], blocking: Iterable[str] = ()) -> None:
        """Count one customer's decision (``group``: its breakdown value, None without one)."""
        blocking = tuple(blocking)
        self.overall.add(shown, blocking)
        if group is not None:
            tally = self.by_value.get(group)
            if tally is None:
                if len(self.by_value) >= MAX_GROUPS:
                    group = OTHER_VALUE
                tally = self.by_value.get(group)
            if tally is None:
                tally = self.by_value[group] = Tally()
            tally.add(shown, blocking)

    def failed(self, customer_id: str, error: BaseException) -> None:
        """Count a decision that raised (the first few are quoted)."""
        self.errors += 1
        if len(self.first_errors) < MAX_ERRORS:
            self.first_errors.append(
                {"customerId": customer_id, "error": f"{type(error).__name__}: {error}"}
            )

    def to_dict(self) -> dict[str, Any]:
        """The flow's part of the result."""
        return {
            "flowKey": self.key,
            "flowVersion": self.version,
            "overall": self.overall.to_dict(),
            "byValue": {v: t.to_dict() for v, t in sorted(self.by_value.items())},
            "errors": {"count": self.errors, "first": list(self.first_errors)},
        }


@dataclass(slots=True)
class Comparison:
    """How the top offer changes from one flow to the other, customer by customer (a failed
    decision on either side is left out)."""

    compared: int = 0
    changed: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, customer_id: str, before: str | None, after: str | None) -> None:
        """Count one customer's top offer under the first flow (``before``) and the second."""
        self.compared += 1
        if before == after:
            return
        self.changed += 1
        key = (before or NONE_VALUE, after or NONE_VALUE)
        self.transitions[key] += 1
        listed = self.examples.setdefault(key, [])
        if len(listed) < MAX_EXAMPLES:
            listed.append(customer_id)

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON (``(none)`` stands for no offer)."""
        ordered = sorted(self.transitions.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "customers": self.compared,
            "topOfferChanged": self.changed,
            "topOfferUnchanged": self.compared - self.changed,
            "changes": [
                {
                    "from": src,
                    "to": dst,
                    "customers": n,
                    "exampleCustomerIds": list(self.examples[(src, dst)]),
                }
                for (src, dst), n in ordered[:MAX_TRANSITIONS]
            ],
            "changesListed": min(len(ordered), MAX_TRANSITIONS),
            "changeKinds": len(ordered),
        }


def group_value(value: Any) -> str | None:
    """A breakdown value as the text results are keyed by (None stays None)."""
    if value is None:
        return NONE_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def price(offer: Any) -> tuple[float | None, float]:
    """An offer's catalog propensity (None when it has none) and business value."""
    return offer.propensity, float(offer.business_value)
