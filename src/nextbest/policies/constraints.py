"""Offer constraints in decisions: which offers' budget or stock is used up, from the store.

Positive outcomes consume an offer's ``budget`` (their value, per UTC day and over its life)
and ``stock`` (one unit each) when respond records them (``store.record_interaction``, in the
same transaction, capped at the limits). A decision reads the consumption of the catalog's
constrained offers once (:func:`exhausted_offers`) and the engine drops the used-up ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..models.offers import Offer
from ..store import Store


def exhausted_offers(
    store: Store, tenant_id: str, offers: Sequence[Offer], as_of: datetime
) -> dict[str, str]:
    """The constrained ``offers`` whose stock or budget is used up as of ``as_of`` (the daily
    budget counts the UTC day of ``as_of``), each with the reason the trace shows."""
    if not offers:
        return {}
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    day = as_of.astimezone(UTC).date()
    used = store.offer_consumption(tenant_id, day)
    out: dict[str, str] = {}
    for offer in offers:
        seen = used.get(offer.id)
        units = seen.units if seen else 0
        total = seen.total_value if seen else 0.0
        today = seen.day_value if seen else 0.0
        budget = offer.budget
        if offer.stock is not None and units >= offer.stock:
            out[offer.id] = f"out of stock: {units}/{offer.stock} units used"
        elif budget is not None and budget.lifetime is not None and total >= budget.lifetime:
            out[offer.id] = f"lifetime budget spent: {total:g}/{budget.lifetime:g}"
        elif budget is not None and budget.daily is not None and today >= budget.daily:
            out[offer.id] = (
                f"daily budget spent: {today:g}/{budget.daily:g} on {day.isoformat()} (UTC)"
            )
    return out
