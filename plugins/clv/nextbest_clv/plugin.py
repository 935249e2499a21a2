"""nextbest-clv hook implementations (thin glue; the work is in the modules they name)."""

from __future__ import annotations

from typing import Any

from nextbest import hookimpl
from nextbest_clv.decisions.context import CLV_CONTEXT
from nextbest_clv.decisions.functions import FUNCTIONS
from nextbest_clv.decisions.rules import PROPENSITY_THRESHOLD
from nextbest_clv.decisions.value import CLV_VALUE
from nextbest_clv.service import all_services, attach

__version__ = "0.1.0"


@hookimpl
def register_rule_types(register: Any) -> None:
    register(PROPENSITY_THRESHOLD)


@hookimpl
def register_functions(register: Any) -> None:
    for name, function in FUNCTIONS.items():
        register(name, function)


@hookimpl
def register_context(register: Any) -> None:
    register(CLV_CONTEXT)


@hookimpl
def register_value_providers(register: Any) -> None:
    register(CLV_VALUE)


@hookimpl
def startup(host: Any) -> None:
    attach(host)


@hookimpl
def outcome_recorded(tenant_id: str, interaction: Any) -> None:
    customer_id = getattr(interaction, "customer_id", None)
    if customer_id is None:
        return
    for service in all_services():
        service.invalidate(tenant_id, customer_id)


@hookimpl
def register_commands(cli: Any) -> None:
    from nextbest_clv.cli import clv_group

    cli.add_command(clv_group)


@hookimpl
def register_routes(router: Any, host: Any) -> None:
    from nextbest_clv.api import add_routes

    add_routes(router, host)
