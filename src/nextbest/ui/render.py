"""Blocks to HTML: each block becomes a small view (dicts the templates read) and the Jinja2
templates (autoescaped) turn views into HTML; charts become Plotly figure specs (JSON in the
page, drawn by the bundled plotly.js). Links (sort, pages, CSV) are built here, so the
templates hold no URL logic; offline (the export) there are none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup

from ..report_blocks import Block, Chart, Form, Section, Stats, Table, Text

#: Plotly's colour-blind-safe default sequence would do; a fixed one keeps the export stable.
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


@cache
def environment() -> jinja2.Environment:
    """The templates (package ``nextbest.ui``, folder ``templates``), autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nextbest.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = show_value
    return env


def show_value(value: Any) -> str:
    """A cell's or stat's text: numbers grouped and rounded, times in UTC, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def script_json(data: Any) -> Markup:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` survive unescaped."""
    text = json.dumps(data, default=_json_default, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped above for the script context


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _finite(values: Sequence[Any]) -> list[Any]:
    out = []
    for v in values:
        if hasattr(v, "item"):
            v = v.item()
        out.append(None if isinstance(v, float) and not math.isfinite(v) else v)
    return out


def chart_spec(chart: Chart) -> dict[str, Any]:
    """The Plotly figure (data and layout) of a chart block."""
    data: list[dict[str, Any]] = []
    for i, s in enumerate(chart.series):
        colour = _PALETTE[i % len(_PALETTE)]
        if chart.kind == "line":
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": s.name,
                    "x": _finite(s.x),
                    "y": _finite(s.y),
                    "line": {"color": colour},
                }
            )
        elif chart.kind == "bar":
            data.append(
                {
                    "type": "bar",
                    "name": s.name,
                    "x": _finite(s.x),
                    "y": _finite(s.y),
                    "marker": {"color": colour},
                }
            )
        elif chart.kind == "histogram":
            edges = [float(e) for e in _finite(s.x)]
            data.append(
                {
                    "type": "bar",
                    "name": s.name,
                    "x": [(a + b) / 2 for a, b in pairwise(edges)],
                    "width": [b - a for a, b in pairwise(edges)],
                    "y": _finite(s.y),
                    "customdata": [[a, b] for a, b in pairwise(edges)],
                    "hovertemplate": "%{customdata[0]} to %{customdata[1]}: %{y}<extra></extra>",
                    "marker": {"color": colour, "line": {"color": "#ffffff", "width": 1}},
                }
            )
        elif chart.kind == "band":
            assert s.lower is not None and s.upper is not None
            x = _finite(s.x)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": _finite(s.lower),
                    "line": {"width": 0},
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "name": f"{s.name} (lower)",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": _finite(s.upper),
                    "line": {"width": 0},
                    "fill": "tonexty",
                    "fillcolor": colour + "33",
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "name": f"{s.name} (upper)",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": s.name,
                    "x": x,
                    "y": _finite(s.y),
                    "line": {"color": colour},
                }
            )
        else:  # heatmap
            assert s.z is not None
            data.append(
                {
                    "type": "heatmap",
                    "name": s.name,
                    "x": _finite(s.x),
                    "y": _finite(s.y),
                    "z": [_finite(row) for row in s.z],
                    "colorscale": "Blues",
                    "colorbar": {"title": {"text": chart.z.text if chart.z else ""}},
                }
            )
    layout: dict[str, Any] = {
        "title": {"text": chart.title},
        "xaxis": {"title": {"text": chart.x.text}, "automargin": True},
        "yaxis": {"title": {"text": chart.y.text}, "automargin": True},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "autosize": True,
        "height": 360,
        "legend": {"orientation": "h", "y": -0.25},
        "barmode": "group",
    }
    if chart.kind == "histogram":
        layout["bargap"] = 0
    return {"data": data, "layout": layout}


