"""The types a plugin works with: what it registers, what those receive, and the host it sees.

- What ``register_*`` hooks register: :class:`RuleType` (with :class:`RuleContext` and
  :class:`RuleOutcome`), :class:`ContextProvider` (with :class:`ContextRequest`) and
  :class:`ValueProvider` (with :class:`ValueRequest`, or :class:`ValueBatch` for a whole
  decision), and the ``register`` callbacks' types.
- :class:`Registry`: everything the loaded plugins registered, with the plugin of each item
  (including the plugin-document namespaces that hold per-customer data).
- :class:`HostAPI`: the part of :class:`~nextbest.Host` plugins may rely on.
- :class:`FormulaCompiler`: what ``RuleType.prepare`` receives to compile formulas.
- :class:`ContextChange`: what a plugin tells the host when customers' context values changed
  (``host.context_changed``), and :class:`TriggerEvent`, what ``trigger_fired`` receives.
- :class:`ReportPage` (``register_report_pages``) and :class:`PageRequest`, what its render
  callable receives; it returns blocks of ``nextbest.report_blocks``.

This module sits below the engine and the Host, so every layer can name these types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from .errors import PageInputError
from .report_blocks import TableQuery

if TYPE_CHECKING:
    import pluggy

    from .expressions import CompiledExpression
    from .models.offers import Offer
    from .models.request import DecisionRequest
    from .report_blocks import Block
    from .store.base import Interaction, Store

T = TypeVar("T")

Stage = Literal["eligibility", "fit", "match", "ranking"]
Dimension = Literal["propensity", "relevance", "impact", "emphasis"]


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
    """What a rule evaluator sees: the offer, the request and lazily resolved context names,
    and who the decision is for (``tenant_id``) on which ``host``."""

    __slots__ = (
        "_lookup",
        "as_of",
        "computed",
        "explain",
        "host",
        "offer",
        "request",
        "scope",
        "tenant_id",
    )

    def __init__(
        self,
        offer: Offer,
        request: DecisionRequest,
        lookup: Callable[[str], Any],
        computed: Mapping[str, Any],
        as_of: datetime,
        explain: bool = True,
        scope: Mapping[str, Any] | None = None,
        *,
        tenant_id: str = "",
        host: HostAPI | None = None,
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
        self.tenant_id = tenant_id
        #: the deciding host (its ``plugin_state`` and ``store``); None outside a decision
        self.host = host

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
    prepare: Callable[[Any, FormulaCompiler], Any] | None = None
    per_customer: Callable[[Any], bool] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What a context provider receives: who the decision is for, and when."""

    tenant_id: str
    request: DecisionRequest
    as_of: datetime
    names: frozenset[str]
    host: HostAPI


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
    """What a value provider receives for one candidate (and the tenant and host deciding)."""

    offer: Offer
    config: BaseModel
    lookup: Callable[[str], Any]
    computed: Mapping[str, Any]
    tenant_id: str = ""
    host: HostAPI | None = None
    #: the flow's ``defaultPropensity`` (what the dimension falls back to without a value)
    default: float | None = None
    #: the candidate's annotations (``Candidate.annotations``), for a provider to say what it
    #: used (namespaced by the provider's plugin); stored with the recommendation's offer
    annotations: dict[str, Any] | None = None
    #: the time the decision is made as of (seeds reproducible random draws)
    as_of: datetime | None = None
    #: the exponent of the provider's dimension in the score (1 for the ``propensity`` method)
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ValueBatch:
    """What a value provider's ``compute_batch`` receives: every candidate of a score node in
    one decision (``offers`` and their ``annotations``, aligned), with what ``ValueRequest``
    carries once. ``lookup`` resolves customer-level names only (the context, the request)."""

    offers: Sequence[Offer]
    config: BaseModel
    lookup: Callable[[str], Any]
    annotations: Sequence[dict[str, Any]]
    tenant_id: str = ""
    host: HostAPI | None = None
    default: float | None = None
    as_of: datetime | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class ValueProvider:
    """Contributes to one PRIE dimension of the ``formula`` score method.

    ``config_model``'s fields become optional fields of score nodes and ranking profiles; the
    provider runs for a score node only when at least one of them is set there.
    ``mode="exponent"``: ``compute`` returns a number added to the dimension's exponent (None:
    the term is skipped, never a penalty). ``mode="value"``: ``compute`` returns the
    dimension's base value when the offer does not carry one (e.g. a propensity model).
    ``mode="estimate"`` (``propensity`` only): ``compute`` returns the dimension's base value
    even when the offer carries one (a learned estimate for which the offer's own value is the
    prior); None falls back to the offer's value. ``requires(config)`` names the context names
    it reads.
    """

    name: str
    dimension: Dimension
    config_model: type[BaseModel]
    compute: Callable[[ValueRequest], float | None]
    mode: Literal["exponent", "value", "estimate"] = "exponent"
    requires: Callable[[Any], Iterable[str]] | None = None
    description: str = ""
    #: ``estimate`` mode only: every candidate's value in one call (a sequence aligned with
    #: ``ValueBatch.offers``; None entries fall back to the offer's value), used instead of
    #: ``compute`` when the score node has one profile and no propensity formula
    compute_batch: Callable[[ValueBatch], Sequence[float | None]] | None = None


