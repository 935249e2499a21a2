"""``nextbest simulate``: a flow over a tenant's customers, run in the foreground and stored as
a simulation run (listed by the API and the report's Simulations page); no decision recorded.

See docs/simulation.md.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from ..errors import UnknownFlowError
from ..service import DecisionService
from ..simulate import SimulationBusyError, parse_options, run_here
from ..store import InvalidInputError
from .database import database_option
from .server import _host, _require_tenant, _store

__all__ = ["render_report", "simulate_command"]

#: The CLI's option names by the field an error names.
_OPTION = {
    "flow": "--flow",
    "version": "--version",
    "compare": "--compare",
    "segment": "--segment",
    "sample": "--sample",
    "seed": "--seed",
    "asOf": "--as-of",
    "by": "--by",
}


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _summary_lines(title: str, tally: dict[str, Any]) -> list[str]:
    coverage = tally["coverage"]
    lines = [
        f"{title}: {tally['customers']} customers, "
        f"{'-' if coverage is None else f'{coverage:.1%}'} with an offer "
        f"({tally['withoutOffer']} without), expected value {_money(tally['expectedValue'])}, "
        f"expected conversions {tally['expectedConversions']:,.1f}"
    ]
    for offer, mix in tally["offerMix"].items():
        ranks = ", ".join(f"#{r}: {n}" for r, n in mix["byRank"].items())
        lines.append(f"    {offer:<24} {mix['total']:>8}  ({ranks})")
    unpriced = tally["unpricedOffersShown"]
    if unpriced:
        lines.append(
            f"    {unpriced} offer{'' if unpriced == 1 else 's'} shown without a propensity, "
            "left out of the expected value and conversions: give those offers a propensity "
            "in the catalog"
        )
    for rule in tally["blockingRules"]:
        lines.append(f"    blocked by {rule['rule']}: {rule['customers']} customers")
    return lines


def render_report(result: dict[str, Any]) -> str:
    """A simulation result as text: per flow the overall and per breakdown value figures, the
    comparison and the errors."""
    run = result.get("simulationId")
    lines = [
        (f"simulation {run} " if run else "simulation ")
        + f"of tenant {result['tenantId']!r} as of {result['asOf']}: "
        f"{result['customers']} of {result['tenantCustomers']} customers"
        + (f", by {result['by']}" if result["by"] else "")
    ]
    for flow in result["flows"]:
        lines.append("")
        lines.extend(
            _summary_lines(f"flow {flow['flowKey']}@{flow['flowVersion']}", flow["overall"])
        )
        for value, tally in flow["byValue"].items():
            lines.extend(_summary_lines(f"  {result['by']} = {value}", tally))
        errors = flow["errors"]
        if errors["count"]:
            lines.append(f"  {errors['count']} decisions failed, e.g.:")
            lines.extend(f"    {e['customerId']}: {e['error']}" for e in errors["first"])
    comparison = result["comparison"]
    if comparison is not None:
        lines.append("")
        lines.append(
            f"top offer changed for {comparison['topOfferChanged']} of "
            f"{comparison['customers']} customers"
        )
        for change in comparison["changes"]:
            examples = ", ".join(change["exampleCustomerIds"])
            lines.append(
                f"    {change['from']} -> {change['to']}: {change['customers']} (e.g. {examples})"
            )
    held = result["controlGroup"]["wouldBeControl"]
    if held:
        lines.append(f"\n{held} customers would be in the control group (simulated as treated)")
    return "\n".join(lines)


@click.command("simulate")
@click.option("--tenant", "tenant_id", required=True, help="The tenant.")
@click.option("--flow", "flow_key", required=True, help="The flow's key.")
@click.option("--version", type=str, help="A version of the flow (default: the published one).")
@click.option("--compare", help="Another flow to compare with: KEY or KEY@VERSION.")
@click.option("--segment", help="Only customers with this value of the breakdown (--by).")
@click.option("--sample", type=str, help="A random sample of this many customers (with --seed).")
@click.option("--seed", type=str, help="The sample's seed: the same seed, the same customers.")
@click.option("--as-of", "as_of", help="Decide as of this time (ISO-8601; default: now).")
@click.option(
    "--by", help="Break results down by this context name (default: the plugins' suggestion)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@database_option
def simulate_command(
    tenant_id: str,
    flow_key: str,
    version: str | None,
    compare: str | None,
    segment: str | None,
    sample: str | None,
    seed: str | None,
    as_of: str | None,
    by: str | None,
    as_json: bool,
    database: str | None,
) -> None:
    """Run a flow for every customer of the tenant (or a segment, or a sample) as of a time,
    with the store's context, recording no decision: the offer mix, coverage, expected value
    and conversions, by a breakdown; with --compare, both flows and the customers whose top
    offer changes. The run is stored like one started by the API (its id is printed) and
    shows on the report's Simulations page (see docs/simulation.md)."""
    raw = {
        "flow": flow_key,
        "version": version,
        "compare": compare,
        "segment": segment,
        "sample": sample,
        "seed": seed,
        "asOf": as_of,
        "by": by,
    }
    try:
        options = parse_options(raw, now=datetime.now(UTC))
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc), param_hint=_OPTION.get(exc.field or "", "")) from None
    with _store(database) as store:
        _require_tenant(store, tenant_id)
        service = DecisionService(_host(store), store)
        show_bar = not as_json and sys.stderr.isatty()
        bar: Any = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if not show_bar:
                return
            if bar is None:
                bar = click.progressbar(length=total, label="Simulating", file=sys.stderr)
                bar.__enter__()
            bar.update(done - bar.pos)

        try:
            record, result = run_here(service, tenant_id, options, progress)
        except (UnknownFlowError, SimulationBusyError) as exc:
            raise click.ClickException(str(exc)) from None
        except InvalidInputError as exc:
            hint = _OPTION.get(exc.field or "")
            raise click.BadParameter(str(exc), param_hint=hint) from None
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
    result = {"simulationId": record.simulation_id, **result}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(render_report(result))
