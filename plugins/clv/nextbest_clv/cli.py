"""``nextbest clv ...`` commands: compute, show, settings, schedule, fit, backtest, models,
and the history: snapshots, migration, drift.

Every command takes ``--tenant`` and ``--database URL`` (environment NEXTBEST_DATABASE_URL;
default ``sqlite:///nextbest.db``), the host's ``database_option``, and opens the database with
the host's ``open_database`` (which prints it on stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from nextbest import Host, database_option, open_database, option_value
from nextbest.store import parse_time
from nextbest_clv.backtest.runs import compare_models, run_backtest
from nextbest_clv.core.estimators import TRANSACTION_MODELS
from nextbest_clv.errors import (
    AsOfBeforeLastInteractionError,
    ClvError,
    ClvInputError,
    HorizonNotPassedError,
    SnapshotNotFoundError,
)
from nextbest_clv.service import SEGMENTS, BatchResult, ClvService, service_for
from nextbest_clv.service.batch_compute import compute_records, result_json
from nextbest_clv.service.fits import FITTABLE_MODELS, fit_tenant_model
from nextbest_clv.service.history import get_snapshot, list_snapshots
from nextbest_clv.service.history_compare import drift_report, migration, score_snapshot
from nextbest_clv.service.model_records import ModelBatchResult

__all__ = ["clv_group", "parse_as_of"]

_database = database_option
_tenant = click.option("--tenant", required=True, help="Tenant id.")
_as_of = click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Compute as of this ISO date or time (UTC unless it has an offset); default now.",
)


def parse_as_of(text: str | None, param: str = "--as-of") -> float | None:
    """Epoch seconds of an ISO-8601 date or date-time (naive = UTC) within the store's window
    of times (``nextbest.store.parse_time``: 1900-01-01 to 2200-01-01 UTC); None for None.

    Raises:
        click.BadParameter: naming ``param`` (a usage error, exit code 2): text that is not
            ISO-8601 (e.g. 1998-06-30 or 1998-06-30T12:00:00Z), or a time outside the window.
    """
    if text is None:
        return None
    try:
        return parse_time(text).timestamp()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


@contextmanager
def _service(database: str | None) -> Iterator[ClvService]:
    """The CLV service on the store at ``database`` (announced on stderr like every command's;
    it must exist at the current schema)."""
    with open_database(database) as store:
        try:
            # the host's service: its batches tell the host (triggers) what they stored
            yield service_for(Host(store=store))
        except ClvError as exc:
            raise click.ClickException(str(exc)) from exc


def progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``progress(done, total)`` callback drawing a click progress bar on stderr (stdout
    stays clean for ``--json``), and a closer."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def progress(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = click.progressbar(
                length=max(total, 1), label=label, width=30, file=sys.stderr
            )
            bar.__enter__()
        bar.update(done - state["done"])
        state["done"] = done

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)

    return progress, close


def print_result(result: BatchResult, model_result: ModelBatchResult | None = None) -> None:
    """Counts per segment, failures and duration of a batch, as a small table."""
    click.echo(
        f"tenant {result.tenant_id}: {result.computed} record(s) as of "
        f"{result.to_dict()['asOf']} in {result.duration_seconds:.2f} s"
        + (f" (segment {result.segment})" if result.segment else "")
    )
    for name in SEGMENTS:
        click.echo(f"  {name:<8} {result.counts[name]:>9}")
    if result.failed:
        click.echo(f"  failed   {result.failed:>9}", err=True)
        for failure in result.failures[:10]:
            click.echo(f"    {failure['customerId']}: {failure['reason']}", err=True)
    if model_result is not None:
        click.echo(
            f"model {model_result.model} (fit {model_result.fit}): fields for "
            f"{model_result.computed} customer(s), {model_result.without_data} without data"
        )
        if model_result.failed:
            click.echo(f"  failed   {model_result.failed:>9}", err=True)
            for failure in model_result.failures[:10]:
                click.echo(f"    {failure['customerId']}: {failure['reason']}", err=True)


@click.group("clv")
def clv_group() -> None:
    """Customer lifetime value (nextbest-clv): compute, show, settings, schedule, fit,
    backtest, models."""


@clv_group.command("compute")
@_tenant
@click.option("--segment", type=click.Choice(SEGMENTS), default=None, help="Only this segment.")
@_as_of
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compute_command(
    tenant: str, segment: str | None, as_of: str | None, database: str | None, as_json: bool
) -> None:
    """Batch compute the tenant's CLV records (all customers or one segment); with a
    probabilistic model, also its fields from the stored fit."""
    when = parse_as_of(as_of)
    progress, close = progress_bar("Storing CLV records")
    with _service(database) as service:
        try:
            result, model_result = compute_records(
                service, tenant, segment=segment, as_of=when, progress=progress
            )
        finally:
            close()
    if as_json:
        click.echo(json.dumps(result_json(result, model_result), indent=2))
    else:
        print_result(result, model_result)


@clv_group.command("show")
@click.argument("customer")
@_tenant
@_as_of
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show_command(
    customer: str, tenant: str, as_of: str | None, database: str | None, as_json: bool
) -> None:
    """Show a customer's CLV record as of --as-of (default now): the stored record while it
    is current for that time, else computed."""
    when = parse_as_of(as_of)
    with _service(database) as service:
        try:
            record = service.get(tenant, customer, as_of=when)
        except AsOfBeforeLastInteractionError as exc:
            raise click.BadParameter(str(exc), param_hint="--as-of") from None
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    width = max(len(k) for k in record)
    for key, value in record.items():
        click.echo(f"{key:<{width}}  {value}")


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--set")
    # A bare string (schedule=15 3 * * *) stays text.
    return key.strip(), option_value(key.strip(), raw, "--set")


@clv_group.command("settings")
@_tenant
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a setting (camelCase name; JSON value, null clears the schedule). Repeatable.",
)
@_database
def settings_command(tenant: str, assignments: tuple[str, ...], database: str | None) -> None:
    """Show (or change with --set) the tenant's CLV settings."""
    changes = dict(_parse_assignment(a) for a in assignments)
    with _service(database) as service:
        if changes:
            settings = service.update_settings(tenant, changes)
        else:
            service.require_tenant(tenant)
            settings = service.get_settings(tenant)
    click.echo(json.dumps(settings.to_json(), indent=2))


