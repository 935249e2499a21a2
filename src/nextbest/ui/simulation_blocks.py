"""A finished simulation's result (the JSON of docs/simulation.md) as report blocks: per flow
the offer mix by rank, coverage with the rules that blocked customers, expected value and
conversions overall and by the breakdown's values; with a second flow, both side by side and
the customers whose top offer changes. Pure: a result in, blocks out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..report_blocks import Axis, Block, Chart, Column, Section, Series, Stat, Stats, Table, Text

#: Offers drawn in a chart; a table lists every offer of the result.
MAX_CHART_OFFERS = 20


def flow_label(flow: dict[str, Any]) -> str:
    """``key@version`` of a flow of a result."""
    return f"{flow['flowKey']}@{flow['flowVersion']}"


def _pct(share: float | None) -> float | None:
    return None if share is None else 100.0 * share


def _per_customer(total: float, customers: int) -> float | None:
    return total / customers if customers else None


def _offers(tallies: Sequence[dict[str, Any]]) -> list[str]:
    """The offers of one or more tallies, the most shown (over all of them) first."""
    shown: dict[str, int] = {}
    for tally in tallies:
        for offer, mix in tally["offerMix"].items():
            shown[offer] = shown.get(offer, 0) + int(mix["total"])
    return sorted(shown, key=lambda o: (-shown[o], o))


def _shown(tally: dict[str, Any], offer: str, rank: str | None = None) -> int:
    mix = tally["offerMix"].get(offer)
    if mix is None:
        return 0
    return int(mix["total"] if rank is None else mix["byRank"].get(rank, 0))


def describe_inputs(result: dict[str, Any]) -> Text:
    """What the run simulated: time, customers, breakdown, policies, control group."""
    inputs = result["inputs"]
    chosen = []
    if inputs.get("segment") is not None:
        chosen.append(f"the segment {inputs['segment']!r}")
    if inputs.get("sample") is not None:
        chosen.append(f"a sample of {inputs['sample']:,} (seed {inputs['seed']})")
    who = " in ".join(chosen) if chosen else "every customer"
    lines = [
        f"Decided as of {result['asOf']} for {who}: {result['customers']:,} of the tenant's "
        f"{result['tenantCustomers']:,} customers. Nothing was recorded.",
        f"Broken down by {result['by']}."
        if result.get("by")
        else "No breakdown (no plugin suggests one and none was asked for).",
    ]
    policies = result.get("contactPolicies") or []
    exhausted = result.get("exhaustedOffers") or []
    lines.append(
        "Contact policies applied: " + (", ".join(policies) if policies else "none") + ". "
        "Offers left out as used up: " + (", ".join(exhausted) if exhausted else "none") + "."
    )
    control = result.get("controlGroup") or {}
    if control:
        lines.append(
            "Every customer got the flow's treatment; its control group would have held out "
            f"{control.get('wouldBeControl', 0):,} of them."
        )
    return Text("\n\n".join(lines), title="Inputs")


def flow_blocks(flow: dict[str, Any], by: str | None, n: int) -> Section:
    """One flow's section: figures, offer mix by rank, blocking rules, the breakdown."""
    label = flow_label(flow)
    overall = flow["overall"]
    customers = int(overall["customers"])
    blocks: list[Block] = [
        Stats(
            [
                Stat("Customers", customers, "count"),
                Stat("With an offer", overall["withOffer"], "count"),
                Stat("Coverage", _pct(overall["coverage"]), "% of customers"),
                Stat("Expected value", overall["expectedValue"], "money"),
                Stat("Expected conversions", overall["expectedConversions"], "count"),
                Stat(
                    "Expected value per customer",
                    _per_customer(overall["expectedValue"], customers),
                    "money",
                ),
            ]
        )
    ]
    offers = _offers([overall])
    ranks = sorted({int(r) for m in overall["offerMix"].values() for r in m["byRank"]})
    drawn = offers[:MAX_CHART_OFFERS]
    blocks.append(
        Chart(
            "bar",
            f"Offer mix of {label} by rank",
            Axis("Offer"),
            Axis("Customers shown the offer", "count"),
            [
                Series(f"rank {r}", drawn, [_shown(overall, o, str(r)) for o in drawn])
                for r in ranks
            ],
            note=f"The {MAX_CHART_OFFERS} most shown offers; the table lists all."
            if len(offers) > MAX_CHART_OFFERS
            else "",
        )
    )
    blocks.append(
        Table(
            f"mix-{n}",
            f"Offer mix of {label}: customers shown each offer, by rank",
            [
                Column("offer", "Offer"),
                Column("shown", "Shown", "count", True),
                Column("share", "Share of customers", "%", True),
                *[Column(f"rank{r}", f"Rank {r}", "count", True) for r in ranks],
            ],
            [
                [
                    o,
                    _shown(overall, o),
                    100.0 * _shown(overall, o) / customers if customers else None,
                    *[_shown(overall, o, str(r)) for r in ranks],
                ]
                for o in offers
            ],
        )
    )
    without = int(overall["withoutOffer"])
    if without:
        blocks.append(
            Table(
                f"blocking-{n}",
                f"Rules that blocked the {without:,} customers of {label} without an offer "
                "(most frequent first)",
                [
                    Column("rule", "Rule, policy or node"),
                    Column("customers", "Customers", "count", True),
                    Column("share", "Share of customers without an offer", "%", True),
                ],
                [
                    [b["rule"], b["customers"], 100.0 * b["customers"] / without]
                    for b in overall["blockingRules"]
                ],
            )
        )
    else:
        blocks.append(Text(f"Every customer gets an offer from {label}."))
    if by is not None and flow["byValue"]:
        blocks += _breakdown([flow], [label], by, f"segments-{n}")
    errors = flow["errors"]
    if errors["count"]:
        quoted = "\n\n".join(f"{e['customerId']}: {e['error']}" for e in errors["first"])
        blocks.append(
            Text(
                f"Decisions that failed (not counted above): {errors['count']:,}. "
                f"The first:\n\n{quoted}",
                title="Failed decisions",
                kind="note",
            )
        )
    return Section(f"Flow {label}", blocks)


