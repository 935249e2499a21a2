"""The adaptive plugin's hook implementations (thin glue; the work is in ``service``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from nextbest import (
    Candidate,
    Decision,
    DecisionView,
    HostAPI,
    Interaction,
    RegisterValueProvider,
    hookimpl,
)
from nextbest.store import OutcomeTransaction, Recommendation

from .service.model import ADAPTIVE_PROPENSITY, Learner, learner_for


@hookimpl
def register_value_providers(register: RegisterValueProvider) -> None:
    register(ADAPTIVE_PROPENSITY)


@hookimpl
def recommendation_saved(host: HostAPI, tenant_id: str, recommendation: Recommendation) -> None:
    learner_for(host).counts.record_impressions(tenant_id, recommendation)


@hookimpl
def outcome_recording(
    host: HostAPI, interaction: Interaction, transaction: OutcomeTransaction
) -> None:
    learner_for(host).counts.record_outcome_in(transaction, interaction)


@hookimpl
def outcome_recorded(host: HostAPI, tenant_id: str, interaction: Interaction) -> None:
    learner_for(host).counts.recorded(tenant_id, interaction)


@hookimpl
def interactions_changed(
    host: HostAPI,
    tenant_id: str,
    removed: Sequence[Interaction],
    added: Sequence[Interaction],
) -> None:
    learner_for(host).counts.recheck(tenant_id, [*removed, *added])


@hookimpl
def interactions_imported(host: HostAPI, tenant_id: str, customer_ids: frozenset[str]) -> None:
    learner_for(host).counts.imported(tenant_id, customer_ids)


@hookimpl
def customer_forgotten(host: HostAPI, tenant_id: str, customer_id: str) -> None:
    learner_for(host).counts.forget(tenant_id, customer_id)


@hookimpl
def recommendation_saving(decision: Decision) -> None:
    Learner.complete(decision.items)


@hookimpl
def annotate_decision(
    decision: DecisionView, ranked: list[Candidate], scored: list[Candidate]
) -> None:
    learner_for(decision.host).annotate(decision, ranked, scored)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .cli import adaptive_group, evaluate_command

    cli.add_command(adaptive_group)
    cli.add_command(evaluate_command)
