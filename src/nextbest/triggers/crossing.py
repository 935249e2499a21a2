"""The crossing rule, pure: what one evaluation does to one customer's state.

- armed and ``when`` true: fire (generation + 1, disarmed), unless the last firing is less than
  the cooldown ago: then the crossing is suppressed (disarmed, no firing, generation kept);
- disarmed and ``rearm`` true (default: ``when`` definitely false): re-arm; a customer never
  re-arms and fires in one evaluation, so a condition that stays true fires once;
- otherwise nothing changes.

``when`` / ``rearm`` are None when the formula could not be evaluated (a null value, say):
unknown never fires and never re-arms.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from ..store import TriggerState

__all__ = ["Transition", "event_id", "recommendation_id", "transition"]

Transition = Literal["fire", "suppress", "rearm"]


def transition(
    state: TriggerState | None,
    when: bool | None,
    rearm: bool | None,
    now: float,
    cooldown_seconds: float,
) -> Transition | None:
    """The transition of one customer's state (None: nothing changes)."""
    armed = state is None or state.armed
    if not armed:
        return "rearm" if rearm is True else None
    if when is not True:
        return None
    last = None if state is None else state.last_fired_at
    if cooldown_seconds > 0 and last is not None and now - last < cooldown_seconds:
        return "suppress"
    return "fire"


def event_id(tenant_id: str, trigger_uid: str, customer_id: str, generation: int) -> str:
    """The deterministic id of a crossing: the same tenant, trigger incarnation, customer and
    generation (the customer's firing count) always give the same id, in any process."""
    text = "\0".join((tenant_id, trigger_uid, customer_id, str(generation)))
    return "evt_" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def recommendation_id(event: str) -> str:
    """The id of the recommendation a firing stores (derived from its event id)."""
    return hashlib.sha256(f"recommendation\0{event}".encode()).hexdigest()[:32]
