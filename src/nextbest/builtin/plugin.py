"""The built-in plugin: rule types, formula functions and the request context provider."""

from __future__ import annotations

from typing import Any

from ..expressions import DEFAULT_FUNCTIONS
from ..hookspecs import hookimpl
from .context import REQUEST_CONTEXT
from .rules import RULE_TYPES


@hookimpl
def register_rule_types(register: Any) -> None:
    for rule_type in RULE_TYPES:
        register(rule_type)


@hookimpl
def register_functions(register: Any) -> None:
    for name, function in DEFAULT_FUNCTIONS.items():
        register(name, function)


@hookimpl
def register_context(register: Any) -> None:
    register(REQUEST_CONTEXT)
