"""The node types of flow documents, in one place: the compiler and the flow schema read this.

Node types are the engine's own (the phases of a decision depend on them); plugins extend a
flow through rule types, formula functions, context and value providers, and the hooks that
``extension_point`` nodes call.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .nodes.base import NodeType
from .nodes.compute import COMPUTE
from .nodes.extension import EXTENSION_POINT
from .nodes.filter import FILTER
from .nodes.inventory import INVENTORY
from .nodes.qualify import QUALIFY
from .nodes.rank import RANK
from .nodes.response import RESPONSE
from .nodes.score import SCORE

#: Node type name -> NodeType, in the order flows run them (the order of error messages too).
NODE_TYPES: Mapping[str, NodeType] = MappingProxyType(
    {
        node_type.name: node_type
        for node_type in (
            INVENTORY,
            FILTER,
            QUALIFY,
            COMPUTE,
            SCORE,
            RANK,
            RESPONSE,
            EXTENSION_POINT,
        )
    }
)

__all__ = ["NODE_TYPES", "NodeType"]
