"""One map from the library's errors to HTTP responses: a JSON body saying what and where.

Messages that quote a server path (GDAL's and pyogrio's name the file they could not read:
``/tmp/pb-upload-x1y2/upload.gpkg: not recognized ...``) show only the file's own name: where the server
keeps its temporary files and data is nobody's business, and a path could carry an upload's name.

Overload and outages (a 503) carry ``Retry-After``; a database failure that escaped the library's own
translation (``gis.platform.db.database_error``: pool wait exceeded, statement cancelled, server gone) is mapped here
too, so it is a 503 and never a 500.

The database is the last gate a value passes: a value it refuses (text with NUL, a number or a day it cannot
hold, a bound of ``gis.domain.limits`` kept by a CHECK constraint) is bad input the checks before it missed, so it is
a 422 naming the field where the constraint tells it, never a 500. Nothing of the row is quoted: it may be
personal data.

Every answer keeps ``detail`` in English and adds ``detail_zh`` (``api.messages_zh``) when the client sends
``Accept-Language: zh``. A browser opening a page (a GET asking for ``text/html`` first) gets the error as a Chinese
page under the site's header instead of JSON; a 401 sends it to the login page.
"""

from __future__ import annotations

import logging
import re
import tempfile
import traceback
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.messages_zh import STATUS_ZH, detail_zh, wants_chinese
from gis.domain.limits import check_constraints
from gis.domain.schema import metadata
from gis.platform.db import database_error
from gis.platform.errors import GisError, Unauthenticated
from gis.records.standards import StandardsRejected

CHECK_VIOLATION = "23514"
# constraint name → column, for the bounds declared in gis.domain.schema (the same in any working CRS)
_BOUNDED = {name: name.removeprefix(f"{table}_").removesuffix("_limits")
            for table, name, _sql in check_constraints(metadata(4326))}
_DATA_REASONS = {  # SQLSTATE class 22 (data exception) → what was wrong with the value
    "22001": "a text is longer than the database keeps",
    "22003": "a number is out of the range the database keeps",
    "22007": "a date or time is not valid",
    "22008": "a date or time is out of the range the database keeps",
    "22021": "a text holds a character the database cannot store",
    "22P05": "a text holds a character the database cannot store (NUL, \\u0000)",
}

# Where the server's own files live: the temporary folders, service data and home folders, and GDAL's
# virtual file systems (/vsizip/, /vsimem/ ...) in front of any of them.
_SERVER_ROOTS = sorted({tempfile.gettempdir().rstrip("/"), "/tmp", "/var/tmp", "/dev/shm", "/var/lib", "/srv",
                        "/home", "/root", "/opt"}, key=len, reverse=True)
_SERVER_PATH = re.compile(r"(?:/vsi[a-z0-9_]+/)*(?:" + "|".join(re.escape(r) for r in _SERVER_ROOTS)
                          + r"|/vsi[a-z0-9_]+)(?:/[^\s'\"`,;:()<>\[\]{}]*)?")

log = logging.getLogger("api.errors")


def scrub_paths(message: str) -> str:
    """The message with every server path replaced by its last part (``upload.gpkg``)."""
    return _SERVER_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "…", message)


def _opens_a_page(request: Request) -> bool:
    """A browser navigating to a page: a GET whose Accept puts HTML first (fetch() and scripts send */*)."""
    return request.method == "GET" and request.headers.get("accept", "").lstrip().startswith("text/html")


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    from api.pages import page_header  # api.pages reads the caller through api.auth, which raises these errors

    title = STATUS_ZH.get(status, STATUS_ZH[500 if status >= 500 else 400])
    home = escape(request.scope.get("root_path", ""), quote=True) + "/"
    page = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)} · 征收征迁</title>'
            f'<link rel="icon" href="data:,"></head><body style="margin:0">{page_header(request)}'
            f'<main style="max-width:48rem;margin:2rem auto;padding:0 1rem;font-family:sans-serif">'
            f'<h1 style="font-size:1.3rem">{escape(title)}</h1><p data-error>{escape(message)}</p>'
            f'<p><a href="{home}">返回首页</a></p></main></body></html>')
    return HTMLResponse(page, status_code=status)


