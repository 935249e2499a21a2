"""The built-in plugin: rule types, formula functions and the request context provider."""

from __future__ import annotations

from ..expressions import DEFAULT_FUNCTIONS
from ..hookspecs import hookimpl
from ..plugin_api import RegisterContext, RegisterFunction, RegisterRuleType
from .context import REQUEST_CONTEXT
from .rules import RULE_TYPES


@hookimpl
def register_rule_types(register: RegisterRuleType) -> None:
    for rule_type in RULE_TYPES:
        register(rule_type)


@hookimpl
def register_functions(register: RegisterFunction) -> None:
    for name, function in DEFAULT_FUNCTIONS.items():
        register(name, function)


@hookimpl
def register_context(register: RegisterContext) -> None:
    register(REQUEST_CONTEXT)
