"""nextbest-clv hook implementations (thin glue; the work is in the modules they name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from nextbest import (
    Block,
    ContextChange,
    HostAPI,
    Interaction,
    RegisterContext,
    RegisterCustomerData,
    RegisterFunction,
    RegisterReportPage,
    RegisterRuleType,
    RegisterValueProvider,
    hookimpl,
)
from nextbest_clv.backtest.runs import BACKTESTS_NAMESPACE
from nextbest_clv.decisions.changes import (
    notify_batch,
    notify_outcome,
    population_columns,
    previous_wanted,
    refresh_customers,
)
from nextbest_clv.decisions.context import CLV_CONTEXT, SEGMENT_NAME
from nextbest_clv.decisions.functions import FUNCTIONS
from nextbest_clv.decisions.rules import PROPENSITY_THRESHOLD
from nextbest_clv.decisions.value import CLV_VALUE
from nextbest_clv.service import CUSTOMER_NAMESPACES, attach
from nextbest_clv.service.fits import FITS_NAMESPACE, forget_mentions
from nextbest_clv.service.history import forget_customer as forget_snapshot_customer
from nextbest_clv.service.settings_repository import CONFIG_NAMESPACE

if TYPE_CHECKING:  # the CLI and the API are imported only when the host builds them
    from collections.abc import Mapping
    from datetime import datetime
    from typing import Any

    import click
    from fastapi import APIRouter

__version__ = "0.1.0"


@hookimpl
def register_rule_types(register: RegisterRuleType) -> None:
    register(PROPENSITY_THRESHOLD)


@hookimpl
def register_functions(register: RegisterFunction) -> None:
    for name, function in FUNCTIONS.items():
        register(name, function)


@hookimpl
def register_context(register: RegisterContext) -> None:
    register(CLV_CONTEXT)


@hookimpl
def register_value_providers(register: RegisterValueProvider) -> None:
    register(CLV_VALUE)


@hookimpl
def startup(host: HostAPI) -> None:
    service = attach(host)  # the host's service, ready before the first decision or request
    if service is not None:  # batches tell the host about the records they stored
        service.batch_listeners.append(lambda tenant, result: notify_batch(host, tenant, result))
        service.previous_askers.append(
            lambda tenant, ids, columns, as_of: previous_wanted(host, tenant, ids, columns, as_of)
        )


@hookimpl
def outcome_recorded(host: HostAPI, tenant_id: str, interaction: Interaction) -> None:
    service = attach(host)
    if service is not None:
        service.invalidate(tenant_id, interaction.customer_id)
        # watched by a trigger: recompute now and tell the host
        notify_outcome(host, service, tenant_id, interaction.customer_id)


@hookimpl
def register_customer_data(register: RegisterCustomerData) -> None:
    for namespace in CUSTOMER_NAMESPACES:  # the stored records, keyed by customer id
        register(namespace)


@hookimpl
def interactions_changed(
    host: HostAPI,
    tenant_id: str,
    removed: Sequence[Interaction],
    added: Sequence[Interaction],
) -> None:
    service = attach(host)
    if service is not None:
        customers = {i.customer_id for i in (*removed, *added)}
        refresh_customers(host, service, tenant_id, customers)


@hookimpl
def interactions_imported(host: HostAPI, tenant_id: str, customer_ids: frozenset[str]) -> None:
    service = attach(host)
    if service is not None:
        refresh_customers(host, service, tenant_id, customer_ids)


@hookimpl
def context_columns(
    host: HostAPI, tenant_id: str, names: frozenset[str], as_of: float
) -> ContextChange | None:
    service = attach(host)
    return None if service is None else population_columns(service, tenant_id, names, as_of)


@hookimpl
def report_dimensions(host: HostAPI, tenant_id: str) -> list[str]:
    del host, tenant_id  # every tenant: the CLV segment is the natural breakdown
    return [SEGMENT_NAME]


@hookimpl
def customer_forgotten(host: HostAPI, tenant_id: str, customer_id: str) -> None:
    service = attach(host)
    if service is not None:  # the stored records went with the customer's data
        service.invalidate(tenant_id, customer_id)
        # Fits and back-tests list up to 100 excluded customers by id, the scheduler's state
        # the last batch's failures: drop this one.
        for namespace in (FITS_NAMESPACE, BACKTESTS_NAMESPACE, CONFIG_NAMESPACE):
            forget_mentions(service.store, namespace, tenant_id, customer_id)
        # The history's snapshots keep each customer's segment and prediction: drop this one.
        forget_snapshot_customer(service.store, tenant_id, customer_id)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from nextbest_clv.cli import clv_group

    cli.add_command(clv_group)


@hookimpl
def register_routes(router: APIRouter, host: HostAPI) -> None:
    from nextbest_clv.api import add_routes

    add_routes(router, host)


@hookimpl
def register_report_pages(register: RegisterReportPage) -> None:
    from nextbest_clv.report_history import register_history_pages
    from nextbest_clv.report_pages import register_pages

    register_pages(register)
    register_history_pages(register)


@hookimpl
def customer_profile_sections(
    host: HostAPI, tenant_id: str, customer_id: str, as_of: datetime
) -> Mapping[str, Any] | None:
    from nextbest_clv.report_pages import profile_sections

    return profile_sections(host, tenant_id, customer_id, as_of)


@hookimpl
def customer_profile_blocks(sections: Mapping[str, Any]) -> Sequence[Block]:
    from nextbest_clv.report_pages import profile_blocks

    return profile_blocks(sections)
