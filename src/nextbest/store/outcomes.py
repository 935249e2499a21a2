"""Outcome types: the eleven built-ins and the rules for custom, per-tenant types.

An outcome type has a *classification* (is the response good, bad or neither for the offer) and a
*kind*: ``impression`` (the offer was shown) or ``response`` (the customer reacted to it). Summaries
count impressions separately and count responses by classification.

Values: an outcome's value is money the customer spent, so it is >= 0, except for a ``refund``
(money returned: a refund, a return, a cancelled or charged-back order), whose value is <= 0.
Summaries add every value as recorded, so a customer's ``total_value`` is net of refunds;
``conversions`` counts ``conversion`` outcomes only (a refund is not a purchase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from nextbest.store.errors import InvalidInputError
from nextbest.store.limits import value_problem

Classification = Literal["positive", "negative", "neutral"]
OutcomeKind = Literal["impression", "response"]

CLASSIFICATIONS: tuple[str, ...] = get_args(Classification)
KINDS: tuple[str, ...] = get_args(OutcomeKind)

#: The outcome whose occurrences are counted as ``conversions`` in the summaries.
CONVERSION = "conversion"
#: The outcome of money returned to the customer: its value is <= 0 and nets ``total_value``.
REFUND = "refund"

#: The rule of a custom outcome type's name (also its JSON Schema pattern).
OUTCOME_NAME_PATTERN = "^[a-z][a-z0-9_]{0,63}$"
_NAME_RE = re.compile(OUTCOME_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class OutcomeType:
    """A named outcome with its classification and kind; ``builtin`` is False for custom types."""

    name: str
    classification: Classification
    kind: OutcomeKind
    builtin: bool = False


BUILTIN_OUTCOME_TYPES: dict[str, OutcomeType] = {
    t.name: t
    for t in (
        OutcomeType("impression", "neutral", "impression", True),
        OutcomeType("click", "positive", "response", True),
        OutcomeType("conversion", "positive", "response", True),
        OutcomeType("share", "positive", "response", True),
        OutcomeType("save", "positive", "response", True),
        OutcomeType("not_interested", "negative", "response", True),
        OutcomeType("opt_out", "negative", "response", True),
        OutcomeType("dismiss", "negative", "response", True),
        OutcomeType("complaint", "negative", "response", True),
        OutcomeType("defer", "neutral", "response", True),
        OutcomeType(REFUND, "negative", "response", True),
    )
}


def outcome_value_problem(outcome: str, value: object) -> str | None:
    """Why ``value`` cannot be the value of an outcome called ``outcome``, or None.

    :func:`~nextbest.store.limits.value_problem` with the sign rule: a ``refund``'s value is the
    amount returned as a number <= 0, every other outcome's value is >= 0.
    """
    if outcome != REFUND:
        return value_problem(value)
    problem = value_problem(value, allow_negative=True)
    if problem is None and float(value) > 0:  # type: ignore[arg-type]  # checked a number
        return "must be <= 0 for a refund: send the amount returned as a negative number"
    return problem


def validate_custom_outcome(name: str, classification: str, kind: str) -> OutcomeType:
    """Check a custom outcome type definition and return it, or raise InvalidInputError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"outcome type name {name!r} is invalid: use 1-64 lower-case letters, digits or '_', "
            "starting with a letter"
        )
    if classification not in CLASSIFICATIONS:
        raise InvalidInputError(
            f"classification {classification!r} is invalid: use one of {', '.join(CLASSIFICATIONS)}"
        )
    if kind not in KINDS:
        raise InvalidInputError(f"kind {kind!r} is invalid: use one of {', '.join(KINDS)}")
    return OutcomeType(name, classification, kind, False)  # type: ignore[arg-type]
