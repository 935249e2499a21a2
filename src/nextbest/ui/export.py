"""The one-file report: every page of a tenant rendered offline into a single HTML file with
the stylesheet, the chart script and Plotly's bundled JS inlined once, navigation by anchors,
and no reference to any network address (``nextbest report``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup

from ..plugin_api import HostAPI, PageRequest
from .pages import PageFailure, render_page, report_pages
from .render import block_views, environment
from .routes import static_text


def _inline_script(text: str) -> Markup:
    """Script text safe to inline: nothing in it may close the script element."""
    return Markup(text.replace("</script", "<\\/script").replace("<!--", "<\\!--"))


def export_report(host: HostAPI, tenant_id: str, as_of: datetime) -> str:
    """The tenant's whole report as one self-contained HTML document, as of ``as_of``. A page
    that fails is shown with its reason instead of its blocks, so one page never loses the
    others."""
    counter = iter(range(1, 1_000_000))
    pages: list[dict[str, Any]] = []
    for page in report_pages(host):
        request = PageRequest(host, tenant_id, {}, as_of, offline=True)
        entry: dict[str, Any] = {
            "name": page.name,
            "title": page.title,
            "description": page.description,
            "error": None,
            "blocks": [],
        }
        try:
            blocks = render_page(page, request)
            entry["blocks"] = block_views(
                blocks, links=None, csv_url=None, ids=lambda: f"chart-{next(counter)}"
            )
        except PageFailure as failure:
            entry["error"] = failure.message
        pages.append(entry)
    return (
        environment()
        .get_template("export.html")
        .render(
            tenant_id=tenant_id,
            as_of=as_of.strftime("%Y-%m-%d %H:%M UTC"),
            pages=pages,
            css=Markup(static_text("report.css").replace("</style", "<\\/style")),
            plotly_js=_inline_script(static_text("plotly.min.js")),
            report_js=_inline_script(static_text("report.js")),
        )
    )


__all__ = ["export_report"]
