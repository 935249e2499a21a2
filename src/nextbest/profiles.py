"""A customer's unified profile: the host's data about one customer (all-time summary, latest
interactions and recommendations) and every plugin's sections (``customer_profile_sections``),
as one JSON document. ``GET /api/v1/customers/{id}/profile`` answers it and the report's
customer page shows it. The host writes nothing to build it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .hookcalls import call_impl, implementations
from .plugin_api import HostAPI
from .store import Interaction, Recommendation, Store
from .store.limits import document_problem

log = logging.getLogger("nextbest.profiles")

#: How many of the latest interactions and recommendations a profile holds.
RECENT_INTERACTIONS = 20
RECENT_RECOMMENDATIONS = 10


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def interaction_json(i: Interaction) -> dict[str, Any]:
    """One interaction as the profile shows it."""
    return {
        "occurredAt": _iso(i.occurred_at),
        "outcome": i.outcome,
        "classification": i.classification,
        "offerId": i.offer_id,
        "channel": i.channel,
        "value": i.value,
        "recommendationId": i.recommendation_id,
    }


def recommendation_json(r: Recommendation) -> dict[str, Any]:
    """One recommendation as the profile shows it."""
    return {
        "recommendationId": r.recommendation_id,
        "createdAt": _iso(r.created_at),
        "flowKey": r.flow_key,
        "flowVersion": r.flow_version,
        "channel": r.channel,
        "group": r.group,
        "offers": [{"rank": it.rank, "offerId": it.offer_id, "score": it.score} for it in r.items],
    }


def customer_profile(
    host: HostAPI, store: Store, tenant_id: str, customer_id: str, as_of: datetime
) -> dict[str, Any] | None:
    """The profile of ``customer_id`` in ``tenant_id`` as of ``as_of`` (interactions and
    recommendations up to then), or None when the tenant has no such customer (neither an
    interaction nor a recommendation)."""
    summary = store.get_customer_summary(tenant_id, customer_id)
    latest = store.customer_recommendations(tenant_id, customer_id, 100)
    if summary is None and not latest:
        return None
    recommendations = [r for r in latest if r.created_at <= as_of][:RECENT_RECOMMENDATIONS]
    interactions = [
        i for i in store.iter_interactions(tenant_id, customer_id) if i.occurred_at <= as_of
    ]
    interactions.sort(key=lambda i: (i.occurred_at, i.interaction_id), reverse=True)
    sections, failed = plugin_sections(host, tenant_id, customer_id, as_of)
    return {
        "customerId": customer_id,
        "asOf": _iso(as_of),
        "summary": None
        if summary is None
        else {
            "interactions": summary.interactions,
            "impressions": summary.impressions,
            "positive": summary.positive,
            "negative": summary.negative,
            "neutral": summary.neutral,
            "conversions": summary.conversions,
            "totalValue": summary.total_value,
            "firstAt": _iso(summary.first_at),
            "lastAt": _iso(summary.last_at),
            "lastOutcome": summary.last_outcome,
        },
        "recentInteractions": [interaction_json(i) for i in interactions[:RECENT_INTERACTIONS]],
        "recentRecommendations": [recommendation_json(r) for r in recommendations],
        "sections": sections,
        "failedSections": failed,
    }


def plugin_sections(
    host: HostAPI, tenant_id: str, customer_id: str, as_of: datetime
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Every plugin's ``customer_profile_sections`` answer, merged; a plugin that raises or
    answers something not JSON is left out and listed with the reason."""
    sections: dict[str, Any] = {}
    failed: list[dict[str, str]] = []
    for impl in implementations(host.pm, "customer_profile_sections"):
        plugin = impl.plugin_name
        try:
            answer = call_impl(
                impl, host=host, tenant_id=tenant_id, customer_id=customer_id, as_of=as_of
            )
        except Exception as exc:
            log.exception("plugin %r failed in customer_profile_sections", plugin)
            failed.append({"plugin": plugin, "reason": f"{type(exc).__name__}"})
            continue
        if answer is None:
            continue
        if not isinstance(answer, dict):
            failed.append({"plugin": plugin, "reason": "the answer is not a mapping"})
            continue
        for name, section in answer.items():
            problem = document_problem(section) if isinstance(name, str) else "bad name"
            if problem is not None or not isinstance(section, dict):
                failed.append({"plugin": plugin, "reason": f"section {name!r} is not JSON"})
            elif name in sections:
                failed.append({"plugin": plugin, "reason": f"section {name!r} answered twice"})
            else:
                sections[name] = section
    return sections, failed


__all__ = ["customer_profile", "interaction_json", "plugin_sections", "recommendation_json"]