class Links:
    """Builds the page's URLs from its path and query parameters (None offline: no links)."""

    def __init__(self, path: str, params: Mapping[str, str]) -> None:
        self.path = path
        self.params = dict(params)

    def with_params(self, **changes: str | None) -> str:
        merged = dict(self.params)
        for name, value in changes.items():
            name = name.replace("__", ".")
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        query = urlencode(sorted(merged.items()))
        return f"{self.path}?{query}" if query else self.path

    def table_link(self, table_id: str, **changes: str | None) -> str:
        return self.with_params(**{f"{table_id}__{k}": v for k, v in changes.items()})


def table_view(table: Table, links: Links | None, csv_url: Callable[[str], str] | None) -> dict:
    """What the table template needs: headers with sort links, cells as text, pages, CSV."""
    q = table.query
    headers = []
    for col in table.columns:
        header: dict[str, Any] = {
            "label": col.label,
            "unit": col.unit,
            "numeric": col.numeric,
            "sorted": None,
            "link": None,
        }
        if q is not None and col.sortable:
            active = q.sort == col.key
            header["sorted"] = ("descending" if q.descending else "ascending") if active else None
            if links is not None:
                desc = "0" if active and q.descending else "1"
                header["link"] = links.table_link(table.id, sort=col.key, desc=desc, page=None)
        headers.append(header)
    rows = [
        [
            {"text": show_value(v), "numeric": c.numeric}
            for v, c in zip(row, table.columns, strict=True)
        ]
        for row in table.rows
    ]
    pages = None
    if q is not None and table.total is not None:
        last = max(1, math.ceil(table.total / q.page_size))
        first_row = q.offset + 1 if table.rows else 0
        pages = {
            "page": q.page,
            "last": last,
            "from": first_row,
            "to": q.offset + len(table.rows),
            "total": table.total,
            "prev": links.table_link(table.id, page=str(q.page - 1))
            if links and q.page > 1
            else None,
            "next": links.table_link(table.id, page=str(q.page + 1))
            if links and q.page < last
            else None,
        }
    return {
        "type": "table",
        "id": table.id,
        "caption": table.caption,
        "headers": headers,
        "rows": rows,
        "pages": pages,
        "csv": csv_url(table.id) if csv_url is not None and table.csv else None,
    }


def block_views(
    blocks: Sequence[Block],
    *,
    links: Links | None,
    csv_url: Callable[[str], str] | None,
    ids: Callable[[], str],
) -> list[dict[str, Any]]:
    """Views of ``blocks`` for the templates (``ids()`` numbers the charts uniquely)."""
    views: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, Stats):
            views.append(
                {
                    "type": "stats",
                    "title": block.title,
                    "items": [
                        {"label": s.label, "value": show_value(s.value), "unit": s.unit}
                        for s in block.items
                    ],
                }
            )
        elif isinstance(block, Chart):
            views.append(
                {
                    "type": "chart",
                    "id": ids(),
                    "title": block.title,
                    "note": block.note,
                    "spec": script_json(chart_spec(block)),
                    "empty": not any(len(s.y) for s in block.series),
                }
            )
        elif isinstance(block, Table):
            views.append(table_view(block, links, csv_url))
        elif isinstance(block, Text):
            views.append(
                {
                    "type": "text",
                    "title": block.title,
                    "kind": block.kind,
                    "paragraphs": [p.strip() for p in block.body.split("\n\n") if p.strip()],
                }
            )
        elif isinstance(block, Form):
            if links is None:
                continue  # offline: no server answers a form
            views.append(
                {
                    "type": "form",
                    "title": block.title,
                    "submit": block.submit,
                    "action": links.path,
                    "fields": [
                        {
                            "name": f.name,
                            "label": f.label,
                            "kind": f.kind,
                            "value": f.value,
                            "options": list(f.options),
                        }
                        for f in block.fields
                    ],
                }
            )
        elif isinstance(block, Section):
            views.append(
                {
                    "type": "section",
                    "title": block.title,
                    "blocks": block_views(block.blocks, links=links, csv_url=csv_url, ids=ids),
                }
            )
        else:
            raise TypeError(f"not a report block: {type(block).__name__}")
    return views


__all__ = ["Links", "block_views", "chart_spec", "environment", "script_json", "show_value"]
