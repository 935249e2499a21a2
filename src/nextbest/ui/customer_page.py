"""The Customer profile page: one customer's summary, latest interactions and
recommendations, and every plugin's sections (``nextbest.profiles``, the same document as
``GET /api/v1/customers/{id}/profile``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..errors import PageInputError, PageNotFoundError
from ..hookcalls import call_impl, implementations
from ..plugin_api import PageRequest
from ..profiles import customer_profile
from ..report_blocks import Block, Column, Form, FormField, Section, Stat, Stats, Table, Text
from ..store.limits import id_problem


def _plain(value: Any) -> Any:
    """A section field as a cell: scalars as they are, a list of objects as its length (a
    plugin draws those through ``customer_profile_blocks``; the JSON holds them), anything
    else nested as compact JSON."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"{len(value)} entries"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def section_table(name: str, fields: dict[str, Any]) -> Table:
    """A plugin's profile section as a two-column table (field, value)."""
    table_id = "section-" + "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:30]
    return Table(
        table_id,
        f"{name}: what the plugin knows of the customer",
        [Column("field", "Field"), Column("value", "Value")],
        [[k, _plain(v)] for k, v in fields.items()],
    )


log = logging.getLogger(__name__)


def plugin_blocks(request: PageRequest, customer: str, sections: dict[str, Any]) -> list[Block]:
    """Every plugin's ``customer_profile_blocks`` answer in plugin order; a plugin that raises
    is logged and noted instead."""
    blocks: list[Block] = []
    for impl in implementations(request.host.pm, "customer_profile_blocks"):
        try:
            answer = call_impl(
                impl,
                host=request.host,
                tenant_id=request.tenant_id,
                customer_id=customer,
                sections=sections,
            )
        except Exception as exc:
            log.exception("plugin %r failed in customer_profile_blocks", impl.plugin_name)
            blocks.append(
                Text(f"Plugin {impl.plugin_name}: no blocks ({type(exc).__name__}).", kind="note")
            )
            continue
        blocks.extend(answer or [])
    return blocks


def render_customer(request: PageRequest) -> list[Block]:
    """The Customer profile page for the ``customer`` query parameter."""
    customer = request.param("customer")
    if request.offline:
        return [
            Text(
                "The exported report holds no single customer's profile: open the served "
                "report's Customer page (or GET /api/v1/customers/{id}/profile).",
                kind="note",
            )
        ]
    form = Form([FormField("customer", "Customer id", "text", customer or "")], submit="Open")
    if customer is None:
        return [form, Text("Enter a customer id to see the customer's profile.")]
    problem = id_problem(customer)
    if problem is not None:
        raise PageInputError("query.customer", f"a customer id {problem}")
    store = request.host.store
    assert store is not None
    profile = customer_profile(request.host, store, request.tenant_id, customer, request.as_of)
    if profile is None:
        raise PageNotFoundError(f"no customer {customer!r}")
    blocks: list[Block] = [form]
    summary = profile["summary"]
    if summary is not None:
        blocks.append(
            Stats(
                [
                    Stat("Interactions", summary["interactions"], "count"),
                    Stat("Impressions", summary["impressions"], "count"),
                    Stat("Positive responses", summary["positive"], "count"),
                    Stat("Conversions", summary["conversions"], "count"),
                    Stat("Total value", summary["totalValue"], "money"),
                    Stat("First seen", summary["firstAt"][:10], "UTC"),
                    Stat("Last seen", summary["lastAt"][:10], "UTC"),
                    Stat("Last outcome", summary["lastOutcome"]),
                ],
                title=f"Customer {customer}",
            )
        )
    for name, fields in profile["sections"].items():
        blocks.append(Section(name, [section_table(name, fields)]))
    blocks.extend(plugin_blocks(request, customer, profile["sections"]))
    for failure in profile["failedSections"]:
        blocks.append(
            Text(f"Plugin {failure['plugin']}: no section ({failure['reason']}).", kind="note")
        )
    blocks.append(
        Table(
            "interactions",
            "Latest interactions, newest first",
            [
                Column("at", "Occurred", "UTC"),
                Column("outcome", "Outcome"),
                Column("offer", "Offer"),
                Column("channel", "Channel"),
                Column("value", "Value", "money", numeric=True),
            ],
            [
                [i["occurredAt"], i["outcome"], i["offerId"], i["channel"], i["value"]]
                for i in profile["recentInteractions"]
            ],
        )
    )
    blocks.append(
        Table(
            "recommendations",
            "Latest recommendations, newest first",
            [
                Column("at", "Made", "UTC"),
                Column("flow", "Flow"),
                Column("channel", "Channel"),
                Column("offers", "Offers in rank order"),
                Column("group", "Control group"),
            ],
            [
                [
                    r["createdAt"],
                    None if r["flowKey"] is None else f"{r['flowKey']} v{r['flowVersion']}",
                    r["channel"],
                    ", ".join(o["offerId"] for o in r["offers"]) or None,
                    r["group"],
                ]
                for r in profile["recentRecommendations"]
            ],
        )
    )
    return blocks


__all__ = ["plugin_blocks", "render_customer", "section_table"]
