"""The CLV history in the web report: what changed over time, from the stored snapshots
(:mod:`nextbest_clv.service.history`) and back-tests.

- :func:`overview_trend`: the overview's trend since the previous snapshots (added to
  ``overview`` by :mod:`nextbest_clv.report_pages`).
- :func:`distribution_over_time`: value quantile bands and segment counts per snapshot (added to
  ``distribution``).
- page ``migration`` (300): the segment migration matrix between two snapshots chosen in a GET
  form (default: the two newest).
- page ``predicted-vs-actual`` (500): the stored back-tests over time (error by run), the latest
  run's cumulative and decile charts, and the snapshots' predictions scored against what
  happened (drift) by snapshot, with the latest scored snapshot's deciles.

Every page shows the snapshots and runs as of the page's time (``asOf`` at or before it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from nextbest import (
    Axis,
    Block,
    Chart,
    Column,
    Form,
    FormField,
    PageInputError,
    PageRequest,
    RegisterReportPage,
    ReportPage,
    Section,
    Series,
    Stat,
    Stats,
    Table,
    Text,
)
from nextbest.store import Store, parse_time
from nextbest_clv.backtest.runs import list_backtests
from nextbest_clv.errors import SnapshotNotFoundError
from nextbest_clv.service import service_for
from nextbest_clv.service.history import list_all_snapshots
from nextbest_clv.service.history_compare import migration
from nextbest_clv.service.records import SEGMENTS

__all__ = [
    "HISTORY_PAGES",
    "distribution_over_time",
    "overview_trend",
    "register_history_pages",
    "render_migration",
    "render_predicted_vs_actual",
]

MONEY = "money"
#: Snapshots drawn in a chart over time at most (the newest ones).
MAX_POINTS = 200
_NO_SNAPSHOTS = (
    "No CLV snapshots yet: each full batch compute (nextbest clv compute, POST "
    "/api/v1/clv/compute or the schedule) stores one."
)


def _time(text: str) -> datetime:
    return parse_time(text)


def _store(request: PageRequest) -> Store:
    store = service_for(request.host).store
    return store


def _snapshots(request: PageRequest) -> list[dict[str, Any]]:
    """The tenant's snapshots as of the page's time, newest first."""
    return [
        s
        for s in list_all_snapshots(_store(request), request.tenant_id)
        if _time(s["asOf"]) <= request.as_of
    ]


def _value_label(snapshot: Mapping[str, Any]) -> str:
    return "discounted CLV" if snapshot["value"]["field"] == "clv" else "predicted revenue"


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "-"
    delta = now - before
    if before == 0:
        return f"{delta:+,.2f}"
    return f"{delta:+,.2f} ({100.0 * delta / abs(before):+.1f}%)"


def overview_trend(request: PageRequest) -> list[Block]:
    """The overview's trend: the newest snapshot against the previous one, and the customers
    and value of every snapshot over time."""
    snaps = _snapshots(request)
    if not snaps:
        return [Section("Trend", [Text(_NO_SNAPSHOTS, kind="note")])]
    newest = snaps[0]
    label = _value_label(newest)
    blocks: list[Block] = []
    if len(snaps) > 1:
        before = snaps[1]
        at_risk_now = newest["segments"]["at_risk"]["customers"]
        at_risk_before = before["segments"]["at_risk"]["customers"]
        blocks.append(
            Stats(
                [
                    Stat("Customers", _change(newest["customers"], before["customers"])),
                    Stat(f"Total {label}", _change(newest["totalValue"], before["totalValue"])),
                    Stat(
                        f"Average {label}",
                        _change(newest["averageValue"], before["averageValue"]),
                    ),
                    Stat("At-risk customers", _change(at_risk_now, at_risk_before)),
                ],
                title=f"Since the previous snapshot ({before['asOf']} to {newest['asOf']})",
            )
        )
    else:
        blocks.append(
            Text(f"One snapshot so far ({newest['asOf']}): the trend starts with the next batch.")
        )
    points = list(reversed(snaps[:MAX_POINTS]))
    x = [_time(s["asOf"]) for s in points]
    blocks += [
        Chart(
            "line",
            f"Total {label} by snapshot",
            Axis("Snapshot as of", "UTC"),
            Axis(f"Total {label}", MONEY),
            [Series(f"total {label}", x, [s["totalValue"] for s in points])],
        ),
        Chart(
            "line",
            "Customers by snapshot",
            Axis("Snapshot as of", "UTC"),
            Axis("Customers", "count"),
            [Series("customers", x, [s["customers"] for s in points])],
        ),
    ]
    return [Section("Trend", blocks)]


def distribution_over_time(request: PageRequest) -> list[Block]:
    """Value quantile bands and segment counts per snapshot."""
    snaps = _snapshots(request)
    if not snaps:
        return [Section("Over time", [Text(_NO_SNAPSHOTS, kind="note")])]
    points = list(reversed(snaps[:MAX_POINTS]))
    x = [_time(s["asOf"]) for s in points]
    label = _value_label(snaps[0])

    def q(name: str) -> list[float | None]:
        return [s["value"]["quantiles"][name] for s in points]

    blocks: list[Block] = [
        Chart(
            "band",
            f"{label.capitalize()} quantiles by snapshot",
            Axis("Snapshot as of", "UTC"),
            Axis(label.capitalize(), MONEY),
            [
                Series("median, P10 to P90", x, q("p50"), lower=q("p10"), upper=q("p90")),
                Series("median, P25 to P75", x, q("p50"), lower=q("p25"), upper=q("p75")),
            ],
            note="Bands: the middle 80% and 50% of customers; the line: the median.",
        ),
        Chart(
            "line",
            "Customers per segment by snapshot",
            Axis("Snapshot as of", "UTC"),
            Axis("Customers", "count"),
            [
                Series(name, x, [s["segments"][name]["customers"] for s in points])
                for name in SEGMENTS
            ],
        ),
        Table(
            "snapshots",
            "Snapshots (newest first)",
            [
                Column("as_of", "As of", "UTC"),
                Column("model", "Model"),
                Column("customers", "Customers", "count", True),
                *[Column(name, name.replace("_", " "), "count", True) for name in SEGMENTS],
                Column("total", f"Total {label}", MONEY, True),
                Column("median", f"Median {label}", MONEY, True),
            ],
            [
                [
                    _time(s["asOf"]),
                    s["model"],
                    s["customers"],
                    *[s["segments"][name]["customers"] for name in SEGMENTS],
                    s["totalValue"],
                    s["value"]["quantiles"]["p50"],
                ]
                for s in snaps[:MAX_POINTS]
            ],
        ),
    ]
    return [Section("Over time", blocks)]


def _choice(request: PageRequest, name: str, ids: Sequence[str], default: str) -> str:
    value = request.param(name)
    if value is None:
        return default
    if value not in ids:
        raise PageInputError(
            f"query.{name}", f"must be one of the tenant's snapshots, got {value[:60]!r}"
        )
    return value


def render_migration(request: PageRequest) -> list[Block]:
    """Page 3, Segment migration between two chosen snapshots."""
    snaps = _snapshots(request)
    if len(snaps) < 2:
        note = f"A migration needs two snapshots; the tenant has {len(snaps)}."
        if not snaps:  # with one, the "no snapshots yet" hint would contradict the count
            note += " " + _NO_SNAPSHOTS
        return [Text(note, kind="note")]
    ids = [s["id"] for s in snaps]
    from_id = _choice(request, "from", ids, ids[1])
    to_id = _choice(request, "to", ids, ids[0])
    if from_id == to_id:
        raise PageInputError("query.to", "must be a different snapshot from query.from")
    try:
        result = migration(_store(request), request.tenant_id, from_id, to_id)
    except SnapshotNotFoundError as exc:  # deleted by the retention meanwhile
        raise PageInputError(f"query.{exc.field}", str(exc)) from None
    options = [(s["id"], f"{s['asOf']} ({s['customers']} customers)") for s in snaps]
    matrix = result["matrix"]
    rows = [[s, *[matrix[s][t] for t in SEGMENTS], result["left"][s]] for s in SEGMENTS]
    rows.append(["(new customers)", *[result["joined"][t] for t in SEGMENTS], None])
    return [
        Form(
            [
                FormField("from", "From snapshot", "select", from_id, options),
                FormField("to", "To snapshot", "select", to_id, options),
            ],
            submit="Compare",
        ),
        Stats(
            [
                Stat("Stayed in their segment", result["stayed"], "count"),
                Stat("Moved segment", result["moved"], "count"),
                Stat("New customers", sum(result["joined"].values()), "count"),
                Stat("No longer counted", sum(result["left"].values()), "count"),
            ],
            title=f"From {result['from']['asOf']} to {result['to']['asOf']}",
        ),
        Chart(
            "heatmap",
            "Customers moving between segments",
            Axis("Segment after", ""),
            Axis("Segment before", ""),
            [
                Series(
                    "customers",
                    list(SEGMENTS),
                    list(SEGMENTS),
                    z=[[float(matrix[s][t]) for t in SEGMENTS] for s in SEGMENTS],
                )
            ],
            z=Axis("Customers", "count"),
        ),
        Table(
            "migration",
            "Customers by segment before (rows) and after (columns)",
            [
                Column("from", "Before \u2192 after"),
                *[Column(t, t.replace("_", " "), "count", True) for t in SEGMENTS],
                Column("left", "Not in the later snapshot", "count", True),
            ],
            rows,
        ),
    ]


def _backtest_blocks(request: PageRequest) -> list[Block]:
    runs = [
        r
        for r in list_backtests(_store(request), request.tenant_id)
        if _time(r["runAt"]) <= request.as_of
    ]
    if not runs:
        return [
            Text(
                "No back-tests yet: run nextbest clv backtest (or nextbest clv models) to check "
                "a model on a holdout period.",
                kind="note",
            )
        ]
    points = list(reversed(runs[:MAX_POINTS]))
    x = [_time(r["runAt"]) for r in points]
    tx = [r["transactions"] for r in points]
    latest = runs[0]
    weekly = latest["weekly"]
    deciles = latest["deciles"]
    return [
        Chart(
            "line",
            "Back-test error by run (repeat transactions per customer)",
            Axis("Run at", "UTC"),
            Axis("Error", "transactions per customer"),
            [
                Series("MAE", x, [t["mae"] for t in tx]),
                Series("RMSE", x, [t["rmse"] for t in tx]),
                Series("bias", x, [t["bias"] for t in tx]),
            ],
        ),
        Table(
            "backtests",
            "Back-tests (newest first)",
            [
                Column("run_at", "Run at", "UTC"),
                Column("model", "Model"),
                Column("calibration_end", "Calibration end"),
                Column("holdout_end", "Holdout end"),
                Column("customers", "Customers", "count", True),
                Column("predicted", "Predicted transactions", "count", True),
                Column("actual", "Actual transactions", "count", True),
                Column("mae", "MAE", "transactions", True),
                Column("rmse", "RMSE", "transactions", True),
                Column("bias", "Bias", "transactions", True),
            ],
            [
                [
                    _time(r["runAt"]),
                    r["model"],
                    r["calibrationEnd"],
                    r["holdoutEnd"],
                    r["customers"],
                    r["transactions"]["predicted"],
                    r["transactions"]["actual"],
                    r["transactions"]["mae"],
                    r["transactions"]["rmse"],
                    r["transactions"]["bias"],
                ]
                for r in runs[:MAX_POINTS]
            ],
        ),
        Chart(
            "line",
            f"Latest run ({latest['model']}, {latest['runAt']}): cumulative repeat transactions",
            Axis("Holdout week", "weeks"),
            Axis("Cumulative repeat transactions", "count"),
            [
                Series("predicted", weekly["weeks"], weekly["predicted"]),
                Series("actual", weekly["weeks"], weekly["actual"]),
            ],
        ),
        Chart(
            "bar",
            "Latest run: repeat transactions per decile of the prediction",
            Axis("Decile (1 = highest predicted)"),
            Axis("Repeat transactions", "count"),
            [
                Series(
                    "predicted", [d["decile"] for d in deciles], [d["predicted"] for d in deciles]
                ),
                Series("actual", [d["decile"] for d in deciles], [d["actual"] for d in deciles]),
            ],
        ),
    ]


def _drift_blocks(request: PageRequest) -> list[Block]:
    snaps = _snapshots(request)
    scored = [s["drift"] for s in snaps if s.get("drift") is not None]
    waiting = [s for s in snaps if s.get("drift") is None]
    blocks: list[Block] = []
    if not scored:
        ends = sorted(s["prediction"]["horizonEnd"] for s in waiting)
        when = f" The first horizon ends {ends[0]}." if ends else ""
        blocks.append(
            Text(
                "No snapshot's predictions have been scored yet: a batch scores a snapshot "
                f"once its horizon has passed.{when}",
                kind="note",
            )
        )
        return blocks
    points = list(reversed(scored[:MAX_POINTS]))
    x = [_time(d["asOf"]) for d in points]
    latest = scored[0]
    blocks += [
        Chart(
            "line",
            "Prediction error by snapshot (per customer, over each snapshot's horizon)",
            Axis("Snapshot as of", "UTC"),
            Axis("Error", MONEY),
            [
                Series("MAE", x, [d["mae"] for d in points]),
                Series("RMSE", x, [d["rmse"] for d in points]),
                Series("bias", x, [d["bias"] for d in points]),
            ],
        ),
        Table(
            "drift",
            "Snapshots scored against what happened (newest first)",
            [
                Column("as_of", "Snapshot as of", "UTC"),
                Column("horizon_end", "Horizon end", "UTC"),
                Column("field", "Prediction"),
                Column("customers", "Customers", "count", True),
                Column("predicted", "Predicted", MONEY, True),
                Column("actual", "Actual", MONEY, True),
                Column("mae", "MAE", MONEY, True),
                Column("bias", "Bias", MONEY, True),
                Column("relative", "Relative error", "%", True),
            ],
            [
                [
                    _time(d["asOf"]),
                    _time(d["horizonEnd"]),
                    d["field"],
                    d["customers"],
                    d["predicted"],
                    d["actual"],
                    d["mae"],
                    d["bias"],
                    None if d["relativeError"] is None else 100.0 * d["relativeError"],
                ]
                for d in scored[:MAX_POINTS]
            ],
        ),
        Chart(
            "bar",
            f"Snapshot of {latest['asOf']}: predicted vs actual per decile",
            Axis("Decile (1 = highest predicted)"),
            Axis("Value", MONEY),
            [
                Series(
                    "predicted",
                    [d["decile"] for d in latest["deciles"]],
                    [d["predicted"] for d in latest["deciles"]],
                ),
                Series(
                    "actual",
                    [d["decile"] for d in latest["deciles"]],
                    [d["actual"] for d in latest["deciles"]],
                ),
            ],
        ),
    ]
    if waiting:
        blocks.append(Text(f"{len(waiting)} snapshot(s) still inside their horizon.", kind="note"))
    return blocks


def render_predicted_vs_actual(request: PageRequest) -> list[Block]:
    """Page 5, Predicted vs actual: back-tests over time and the snapshots' drift."""
    return [
        Section("Back-tests", _backtest_blocks(request)),
        Section("CLV predictions against what happened", _drift_blocks(request)),
    ]


HISTORY_PAGES = (
    ReportPage(
        "migration",
        "Segment migration",
        300,
        render_migration,
        "How customers moved between CLV segments from one snapshot to another.",
    ),
    ReportPage(
        "predicted-vs-actual",
        "Predicted vs actual",
        500,
        render_predicted_vs_actual,
        "Back-tests over time and the CLV predictions scored against what happened.",
    ),
)


def register_history_pages(register: RegisterReportPage) -> None:
    """Register the history's own pages."""
    for page in HISTORY_PAGES:
        register(page)
