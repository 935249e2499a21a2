"""Control groups: the setting and the assignment rule (pure, stable across processes).

A customer's *draw* is a number in [0, 1) computed from the tenant id, the customer id and the
setting's salt: the first 8 bytes of ``SHA-256("nextbest-control" US tenant US customer US salt)``
(UTF-8, ``US`` the unit separator U+001F, which no id may contain) taken as a big-endian integer,
shifted to its top 53 bits and divided by 2**53. The customer is in the control group when the
draw is below ``share``. The same customer gets the same group in every process, on every
restart and on every store; raising the share keeps every control customer in control; changing
the salt re-draws everyone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

#: The group names, as stored with a recommendation and returned as ``group``.
Group = Literal["control", "treatment"]
CONTROL: Final = "control"
TREATMENT: Final = "treatment"
#: The tenant setting (and the flow setting's camelCase key) holding a ControlGroupSettings.
CONTROL_GROUP_SETTING = "controlGroup"
#: The largest share of customers a control group may hold: beyond half the "control" would be
#: the main population and the treatment the experiment.
MAX_CONTROL_SHARE = 0.5
#: The longest salt.
MAX_SALT_LENGTH = 256

_SEP = "\x1f"
_PREFIX = "nextbest-control"
_TOP_53_BITS = 11  # 64 - 53: a double holds 53 bits exactly
_SCALE = float(2**53)


class ControlGroupSettings(BaseModel):
    """A control group: ``share`` of the customers (0 to 0.5) receive no offer (``mode: none``)
    or one eligible offer picked at random (``mode: random``); ``salt`` re-draws the groups
    when changed. Set per tenant (tenant setting ``controlGroup``) or per flow (flow setting
    ``controlGroup``, which overrides the tenant's)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    share: float = Field(ge=0.0, le=MAX_CONTROL_SHARE, allow_inf_nan=False)
    salt: str = Field("", max_length=MAX_SALT_LENGTH)
    mode: Literal["none", "random"] = "none"

    @field_validator("share", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number from 0 to 0.5")
        return value

    @field_validator("salt")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("must not contain control characters")
        return value


def control_group_problem(value: object) -> str | None:
    """Why ``value`` cannot be a ``controlGroup`` setting, or None (the first problem, with the
    field: ``share must be ...``)."""
    if not isinstance(value, dict):
        return "controlGroup must be an object: {share: 0 to 0.5, salt, mode: none|random}"
    try:
        ControlGroupSettings.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"controlGroup.{where}: {error['msg']}"
    return None


def _digest(*parts: str) -> bytes:
    return hashlib.sha256(_SEP.join((_PREFIX, *parts)).encode("utf-8")).digest()


def assignment_draw(tenant_id: str, customer_id: str, salt: str) -> float:
    """The customer's draw, uniform in [0, 1) (see the module docstring for the rule)."""
    top = int.from_bytes(_digest(tenant_id, customer_id, salt)[:8], "big") >> _TOP_53_BITS
    return top / _SCALE


def random_pick_seed(
    tenant_id: str, customer_id: str, salt: str, flow_key: str, as_of: datetime
) -> int:
    """The seed of a control customer's random offer (``mode: random``): the same hash over
    the customer's key and the decision (flow key and ``asOf``), so re-running a decision
    with the same ``asOf`` picks the same offer, and another decision may pick another."""
    digest = _digest(tenant_id, customer_id, salt, flow_key, as_of.isoformat())
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, slots=True)
class Assignment:
    """A customer's group under a setting, with what explain shows of why."""

    group: Group
    draw: float
    settings: ControlGroupSettings
    source: Literal["flow", "tenant"]

    def explain(self) -> dict[str, Any]:
        """Why the customer is in its group (the trace's ``controlGroup``)."""
        relation = "<" if self.group == CONTROL else ">="
        action = {
            "none": "receives no offer",
            "random": "receives one eligible offer picked at random",
        }[self.settings.mode]
        reason = (
            f"draw {self.draw:.6f} {relation} share {self.settings.share} "
            f"({self.source} setting controlGroup)"
        )
        if self.group == CONTROL:
            reason += f": control group, {action}"
        else:
            reason += ": treatment group, ranked by the flow"
        return {
            "group": self.group,
            "draw": self.draw,
            "share": self.settings.share,
            "mode": self.settings.mode,
            "source": self.source,
            "reason": reason,
        }


def assign(
    settings: ControlGroupSettings,
    tenant_id: str,
    customer_id: str,
    *,
    source: Literal["flow", "tenant"] = "flow",
) -> Assignment:
    """The customer's group under ``settings``: control when the draw is below the share."""
    draw = assignment_draw(tenant_id, customer_id, settings.salt)
    group: Group = CONTROL if draw < settings.share else TREATMENT
    return Assignment(group, draw, settings, source)
