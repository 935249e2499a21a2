"""``nextbest decide``: one decision from the command line, from files or from the store.

File mode (``--flow FILE --offers FILE --customer FILE``) runs a flow file over an offer file
for a request file, with no store. Store mode (``--tenant T --customer-id ID``) does what
``POST /api/v1/recommend`` does, through :class:`nextbest.service.DecisionService`: the tenant's
published flow (``--flow KEY``, else its default flow) over its offers, with the store's context
(``metrics.*`` and offer history from the summaries, and the names the loaded plugins provide
from the store). It prints the database it read on stderr and saves nothing unless ``--save`` is
given (then it stores the recommendation, like the API, and prints its id).

``--json`` prints strict JSON: the engine keeps non-finite numbers out of decisions, and the
output is encoded with ``allow_nan=False`` so a ``NaN`` or ``Infinity`` token can never appear.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from ..documents import load_document
from ..errors import (
    DecisionError,
    FlowValidationError,
    NextbestError,
    PluginError,
    UnknownFlowError,
)
from ..store import (
    Store,
    StoreError,
    document_problem,
    id_problem,
    parse_time,
    time_problem,
)
from .database import database_option, open_database
from .options import option_value

if TYPE_CHECKING:  # the host (and the engine) load only when a command runs
    from ..host import Host
    from ..models.decision import Decision

_UNSET = (None, (), False)
#: Options of store mode only, by parameter name.
_STORE_ONLY = {
    "channel": "--channel",
    "placement": "--placement",
    "segments": "--segment",
    "attributes": "--attribute",
    "limit": "--limit",
    "as_of": "--as-of",
    "save": "--save",
}


def _host(store: Store | None = None) -> Host:
    from ..host import Host

    try:
        return Host(store=store)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("decide")
@click.option(
    "--flow",
    "flow",
    metavar="FILE|KEY",
    help="File mode: the flow file. Store mode: the key of a published flow "
    "(default: the tenant's default flow).",
)
@click.option(
    "--offers",
    "offers_file",
    type=click.Path(exists=True),
    help="File mode: the offer catalog file.",
)
@click.option(
    "--customer",
    "customer_file",
    type=click.Path(exists=True, dir_okay=False),
    help="File mode: a JSON/YAML decision request (customerId, channel, segments, attributes, "
    "...).",
)
@click.option(
    "--customer-id",
    "customer_id",
    metavar="ID",
    help="Store mode: decide for this customer with the tenant's published flow, offers and "
    "stored context (needs --tenant).",
)
@click.option("--tenant", default=None, help="Tenant id (store mode: required; file mode: "
              "default 'default').")  # fmt: skip
@database_option
@click.option("--channel", default=None, help="Store mode: the channel (request.channel).")
@click.option("--placement", default=None, help="Store mode: the placement.")
@click.option(
    "--segment",
    "segments",
    multiple=True,
    metavar="NAME",
    help="Store mode: a segment the customer is in (repeatable).",
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Store mode: a request attribute (repeatable); VALUE is read as JSON when it parses "
    '(42, true, "x", [1, 2]), else as text.',
)
@click.option(
    "--limit", type=click.IntRange(1, 50), default=None, help="Store mode: at most N offers."
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Store mode: decide as of this ISO-8601 time (UTC unless it has an offset); default now.",
)
@click.option(
    "--save",
    is_flag=True,
    help="Store mode: save the recommendation, as the API does, and print its id.",
)
@click.option("--explain", is_flag=True, help="Include the explanation (dropped offers, scores).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def decide_command(
    flow: str | None,
    offers_file: str | None,
    customer_file: str | None,
    customer_id: str | None,
    tenant: str | None,
    database: str | None,
    explain: bool,
    as_json: bool,
    **store_options: Any,
) -> None:
    """Run a flow for one customer and print the ranked offers.

    \b
    From files:      nextbest decide --flow F.yaml --offers O.yaml --customer C.json
    From the store:  nextbest decide --tenant T --customer-id ID [--database URL]
    """
    if customer_file is not None and customer_id is not None:
        raise click.UsageError("give --customer FILE (file mode) or --customer-id ID (store "
                               "mode), not both")  # fmt: skip
    if customer_id is not None:
        if offers_file is not None:
            raise click.UsageError(
                "--offers is for file mode; in store mode the tenant's stored offers are used"
            )
        if tenant is None:
            raise click.UsageError("store mode (--customer-id) needs --tenant")
        decision, data = _decide_from_store(
            tenant, customer_id, flow, database, explain, **store_options
        )
    elif customer_file is not None:
        given = [opt for name, opt in _STORE_ONLY.items() if store_options[name] not in _UNSET]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only in store mode (--customer-id)")
        if flow is None or offers_file is None:
            raise click.UsageError(
                "file mode (--customer FILE) needs --flow FILE and --offers FILE"
            )
        if not Path(flow).is_file():
            raise click.BadParameter(f"file {flow!r} does not exist", param_hint="--flow")
        decision = _decide_from_files(flow, offers_file, customer_file, tenant or "default",
                                      explain)  # fmt: skip
        data = decision.to_dict()
    else:
        raise click.UsageError(
            "give --customer FILE (with --flow FILE and --offers FILE) to decide from files, or "
            "--tenant T --customer-id ID to decide from the store"
        )
    if as_json:
        click.echo(strict_json(data))
    else:
        click.echo(format_decision(decision))


def strict_json(data: Any) -> str:
    """``data`` as indented JSON without NaN or Infinity tokens (a non-finite number left in a
    decision is a bug: it is reported, never printed as invalid JSON)."""
    try:
        return json.dumps(data, indent=2, allow_nan=False, default=str)
    except ValueError as exc:
        raise click.ClickException(f"the decision cannot be printed as JSON: {exc}") from None


def _decide_from_files(
    flow_file: str, offers_file: str, customer_file: str, tenant: str, explain: bool
) -> Decision:
    host = _host()
    try:
        flow = host.load_flow(flow_file)
        offers = host.load_offers(offers_file)
        request = load_document(customer_file)
        if not isinstance(request, dict):
            raise click.ClickException(f"{customer_file}: a request must be a JSON object")
        problem = document_problem(request)
        if problem is not None:
            raise click.ClickException(f"{customer_file}: the request {problem}")
        request["explain"] = explain or bool(request.get("explain"))
        return host.decide(tenant, _checked_request(request, customer_file), flow=flow,
                           offers=offers)  # fmt: skip
    except FlowValidationError as exc:
        raise click.ClickException(str(exc)) from None
    except NextbestError as exc:
        raise click.ClickException(str(exc)) from None


def _checked_request(request: dict[str, Any], source: str) -> Any:
    """The decision request of a file, validated (its ``asOf`` within the time window)."""
    from ..models.request import DecisionRequest

    try:
        checked = DecisionRequest.model_validate(request)
    except ValidationError as exc:
        raise click.ClickException(f"{source}: {validation_problems(exc)}") from None
    if checked.as_of is not None:
        problem = time_problem(checked.as_of)
        if problem is not None:
            raise click.ClickException(f"{source}: asOf {problem}")
    return checked


# -- store mode -----------------------------------------------------------------------------------


def _decide_from_store(
    tenant: str,
    customer_id: str,
    flow_key: str | None,
    database: str | None,
    explain: bool,
    *,
    channel: str | None,
    placement: str | None,
    segments: tuple[str, ...],
    attributes: tuple[str, ...],
    limit: int | None,
    as_of: str | None,
    save: bool,
) -> tuple[Decision, dict[str, Any]]:
    """Decide through DecisionService over the store at ``database``; print what was read."""
    from ..models.request import DecisionRequest
    from ..service import DecisionService

    for value, option in [(tenant, "--tenant"), (customer_id, "--customer-id"),
                          (flow_key, "--flow"), (channel, "--channel"),
                          (placement, "--placement"),
                          *((segment, "--segment") for segment in segments)]:  # fmt: skip
        _check_id(value, option)
    when = _parse_as_of(as_of)
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "channel": channel,
        "placement": placement,
        "segments": segments,
        "attributes": _parse_attributes(attributes),
        "limit": limit,
        "decision_flow_key": flow_key,
        "as_of": when,
        "explain": explain,
    }
    try:
        request = DecisionRequest(**fields)
    except ValidationError as exc:
        _bad_request(exc)
    with open_database(database) as store:
        if store.get_tenant(tenant) is None:
            raise click.BadParameter(
                f"tenant {tenant!r} does not exist in {store.url} "
                "(create it with `nextbest tenants create`, or pass --database)",
                param_hint="--tenant",
            )
        service = DecisionService(_host(store), store)
        try:
            if save:
                saved = service.recommend(tenant, request)
                key, version, decision = saved.flow_key, saved.flow_version, saved.decision
            else:
                decided = service.decide(tenant, request)
                key, version, decision = decided.flow_key, decided.flow_version, decided.decision
        except UnknownFlowError as exc:
            hint = "--flow" if flow_key else "--tenant"
            raise click.BadParameter(str(exc), param_hint=hint) from None
        except (DecisionError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"tenant {tenant!r}: flow {key!r} version {version}", err=True)
    data = decision.to_dict()
    data["flowVersion"] = version
    if save:
        data["recommendationId"] = saved.recommendation_id
        click.echo(f"saved recommendation {saved.recommendation_id}", err=True)
    return decision, data


def _check_id(value: str | None, option: str) -> None:
    if value is None:
        return
    problem = id_problem(value)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=option)


def _parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


def _parse_attributes(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` options as the request's attributes (VALUE as JSON when it parses)."""
    attributes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--attribute")
        attributes[key] = option_value(key, raw, "--attribute")
    problem = document_problem(attributes)
    if problem is not None:
        raise click.BadParameter(f"the attributes {problem}", param_hint="--attribute")
    return attributes