@clv_group.command("schedule")
@_tenant
@click.option("--cron", default=None, help='Five-field cron (UTC), e.g. "15 3 * * *".')
@click.option("--clear", is_flag=True, help="Remove the schedule.")
@_database
def schedule_command(tenant: str, cron: str | None, clear: bool, database: str | None) -> None:
    """Schedule the tenant's batch compute; the API server runs it (one process only)."""
    if (cron is None) == (not clear):
        raise click.UsageError("give either --cron EXPRESSION or --clear")
    with _service(database) as service:
        settings = service.update_settings(tenant, {"schedule": None if clear else cron})
    if settings.schedule is None:
        click.echo(f"tenant {tenant}: CLV schedule cleared")
    else:
        click.echo(f"tenant {tenant}: CLV batch compute scheduled at {settings.schedule!r} (UTC)")


_penalizer = click.option(
    "--penalizer",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="L2 penalty on the parameters (try 0.001-0.1 for small or degenerate data).",
)


def _day(text: str | None, param: str) -> float | None:
    return parse_as_of(text, param)


@clv_group.command("fit")
@_tenant
@click.option(
    "--model",
    type=click.Choice(FITTABLE_MODELS),
    default=None,
    help="Model to fit [default: the tenant's model setting].",
)
@click.option("--end", default=None, metavar="TIME", help="Fit on data up to this time.")
@_penalizer
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the stored fit as JSON.")
def fit_command(
    tenant: str,
    model: str | None,
    end: str | None,
    penalizer: float,
    database: str | None,
    as_json: bool,
) -> None:
    """Fit a probabilistic model to the tenant's data and store it as a new version."""
    until = _day(end, "--end")
    with _service(database) as service:
        service.require_tenant(tenant)
        settings = service.get_settings(tenant)
        name = model or settings.model
        if name == "rfm":
            raise click.UsageError(
                "the tenant's model is rfm, which has no parameters: pass --model "
                f"({', '.join(FITTABLE_MODELS)})"
            )
        doc = fit_tenant_model(
            service.store, tenant, name, settings, end=until, penalizer=penalizer
        )
        service.models.forget(tenant)
        service.invalidate_tenant(tenant)
    if settings.model != name:
        # stderr, so --json output stays one JSON document
        click.echo(
            f"note: tenant {tenant}'s model setting is {settings.model}, so its records do not "
            f"use this fit; to switch: `nextbest clv settings --tenant {tenant} --set "
            f"model={name}`",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    params = ", ".join(f"{k} = {v:.4g}" for k, v in doc["params"].items())
    span = doc["dataSpan"]
    click.echo(f"tenant {tenant}: {name} fit version {doc['version']}: {params}")
    click.echo(
        f"  log-likelihood {doc['logLikelihood']:.4f}; {doc['customers']} customers; "
        f"data {span['start']} .. {span['end']}"
    )
    spend = doc.get("spend")
    if spend is not None:
        if spend["params"]:
            gg = ", ".join(f"{k} = {v:.4g}" for k, v in spend["params"].items())
            click.echo(f"  spend: Gamma-Gamma {gg}")
        else:
            click.echo(f"  spend: mean repeat value {spend['meanValue']:.2f} ({spend['reason']})")
    covariates = doc.get("covariates")
    if covariates is not None:
        _print_covariates(covariates)


def _print_covariates(section: dict[str, Any]) -> None:
    """The covariate fit of ``clv fit``: coefficients with standard errors and the LR test."""
    click.echo(
        f"  covariates: {section['customers']} customers"
        + (f" ({section['excludedCustomers']} left out)" if section["excludedCustomers"] else "")
    )
    for part in (section, section.get("spend")):
        if not part or "coefficients" not in part:
            continue
        for process, coefficients in part["coefficients"].items():
            errors = part["standardErrors"].get(process, {})
            for name, value in coefficients.items():
                se = errors.get(name)
                shown = "n/a" if se is None else f"{se:.4g}"
                click.echo(f"    {process:<10} {name:<30} {value:>10.4g}  (SE {shown})")
        lr = part["lrTest"]
        click.echo(
            f"    LR test vs no covariates: statistic {lr['statistic']:.4g}, df {lr['df']:g}, "
            f"p = {lr['pValue']:.4g}"
        )


def _print_report(run: dict[str, Any]) -> None:
    tx, rev = run["transactions"], run["revenue"]
    click.echo(
        f"{run['model']}: calibration {run['calibrationStart']} .. {run['calibrationEnd']}, "
        f"holdout to {run['holdoutEnd']} ({run['holdoutWeeks']:.1f} weeks), "
        f"{run['customers']} customers ({run['repeatCustomers']} repeat)"
    )
    click.echo(f"  {'':<22}{'predicted':>12}{'actual':>12}{'MAE':>10}{'RMSE':>10}{'bias':>10}")
    for label, stats in (("repeat transactions", tx), ("spend", rev)):
        click.echo(
            f"  {label:<22}{stats['predicted']:>12.1f}{stats['actual']:>12.1f}"
            f"{stats['mae']:>10.4f}{stats['rmse']:>10.4f}{stats['bias']:>10.4f}"
        )
    click.echo(f"  {'decile':<8}{'customers':>10}{'predicted':>12}{'actual':>12}")
    for row in run["deciles"]:
        click.echo(
            f"  {row['decile']:<8}{row['customers']:>10}{row['predicted']:>12.1f}"
            f"{row['actual']:>12.1f}"
        )


def _plotter() -> Callable[[dict[str, Any], str], Any]:
    """The back-test plot writer. matplotlib is an optional extra (``nextbest[plot]``),
    imported only when --plot is given, so the rest of ``nextbest clv`` works without it.

    Raises:
        click.UsageError: matplotlib is not installed.
    """
    try:
        from nextbest_clv.backtest.plot import plot_backtest
    except ImportError as exc:
        raise click.UsageError(
            f"--plot needs matplotlib, which is not installed ({exc}): install it with "
            "pip install 'nextbest[plot]', or run the back-test without --plot"
        ) from None
    return plot_backtest


@clv_group.command("backtest")
@_tenant
@click.option(
    "--calibration-end",
    required=True,
    metavar="DATE",
    help="Last day of the calibration period (the model is fitted on data up to it).",
)
@click.option(
    "--holdout-end", default=None, metavar="DATE", help="Last holdout day [default: last data]."
)
@click.option("--model", type=click.Choice(TRANSACTION_MODELS), default="bgnbd", show_default=True)
@click.option(
    "--plot",
    "plot_file",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the predicted-vs-actual plot to FILE (.png or .svg).",
)
@_penalizer
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the stored report as JSON.")
def backtest_command(
    tenant: str,
    calibration_end: str,
    holdout_end: str | None,
    model: str,
    plot_file: str | None,
    penalizer: float,
    database: str | None,
    as_json: bool,
) -> None:
    """Fit MODEL on the calibration period, predict the holdout, report and store the result."""
    cal = _day(calibration_end, "--calibration-end")
    end = _day(holdout_end, "--holdout-end")
    plot = None if plot_file is None else _plotter()  # before the (long) back-test runs
    with _service(database) as service:
        service.require_tenant(tenant)
        run = run_backtest(
            service.store,
            tenant,
            model,
            service.get_settings(tenant),
            calibration_end=cal,
            holdout_end=end,
            penalizer=penalizer,
        )
        if plot is not None and plot_file is not None:
            plot(run, plot_file)
    if as_json:
        click.echo(json.dumps(run, indent=2))
    else:
        _print_report(run)
        if plot_file is not None:
            click.echo(f"plot written to {plot_file}")


@clv_group.command("models")
@_tenant
@click.option(
    "--calibration-end",
    default=None,
    metavar="DATE",
    help="Last calibration day [default: midway between the first and last transaction day].",
)
@click.option("--holdout-end", default=None, metavar="DATE", help="Last holdout day.")
@_penalizer
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def models_command(
    tenant: str,
    calibration_end: str | None,
    holdout_end: str | None,
    penalizer: float,
    database: str | None,
    as_json: bool,
) -> None:
    """Back-test every applicable model (BG/NBD, Pareto/NBD, MBG/NBD, BG/BB; sBG for a
    tenant with subscriptions) on the tenant's data and recommend one."""
    cal = _day(calibration_end, "--calibration-end")
    end = _day(holdout_end, "--holdout-end")
    with _service(database) as service:
        service.require_tenant(tenant)
        result = compare_models(
            service.store,
            tenant,
            service.get_settings(tenant),
            calibration_end=cal,
            holdout_end=end,
            penalizer=penalizer,
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"tenant {tenant}: calibration to {result['calibrationEnd']}, holdout to "
        f"{result['holdoutEnd']}"
    )
    click.echo(
        f"  {'model':<10}{'log-lik':>12}{'pred tx':>10}{'actual tx':>10}{'MAE':>9}{'RMSE':>9}"
        f"{'bias':>9}{'pred spend':>12}{'actual spend':>13}"
    )
    for run in result["runs"]:
        tx, rev = run["transactions"], run["revenue"]
        click.echo(
            f"  {run['model']:<10}{run['logLikelihood']:>12.2f}{tx['predicted']:>10.1f}"
            f"{tx['actual']:>10.1f}{tx['mae']:>9.4f}{tx['rmse']:>9.4f}{tx['bias']:>9.4f}"
            f"{rev['predicted']:>12.2f}{rev['actual']:>13.2f}"
        )
        if run["model"] == "bgbb":  # scored in opportunities, turned into transactions
            click.echo(
                f"  (bgbb: opportunities of {run['periodDays']:g} days, "
                f"{run['transactionsPerOpportunity']:.3f} transactions per opportunity; its "
                "log-likelihood is of opportunities, not comparable with the others)"
            )
    for failure in result["failed"]:
        click.echo(f"  {failure['model']:<10}failed: {failure['reason']}", err=True)
    for item in result["notApplicable"]:
        click.echo(f"  {item['model']:<10}does not apply: {item['reason']}")
    sbg = result["subscription"]
    if sbg is not None and "retention" in sbg:
        ret = sbg["retention"]
        click.echo(
            f"subscriptions (sbg, calibration to {sbg['calibrationEnd']}): "
            f"{sbg['activeAtCalibrationEnd']} subscribers active, retention over "
            f"{len(ret['periods'])} periods of {sbg['periodDays']:g} days: predicted "
            f"{ret['predicted'][-1]:.3f} vs actual {ret['actual'][-1]:.3f} still subscribed, "
            f"curve RMSE {ret['rmse']:.4f} (not comparable with the transaction RMSE)"
        )
    elif sbg is not None:
        click.echo(f"  {'sbg':<10}failed: {sbg['failed']}", err=True)
    margin = result["margin"]
    if margin is None and len(result["runs"]) == 1:
        click.echo(
            "caveat: only one transaction model could be back-tested; there is no margin "
            "to judge it by"
        )
    if margin is not None:
        click.echo(
            f"margin over {margin['second']}: RMSE {margin['rmseDifference']:.4f} lower "
            f"(standard error {margin['standardError']:.4f})"
        )
        if margin["withinNoise"]:
            click.echo(
                f"caveat: the margin is within noise ({margin['noise']}); the models predict "
                "this holdout about equally well, so prefer the simpler or the one you trust"
            )
    click.echo(
        f"recommended: {result['recommended']} ({result['criterion']}); use it with "
        f"`nextbest clv settings --tenant {tenant} --set model={result['recommended']}` and "
        f"`nextbest clv fit --tenant {tenant}`"
    )


@contextmanager
def _options(names: dict[str, str]) -> Iterator[None]:
    """History errors about an input as a usage error of its option (``names``: the service's
    field -> the option)."""
    try:
        yield
    except (SnapshotNotFoundError, HorizonNotPassedError, ClvInputError) as exc:
        hint = names.get(exc.field or "")
        if hint is None:
            raise
        raise click.BadParameter(str(exc), param_hint=hint) from None


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


@clv_group.command("snapshots")
@_tenant
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--cursor", default=None, metavar="ID", help="Start after this snapshot id.")
@click.option("--id", "snapshot_id", default=None, metavar="ID", help="Show this snapshot.")
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the snapshots as JSON.")
def snapshots_command(
    tenant: str,
    limit: int,
    cursor: str | None,
    snapshot_id: str | None,
    database: str | None,
    as_json: bool,
) -> None:
    """List the tenant's CLV history snapshots (one per full batch compute), newest first."""
    with _service(database) as service, _options({"cursor": "--cursor", "id": "--id"}):
        service.require_tenant(tenant)
        if snapshot_id is not None:
            page, after = [get_snapshot(service.store, tenant, snapshot_id)], None
        else:
            page, after = list_snapshots(service.store, tenant, limit=limit, after=cursor)
    if as_json:
        out = page[0] if snapshot_id is not None else {"snapshots": page, "nextCursor": after}
        click.echo(json.dumps(out, indent=2))
        return
    if not page:
        click.echo(f"tenant {tenant}: no CLV snapshots yet (each full batch compute stores one)")
        return
    click.echo(
        f"  {'id':<34}{'asOf':<22}{'model':<10}{'customers':>10}{'total value':>16}"
        + "".join(f"{name:>9}" for name in SEGMENTS)
    )
    for doc in page:
        counts = "".join(f"{doc['segments'][name]['customers']:>9}" for name in SEGMENTS)
        click.echo(
            f"  {doc['id']:<34}{doc['asOf']:<22}{doc['model']:<10}{doc['customers']:>10}"
            f"{_money(doc['totalValue']):>16}{counts}"
        )
    if after is not None:
        click.echo(f"more: --cursor {after}")


@clv_group.command("migration")
@_tenant
@click.option("--from", "from_id", default=None, metavar="ID", help="The earlier snapshot.")
@click.option("--to", "to_id", default=None, metavar="ID", help="The later snapshot.")
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the migration as JSON.")
def migration_command(
    tenant: str, from_id: str | None, to_id: str | None, database: str | None, as_json: bool
) -> None:
    """Segment migration between two CLV snapshots (default: the two newest): customers per
    segment before (rows) and after (columns)."""
    with _service(database) as service, _options({"from": "--from", "to": "--to"}):
        service.require_tenant(tenant)
        result = migration(service.store, tenant, from_id, to_id)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"tenant {tenant}: {result['from']['id']} ({result['from']['asOf']}) -> "
        f"{result['to']['id']} ({result['to']['asOf']})"
    )
    corner = "from/to"
    click.echo(f"  {corner:<10}" + "".join(f"{t:>9}" for t in SEGMENTS) + f"{'left':>9}")
    for s in SEGMENTS:
        row = "".join(f"{result['matrix'][s][t]:>9}" for t in SEGMENTS)
        click.echo(f"  {s:<10}{row}{result['left'][s]:>9}")
    click.echo(f"  {'joined':<10}" + "".join(f"{result['joined'][t]:>9}" for t in SEGMENTS))
    click.echo(f"  stayed {result['stayed']}, moved {result['moved']}")


