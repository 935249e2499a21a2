"""The names formulas and rules can use, and which of them belong to the offer.

Offer names come from the offer itself (``offer.businessValue`` or bare ``businessValue``,
``offer.attributes.<key>``, ``offer.lastSeenDays``) and from computed fields (bare names).
Everything else (``customer.*``, ``attributes.*``, ``request.*``, ...) is customer-level and
comes from context providers, resolved once per decision.
"""

from __future__ import annotations

from typing import Any

from ..models.offers import Offer

# bare name -> offer field attribute
OFFER_FIELDS = {
    "id": "id",
    "name": "name",
    "category": "category",
    "subCategory": "sub_category",
    "status": "status",
    "priority": "priority",
    "weight": "weight",
    "businessValue": "business_value",
    "propensity": "propensity",
    "channels": "channels",
    "placements": "placements",
    "mandatory": "mandatory",
}
# names only known after scoring and ranking (phase 3 formulas)
OUTPUT_NAMES = frozenset({"score", "rank"})
DYNAMIC_OFFER_NAMES = frozenset({"offer.lastSeenDays", "fitMultiplier"})


def is_offer_name(name: str) -> bool:
    """Whether ``name`` is resolved per offer rather than per decision."""
    if name in OFFER_FIELDS or name in DYNAMIC_OFFER_NAMES or name in OUTPUT_NAMES:
        return True
    if name.startswith("offer."):
        return True
    return "." not in name  # a bare name that is not an offer field is a computed field


def offer_scope(offer: Offer) -> dict[str, Any]:
    """The static names of one offer, computed once per catalog."""
    scope: dict[str, Any] = {}
    for bare, attr in OFFER_FIELDS.items():
        value = getattr(offer, attr)
        scope[bare] = value
        scope[f"offer.{bare}"] = value
    for key, value in offer.attributes.items():
        scope[f"offer.attributes.{key}"] = value
    return scope


def is_static_offer_name(name: str) -> bool:
    """Names in :func:`offer_scope` (``offer.attributes.*`` may be absent: resolves to None)."""
    if name in OFFER_FIELDS:
        return True
    if name.startswith("offer.attributes."):
        return True
    return name.startswith("offer.") and name[6:] in OFFER_FIELDS
