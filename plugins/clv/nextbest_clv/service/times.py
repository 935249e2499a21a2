"""The times the plugin takes (an ``asOf``, a fit's end, a back-test's calibration and holdout
ends) checked against the store's one window of valid times (``nextbest.store.time_problem``:
[1900-01-01, 2200-01-01) UTC). Every time inside it can be scored by the RFM core and the models.

The service checks every time it is given, so each caller (routes, commands, the scheduler,
decisions, notebooks, Python code) gets a :class:`~nextbest_clv.errors.ClvInputError` naming
the field instead of a failure deep in the numeric code; the edges check first to name the
field in their own terms (``query.asOf``, ``--as-of``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from nextbest.store import epoch_problem, parse_time, time_problem
from nextbest_clv.errors import ClvInputError

__all__ = ["checked_epoch", "epoch_of"]


def checked_epoch(value: float | None, field: str) -> float | None:
    """``value`` (epoch seconds) as a float when it lies in the window; None for None.

    Raises:
        ClvInputError: naming ``field``, for a time outside the window (NaN and infinities
            included) or a value that is not a number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClvInputError(
            f"{field} must be a time in epoch seconds, not {type(value).__name__}", field=field
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    problem = epoch_problem(number)
    if problem is not None:
        raise ClvInputError(f"{field} {problem}", field=field)
    return number


def epoch_of(value: datetime | str | float | None, field: str) -> float | None:
    """Epoch seconds of a time given as a datetime (naive means UTC; a pandas Timestamp is
    one), ISO-8601 text or epoch seconds, checked against the window; None for None.

    Raises:
        ClvInputError: naming ``field``: not a time, not ISO-8601, or outside the window.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_time(value).timestamp()
        except ValueError as exc:
            raise ClvInputError(f"{field}: {exc}", field=field) from None
    if isinstance(value, datetime):
        problem = time_problem(value)
        if problem is not None:
            raise ClvInputError(f"{field} {problem}", field=field)
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.timestamp()
    return checked_epoch(value, field)