def _breakdown(
    flows: Sequence[dict[str, Any]], labels: Sequence[str], by: str, table_id: str
) -> list[Block]:
    """Expected value by the breakdown's values (one series per flow, named by ``labels``)
    and its table."""
    values = sorted({v for f in flows for v in f["byValue"]})
    empty: dict[str, Any] = {
        "customers": 0,
        "coverage": None,
        "expectedValue": 0.0,
        "expectedConversions": 0.0,
    }
    chart = Chart(
        "bar",
        f"Expected value by {by}" + (f" of {labels[0]}" if len(flows) == 1 else ", by flow"),
        Axis(by),
        Axis("Expected value", "money"),
        [
            Series(label, values, [f["byValue"].get(v, empty)["expectedValue"] for v in values])
            for label, f in zip(labels, flows, strict=True)
        ],
    )
    columns = [Column("value", by), Column("customers", "Customers", "count", True)]
    for i, label in enumerate(labels):
        suffix = f", {label}" if len(flows) > 1 else ""
        columns += [
            Column(f"coverage{i}", f"Coverage{suffix}", "%", True),
            Column(f"value{i}", f"Expected value{suffix}", "money", True),
            Column(f"conversions{i}", f"Expected conversions{suffix}", "count", True),
            Column(f"per{i}", f"Expected value per customer{suffix}", "money", True),
        ]
    rows = []
    for v in values:
        tallies = [f["byValue"].get(v, empty) for f in flows]
        row: list[Any] = [v, max(int(t["customers"]) for t in tallies)]
        for t in tallies:
            row += [
                _pct(t["coverage"]),
                t["expectedValue"],
                t["expectedConversions"],
                _per_customer(t["expectedValue"], int(t["customers"])),
            ]
        rows.append(row)
    caption = f"Coverage, expected value and conversions by {by}" + (
        f" of {labels[0]}" if len(flows) == 1 else f": {' and '.join(labels)}"
    )
    return [chart, Table(table_id, caption, columns, rows)]