def answer(request: Request, body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """An error answer: ``body`` (``detail`` in English, ``where`` ...) as JSON, with ``detail_zh`` when the client
    asks for Chinese; a Chinese page for a browser opening a page."""
    if _opens_a_page(request):
        return _error_page(request, status, detail_zh(body.get("detail"), status, body.get("where")))
    if wants_chinese(request.headers.get("accept-language")):
        body = {**body, "detail_zh": detail_zh(body.get("detail"), status, body.get("where"))}
    return JSONResponse(body, status_code=status, headers=headers)


def _gis_error(request: Request, exc: GisError) -> Response:
    body: dict[str, object] = {"detail": scrub_paths(str(exc))}
    if exc.where:
        body["where"] = exc.where
    if getattr(exc, "point", None) is not None:  # where on the map (an invalid geometry's self-intersection)
        body["point"] = list(exc.point)
    headers = {}
    if exc.status_code == 503:
        headers["Retry-After"] = str(request.app.state.settings.retry_after_s)
    return answer(request, body, exc.status_code, headers)


def _database_error(request: Request, exc: Exception) -> Response:
    mapped = database_error(exc)
    if mapped is None:  # not reached for the two classes installed below; a guard for the type checker
        raise exc
    return _gis_error(request, mapped)


def _sqlstate(exc: Exception) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def _data_error(request: Request, exc: Exception) -> Response:
    state = _sqlstate(exc)
    if state is None and "NUL" in str(getattr(exc, "orig", "")):  # psycopg refuses NUL before sending
        reason = "a text holds a NUL (0x00) character, which cannot be stored"
    else:
        reason = _DATA_REASONS.get(state or "", "a value cannot be stored as given")
    return answer(request, {"detail": reason}, 422)


def _integrity_error(request: Request, exc: Exception) -> Response:
    if _sqlstate(exc) != CHECK_VIOLATION:
        raise exc  # a key or reference clash the library did not foresee: a server error, logged as such
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)  # type: ignore[attr-defined]
    column = _BOUNDED.get(constraint or "")
    body: dict[str, object] = {"detail": f"{column} is outside its bounds" if column else
                               f"a value breaks the rule {constraint}"}
    if column:
        body["where"] = column
    return answer(request, body, 422)


def _unauthenticated(request: Request, exc: Unauthenticated) -> Any:
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="parcel-blocker", charset="UTF-8"'}
    if "text/html" in request.headers.get("accept", "") and request.method == "GET":
        target = escape("/login?next=" + request.url.path, quote=True)
        page = (f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>请先登录</title>'
                f'<meta http-equiv="refresh" content="0; url={target}">'
                f'<p>请先<a href="{target}">登录</a>。</p></html>')
        return HTMLResponse(page, status_code=401, headers=headers)
    body = {"detail": str(exc)}
    if wants_chinese(request.headers.get("accept-language")):
        body["detail_zh"] = detail_zh(body["detail"], 401)
    return JSONResponse(body, status_code=401, headers=headers)


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's 422 without the rejected ``input`` (it may be an ID number or a phone)."""
    errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
    return answer(request, {"detail": jsonable_encoder(errors)}, 422)


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own errors (no such route 404, method 405) in the same shape as the library's."""
    return answer(request, {"detail": exc.detail}, exc.status_code, dict(exc.headers or {}))


_DETAIL_LINES = re.compile(r"^\s*(DETAIL|CONTEXT|HINT|QUERY|LINE \d+|\[parameters|\[SQL).*$", re.M)


def scrub(message: str) -> str:
    """A database error message without the lines that quote row values or statements, and any message without
    server paths (``scrub_paths``)."""
    return scrub_paths(_DETAIL_LINES.sub("", message).strip())


class ScrubbedErrors:
    """ASGI middleware: an unhandled error is logged as its type, scrubbed first line and stack frames,
    and answered 500 ``{"detail": "internal error"}`` (so no server logs the raw exception text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line before the server's own logging
            frames = "".join(traceback.format_tb(exc.__traceback__))
            first = scrub(str(exc)).splitlines()[:1]
            log.error("unhandled %s on %s %s: %s\n%s", type(exc).__name__, scope["method"], scope["path"],
                      first[0][:300] if first else "", frames)
            if started:
                return
            body = {"detail": "internal error"}
            languages = dict(scope.get("headers") or ()).get(b"accept-language", b"").decode("latin-1")
            if wants_chinese(languages):
                body["detail_zh"] = STATUS_ZH[500]
            await JSONResponse(body, status_code=500)(scope, receive, send)


def _rows_refused(request: Request, exc: StandardsRejected) -> Response:
    """A planner's sheet or rows refused (standards, targets): every refused row and column, not only the first."""
    return answer(request, exc.as_dict(), exc.status_code)


def install(app: FastAPI) -> None:
    """The one error map: every GisError with its own status code and ``{"detail", "where"}``, a 401 as a login
    redirect for browsers, FastAPI's 422 without the rejected input, database failures as 503 or 422, and anything
    unhandled as a bare 500 logged without its details (ScrubbedErrors)."""
    app.add_exception_handler(GisError, _gis_error)
    app.add_exception_handler(StandardsRejected, _rows_refused)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(ScrubbedErrors)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
