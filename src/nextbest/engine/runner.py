"""Runs a compiled flow for one request and assembles the Decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from ..hookcalls import call_impl, implementations
from ..models.decision import Candidate, Decision, DecisionItem
from ..models.policies import PolicyInputs
from ..models.request import DecisionRequest
from ..plugin_api import HostAPI
from .catalog import CompiledCatalog
from .compiler import CompiledFlow
from .policies import POLICY_NODE_ID, apply_contact_policies
from .state import DecisionState, DecisionView


def run_decision(
    flow: CompiledFlow,
    catalog: CompiledCatalog,
    *,
    host: HostAPI,
    tenant_id: str,
    request: DecisionRequest,
    random_pick: int | None = None,
    policies: PolicyInputs | None = None,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """Run every step of ``flow`` over ``catalog`` for ``request``. With ``random_pick`` (a
    seed) the rank node returns one eligible offer picked with it instead of the best ones
    (the control group's ``mode: random``). The tenant's contact ``policies``, when given,
    apply after the selection phase. ``context``: customer-level values read beforehand (see
    :meth:`DecisionState.resolve_customer_names`)."""
    as_of = request.as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    state = DecisionState(
        flow=flow,
        catalog=catalog,
        host=host,
        tenant_id=tenant_id,
        request=request,
        as_of=as_of,
        explain=request.explain,
        policies=policies,
    )
    state.random_pick = random_pick
    try:
        _run_steps(flow, state, context)
        _annotate(state)
    finally:
        state.log_failures()  # one line per plugin hook that failed, rate-limited per host
    fields = state.response_fields
    items = [
        DecisionItem(
            offer_id=cand.offer.id,
            name=cand.offer.name,
            rank=position,
            score=cand.score or 0.0,
            personalization={
                k: v for k, v in cand.computed.items() if fields is None or k in fields
            },
            category=cand.offer.category,
            fallback=cand.fallback,
            annotations=cand.annotations or {},
        )
        for position, cand in enumerate(state.ranked or (), start=1)
    ]
    return Decision(tenant_id, request.customer_id, flow.key, as_of, items, state.trace)


def _run_steps(
    flow: CompiledFlow, state: DecisionState, context: Mapping[str, Any] | None = None
) -> None:
    """Resolve the context, then run every step (timing each one when explaining)."""
    trace = state.trace
    started = perf_counter() if trace is not None else 0.0
    state.resolve_customer_names(context)
    if trace is not None:
        trace.timings.append(
            {
                "nodeId": "(context)",
                "type": "context",
                "ms": round((perf_counter() - started) * 1000, 4),
            }
        )
    policies_due = state.policies is not None and not state.policies.empty
    for step in flow.steps:
        if policies_due and step.node_type not in _SELECTION_NODES:
            policies_due = False  # after qualification, before scoring
            _apply_policies(state)
        if trace is None:
            step.run(state)
            continue
        t0 = perf_counter()
        before = len(state.candidates)
        step.run(state)
        trace.timings.append(
            {
                "nodeId": step.node_id,
                "type": step.node_type,
                "ms": round((perf_counter() - t0) * 1000, 4),
                "candidatesIn": before,
                "candidatesOut": len(state.candidates),
            }
        )


#: Node types of the selection phase; contact policies apply before the first other step.
_SELECTION_NODES = frozenset({"inventory", "filter", "qualify", "compute"})


def _apply_policies(state: DecisionState) -> None:
    trace = state.trace
    if trace is None:
        apply_contact_policies(state)
        return
    t0 = perf_counter()
    before = len(state.candidates)
    apply_contact_policies(state)
    trace.timings.append(
        {
            "nodeId": POLICY_NODE_ID,
            "type": "contact_policies",
            "ms": round((perf_counter() - t0) * 1000, 4),
            "candidatesIn": before,
            "candidatesOut": len(state.candidates),
        }
    )


def _annotate(state: DecisionState) -> None:
    """Call the ``annotate_decision`` hooks with the ranked and every scored candidate (when
    any offer was scored; one
    implementation at a time: a raise is a plugin failure in the trace, nothing else), then
    copy every scored offer's annotations into the trace."""
    ranked = state.ranked or []
    impls = implementations(state.host.pm, "annotate_decision")
    if impls and (ranked or state.candidates):
        view = DecisionView(state)
        scored: list[Candidate] = list(state.candidates or ranked)
        for impl in impls:
            try:
                call_impl(impl, decision=view, ranked=list(ranked), scored=list(scored))
            except Exception as exc:
                state.plugin_failed(
                    impl.plugin_name, "annotate_decision", exc, None, "annotations skipped"
                )
    trace = state.trace
    if trace is not None:
        for cand in state.candidates or ranked:
            if cand.annotations:
                trace.annotations[cand.offer.id] = cand.annotations
