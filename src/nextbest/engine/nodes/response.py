"""The ``response`` node: which computed fields the response carries per offer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...models.flows import ResponseConfig
from ..state import DecisionState
from .base import OUTPUT, BuildContext, NodeType, static_config


@dataclass
class ResponseStep:
    node_id: str
    fields: tuple[str, ...] | None
    node_type: str = "response"

    def run(self, state: DecisionState) -> None:
        state.response_fields = self.fields


def _build(node: Any, ctx: BuildContext) -> ResponseStep:
    return ResponseStep(node.id, node.config.fields)


RESPONSE = NodeType(
    name="response",
    phases=(OUTPUT,),
    config=static_config(ResponseConfig),
    build=_build,
    unique=True,
    description="the computed fields each ranked offer carries in the response",
)
