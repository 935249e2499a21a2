"""What plugins register, and the Registry that collects it from the register_* hooks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from .errors import PluginError

if TYPE_CHECKING:
    import pluggy

    from .models.offers import Offer
    from .models.request import DecisionRequest

Stage = Literal["eligibility", "fit", "match", "ranking"]
Dimension = Literal["propensity", "relevance", "impact", "emphasis"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CONTEXT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*\.?$")


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What a rule evaluator returns.

    ``passed``: whether the offer satisfies the rule. ``multiplier``: for soft (``match``) rules,
    the factor applied to the offer's fitMultiplier when the rule does not pass (None: the
    stage's default). ``reason``: readable text for the trace; ``inputs``: the values the rule saw.
    """

    passed: bool
    multiplier: float | None = None
    reason: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)


class RuleContext:
    """What a rule evaluator sees: the offer, the request and lazily resolved context names."""

    __slots__ = ("_lookup", "as_of", "computed", "explain", "offer", "request", "scope")

    def __init__(
        self,
        offer: Offer,
        request: DecisionRequest,
        lookup: Callable[[str], Any],
        computed: Mapping[str, Any],
        as_of: datetime,
        explain: bool = True,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        self.offer = offer
        self.request = request
        self._lookup = lookup
        self.computed = computed
        self.as_of = as_of
        #: whether the decision is being explained; evaluators may skip building reason text
        self.explain = explain
        #: every name the flow references, resolved for this offer (what formulas see)
        self.scope = scope

    def get(self, name: str) -> Any:
        """Value of a context name (``customer.x``, ``attributes.y``, ...) or None."""
        scope = self.scope
        if scope is not None and name in scope:
            return scope[name]
        return self._lookup(name)


RuleEvaluator = Callable[[Any, RuleContext], "RuleOutcome | bool"]


@dataclass(frozen=True)
class RuleType:
    """A qualification rule type.

    ``config_model`` validates the rule's ``config`` at load time (field errors name the path);
    ``prepare(config, compiler)``, if given, runs once at load time and returns what
    ``evaluate`` receives instead of the config (e.g. a compiled formula: use
    ``compiler.compile(source)``, whose errors become load errors); ``evaluate(prepared, ctx)``
    runs per offer at decision time; ``requires(config)`` names the context names the rule
    reads so providers resolve them up front; ``default_stage`` applies when a rule gives none.
    ``per_customer(prepared)`` returning True declares that the result depends on the customer
    and request only, not on the offer: the engine then evaluates each distinct such rule once
    per decision and reuses the result for every offer.
    """

    name: str
    config_model: type[BaseModel]
    evaluate: RuleEvaluator
    default_stage: Stage = "eligibility"
    requires: Callable[[Any], Iterable[str]] | None = None
    prepare: Callable[[Any, Any], Any] | None = None
    per_customer: Callable[[Any], bool] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What a context provider receives: who the decision is for, and when."""

    tenant_id: str
    request: DecisionRequest
    as_of: datetime
    names: frozenset[str]
    host: Any


@dataclass(frozen=True)
class ContextProvider:
    """Supplies context names, resolved at most once per decision and only when referenced.

    ``names`` are exact names; ``prefixes`` end with a dot and cover every name below them.
    ``resolve`` returns a mapping of name to value; names it leaves out resolve to None.
    """

    name: str
    resolve: Callable[[ContextRequest], Mapping[str, Any]]
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    description: str = ""

    def provides(self, name: str) -> bool:
        """Whether this provider supplies ``name``."""
        return name in self.names or any(name.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class ValueRequest:
    """What a value provider receives for one candidate."""

    offer: Offer
    config: BaseModel
    lookup: Callable[[str], Any]
    computed: Mapping[str, Any]


@dataclass(frozen=True)
class ValueProvider:
    """Contributes to one PRIE dimension of the ``formula`` score method.

    ``config_model``'s fields become optional fields of score nodes and ranking profiles; the
    provider runs for a score node only when at least one of them is set there.
    ``mode="exponent"``: ``compute`` returns a number added to the dimension's exponent (None:
    the term is skipped, never a penalty). ``mode="value"``: ``compute`` returns the
    dimension's base value when the offer does not carry one (e.g. a propensity model).
    ``requires(config)`` names the context names it reads.
    """

    name: str
    dimension: Dimension
    config_model: type[BaseModel]
    compute: Callable[[ValueRequest], float | None]
    mode: Literal["exponent", "value"] = "exponent"
    requires: Callable[[Any], Iterable[str]] | None = None
    description: str = ""


@dataclass
class Registry:
    """Everything the loaded plugins registered, with the plugin that registered each item."""

    rule_types: dict[str, RuleType] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    context_providers: list[ContextProvider] = field(default_factory=list)
    value_providers: dict[str, ValueProvider] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def owner(self, kind: str, name: str) -> str:
        """The plugin that registered ``name`` of ``kind`` (rule_type, function, ...)."""
        return self.owners.get((kind, name), "?")

    def provider_for(self, name: str) -> ContextProvider | None:
        """The context provider that supplies ``name``, if any."""
        for provider in self.context_providers:
            if provider.provides(name):
                return provider
        return None


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every register_* hook, one plugin at a time, and return what they registered."""
    from .plugins import call_impl

    reg = Registry()
    hooks = (
        (pm.hook.register_rule_types, _rule_type_cb),
        (pm.hook.register_functions, _function_cb),
        (pm.hook.register_context, _context_cb),
        (pm.hook.register_value_providers, _value_cb),
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


def _rule_type_cb(reg: Registry, plugin: str) -> Callable[[RuleType], None]:
    def register(rule_type: RuleType) -> None:
        if not isinstance(rule_type, RuleType):
            raise PluginError(f"plugin {plugin!r}: register_rule_types expects a RuleType")
        if not _NAME.match(rule_type.name):
            raise PluginError(f"plugin {plugin!r}: invalid rule type name {rule_type.name!r}")
        _claim(reg, "rule_type", rule_type.name, plugin)
        reg.rule_types[rule_type.name] = rule_type

    return register


def _function_cb(reg: Registry, plugin: str) -> Callable[[str, Callable[..., Any]], None]:
    def register(name: str, function: Callable[..., Any]) -> None:
        if not _NAME.match(name) or not callable(function):
            raise PluginError(
                f"plugin {plugin!r}: register_functions needs a name and a callable, "
                f"got {name!r}, {function!r}"
            )
        _claim(reg, "function", name, plugin)
        reg.functions[name] = function

    return register


def _context_cb(reg: Registry, plugin: str) -> Callable[[ContextProvider], None]:
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


def _value_cb(reg: Registry, plugin: str) -> Callable[[ValueProvider], None]:
    def register(provider: ValueProvider) -> None:
        if not isinstance(provider, ValueProvider):
            raise PluginError(
                f"plugin {plugin!r}: register_value_providers expects a ValueProvider"
            )
        _claim(reg, "value_provider", provider.name, plugin)
        for fname, finfo in provider.config_model.model_fields.items():
            _claim(reg, "score config field", finfo.alias or fname, plugin)
        reg.value_providers[provider.name] = provider

    return register
