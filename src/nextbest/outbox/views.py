"""Endpoints and deliveries as JSON (the API's answers and the CLI's output)."""

from __future__ import annotations

from typing import Any

from ..store import Delivery, WebhookEndpoint


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The JSON of an endpoint (never its secret)."""
    until = endpoint.previous_secret_until
    return {
        "id": endpoint.endpoint_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "eventTypes": None if endpoint.event_types is None else list(endpoint.event_types),
        "createdAt": endpoint.created_at.isoformat(),
        "rotatedAt": endpoint.rotated_at.isoformat() if endpoint.rotated_at else None,
        "previousSecretValidUntil": until.isoformat() if until else None,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """The JSON of a delivery."""

    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": delivery.delivery_id,
        "endpointId": delivery.endpoint_id,
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error,
        "lastLatencyMs": delivery.last_latency_ms,
        "responseExcerpt": delivery.response_excerpt,
        "createdAt": delivery.created_at.isoformat(),
        "updatedAt": delivery.updated_at.isoformat(),
        "deliveredAt": iso(delivery.delivered_at),
    }


__all__ = ["delivery_json", "endpoint_json"]
