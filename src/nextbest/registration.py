"""Fills the :class:`~nextbest.plugin_api.Registry` from the register_* hooks, one plugin at a
time, so every error names its plugin and a name claimed twice names both plugins."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pluggy

from .errors import PluginError
from .hookcalls import call_impl
from .plugin_api import (
    ContextProvider,
    RegisterContext,
    RegisterCustomerData,
    RegisterFunction,
    RegisterReportPage,
    RegisterRuleType,
    RegisterValueProvider,
    Registry,
    ReportPage,
    RuleType,
    ValueProvider,
)
from .store.limits import id_problem

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_CONTEXT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*\.?$")


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every register_* hook, one plugin at a time, and return what they registered."""
    reg = Registry()
    hooks = (
        (pm.hook.register_rule_types, _rule_type_cb),
        (pm.hook.register_functions, _function_cb),
        (pm.hook.register_context, _context_cb),
        (pm.hook.register_value_providers, _value_cb),
        (pm.hook.register_customer_data, _customer_data_cb),
        (pm.hook.register_report_pages, _report_page_cb),
    )
    for hook, make_cb in hooks:
        # get_hookimpls() lists implementations in loading order (pluggy's own call order is
        # the reverse); call them one plugin at a time so every error names its plugin, and a
        # later plugin claiming a taken name is the one reported.
        for impl in hook.get_hookimpls():
            try:
                call_impl(impl, register=make_cb(reg, impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {impl.function.__name__}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    return reg


def _claim(reg: Registry, kind: str, name: str, plugin: str) -> None:
    if (kind, name) in reg.owners:
        raise PluginError(
            f"plugin {plugin!r} registers {kind.replace('_', ' ')} {name!r}, "
            f"already registered by plugin {reg.owners[(kind, name)]!r}"
        )
    reg.owners[(kind, name)] = plugin


def _rule_type_cb(reg: Registry, plugin: str) -> RegisterRuleType:
    def register(rule_type: RuleType) -> None:
        if not isinstance(rule_type, RuleType):
            raise PluginError(f"plugin {plugin!r}: register_rule_types expects a RuleType")
        if not _NAME.match(rule_type.name):
            raise PluginError(f"plugin {plugin!r}: invalid rule type name {rule_type.name!r}")
        _claim(reg, "rule_type", rule_type.name, plugin)
        reg.rule_types[rule_type.name] = rule_type

    return register


def _function_cb(reg: Registry, plugin: str) -> RegisterFunction:
    def register(name: str, function: Callable[..., Any]) -> None:
        if not _NAME.match(name) or not callable(function):
            raise PluginError(
                f"plugin {plugin!r}: register_functions needs a name and a callable, "
                f"got {name!r}, {function!r}"
            )
        _claim(reg, "function", name, plugin)
        reg.functions[name] = function

    return register


def _context_cb(reg: Registry, plugin: str) -> RegisterContext:
    def register(provider: ContextProvider) -> None:
        if not isinstance(provider, ContextProvider):
            raise PluginError(f"plugin {plugin!r}: register_context expects a ContextProvider")
        bad = [
            n
            for n in (*provider.names, *provider.prefixes)
            if not _CONTEXT_NAME.match(n) or n.startswith("offer.")
        ]
        bad += [p for p in provider.prefixes if not p.endswith(".")]
        if bad or not (provider.names or provider.prefixes):
            raise PluginError(
                f"plugin {plugin!r}: context provider {provider.name!r} needs dotted names "
                f"or prefixes ending in '.', not under 'offer.' (bad: {bad})"
            )
        for name in (*provider.names, *provider.prefixes):
            _claim(reg, "context name", name, plugin)
        reg.owners[("context", provider.name)] = plugin
        reg.context_providers.append(provider)

    return register


def _value_cb(reg: Registry, plugin: str) -> RegisterValueProvider:
    def register(provider: ValueProvider) -> None:
        if not isinstance(provider, ValueProvider):
            raise PluginError(
                f"plugin {plugin!r}: register_value_providers expects a ValueProvider"
            )
        if provider.compute_batch is not None and provider.mode != "estimate":
            raise PluginError(
                f"plugin {plugin!r}: value provider {provider.name!r}: compute_batch is for "
                "mode 'estimate' only"
            )
        if provider.mode == "estimate" and provider.dimension != "propensity":
            raise PluginError(
                f"plugin {plugin!r}: value provider {provider.name!r}: mode 'estimate' is "
                "for the propensity dimension only"
            )
        _claim(reg, "value_provider", provider.name, plugin)
        for fname, finfo in provider.config_model.model_fields.items():
            _claim(reg, "score config field", finfo.alias or fname, plugin)
        reg.value_providers[provider.name] = provider

    return register


def _customer_data_cb(reg: Registry, plugin: str) -> RegisterCustomerData:
    def register(namespace: str) -> None:
        problem = id_problem(namespace)
        if problem is not None:
            raise PluginError(
                f"plugin {plugin!r}: register_customer_data needs a plugin-document namespace; "
                f"{namespace!r} {problem}"
            )
        _claim(reg, "customer data namespace", namespace, plugin)
        reg.customer_data.append(namespace)

    return register


def _report_page_cb(reg: Registry, plugin: str) -> RegisterReportPage:
    def register(page: ReportPage) -> None:
        if not isinstance(page, ReportPage):
            raise PluginError(f"plugin {plugin!r}: register_report_pages expects a ReportPage")
        if not _PAGE_NAME.match(page.name):
            raise PluginError(
                f"plugin {plugin!r}: report page name {page.name!r} must be 1-40 characters "
                "of a-z, 0-9 and '-', starting with a letter"
            )
        if not page.title.strip() or not callable(page.render):
            raise PluginError(
                f"plugin {plugin!r}: report page {page.name!r} needs a title and a callable render"
            )
        if isinstance(page.order, bool) or not isinstance(page.order, int):
            raise PluginError(f"plugin {plugin!r}: report page {page.name!r}: order must be an int")
        _claim(reg, "report page", page.name, plugin)
        reg.report_pages[page.name] = page

    return register
