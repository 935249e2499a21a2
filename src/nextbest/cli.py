"""The ``nextbest`` command line: the root group with ``plugins``, ``validate`` and ``schema``;
``build_cli`` adds ``decide`` and the store and server commands (``nextbest.commands``) and every
plugin's ``register_commands``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .documents import load_document
from .errors import FlowIssue, FlowValidationError, PluginError
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
@click.argument(
    "what", type=click.Choice(["flow", "offers", "request", "trigger", "contact-policy"])
)
def schema_command(what: str) -> None:
    """Print the JSON Schema of flow, offer catalog, decision request, trigger or contact
    policy documents."""
    from .models.offers import OfferCatalog
    from .models.policies import policy_schema
    from .models.request import DecisionRequest
    from .triggers.document import trigger_schema

    if what == "contact-policy":
        schema = policy_schema()
    elif what == "trigger":
        schema = trigger_schema()
    elif what == "flow":
        schema = _host().flow_schema()
    elif what == "offers":
        schema = OfferCatalog.model_json_schema(by_alias=True)
    else:
        schema = DecisionRequest.model_json_schema(by_alias=True)
    click.echo(json.dumps(schema, indent=2))


def build_cli() -> click.Group:
    """The root group with every plugin's commands added."""
    from .commands.decide import decide_command
    from .commands.lift import lift_command
    from .commands.policies import policies_group
    from .commands.report import report_command
    from .commands.server import register_server_commands
    from .commands.store import register_store_commands
    from .commands.triggers import triggers_group
    from .commands.webhooks import register_webhook_commands

    cli.add_command(decide_command)
    cli.add_command(triggers_group)
    cli.add_command(lift_command)
    cli.add_command(policies_group)
    cli.add_command(report_command)
    register_store_commands(cli)
    register_server_commands(cli)
    register_webhook_commands(cli)
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
