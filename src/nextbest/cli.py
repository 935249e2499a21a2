"""The ``nextbest`` command line. Plugins add sub-commands through ``register_commands``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .documents import load_document
from .errors import FlowIssue, FlowValidationError, NextbestError, PluginError
from .hookcalls import call_impl, implementations
from .plugins import list_plugins, make_plugin_manager

if TYPE_CHECKING:  # the host (and the engine) load only when a command needs them
    from .host import Host


def _host() -> Host:
    from .host import Host

    try:
        return Host()
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nextbest")
def cli() -> None:
    """nextbest: next-best-offer decisioning with plugins."""


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins, their versions and the hooks they implement."""
    try:
        infos = list_plugins(make_plugin_manager())
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        data = [
            {"name": p.name, "version": p.version, "hooks": list(p.hooks), "module": p.module}
            for p in infos
        ]
        click.echo(json.dumps(data, indent=2))
        return
    width = max((len(p.name) for p in infos), default=4)
    for p in infos:
        click.echo(f"{p.name:<{width}}  {p.version or '-':<8}  {', '.join(p.hooks)}")


def _kind_of(document: Any) -> str:
    if isinstance(document, dict) and "nodes" in document:
        return "flow"
    if isinstance(document, list) or (isinstance(document, dict) and "offers" in document):
        return "offers"
    return "flow"


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["auto", "flow", "offers"]),
    default="auto",
    show_default=True,
    help="What the files hold (auto: a document with 'nodes' is a flow).",
)
def validate_command(files: tuple[str, ...], kind: str) -> None:
    """Validate flow or offer files; print every error with its path. Exit 1 on any error."""
    host = _host()
    failed = False
    for name in files:
        try:
            document = load_document(name)
            if not isinstance(document, dict | list):  # never a path to follow
                raise FlowValidationError(
                    [
                        FlowIssue(
                            "",
                            "the document must be a mapping (a flow or {offers: [...]})"
                            f" or a list of offers, not {type(document).__name__}",
                        )
                    ],
                    source=name,
                )
            what = _kind_of(document) if kind == "auto" else kind
            if what == "flow":
                flow = host.load_flow(document)
                click.echo(f"{name}: valid flow {flow.key!r} ({len(flow.steps)} nodes)")
            else:
                catalog = host.load_offers(document)
                click.echo(f"{name}: valid offer catalog ({len(catalog.entries)} offers)")
        except FlowValidationError as exc:
            failed = True
            click.echo(f"{name}: {len(exc.issues)} error(s)", err=True)
            for issue in exc.issues:
                click.echo(f"  {issue}", err=True)
    if failed:
        sys.exit(1)


@cli.command("schema")
@click.argument("what", type=click.Choice(["flow", "offers", "request"]))
def schema_command(what: str) -> None:
    """Print the JSON Schema of flow, offer catalog or decision request documents."""
    from .models.offers import OfferCatalog
    from .models.request import DecisionRequest

    if what == "flow":
        schema = _host().flow_schema()
    elif what == "offers":
        schema = OfferCatalog.model_json_schema(by_alias=True)
    else:
        schema = DecisionRequest.model_json_schema(by_alias=True)
    click.echo(json.dumps(schema, indent=2))


@cli.command("decide")
@click.option("--flow", "flow_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--offers", "offers_file", required=True, type=click.Path(exists=True))
@click.option(
    "--customer",
    "customer_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON/YAML decision request (customerId, channel, segments, attributes, ...).",
)
@click.option("--tenant", default="default", show_default=True)
@click.option("--explain", is_flag=True, help="Include the explanation (dropped offers, scores).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def decide_command(
    flow_file: str, offers_file: str, customer_file: str, tenant: str, explain: bool, as_json: bool
) -> None:
    """Run a flow for one customer and print the ranked offers."""
    host = _host()
    try:
        flow = host.load_flow(flow_file)
        offers = host.load_offers(offers_file)
        request = load_document(customer_file)
        if not isinstance(request, dict):
            raise click.ClickException(f"{customer_file}: a request must be a JSON object")
        request["explain"] = explain or bool(request.get("explain"))
        decision = host.decide(tenant, request, flow=flow, offers=offers)
    except FlowValidationError as exc:
        raise click.ClickException(str(exc)) from None
    except NextbestError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:  # pydantic ValidationError of the request
        raise click.ClickException(f"{customer_file}: {exc}") from None
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2, default=str))
    else:
        click.echo(format_decision(decision))


