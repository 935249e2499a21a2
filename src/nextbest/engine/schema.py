"""Builds the flow document model from the node types and what plugins registered.

Each node type (:data:`~nextbest.engine.node_types.NODE_TYPES`) declares its config; rule
configs form a discriminated union on ``ruleType``; value providers' config fields become
optional fields of score nodes and ranking profiles. The result validates flow documents with
errors located by path and exports the JSON Schema (``nextbest schema flow``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from ..models.base import CamelModel
from ..models.flows import SLUG, FlowSettings, RankingProfile, Rule
from ..plugin_api import Registry
from ..store import MAX_ID_LENGTH
from .node_types import NODE_TYPES
from .nodes.base import SchemaParts


def _model(name: str, base: type[BaseModel], fields: dict[str, Any]) -> type[BaseModel]:
    """create_model with fields built at run time (kept in one place for the type checker)."""
    return create_model(name, __base__=base, **fields)


def _optional_fields(registry: Registry) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for provider in registry.value_providers.values():
        for fname, finfo in provider.config_model.model_fields.items():
            optional = FieldInfo.merge_field_infos(finfo, default=None)
            annotation: Any = finfo.annotation
            fields[fname] = (annotation | None, optional)
    return fields


def _no_rule_types(value: str) -> str:
    raise ValueError(
        f"unknown rule type {value!r}: no rule types are registered "
        "(is the builtin plugin disabled by NEXTBEST_DISABLE_PLUGINS?)"
    )


def _rule_union(registry: Registry) -> Any:
    models = []
    for name, rule_type in sorted(registry.rule_types.items()):
        fields: dict[str, Any] = {
            "rule_type": (Literal[name], Field(alias="ruleType")),
            # An omitted config is validated as {} so missing required fields are reported
            # at their path; a default_factory raising would lose the location.
            "config": (rule_type.config_model, Field(default={}, validate_default=True)),
        }
        models.append(_model(f"Rule_{name}", Rule, fields))
    if not models:  # e.g. the builtin plugin disabled: every rule is an error
        checked: Any = Annotated[str, AfterValidator(_no_rule_types)]
        return _model("NoRuleTypes", Rule, {"rule_type": (checked, Field(alias="ruleType"))})
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="rule_type")]  # noqa: UP007


def build_flow_model(registry: Registry) -> type[BaseModel]:
    """The pydantic model of a flow document, given the registered rule types and providers."""
    provider_fields = _optional_fields(registry)
    profile_model: Any = _model("RankingProfile", RankingProfile, provider_fields)
    parts = SchemaParts(registry, profile_model, provider_fields, _rule_union(registry))
    nodes = [
        _model(
            f"{node_type.name.title().replace('_', '')}Node",
            CamelModel,
            {
                "type": (Literal[node_type.name], ...),
                "id": (str, Field(min_length=1, pattern=SLUG)),
                "config": node_type.config(parts),
            },
        )
        for node_type in NODE_TYPES.values()
    ]
    node_union: Any = Annotated[Union[tuple(nodes)], Field(discriminator="type")]  # noqa: UP007
    return _model(
        "Flow",
        CamelModel,
        {
            "key": (str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=SLUG)),
            "name": (str, ""),
            "description": (str, ""),
            "version": (Literal[2], ...),
            "settings": (FlowSettings, Field(default_factory=FlowSettings)),
            "profiles": (dict[str, profile_model], Field(default_factory=dict)),
            "nodes": (list[node_union], Field(min_length=1)),
        },
    )


def tag_values(registry: Registry) -> frozenset[str]:
    """Discriminator tags that pydantic inserts into error locations (dropped when printing)."""
    return frozenset(NODE_TYPES) | frozenset(registry.rule_types)