_OPTION_OF = {
    "customerId": "--customer-id",
    "channel": "--channel",
    "placement": "--placement",
    "segments": "--segment",
    "attributes": "--attribute",
    "limit": "--limit",
    "decisionFlowKey": "--flow",
    "asOf": "--as-of",
}


def validation_problems(exc: ValidationError) -> str:
    """A pydantic error as ``field rule; field rule`` (the fields as the document spells them)."""
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{field} {message}" if field else message)
    return "; ".join(problems)


def _bad_request(exc: ValidationError) -> NoReturn:
    error = exc.errors()[0]
    loc = error.get("loc") or ("",)
    field = str(loc[0])
    option = _OPTION_OF.get(field) or _OPTION_OF.get(_camel(field)) or field
    message = str(error.get("msg", exc)).removeprefix("Value error, ")
    raise click.BadParameter(message, param_hint=option)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def format_decision(decision: Any) -> str:
    """A readable table of ranked offers, then the explanation when there is one."""
    lines = [f"customer {decision.customer_id}  flow {decision.flow_key}  as of "
             f"{decision.as_of:%Y-%m-%d %H:%M}"]  # fmt: skip
    group = getattr(decision, "group", None)
    if group is not None:
        reason = getattr(decision, "group_reason", None) or {}
        why = f" ({reason['reason']})" if isinstance(reason.get("reason"), str) else ""
        lines.append(f"  group: {group}{why}")
    if not decision.items:
        lines.append("  no offer (control group)" if group == "control" else "  no offer qualified")
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


__all__ = ["decide_command", "format_decision", "strict_json"]
