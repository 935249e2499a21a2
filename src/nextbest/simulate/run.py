"""Running a simulation: one or two flows over a tenant's customers read in bulk, in chunks,
with nothing recorded (no recommendation, no cap, budget or posterior touched, no hook fired).

What a simulated decision sees is what :meth:`DecisionService.decide` would give the customer
as of the same time: ``metrics`` from the all-time summary, ``offerHistory`` from the per-offer
summaries, the plugins' names from their ``context_columns`` (a name no plugin answers for in
bulk is resolved one customer at a time by its provider), the tenant's active contact policies
with the counts they read (from summaries read in bulk) and the offers whose budget or stock is
used up as of that time. Control groups are not applied: every customer gets the flow's
treatment (the result says how many would be held out).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..engine.compiler import CompiledFlow
from ..errors import UnknownFlowError
from ..experiments import CONTROL, assign
from ..models.policies import PolicyInputs
from ..models.request import DecisionRequest
from ..policies.constraints import exhausted_offers
from ..policies.documents import counts_needed, policy_counts
from ..service import DecisionService, metrics_of, offer_history_of
from ..store import InvalidInputError
from .options import FlowRef, SimulationOptions
from .population import Population, load_population, narrow
from .result import Comparison, FlowTally, Shown, group_value, price

#: Customers decided between two progress reports (and heartbeats of a background run).
CHUNK = 2000
#: Called with (customers done, customers in all) after every chunk.
Progress = Callable[[int, int], None]


def load_flow(
    service: DecisionService, tenant_id: str, ref: FlowRef, field: str
) -> tuple[CompiledFlow, int]:
    """The flow ``ref`` names, compiled: a version of it, else its published version.
    UnknownFlowError naming ``field`` (and the version) when the tenant has no such flow."""
    if ref.version is None:
        try:
            return service.published_flow(tenant_id, ref.key)
        except UnknownFlowError as exc:
            raise UnknownFlowError(f"{field}: {exc}") from None
    stored = service.store.get_flow(tenant_id, ref.key, version=ref.version)
    if stored is None:
        exists = service.store.get_flow(tenant_id, ref.key) is not None
        raise UnknownFlowError(
            f"{'version' if exists and field == 'flow' else field}: flow {ref.key!r} has no "
            f"version {ref.version}"
            if exists
            else f"{field}: flow {ref.key!r} not found"
        )
    return service.host.load_flow(stored.document), stored.version


def default_breakdown(service: DecisionService, tenant_id: str) -> str | None:
    """The first context name the plugins suggest for reports (``report_dimensions``)."""
    names = service.host.report_dimensions(tenant_id)
    return names[0] if names else None


def _by_values(population: Population, by: str, as_of: datetime) -> list[str | None] | None:
    """The breakdown's value per customer (as results key them), from the plugins' columns or
    ``metrics.*``; None when neither has the name."""
    column = population.context.get(by)
    if column is not None:
        return [group_value(v) for v in column]
    if by.startswith("metrics."):
        name = by.removeprefix("metrics.")
        values = [
            metrics_of(population.summaries.get(c), as_of).get(name)
            for c in population.customer_ids
        ]
        return [group_value(v) for v in values]
    return None


def run_simulation(
    service: DecisionService,
    tenant_id: str,
    options: SimulationOptions,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``options`` over the tenant and return the result (docs/simulation.md). Bad input
    raises InvalidInputError naming the field, an unknown flow UnknownFlowError; a customer
    whose decision raises is counted and the run goes on."""
    host, store = service.host, service.store
    refs = [("flow", options.flow)] + ([("compare", options.compare)] if options.compare else [])
    flows = [(ref, *load_flow(service, tenant_id, ref, field)) for field, ref in refs]
    catalog = service.catalog(tenant_id)
    as_of = options.as_of
    by = options.by or default_breakdown(service, tenant_id)
    names = {n for _, f, _ in flows for n in f.customer_names if not n.startswith("metrics.")}
    if by is not None and not by.startswith("metrics."):
        names.add(by)
    policies = service.contact_policies.active(tenant_id)
    need = counts_needed(policies, as_of)
    population = load_population(
        host,
        store,
        tenant_id,
        names,
        as_of,
        offer_summaries=any(f.uses_offer_history for _, f, _ in flows),
        offer_outcomes=need.offers,
        daily_from=need.daily_from,
        contacts=need.contacts,
        contacts_from=need.contacts_from,
    )
    by_values = None if by is None else _by_values(population, by, as_of)
    if options.by is not None and by_values is None:
        raise InvalidInputError(
            f"by: no plugin gives {options.by!r} for the tenant's customers in bulk and it is "
            "no metrics.* name",
            field="by",
        )
    if by_values is None:
        by = None  # a suggested name nobody answers for: no breakdown
    narrow(
        population,
        by=by,
        segment=options.segment,
        sample=options.sample,
        seed=options.seed,
        by_values=by_values,
    )
    if by is not None:
        by_values = _by_values(population, by, as_of)
    exhausted = exhausted_offers(store, tenant_id, catalog.constrained, as_of)
    prices = {offer.id: price(offer) for offer in catalog.offers}
    tallies = [FlowTally(f.key, version) for _, f, version in flows]
    comparison = Comparison() if len(flows) == 2 else None
    reads_metrics = [any(n.startswith("metrics.") for n in f.customer_names) for _, f, _ in flows]
    reads_history = [f.uses_offer_history for _, f, _ in flows]
    columns = list(population.context.items())
    template = DecisionRequest(customer_id="simulated", as_of=as_of)
    ids = population.customer_ids
    total = len(ids)
    control = 0
    held_out = flows[0][1].settings.control_group or service.tenant_control_group(tenant_id)
    for start in range(0, total, CHUNK):
        for i in range(start, min(start + CHUNK, total)):
            cid = ids[i]
            context = {name: col[i] for name, col in columns}
            summary = population.summaries.get(cid)
            metrics = metrics_of(summary, as_of) if any(reads_metrics) else {}
            history = (
                offer_history_of(population.offer_summaries.get(cid, {}))
                if any(reads_history)
                else {}
            )
            inputs = None
            if policies or exhausted:
                counts = policy_counts(
                    as_of,
                    policies,
                    catalog.by_id,
                    population.daily.get(cid, ()),
                    summary,
                    population.offer_outcomes.get(cid, ()),
                    population.contacts.get(cid, ()),
                )
                inputs = PolicyInputs(tuple(policies), counts, exhausted)
            group = None if by_values is None else by_values[i]
            tops: list[str | None] = []
            for n, (_, flow, _) in enumerate(flows):
                # a copy of a validated request: the ids come from the store, valid already
                request = template.model_copy(
                    update={
                        "customer_id": cid,
                        "metrics": metrics if reads_metrics[n] else {},
                        "offer_history": history if reads_history[n] else {},
                    }
                )
                try:
                    decision = host.decide(
                        tenant_id,
                        request,
                        flow=flow,
                        offers=catalog,
                        policies=inputs,
                        context=context,
                    )
                except Exception as exc:  # counted and quoted; the run goes on
                    tallies[n].failed(cid, exc)
                    tops.append(None)
                    continue
                shown = [Shown(it.offer_id, it.rank, *prices[it.offer_id]) for it in decision.items]
                blocking: list[str] = []
                if not shown:  # why: the same decision again, explained
                    explained = host.decide(
                        tenant_id,
                        request.model_copy(update={"explain": True}),
                        flow=flow,
                        offers=catalog,
                        policies=inputs,
                        context=context,
                    )
                    trace = explained.trace
                    if trace is not None:
                        blocking = [d.rule_id or d.node_id for d in trace.drops]
                tallies[n].add(group, shown, blocking)
                tops.append(shown[0].offer_id if shown else None)
            if comparison is not None and len(tops) == 2:
                comparison.add(cid, tops[0], tops[1])
            if held_out is not None:
                control += assign(held_out, tenant_id, cid, source="flow").group == CONTROL
        if progress is not None:
            progress(min(start + CHUNK, total), total)
    if progress is not None and total == 0:
        progress(0, 0)
    return {
        "tenantId": tenant_id,
        "inputs": options.to_dict(),
        "asOf": as_of.isoformat(),
        "by": by,
        "tenantCustomers": population.tenant_customers,
        "customers": total,
        "flows": [t.to_dict() for t in tallies],
        "comparison": None if comparison is None else comparison.to_dict(),
        "contactPolicies": sorted(p.name for p in policies) if policies else [],
        "exhaustedOffers": sorted(exhausted),
        "controlGroup": {
            "treatment": "every customer is simulated with the flow (control groups not held out)",
            "wouldBeControl": control,
        },
        "perCustomerContext": sorted(names - set(population.context)),
    }