@dataclass
class Registry:
    """Everything the loaded plugins registered, with the plugin that registered each item."""

    rule_types: dict[str, RuleType] = field(default_factory=dict)
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    context_providers: list[ContextProvider] = field(default_factory=list)
    value_providers: dict[str, ValueProvider] = field(default_factory=dict)
    #: Plugin-document namespaces whose keys are customer ids (``register_customer_data``):
    #: forgetting a customer deletes the customer's document in each, in the same transaction.
    customer_data: list[str] = field(default_factory=list)
    #: Report pages by name (``register_report_pages``), shown in ``order``.
    report_pages: dict[str, ReportPage] = field(default_factory=dict)
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


@dataclass(frozen=True)
class ContextChange:
    """Customers whose context values changed, told to the host by the plugin that provides
    them (``host.context_changed(tenant_id, change)``) after the new values were committed.

    ``customer_ids`` are the customers; ``values`` maps context names to their new values, one
    column per name aligned with ``customer_ids`` (lists or numpy arrays); ``previous`` maps
    names to the values before the change where the notifier knows them (same alignment; a
    missing name or a None entry means unknown). ``provider`` is the name of the context
    provider the values come from. Names a listener needs that are not in ``values`` are
    resolved through their providers one customer at a time, so a notifier passes every name
    it supplies. ``as_of`` is the time the values hold for (epoch seconds).
    """

    customer_ids: Sequence[str]
    values: Mapping[str, Sequence[Any]]
    as_of: float
    provider: str = ""
    previous: Mapping[str, Sequence[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerEvent:
    """A trigger firing as committed to the store (what ``trigger_fired`` receives).

    ``payload`` is the event's JSON document: ``id``, ``type`` (``trigger.fired``), ``time``,
    ``tenantId``, ``triggerKey``, ``customerId``, ``values`` and ``previousValues`` (every name
    the condition read), ``context`` (the context records read, by provider), ``offers`` (with
    ``recommendationId``, when the trigger runs a flow) and ``actions``.
    """

    event_id: str
    tenant_id: str
    trigger_key: str
    customer_id: str
    fired_at: float
    payload: Mapping[str, Any]


#: The most rows a table's CSV export holds (``PageRequest.table`` with ``csv``).
CSV_MAX_ROWS = 5000
#: The most rows one page of a table shows.
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class PageRequest:
    """What a report page's render callable receives.

    ``host`` (its ``store`` holds the tenant's data), ``tenant_id`` (the signed-in tenant: a
    page shows nothing of any other), ``params`` (the query parameters, text), ``as_of`` (the
    time the page is about, UTC), ``offline`` (rendered for the one-file export: no server
    will answer forms or links, so every table shows its first page) and ``csv_table`` (the
    id of the table whose CSV is being exported, else None).
    """

    host: HostAPI
    tenant_id: str
    params: Mapping[str, str]
    as_of: datetime
    offline: bool = False
    csv_table: str | None = None

    def param(self, name: str, default: str | None = None) -> str | None:
        """The query parameter ``name`` (stripped), or ``default`` when absent or blank."""
        value = self.params.get(name)
        if value is None or not value.strip():
            return default
        return value.strip()

    def int_param(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """An integer query parameter in [minimum, maximum]; else ``PageInputError``."""
        raw = self.param(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise PageInputError(f"query.{name}", f"must be an integer, got {raw[:40]!r}") from None
        if not minimum <= value <= maximum:
            raise PageInputError(f"query.{name}", f"must be between {minimum} and {maximum}")
        return value

    def table(
        self,
        table_id: str,
        *,
        sortable: Sequence[str],
        default_sort: str,
        descending: bool = True,
        page_size: int = 25,
    ) -> TableQuery:
        """The rows of table ``table_id`` to return, from ``<id>.sort`` (one of ``sortable``),
        ``<id>.desc`` (``1``/``0``) and ``<id>.page`` (from 1). For the table's CSV export:
        the first :data:`CSV_MAX_ROWS` rows in the requested order; offline: page 1."""
        if default_sort not in sortable:
            raise ValueError(f"table {table_id!r}: default_sort must be one of sortable")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"table {table_id!r}: page_size must be in 1..{MAX_PAGE_SIZE}")
        sort = self.param(f"{table_id}.sort", default_sort) or default_sort
        if sort not in sortable:
            raise PageInputError(f"query.{table_id}.sort", f"must be one of {', '.join(sortable)}")
        desc_raw = self.param(f"{table_id}.desc")
        if desc_raw not in (None, "0", "1"):
            raise PageInputError(f"query.{table_id}.desc", "must be 0 or 1")
        desc = descending if desc_raw is None else desc_raw == "1"
        if self.csv_table == table_id:
            return TableQuery(table_id, sort, desc, 1, CSV_MAX_ROWS, csv=True)
        page = (
            1
            if self.offline
            else self.int_param(f"{table_id}.page", 1, minimum=1, maximum=1_000_000)
        )
        return TableQuery(table_id, sort, desc, page, page_size)


@dataclass(frozen=True)
class ReportPage:
    """A page of the report (``register_report_pages``).

    ``name``: its URL segment (``/ui/<name>``) and anchor in the export: 1-40 characters of
    a-z, 0-9 and '-', unique over all plugins. ``title``: the heading and the nav entry.
    ``order``: the place in the nav (lower first; ties by name; the host's pages use 100
    (overview) to 900, plugins choose their own). ``render(PageRequest)`` returns the page's
    blocks (``nextbest.report_blocks``), never HTML; it may raise ``PageInputError`` (400) or
    ``PageNotFoundError`` (404). It reads and never writes. ``description``: a line under the
    title.
    """

    name: str
    title: str
    order: int
    render: Callable[[PageRequest], Sequence[Block]]
    description: str = ""


class FormulaCompiler(Protocol):
    """Compiles formulas at one place of a flow (what ``RuleType.prepare`` receives)."""

    def compile(self, source: str) -> CompiledExpression:
        """Compile ``source``; an unknown name or function raises ``ExpressionError``, which
        becomes a load error located at the rule's field."""
        ...

    def is_known(self, name: str) -> bool:
        """Whether a formula at this place may use the context name ``name``."""
        ...


class HostAPI(Protocol):
    """What plugins may rely on of the :class:`~nextbest.Host`: hooks, context providers
    (``ContextRequest.host``), rule evaluators (``RuleContext.host``), value providers
    (``ValueRequest.host``) and extension points (``DecisionView.host``) all receive it.

    ``store`` is the host's storage backend (None for file-only use). ``plugin_state(key,
    factory)`` keeps one object per host and key (a service, a cache), created by
    ``factory()`` on first use: plugins keep their per-host state there instead of in globals.
    Decisions over a store's published flows are the job of the service that owns the store
    (:class:`nextbest.service.DecisionService`), not of this protocol.
    """

    @property
    def store(self) -> Store | None:
        """The host's store, or None when the host was created without one."""
        ...

    @property
    def registry(self) -> Registry:
        """What the loaded plugins registered: rule types, functions, providers, owners."""
        ...

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager (to look up other plugins' hook implementations)."""
        ...

    def plugin_state(self, key: str, factory: Callable[[], T]) -> T:
        """The object kept under ``key`` for this host, created by ``factory()`` once."""
        ...

    def notify_outcome(self, tenant_id: str, interaction: Interaction) -> list[tuple[str, str]]:
        """Call every plugin's ``outcome_recorded`` hook for an outcome committed to
        ``store`` (a plugin that records outcomes itself calls this after its commit)."""
        ...

    def notify_interactions_changed(
        self,
        tenant_id: str,
        removed: Sequence[Interaction],
        added: Sequence[Interaction],
    ) -> list[tuple[str, str]]:
        """Call every plugin's ``interactions_changed`` hook after recorded interactions were
        deleted or corrected in ``store`` (after the commit)."""
        ...

    def notify_customer_forgotten(self, tenant_id: str, customer_id: str) -> list[tuple[str, str]]:
        """Call every plugin's ``customer_forgotten`` hook after a customer's data was deleted
        from ``store`` (after the commit)."""
        ...

    def context_changed(self, tenant_id: str, change: ContextChange) -> list[tuple[str, str]]:
        """Tell the host that customers' context values changed (after the new values were
        committed): every ``customer_context_changed`` hook is called, among them the host's
        trigger engine, which evaluates the tenant's active triggers for those customers."""
        ...

    def watched_context_names(self, tenant_id: str) -> frozenset[str]:
        """The context names something watches for ``tenant_id`` (the ``watched_context_names``
        hooks: e.g. the names the tenant's active triggers read). A provider recomputes its
        values proactively after an outcome only when one of its names is watched."""
        ...

    def previous_wanted(self, tenant_id: str, change: ContextChange) -> frozenset[str]:
        """Asked by a provider before it commits ``change`` (new values, not yet stored): the
        customers whose current values it should read and pass as ``previous`` with the
        ``context_changed`` call after the commit (the ``context_changing`` hooks: e.g. the
        customers a trigger may fire for)."""
        ...


#: ``register_rule_types(register)``: call ``register(RuleType(...))`` per rule type.
RegisterRuleType = Callable[[RuleType], None]
#: ``register_functions(register)``: call ``register(name, function)`` per formula function.
RegisterFunction = Callable[[str, Callable[..., Any]], None]
#: ``register_context(register)``: call ``register(ContextProvider(...))`` per provider.
RegisterContext = Callable[[ContextProvider], None]
#: ``register_value_providers(register)``: call ``register(ValueProvider(...))`` per provider.
RegisterValueProvider = Callable[[ValueProvider], None]
#: ``register_customer_data(register)``: call ``register(namespace)`` per plugin-document
#: namespace whose keys are customer ids.
RegisterCustomerData = Callable[[str], None]
#: ``register_report_pages(register)``: call ``register(ReportPage(...))`` per page.
RegisterReportPage = Callable[[ReportPage], None]
