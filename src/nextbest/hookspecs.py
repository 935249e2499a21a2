"""The plugin contract: every hook nextbest calls, with what it receives and returns.

Plugins implement these with ``@nextbest.hookimpl``. All hooks take keyword arguments only
(pluggy passes them by name), so an implementation may accept just the arguments it needs.
Collecting hooks hand the plugin a ``register`` callback instead of expecting a return value,
so one implementation can register several things and errors can name the plugin.

Every hook here has a section in docs/plugin-hooks.md; a test checks it. The argument types
are the real ones, exported from ``nextbest``, so an implementation can be annotated the same
way and checked by mypy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    import click
    from fastapi import APIRouter

    from .engine.state import DecisionView
    from .models.decision import Candidate, Decision
    from .plugin_api import (
        ContextChange,
        HostAPI,
        RegisterContext,
        RegisterCustomerData,
        RegisterFunction,
        RegisterReportPage,
        RegisterRuleType,
        RegisterValueProvider,
        TriggerEvent,
    )
    from .report_blocks import Block
    from .store.base import Interaction, OutcomeTransaction, Recommendation

hookspec = pluggy.HookspecMarker("nextbest")
hookimpl = pluggy.HookimplMarker("nextbest")


@hookspec
def register_rule_types(register: RegisterRuleType) -> None:
    """Register qualification rule types.

    Called once when a Host is created. Call ``register(RuleType(...))`` for each rule type:
    its name (the flow's ``ruleType``), a pydantic model validating the rule's ``config``, an
    evaluator ``(config, RuleContext) -> RuleOutcome | bool``, its default stage and, optionally,
    a function naming the context names the rule reads. Returns nothing.
    """


@hookspec
def register_functions(register: RegisterFunction) -> None:
    """Register functions usable in formulas (computed fields, ``expression`` rules).

    Called once when a Host is created. Call ``register(name, function)`` for each function.
    Functions receive positional arguments only and should be pure and fast; a raise turns the
    formula's value into null with a trace entry. Returns nothing.
    """


@hookspec
def register_context(register: RegisterContext) -> None:
    """Register lazily resolved context providers.

    Called once when a Host is created. Call ``register(ContextProvider(...))`` with the exact
    names (``customer.score``) and/or name prefixes (``customer.loyalty.``) the provider
    supplies and a ``resolve(ContextRequest) -> Mapping[str, Any]`` function. A provider runs at
    most once per decision, and only when the flow references one of its names. Returns nothing.
    """


@hookspec
def register_value_providers(register: RegisterValueProvider) -> None:
    """Register arbitration value providers for the ``formula`` (PRIE) score method.

    Called once when a Host is created. Call ``register(ValueProvider(...))``. A provider adds an
    exponent term to one PRIE dimension (or supplies a dimension's base value) from its own
    config fields, which become valid fields of score nodes and ranking profiles. Returns nothing.
    """


@hookspec
def register_customer_data(register: RegisterCustomerData) -> None:
    """Declare the plugin-document namespaces that hold per-customer data.

    Called once when a Host is created. Call ``register(namespace)`` for each namespace whose
    document keys are customer ids. Forgetting a customer (``DELETE /api/v1/customers/{id}``,
    ``nextbest customers forget``) deletes the customer's document in each registered
    namespace in the same store transaction as the customer's interactions, summaries and
    recommendations. A namespace registered by two plugins is an error. Returns nothing.
    """


@hookspec
def startup(host: HostAPI) -> None:
    """Called once after a Host is created and all plugins are registered.

    Receives the ``Host``; ``host.store`` is its store (None for file-only use). Create what
    the plugin needs per host here and keep it with ``host.plugin_state(key, factory)``: later
    hooks (``outcome_recorded``, ``register_routes``), context providers, rule evaluators,
    value providers and extension points all receive the host and find it there. Returns
    nothing.
    """


@hookspec
def outcome_recorded(host: HostAPI, tenant_id: str, interaction: Interaction) -> None:
    """Called after an outcome (interaction) has been committed to ``host.store``.

    Receives the ``Host`` that recorded it (so an implementation reaches its own state through
    ``host.plugin_state`` and the store through ``host.store``), the tenant id and the stored
    ``Interaction``. Use it to update derived data or invalidate caches. An implementation may
    accept only the arguments it needs. A raise is logged and does not undo the recorded
    outcome. Returns nothing.
    """


@hookspec
def outcome_recording(
    host: HostAPI, tenant_id: str, interaction: Interaction, transaction: OutcomeTransaction
) -> None:
    """Called inside the store transaction that records a *new* outcome (never for an
    idempotent retry), after its summaries and before its commit, so a plugin's derived data
    commits with the outcome in ONE transaction (exact counters without a second write).

    ``interaction`` is the outcome as it will be stored; ``transaction`` (a
    ``nextbest.store.OutcomeTransaction``) reads the tenant's settings and a stored
    recommendation and updates plugin documents in that transaction: use only it, not
    ``host.store``, while the transaction is open. Keep it short: the outcome's locks are held.
    A raise rolls the outcome back and fails the call that recorded it. The
    ``outcome_recorded`` hooks run after the commit as usual. Returns nothing.
    """


@hookspec
def recommendation_saving(host: HostAPI, tenant_id: str, decision: Decision) -> None:
    """Called when a decision is about to be saved as a recommendation (recommend), before
    the store writes it; decisions that are not saved call nothing.

    ``decision.items[i].annotations`` are what the plugins noted during the decision (see
    ``annotate_decision``) and are stored as they are after this hook: complete here what only
    a stored recommendation needs and would cost every decision (the adaptive plugin's pick
    probabilities). A raise is logged and the recommendation is saved with the annotations as
    they are. Returns nothing.
    """


@hookspec
def recommendation_saved(host: HostAPI, tenant_id: str, recommendation: Recommendation) -> None:
    """Called after a recommendation (what a recommend call returned) was committed to
    ``host.store``, once per recommendation.

    ``recommendation`` is the stored record: its ranked items and, per item, the annotations
    plugins made during the decision (``RecommendationItem.annotations``). Use it to count
    what was shown (impressions). A raise is logged and does not undo the save. Returns
    nothing.
    """


@hookspec
def interactions_changed(
    host: HostAPI,
    tenant_id: str,
    removed: Sequence[Interaction],
    added: Sequence[Interaction],
) -> None:
    """Called after recorded interactions were deleted or corrected in ``host.store``.

    ``removed`` holds the interactions as they were recorded (now gone), ``added`` the
    corrections that replace them (empty for a deletion); a correction of one interaction
    passes one of each, possibly of two customers. ``outcome_recorded`` is not called for a
    correction: it announces new outcomes only. Use it to drop caches or fix derived data of
    the customers concerned. A raise is logged and does not undo the change. Returns nothing.
    """


@hookspec
def interactions_imported(host: HostAPI, tenant_id: str, customer_ids: frozenset[str]) -> None:
    """Called after a bulk import (``nextbest ingest``) committed interactions of the
    customers ``customer_ids`` (those of every row stored, replaced or found already stored).

    A bulk import calls no ``outcome_recorded`` per row (it may be millions of rows); this is
    its one notification, so a plugin can bring derived data up to date for those customers,
    in one pass when they are many. A raise is logged and does not undo the import. Returns
    nothing.
    """


@hookspec
def customer_forgotten(host: HostAPI, tenant_id: str, customer_id: str) -> None:
    """Called after everything stored about a customer was deleted from ``host.store``.

    The customer's interactions, summaries, recommendations and documents in the namespaces
    registered with ``register_customer_data`` are already gone (one transaction). Drop what
    the plugin holds of the customer elsewhere (in-process caches). A raise is logged and does
    not undo the deletion. Returns nothing.
    """


@hookspec
def customer_context_changed(host: HostAPI, tenant_id: str, change: ContextChange) -> None:
    """Called when customers' context values changed (``host.context_changed``), after the
    plugin that provides them committed the new values: a recompute after an outcome, or a
    batch. ``change`` holds the customers, the new values as columns by context name and, where
    known, the previous ones. The host's trigger engine implements it (it evaluates the
    tenant's active triggers for those customers). A raise is logged and changes nothing
    committed. Returns nothing.
    """


@hookspec
def watched_context_names(host: HostAPI, tenant_id: str) -> Iterable[str] | None:
    """Return the context names this plugin watches for ``tenant_id`` (or None).

    The host's trigger engine returns the names read by the tenant's active triggers. A
    context provider asks ``host.watched_context_names(tenant_id)`` (the union of every
    answer) to decide whether to recompute a customer's values proactively after an outcome
    and tell the host with ``host.context_changed``. Keep it cheap: it is asked per outcome.
    """


@hookspec
def context_changing(host: HostAPI, tenant_id: str, change: ContextChange) -> Iterable[str] | None:
    """Return the customers of ``change`` whose values *before* it you want (or None).

    A provider about to commit new values for many customers (a batch) asks
    ``host.previous_wanted(tenant_id, change)`` (the union of every answer) before it writes;
    it reads those customers' current values and passes them as ``previous`` with the
    ``host.context_changed`` notification after the commit. ``change.values`` are the new
    values (not committed yet); ``change.previous`` is empty. The host's trigger engine
    answers with the customers that may fire (their payload carries the previous values).
    Keep the answer small: every id costs the provider a read.
    """


@hookspec
def context_columns(
    host: HostAPI, tenant_id: str, names: frozenset[str], as_of: float
) -> ContextChange | None:
    """Return every customer's values of the ``names`` this plugin provides, as columns (one
    answer for the whole tenant), or None when it provides none of them or cannot.

    The host asks when it needs a tenant's whole population at once (a trigger's preview over
    every customer). The answer's ``customer_ids`` are the customers the plugin has values
    for; ``values`` maps each provided name to its column; ``as_of`` is the time they hold
    for. Names left out are resolved one customer at a time through the context providers.
    """


@hookspec
def report_dimensions(host: HostAPI, tenant_id: str) -> Iterable[str] | None:
    """Return the context names this plugin suggests for breaking reports down by (or None).

    A population simulation (``nextbest simulate``, ``POST /api/v1/simulations``) without an
    explicit breakdown uses the first name suggested (plugins in load order); the names must
    be customer-level context names a provider of yours supplies (a segment, a tier). Keep it
    cheap and free of I/O: it is asked once per report.
    """


@hookspec
def trigger_fired(host: HostAPI, tenant_id: str, event: TriggerEvent) -> None:
    """Called after a trigger firing was committed, for triggers whose ``actions`` include
    ``hook: true``: once per firing, in firing order. ``event.payload`` is the event document
    (see docs/triggers.md). A raise is logged and does not undo the firing. Returns nothing.
    """


@hookspec
def pre_score(decision: DecisionView, candidates: list[Candidate]) -> None:
    """Called by an ``extension_point`` node with ``hook: pre_score``.

    Receives the ``DecisionView`` (tenant, host, request, context lookup) and the list of
    ``Candidate`` objects still in play. Implementations may call ``candidate.drop(reason)`` or
    ``candidate.adjust_fit(multiplier, reason)``. Returns nothing.
    """


@hookspec
def score_override(decision: DecisionView, candidate: Candidate) -> float | None:
    """Called by an ``extension_point`` node with ``hook: score_override``, once per candidate.

    Receives the ``DecisionView`` and one scored ``Candidate``. Return a new score (float) to
    replace the candidate's score, or None to leave it. The first non-None answer wins.
    """


@hookspec
def post_rank(decision: DecisionView, ranked: list[Candidate]) -> list[Candidate] | None:
    """Called by an ``extension_point`` node with ``hook: post_rank`` after ranking.

    Receives the ``DecisionView`` and the ranked list of ``Candidate`` objects. Return a
    reordered list made of the same candidates (it may leave some out), or None to keep the
    order. Implementations run in turn, each seeing the previous one's order.
    """


@hookspec
def annotate_decision(
    decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
) -> None:
    """Called once per decision after the flow ran, when at least one offer was scored.

    Receives the ``DecisionView``, the ``ranked`` candidates returned (in rank order, maybe
    none) and
    every ``scored`` candidate (those past the cut-off included). Set
    ``candidate.annotations[<your plugin>] = {...}`` (JSON values) to note what the decision
    used (a learned propensity, the probability that the policy picks the offer in its
    slot): annotations of returned offers are stored with the recommendation, and every
    scored offer's appear in the trace. A raise is a plugin failure of the decision (the
    flow's ``onPluginError`` applies). Returns nothing.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``nextbest`` command line.

    Called when the CLI starts, with the root ``click.Group``. Use ``@cli.command()`` or
    ``cli.add_command(...)``. Returns nothing.
    """


@hookspec
def register_routes(router: APIRouter, host: HostAPI) -> None:
    """Add HTTP routes to the API server.

    Called when the FastAPI app is built, with a ``fastapi.APIRouter`` mounted at the app root
    and the ``Host``. Use the dependencies in ``nextbest.api.auth`` to require a tenant and a
    role, so plugin routes follow the same tenant and key rules as the host's. Returns nothing.
    """


@hookspec
def register_report_pages(register: RegisterReportPage) -> None:
    """Register pages of the web report (``/ui/`` of ``nextbest serve``, ``nextbest report``).

    Called once when a Host is created. Call ``register(ReportPage(name, title, order,
    render))`` per page. ``render`` receives a ``PageRequest`` (host, tenant id, query
    parameters, as_of, offline) and returns blocks (``nextbest.report_blocks``: stats, charts,
    tables, text, forms, sections), never HTML: the host renders them, checks access and keeps
    tenants apart. A page name taken twice is an error naming both plugins. Returns nothing.
    """


@hookspec
def customer_profile_sections(
    host: HostAPI, tenant_id: str, customer_id: str, as_of: datetime
) -> Mapping[str, Any] | None:
    """Return this plugin's sections of a customer's profile, or None when it has none.

    Asked by ``GET /api/v1/customers/{id}/profile`` and the report's customer page, after the
    host checked that the customer exists in ``tenant_id``: a mapping of section name (the
    plugin's own, e.g. ``loyalty``) to a JSON object, what the plugin knows of the customer
    as of ``as_of``. It changes nothing a caller could see (filling the plugin's own caches
    aside). A raise is logged and leaves the section out, with
    the failure noted in the profile's ``failedSections``. A name answered by two plugins is
    kept once (the first) and the other noted there too.
    """


@hookspec
def customer_profile_blocks(
    host: HostAPI, tenant_id: str, customer_id: str, sections: Mapping[str, Any]
) -> Sequence[Block] | None:
    """Return report blocks (charts, tables, text) that show this plugin's part of a
    customer's profile on the report's customer page, or None.

    Asked by the report's customer page after ``customer_profile_sections``, with the merged
    ``sections`` of the profile (so a plugin draws what it answered without computing it
    again). The blocks follow the sections' field tables. A raise is logged and noted on the
    page; the profile JSON is unchanged by this hook.
    """