def _print_drift(run: dict[str, Any]) -> None:
    click.echo(
        f"snapshot {run['snapshot']} ({run['model']}, {run['field']}): {run['asOf']} .. "
        f"{run['horizonEnd']}, {run['customers']} customer(s)"
    )
    click.echo(
        f"  predicted {_money(run['predicted'])}, actual {_money(run['actual'])}, "
        f"MAE {_money(run['mae'])}, RMSE {_money(run['rmse'])}, bias {_money(run['bias'])}"
    )
    click.echo(f"  {'decile':<8}{'customers':>10}{'predicted':>14}{'actual':>14}{'bias':>12}")
    for row in run["deciles"]:
        click.echo(
            f"  {row['decile']:<8}{row['customers']:>10}{_money(row['predicted']):>14}"
            f"{_money(row['actual']):>14}{_money(row['bias']):>12}"
        )


@clv_group.command("drift")
@_tenant
@click.option(
    "--snapshot", "snapshot_id", default=None, metavar="ID", help="Score this snapshot now."
)
@_database
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def drift_command(
    tenant: str, snapshot_id: str | None, database: str | None, as_json: bool
) -> None:
    """Predicted vs actual: each CLV snapshot's predictions scored against what its customers
    spent in the horizon (stored once a later batch passes it), or one snapshot scored now."""
    names = {"snapshot": "--snapshot", "id": "--snapshot"}
    with _service(database) as service, _options(names):
        service.require_tenant(tenant)
        if snapshot_id is None:
            result = drift_report(service.store, tenant)
        else:
            summary = get_snapshot(service.store, tenant, snapshot_id, field="snapshot")
            settings = service.get_settings(tenant)
            result = score_snapshot(service.store, tenant, settings, summary, service.clock())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if snapshot_id is not None:
        _print_drift(result)
        return
    if not result["scored"]:
        click.echo(f"tenant {tenant}: no snapshot's horizon has passed yet")
    for run in result["scored"]:
        _print_drift(run)
    for waiting in result["pending"]:
        click.echo(f"waiting: {waiting['snapshot']} until {waiting['horizonEnd']}")
