"""The report in the browser, at ``/ui/`` of ``nextbest serve`` (docs/report.md).

- ``GET /ui/sign-in``, ``POST /ui/sign-in``: tenant and API key, checked like the API does;
  on success a signed session cookie (``session.py``) and a redirect to the report.
- ``POST /ui/sign-out``: ends the session (CSRF token required).
- ``GET /ui/<page>``: a page (viewer role is enough); ``GET /ui/<page>/<table>.csv``: a
  table's rows as CSV (at most ``CSV_MAX_ROWS``).
- ``GET /ui/static/<file>``: the stylesheet, the chart script and Plotly's bundled JS.
- ``POST /ui/simulations``: start a population simulation (admin role, CSRF token;
  ``simulation_start.py``), then to the Simulations page showing the run.

Without a valid session (none, tampered, expired, key revoked, signed out) every page redirects
to the sign-in page. Every POST needs the session's (or, for sign-in, the sign-in form's) CSRF
token: 403 without it. Pages only ever receive the session's tenant. Nothing here logs keys,
tokens or cookies.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from ..errors import PageInputError
from ..plugin_api import HostAPI, PageRequest
from ..report_blocks import Block, Section, Table
from ..store import Store
from ..store.limits import CONTROL_CHARACTER
from .pages import PageFailure, page_as_of, render_page, report_pages
from .render import Links, block_views, environment
from .session import COOKIE, SIGN_IN_COOKIE, Session, SessionSigner, same_token
from .simulation_start import start_form, start_simulation

PREFIX = "/ui"
STATIC = f"{PREFIX}/static"
_MAX_FORM_BYTES = 8192
#: Scripts only from the server itself; Plotly sets inline styles on what it draws.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {
    "report.css": "text/css; charset=utf-8",
    "report.js": "text/javascript; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}


@cache
def static_text(name: str) -> str:
    """A static file's text: ``report.css``, ``report.js`` or Plotly's bundled
    ``plotly.min.js`` (from the ``plotly`` package: no CDN)."""
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        return str(get_plotlyjs())
    return resources.files("nextbest.ui").joinpath("static", name).read_text(encoding="utf-8")


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_SECURITY_HEADERS)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of the report only (no open redirect)."""
    if (
        value
        and value.startswith(f"{PREFIX}/")
        and "\\" not in value
        and not CONTROL_CHARACTER.search(value)
    ):
        return value
    return f"{PREFIX}/"


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def ui_router(host: HostAPI, store: Store) -> APIRouter:
    """The report's routes for ``host`` on ``store`` (mounted by ``create_app``)."""
    router = APIRouter(include_in_schema=False)
    signer = SessionSigner(store)

    def session_of(request: Request) -> Session | None:
        return signer.check(request.cookies.get(COOKIE))

    def sign_in_page(
        request: Request, message: str = "", status: int = 200, tenant: str = "", nxt: str = ""
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        html = (
            environment()
            .get_template("sign_in.html")
            .render(
                static=STATIC,
                base=PREFIX,
                csrf=token,
                message=message,
                tenant=tenant,
                next=_safe_next(nxt or request.query_params.get("next")),
            )
        )
        response = _html(html, status)
        response.set_cookie(
            SIGN_IN_COOKIE,
            token,
            max_age=3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response

    def error_page(failure: PageFailure) -> HTMLResponse:
        titles = {400: "Invalid request", 403: "Forbidden", 404: "Not found", 409: "Conflict"}
        html = (
            environment()
            .get_template("error.html")
            .render(
                static=STATIC,
                status=failure.status,
                title=titles.get(failure.status, "Error"),
                message=failure.message,
                field=failure.field,
                back=f"{PREFIX}/",
            )
        )
        return _html(html, failure.status)

    def to_sign_in(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(
            f"{PREFIX}/sign-in?next={quote(target, safe='')}", status_code=303
        )
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @router.get(PREFIX)
    def root_redirect() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.get(f"{PREFIX}/")
    def index(request: Request) -> Response:
        if session_of(request) is None:
            return to_sign_in(request)
        pages = report_pages(host)
        if not pages:
            return error_page(PageFailure(404, "no report pages are registered"))
        return RedirectResponse(f"{PREFIX}/{pages[0].name}", status_code=303)

    @router.get(f"{PREFIX}/static/{{name}}")
    def static(name: str) -> Response:
        if name not in _STATIC_TYPES:
            return error_page(PageFailure(404, "no such file"))
        return Response(
            static_text(name),
            media_type=_STATIC_TYPES[name],
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @router.get(f"{PREFIX}/sign-in")
    def sign_in_form(request: Request) -> Response:
        return sign_in_page(request)

    @router.post(f"{PREFIX}/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(SIGN_IN_COOKIE)
        if not expected or not same_token(expected, form.get("csrf")):
            return error_page(PageFailure(403, "the sign-in form expired; reload it and retry"))
        tenant = form.get("tenant", "").strip()
        key = form.get("key", "").strip()
        nxt = form.get("next", "")
        api_key = None
        if key and tenant and not CONTROL_CHARACTER.search(key):
            api_key = store.authenticate_api_key(key)
        if api_key is None or api_key.tenant_id != tenant:
            # One answer for an unknown key and another tenant's key: nothing is learnt.
            return sign_in_page(
                request, "The tenant or the API key is not valid.", 401, tenant[:200], nxt
            )
        _, cookie = signer.open(api_key.tenant_id, api_key.key_id, api_key.role)
        response = RedirectResponse(_safe_next(nxt), status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=None,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
        return response

    async def posted(request: Request) -> tuple[Session, dict[str, str]] | Response:
        """A signed-in POST's session and form, or the response refusing it (no session:
        to sign-in; a missing or wrong CSRF token: 403)."""
        session = session_of(request)
        form = await _form(request)
        if session is None:
            return to_sign_in(request)
        if not same_token(session.csrf, form.get("csrf")):
            return error_page(PageFailure(403, "missing or wrong CSRF token"))
        return session, form

    @router.post(f"{PREFIX}/sign-out")
    async def sign_out(request: Request) -> Response:
        checked = await posted(request)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        signer.sign_out(session)  # a replayed copy of the cookie is refused from now on
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    def page_request(
        request: Request, session: Session, name: str, csv_table: str | None = None
    ) -> tuple[Any, PageRequest]:
        page = host.registry.report_pages.get(name)
        if page is None:
            raise PageFailure(404, f"no report page {name!r}")
        params = dict(request.query_params)
        try:
            as_of = page_as_of(params)
        except PageInputError as exc:
            raise PageFailure(400, exc.message, exc.field) from None
        return page, PageRequest(host, session.tenant_id, params, as_of, csv_table=csv_table)

    @router.post(f"{PREFIX}/simulations")
    async def start_simulation_form(request: Request) -> Response:
        checked = await posted(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        try:
            run = start_simulation(host, store, session.tenant_id, session.role, form)
        except PageFailure as failure:
            return error_page(failure)
        return RedirectResponse(f"{PREFIX}/simulations?run={quote(run)}", status_code=303)

    @router.get(f"{PREFIX}/{{name}}")
    def show_page(request: Request, name: str) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in(request)
        try:
            page, page_req = page_request(request, session, name)
            blocks = render_page(page, page_req)
        except PageFailure as failure:
            return error_page(failure)
        counter = iter(range(1, 10_000))
        path = f"{PREFIX}/{page.name}"
        params = {k: v for k, v in page_req.params.items()}
        views = block_views(
            blocks,
            links=Links(path, params),
            csv_url=lambda table_id: Links(f"{path}/{table_id}.csv", params).with_params(),
            ids=lambda: f"chart-{next(counter)}",
        )
        html = (
            environment()
            .get_template("page.html")
            .render(
                page=page,
                pages=report_pages(host),
                blocks=views,
                tenant_id=session.tenant_id,
                role=session.role,
                csrf=session.csrf,
                base=PREFIX,
                static=STATIC,
                as_of=page_req.as_of.strftime("%Y-%m-%d %H:%M UTC"),
                start=start_form(store, session.tenant_id, session.role)
                if page.name == "simulations"
                else None,
            )
        )
        return _html(html)

    @router.get(f"{PREFIX}/{{name}}/{{table_file}}")
    def table_csv(request: Request, name: str, table_file: str) -> Response:
        session = session_of(request)
        if session is None:
            return to_sign_in(request)
        if not table_file.endswith(".csv"):
            return error_page(PageFailure(404, "not found"))
        table_id = table_file[: -len(".csv")]
        try:
            page, page_req = page_request(request, session, name, csv_table=table_id)
            table = find_table(render_page(page, page_req), table_id)
        except PageFailure as failure:
            return error_page(failure)
        if table is None or not table.csv:
            return error_page(PageFailure(404, f"the page has no table {table_id!r} to export"))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            csv_lines(table),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{page.name}-{table_id}-{stamp}.csv"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router


def find_table(blocks: list[Block] | Any, table_id: str) -> Table | None:
    """The table ``table_id`` among ``blocks`` (sections searched too)."""
    for block in blocks:
        if isinstance(block, Table) and block.id == table_id:
            return block
        if isinstance(block, Section):
            found = find_table(block.blocks, table_id)
            if found is not None:
                return found
    return None


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # A spreadsheet would run it as a formula (CSV injection): keep it text.
        return "'" + value
    return value


def csv_lines(table: Table) -> Iterator[str]:
    """The table as CSV: a header row (labels with units), then its rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([f"{c.label} ({c.unit})" if c.unit else c.label for c in table.columns])
    for row in table.rows:
        writer.writerow([_cell(v) for v in row])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


__all__ = ["PREFIX", "csv_lines", "find_table", "static_text", "ui_router"]
