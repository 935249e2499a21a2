"""The Lift page: a flow's treatment vs control group (``DecisionService.lift_report``, the
same report as ``GET /api/v1/reports/lift``), for a chosen flow and window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from ..errors import PageInputError
from ..plugin_api import HostAPI, PageRequest
from ..report_blocks import (
    Axis,
    Block,
    Chart,
    Column,
    Form,
    FormField,
    Series,
    Stat,
    Stats,
    Table,
    Text,
)
from ..service import DecisionService

DEFAULT_DAYS = 30
MAX_DAYS = 366


def decisions_for(host: HostAPI) -> DecisionService:
    """The host's decision service for the report (one per host)."""
    return host.plugin_state(
        "nextbest.ui.decisions", lambda: DecisionService(cast(Any, host), cast(Any, host.store))
    )


def decisions_of(request: PageRequest) -> DecisionService:
    """The host's decision service for report pages (one per host)."""
    return decisions_for(request.host)


def _pct(rate: dict[str, Any]) -> float | None:
    return None if rate["rate"] is None else 100.0 * rate["rate"]


def _lift(interval: dict[str, float] | None, scale: float = 100.0) -> list[float | None]:
    if interval is None:
        return [None, None, None]
    return [scale * interval["estimate"], scale * interval["low"], scale * interval["high"]]


def render_lift(request: PageRequest) -> list[Block]:
    """The Lift page for the ``flow`` and ``days`` query parameters."""
    store = request.host.store
    assert store is not None
    flows = [f.key for f in store.list_flows(request.tenant_id, limit=200).items]
    if not flows:
        return [Text("The tenant has no flows yet.", kind="note")]
    default = store.default_flow_key(request.tenant_id)
    first = default if default in flows else flows[0]
    flow = request.param("flow", first) or first
    if flow not in flows:
        raise PageInputError("query.flow", "must be one of the tenant's flows")
    days = request.int_param("days", DEFAULT_DAYS, minimum=1, maximum=MAX_DAYS)
    report = decisions_of(request).lift_report(
        request.tenant_id, flow, since=request.as_of - timedelta(days=days), until=request.as_of
    )
    blocks: list[Block] = [
        Form(
            [
                FormField("flow", "Flow", "select", flow, [(f, f) for f in flows]),
                FormField("days", "Window (days)", "number", str(days)),
            ]
        )
    ]
    figures = report["flow"]
    rate, value = figures["successRate"], figures["valuePerCustomer"]
    absolute = _lift(rate["absoluteLift"])
    blocks.append(
        Stats(
            [
                Stat("Treatment customers", report["customers"]["treatment"], "count"),
                Stat("Control customers", report["customers"]["control"], "count"),
                Stat("Success rate, treatment", _pct(rate["treatment"]), "%"),
                Stat("Success rate, control", _pct(rate["control"]), "%"),
                Stat("Absolute lift", absolute[0], "percentage points"),
                Stat("Value per customer, treatment", value["treatment"]["mean"], "money"),
                Stat("Value per customer, control", value["control"]["mean"], "money"),
            ],
            title=f"Flow {flow}, the last {days} days",
        )
    )
    if not report["customers"]["treatment"] and not report["customers"]["control"]:
        blocks.append(
            Text("No customer of this flow has a control group in this window.", kind="note")
        )
    names = ["(flow)"] + [o["offerId"] for o in report["offers"]]
    parts = [figures] + report["offers"]
    blocks.append(
        Chart(
            "bar",
            "Success rate by group",
            Axis("Flow and offers"),
            Axis("Customers with a positive response", "%"),
            [
                Series(g, names, [_pct(p["successRate"][g]) for p in parts])
                for g in ("treatment", "control")
            ],
        )
    )
    rows = []
    for name, p in zip(names, parts, strict=True):
        lift = _lift(p["successRate"]["absoluteLift"])
        rows.append(
            [
                name,
                _pct(p["successRate"]["treatment"]),
                _pct(p["successRate"]["control"]),
                *lift,
                p["valuePerCustomer"]["treatment"]["mean"],
                p["valuePerCustomer"]["control"]["mean"],
            ]
        )
    blocks.append(
        Table(
            "lift",
            f"Lift of flow {flow} and its offers ({round(100 * report['confidence'])} % intervals)",
            [
                Column("offer", "Offer"),
                Column("rate_t", "Success, treatment", "%", True),
                Column("rate_c", "Success, control", "%", True),
                Column("lift", "Absolute lift", "pp", True),
                Column("low", "Lift low", "pp", True),
                Column("high", "Lift high", "pp", True),
                Column("value_t", "Value/customer, treatment", "money", True),
                Column("value_c", "Value/customer, control", "money", True),
            ],
            rows,
        )
    )
    blocks.append(
        Text("\n\n".join(f"{k}: {v}" for k, v in report["methods"].items()), title="Methods")
    )
    return blocks


__all__ = ["decisions_for", "decisions_of", "render_lift"]
