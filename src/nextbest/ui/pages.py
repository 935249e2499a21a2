"""The report's pages as the host sees them: every registered page in nav order, and one page
rendered for a request (its blocks checked, its errors turned into answers)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from ..errors import PageInputError, PageNotFoundError
from ..plugin_api import HostAPI, PageRequest, ReportPage
from ..report_blocks import Block, Chart, Form, Section, Stats, Table, Text
from ..store import InvalidInputError
from ..store.limits import parse_time

log = logging.getLogger("nextbest.ui")

_BLOCK_TYPES = (Stats, Chart, Table, Text, Form, Section)
AS_OF_PARAM = "asOf"


def report_pages(host: HostAPI) -> list[ReportPage]:
    """Every registered page, in nav order (``order``, then ``name``)."""
    return sorted(host.registry.report_pages.values(), key=lambda p: (p.order, p.name))


def page_as_of(params: dict[str, str], now: datetime | None = None) -> datetime:
    """The page's time: the ``asOf`` query parameter (ISO-8601, UTC) or now."""
    raw = params.get(AS_OF_PARAM, "").strip()
    if not raw:
        return now or datetime.now(UTC)
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise PageInputError(f"query.{AS_OF_PARAM}", str(exc)) from None


class PageFailure(Exception):
    """A page that cannot be shown: the HTTP status, the field (for 400) and the message."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def render_page(page: ReportPage, request: PageRequest) -> Sequence[Block]:
    """The page's blocks for ``request``; a ``PageFailure`` for bad input (400, naming the
    field), something the tenant does not have (404) or a page that failed (500, logged
    with the page and the exception, never the request's credentials)."""
    try:
        blocks = list(page.render(request))
    except PageInputError as exc:
        raise PageFailure(400, exc.message, exc.field) from None
    except PageNotFoundError as exc:
        raise PageFailure(404, str(exc)) from None
    except InvalidInputError as exc:  # a store check the page did not anticipate
        raise PageFailure(400, str(exc), f"query.{exc.field}" if exc.field else None) from None
    except Exception:
        log.exception("report page %r failed for tenant %r", page.name, request.tenant_id)
        raise PageFailure(500, f"the page {page.title!r} failed; the server log has why") from None
    for i, block in enumerate(blocks):
        if not isinstance(block, _BLOCK_TYPES):
            log.error("report page %r returned %s at %d", page.name, type(block).__name__, i)
            raise PageFailure(500, f"the page {page.title!r} returned something not a block")
    return blocks


__all__ = ["AS_OF_PARAM", "PageFailure", "page_as_of", "render_page", "report_pages"]
