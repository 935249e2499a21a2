"""``nextbest policies``: put, list and remove a tenant's contact policies."""

from __future__ import annotations

import json

import click

from ..errors import FlowValidationError
from ..policies.documents import ContactPolicies
from .database import database_option
from .server import _fail_validation, _load, _require_tenant, _store

__all__ = ["policies_group"]

_tenant = click.option("--tenant", "tenant_id", required=True, help="The tenant.")


@click.group("policies")
def policies_group() -> None:
    """Manage a tenant's contact policies (see docs/flows.md, Contact policies)."""


@policies_group.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_tenant
@database_option
def policies_put(file: str, tenant_id: str, database: str | None) -> None:
    """Validate the contact policy in FILE (YAML/JSON) and store it (created or replaced)."""
    document = _load(file)
    if not isinstance(document, dict):
        raise click.ClickException(f"{file}: a contact policy is a mapping (YAML/JSON object)")
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        policies = ContactPolicies(store)
        name = document.get("name")
        existed = isinstance(name, str) and policies.get(tenant_id, name) is not None
        try:
            stored = policies.put(tenant_id, document)
        except FlowValidationError as exc:
            _fail_validation(file, exc)
    click.echo(f"contact policy {stored['name']!r} {'replaced' if existed else 'created'}")


@policies_group.command("list")
@_tenant
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
@database_option
def policies_list(tenant_id: str, as_json: bool, database: str | None) -> None:
    """List the tenant's contact policies, highest priority first."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        for policy in ContactPolicies(store).list(tenant_id):
            if as_json:
                click.echo(json.dumps(policy, sort_keys=True))
                continue
            scope = (
                policy["scope"]
                if policy["scope"] == "global"
                else (f"{policy['scope']}:{policy['scopeId']}")
            )
            click.echo(
                f"{policy['name']}\t{policy['ruleType']}\t{scope}\t{policy['priority']}\t"
                f"{policy['status']}"
            )


@policies_group.command("remove")
@click.argument("name")
@_tenant
@database_option
def policies_remove(name: str, tenant_id: str, database: str | None) -> None:
    """Delete the contact policy NAME."""
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        if not ContactPolicies(store).remove(tenant_id, name):
            raise click.ClickException(f"tenant {tenant_id!r} has no contact policy {name!r}")
    click.echo(f"contact policy {name!r} removed")
