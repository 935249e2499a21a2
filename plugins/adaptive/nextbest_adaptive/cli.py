"""``nextbest adaptive rebuild`` and ``nextbest evaluate``.

Both take ``--tenant`` and ``--database URL`` (environment NEXTBEST_DATABASE_URL), the host's
``database_option``, and open the database with the host's ``open_database``.
"""

from __future__ import annotations

import json

import click

from nextbest import DecisionService, Host, NextbestError, database_option, open_database
from nextbest.store import MAX_FLOW_VERSION, parse_time

from .service.evaluate import evaluate_flow
from .service.model import learner_for

_tenant = click.option("--tenant", required=True, help="Tenant id.")


@click.group("adaptive")
def adaptive_group() -> None:
    """Learned propensities (the adaptive plugin)."""


@adaptive_group.command("rebuild")
@_tenant
@database_option
def rebuild_command(tenant: str, database: str | None) -> None:
    """Recount impressions and positives of TENANT from its stored recommendations and
    outcomes, replacing the learned counts (run while no outcome is being recorded)."""
    with open_database(database) as store:
        if store.get_tenant(tenant) is None:
            raise click.ClickException(f"tenant {tenant!r} does not exist")
        result = learner_for(Host(store=store)).counts.rebuild(tenant)
    click.echo(
        f"rebuilt {tenant}: {result.recommendations} recommendations, "
        f"{result.impressions} impressions, {result.positives} positives, "
        f"{result.offers} offers"
    )


@click.command("evaluate")
@_tenant
@click.option(
    "--flow",
    "flow_key",
    required=True,
    metavar="KEY[@N]",
    help="The flow to evaluate: KEY (its published version) or KEY@N (its version N).",
)
@click.option(
    "--since", default=None, metavar="TIME", help="Only recommendations made since (ISO)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@database_option
def evaluate_command(
    tenant: str, flow_key: str, since: str | None, as_json: bool, database: str | None
) -> None:
    """Estimate, from TENANT's logged recommendations and outcomes, the success rate and value
    per recommendation that flow KEY (or its version N) would have had (IPS and doubly robust,
    95% intervals)."""
    flow_key, version = _flow_and_version(flow_key)
    start = None
    if since is not None:
        try:
            start = parse_time(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    with open_database(database) as store:
        if store.get_tenant(tenant) is None:
            raise click.ClickException(f"tenant {tenant!r} does not exist")
        host = Host(store=store)
        try:
            result = evaluate_flow(
                DecisionService(host, store),
                learner_for(host).counts,
                tenant,
                flow_key,
                start,
                flow_version=version,
            )
        except NextbestError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        return
    label = flow_key if version is None else f"{flow_key}@{version}"
    if result.logged - result.skipped <= 0:
        click.echo(
            f"flow {label}: nothing to evaluate ({result.logged} logged recommendations with an "
            f"offer, {result.skipped} skipped: control group, nothing shown or no logging "
            "probability)"
        )
        return
    click.echo(
        f"flow {label}: {result.logged} logged recommendations "
        f"(success rate {result.logged_success_rate:.4f}, value {result.logged_value:.2f})"
    )
    for label, a, b in (
        ("success rate", result.success_ips, result.success_dr),
        ("value", result.value_ips, result.value_dr),
    ):
        click.echo(
            f"  {label:12s} IPS {a.value:.4f} [{a.low:.4f}, {a.high:.4f}]   "
            f"DR {b.value:.4f} [{b.low:.4f}, {b.high:.4f}]"
        )


def _flow_and_version(text: str) -> tuple[str, int | None]:
    """``KEY`` or ``KEY@N`` (N a flow version, 1 to MAX_FLOW_VERSION) as (key, version)."""
    key, at, number = text.rpartition("@")
    if not at:
        return text, None
    if not key or not number.isdigit() or not 1 <= int(number) <= MAX_FLOW_VERSION:
        raise click.BadParameter(
            f"{text!r}: expected KEY or KEY@N with N a flow version from 1 to {MAX_FLOW_VERSION}",
            param_hint="--flow",
        )
    return key, int(number)