def format_decision(decision: Any) -> str:
    """A readable table of ranked offers, then the explanation when there is one."""
    lines = [f"customer {decision.customer_id}  flow {decision.flow_key}  as of "
             f"{decision.as_of:%Y-%m-%d %H:%M}"]  # fmt: skip
    if not decision.items:
        lines.append("  no offer qualified")
    for item in decision.items:
        extra = "  ".join(f"{k}={v}" for k, v in item.personalization.items())
        lines.append(f"  #{item.rank}  {item.offer_id:<22} score {item.score:.4f}  {extra}")
    trace = decision.trace
    if trace is None:
        return "\n".join(lines)
    for item in decision.items:
        b = trace.scores.get(item.offer_id)
        if b is None:
            continue
        parts = "  ".join(
            f"{dim}={b.factors[dim]:.3f}^{b.weights.get(dim, 0):.2f}" for dim in b.factors
        )
        profile = f" profile {b.profile}" if b.profile else ""
        lines.append(f"    {item.offer_id}: {parts}  fit={b.fit_multiplier:.2f}{profile}")
        for adj in trace.adjustments.get(item.offer_id, ()):
            lines.append(
                f"      x{adj['multiplier']:.2f} fit from rule {adj['ruleId']}: {adj['reason']}"
            )
        for term in b.terms:
            lines.append(
                f"      + {term['dimension']} exponent {term['exponent']:+.3f} "
                f"from {term['provider']} ({term['plugin']})"
            )
    if trace.drops:
        lines.append("  dropped:")
        for drop in trace.drops:
            rule = f" rule {drop.rule_id} ({drop.stage})" if drop.rule_id else ""
            lines.append(f"    {drop.offer_id:<22} at {drop.node_id}{rule}: {drop.reason}")
            scored = trace.scores.get(drop.offer_id)
            if scored is not None and drop.rule_id is None:  # cut at ranking: say why it scored low
                lines.append(f"      score {scored.score:.4f}, fit {scored.fit_multiplier:.2f}")
                for adj in trace.adjustments.get(drop.offer_id, ()):
                    lines.append(
                        f"      x{adj['multiplier']:.2f} fit from rule {adj['ruleId']}: "
                        f"{adj['reason']}"
                    )
    for failure in trace.failures:
        lines.append(
            f"  plugin failure: {failure.plugin} in {failure.hook}"
            f"{' for ' + failure.offer_id if failure.offer_id else ''}: {failure.error} "
            f"({failure.action})"
        )
    return "\n".join(lines)


def build_cli() -> click.Group:
    """The root group with every plugin's commands added."""
    from .commands.server import register_server_commands
    from .commands.store import register_store_commands

    register_store_commands(cli)
    register_server_commands(cli)
    try:
        pm = make_plugin_manager()
    except PluginError as exc:
        click.echo(f"Error: {exc}", err=True)
        return cli
    for impl in implementations(pm, "register_commands"):
        try:
            call_impl(impl, cli=cli)
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            click.echo(
                f"Error: plugin {impl.plugin_name!r} failed in register_commands: "
                f"{type(exc).__name__}: {exc}",
                err=True,
            )
    return cli


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    build_cli().main(args=argv, prog_name="nextbest")


if __name__ == "__main__":
    main(sys.argv[1:])

__all__ = ["build_cli", "cli", "main"]
