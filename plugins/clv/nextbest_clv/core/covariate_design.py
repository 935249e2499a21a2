"""Covariate design matrices from customer attributes (pure: attribute objects in, arrays out).

An attribute is *numeric* when every customer's value is a number (booleans are not numbers
here) and *categorical* otherwise (text or booleans, compared as given). At fit time
:func:`learn_encoding` decides each attribute's kind and remembers what the predictions need:

- numeric: used as given, centred at its mean over the fitted customers (so the model's
  baseline parameters are those of a customer with the mean value; the coefficient is per
  unit of the attribute either way);
- categorical: one 0/1 column per level except the *reference* level (the most frequent one;
  ties go to the first in sort order), named ``attribute=level``; at least two levels.

:func:`design_matrix` builds the columns for any customers with a learned encoding. At fit
time a customer lacking an attribute is an error (:class:`MissingCovariatesError` counts them
per attribute) or, by policy, left out by the caller. When predicting, a customer lacking an
attribute or with a level not seen in the fit gets the baseline (the mean, the reference
level) and is counted in :attr:`Design.imputed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CovariateDataError",
    "Design",
    "MissingCovariatesError",
    "design_matrix",
    "learn_encoding",
    "missing_attributes",
]

#: The most levels a categorical covariate may have (each is a coefficient to estimate).
MAX_LEVELS = 50

Attributes = Mapping[str, Any]


class CovariateDataError(ValueError):
    """The attributes cannot be used as covariates (mixed kinds, one level only, ...)."""


class MissingCovariatesError(CovariateDataError):
    """Customers lack covariate attributes; ``missing`` maps each attribute to how many."""

    def __init__(self, missing: Mapping[str, int], customers: int) -> None:
        self.missing = dict(missing)
        self.customers = customers
        counts = ", ".join(f"{n:,} lack {name!r}" for name, n in self.missing.items())
        super().__init__(f"of {customers:,} customers, {counts}")


@dataclass(frozen=True, slots=True)
class Design:
    """Covariate columns for some customers: ``matrix`` (customers x columns, float64),
    the column ``names``, and ``imputed`` (how many customers got the baseline value of an
    attribute they lack or whose level the fit did not see, by attribute)."""

    matrix: npt.NDArray[np.float64]
    names: tuple[str, ...]
    imputed: dict[str, int]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def missing_attributes(
    attributes: Sequence[Attributes | None], names: Sequence[str]
) -> npt.NDArray[np.bool_]:
    """A (customers,) mask of the customers lacking any of ``names`` (absent or null)."""
    lacking = np.zeros(len(attributes), dtype=bool)
    for index, values in enumerate(attributes):
        if names and (values is None or any(values.get(name) is None for name in names)):
            lacking[index] = True
    return lacking


def learn_encoding(
    attributes: Sequence[Attributes | None], names: Sequence[str]
) -> list[dict[str, Any]]:
    """The encoding of each attribute in ``names`` learned from the fitted customers (a JSON
    list kept in the fit document): ``{"name", "kind": "numeric", "mean"}`` or ``{"name",
    "kind": "categorical", "reference", "levels"}`` (``levels`` without the reference).

    Raises:
        MissingCovariatesError: customers lack attributes (counted per attribute).
        CovariateDataError: an attribute mixes numbers with text or booleans, has a single
            level (or a single value) or more than :data:`MAX_LEVELS` levels.
    """
    missing = {
        name: sum(1 for a in attributes if a is None or a.get(name) is None) for name in names
    }
    if any(missing.values()):
        raise MissingCovariatesError({k: n for k, n in missing.items() if n}, len(attributes))
    encoding: list[dict[str, Any]] = []
    for name in names:
        values = [a[name] for a in attributes if a is not None]
        numbers = sum(1 for v in values if _is_number(v))
        if numbers == len(values):
            column = np.asarray(values, dtype=float)
            if column.size and np.ptp(column) == 0.0:
                raise CovariateDataError(
                    f"attribute {name!r} has the same value ({column[0]:g}) for every customer: "
                    "it cannot be a covariate"
                )
            encoding.append({"name": name, "kind": "numeric", "mean": float(column.mean())})
            continue
        if numbers:
            raise CovariateDataError(
                f"attribute {name!r} mixes numbers ({numbers:,} customers) with text or "
                f"booleans ({len(values) - numbers:,}): import one kind of value"
            )
        counts = Counter(values)
        if len(counts) < 2:
            raise CovariateDataError(
                f"attribute {name!r} has one level ({values[0]!r}) for every customer: it "
                "cannot be a covariate"
            )
        if len(counts) > MAX_LEVELS:
            raise CovariateDataError(
                f"attribute {name!r} has {len(counts):,} levels; a categorical covariate may "
                f"have at most {MAX_LEVELS}"
            )
        ordered = sorted(counts, key=lambda level: (-counts[level], str(level)))
        reference, others = ordered[0], sorted(ordered[1:], key=str)
        encoding.append(
            {"name": name, "kind": "categorical", "reference": reference, "levels": others}
        )
    return encoding


def design_matrix(
    attributes: Sequence[Attributes | None], encoding: Sequence[Mapping[str, Any]]
) -> Design:
    """The covariate columns of these customers under a learned ``encoding`` (see the module
    docstring for what a missing attribute or an unseen level becomes)."""
    names: list[str] = []
    for spec in encoding:
        if spec["kind"] == "numeric":
            names.append(spec["name"])
        else:
            names.extend(f"{spec['name']}={level}" for level in spec["levels"])
    matrix = np.zeros((len(attributes), len(names)), dtype=np.float64)
    imputed: dict[str, int] = {}
    column = 0
    for spec in encoding:
        name = spec["name"]
        values = [None if a is None else a.get(name) for a in attributes]
        if spec["kind"] == "numeric":
            known = np.array([_is_number(v) for v in values], dtype=bool)
            filled = np.array(
                [v if k else spec["mean"] for v, k in zip(values, known, strict=True)]
            )
            matrix[:, column] = filled.astype(np.float64) - float(spec["mean"])
            lacking = int(np.count_nonzero(~known))
            column += 1
        else:
            # keyed with the type, as True == 1 in Python: a boolean level never matches a
            # number or the reverse
            levels = {_key(level): i for i, level in enumerate(spec["levels"])}
            reference = _key(spec["reference"])
            lacking = 0
            for row, value in enumerate(values):
                key = _key(value)
                if key in levels:
                    matrix[row, column + levels[key]] = 1.0
                elif key != reference:
                    lacking += 1
            column += len(levels)
        if lacking:
            imputed[name] = lacking
    return Design(matrix, tuple(names), imputed)


def _key(value: Any) -> tuple[bool, Any]:
    return isinstance(value, bool), value