def comparison_blocks(result: dict[str, Any]) -> Section:
    """Both flows side by side and the customers whose top offer changes."""
    first, second = result["flows"][0], result["flows"][1]
    a, b = flow_label(first), flow_label(second)
    if a == b:  # the same flow and version twice: tell the columns apart
        a, b = f"{a} (first)", f"{b} (second)"
    o1, o2 = first["overall"], second["overall"]

    def row(label: str, unit: str, x: Any, y: Any) -> list[Any]:
        diff = None if x is None or y is None else y - x
        return [label, unit, x, y, diff]

    figures = [
        row("Customers", "count", o1["customers"], o2["customers"]),
        row("With an offer", "count", o1["withOffer"], o2["withOffer"]),
        row("Without an offer", "count", o1["withoutOffer"], o2["withoutOffer"]),
        row("Coverage", "%", _pct(o1["coverage"]), _pct(o2["coverage"])),
        row("Expected value", "money", o1["expectedValue"], o2["expectedValue"]),
        row("Expected conversions", "count", o1["expectedConversions"], o2["expectedConversions"]),
        row("Unpriced offers shown", "count", o1["unpricedOffersShown"], o2["unpricedOffersShown"]),
        row("Failed decisions", "count", first["errors"]["count"], second["errors"]["count"]),
    ]
    blocks: list[Block] = [
        Table(
            "side-by-side",
            f"{a} and {b} side by side",
            [
                Column("figure", "Figure"),
                Column("unit", "Unit"),
                Column("first", a, numeric=True),
                Column("second", b, numeric=True),
                Column("change", f"Change ({b} minus {a})", numeric=True),
            ],
            figures,
        )
    ]
    offers = _offers([o1, o2])
    drawn = offers[:MAX_CHART_OFFERS]
    blocks.append(
        Chart(
            "bar",
            f"Customers shown each offer: {a} and {b}",
            Axis("Offer"),
            Axis("Customers shown the offer (any rank)", "count"),
            [
                Series(a, drawn, [_shown(o1, o) for o in drawn]),
                Series(b, drawn, [_shown(o2, o) for o in drawn]),
            ],
            note=f"The {MAX_CHART_OFFERS} most shown offers; the table lists all."
            if len(offers) > MAX_CHART_OFFERS
            else "",
        )
    )
    blocks.append(
        Table(
            "side-mix",
            f"Offer mix of {a} and {b}",
            [
                Column("offer", "Offer"),
                Column("shown1", f"Shown, {a}", "count", True),
                Column("first1", f"Ranked first, {a}", "count", True),
                Column("shown2", f"Shown, {b}", "count", True),
                Column("first2", f"Ranked first, {b}", "count", True),
                Column("change", "Change in shown", "count", True),
            ],
            [
                [
                    o,
                    _shown(o1, o),
                    _shown(o1, o, "1"),
                    _shown(o2, o),
                    _shown(o2, o, "1"),
                    _shown(o2, o) - _shown(o1, o),
                ]
                for o in offers
            ],
        )
    )
    by = result.get("by")
    if by is not None and (first["byValue"] or second["byValue"]):
        blocks += _breakdown([first, second], [a, b], by, "side-segments")
    blocks.append(changes_blocks(result["comparison"], a, b))
    return Section(f"Side by side: {a} and {b}", blocks)


def changes_blocks(comparison: dict[str, Any], a: str, b: str) -> Section:
    """How many customers' top offer changes from ``a`` to ``b``, and examples."""
    compared = int(comparison["customers"])
    changed = int(comparison["topOfferChanged"])
    blocks: list[Block] = [
        Stats(
            [
                Stat("Customers compared", compared, "count"),
                Stat("Top offer changes", changed, "count"),
                Stat("Top offer stays", comparison["topOfferUnchanged"], "count"),
                Stat("Changed", 100.0 * changed / compared if compared else None, "% of customers"),
            ]
        )
    ]
    if comparison["changes"]:
        blocks.append(
            Table(
                "changes",
                f"Customers whose top offer changes from {a} to {b} ((none): no offer), "
                "most frequent first, with examples",
                [
                    Column("from", f"Top offer, {a}"),
                    Column("to", f"Top offer, {b}"),
                    Column("customers", "Customers", "count", True),
                    Column("examples", "Example customers"),
                ],
                [
                    [c["from"], c["to"], c["customers"], ", ".join(c["exampleCustomerIds"])]
                    for c in comparison["changes"]
                ],
            )
        )
        if comparison["changeKinds"] > comparison["changesListed"]:
            blocks.append(
                Text(
                    f"The {comparison['changesListed']} most frequent of "
                    f"{comparison['changeKinds']} kinds of change are listed.",
                    kind="note",
                )
            )
    else:
        blocks.append(Text("No customer's top offer changes."))
    return Section("Customers whose top offer changes", blocks)


def result_blocks(result: dict[str, Any]) -> list[Block]:
    """Every block of a finished run's result."""
    blocks: list[Block] = [describe_inputs(result)]
    flows = result["flows"]
    if len(flows) == 2 and result.get("comparison") is not None:
        blocks.append(comparison_blocks(result))
    for n, flow in enumerate(flows, start=1):
        blocks.append(flow_blocks(flow, result.get("by"), n))
    return blocks


__all__ = ["comparison_blocks", "describe_inputs", "flow_blocks", "flow_label", "result_blocks"]
