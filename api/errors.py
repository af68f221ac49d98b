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
"""

from __future__ import annotations

import re
import tempfile

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gis.domain.limits import check_constraints
from gis.domain.schema import metadata
from gis.platform.db import database_error
from gis.platform.errors import GisError

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


def scrub_paths(message: str) -> str:
    """The message with every server path replaced by its last part (``upload.gpkg``)."""
    return _SERVER_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "…", message)


def _gis_error(request: Request, exc: GisError) -> JSONResponse:
    body: dict[str, object] = {"detail": scrub_paths(str(exc))}
    if exc.where:
        body["where"] = exc.where
    if getattr(exc, "point", None) is not None:  # where on the map (an invalid geometry's self-intersection)
        body["point"] = list(exc.point)
    headers = {}
    if exc.status_code == 503:
        headers["Retry-After"] = str(request.app.state.settings.retry_after_s)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = database_error(exc)
    if mapped is None:  # not reached for the two classes installed below; a guard for the type checker
        raise exc
    return _gis_error(request, mapped)


def _sqlstate(exc: Exception) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    state = _sqlstate(exc)
    if state is None and "NUL" in str(getattr(exc, "orig", "")):  # psycopg refuses NUL before sending
        reason = "a text holds a NUL (0x00) character, which cannot be stored"
    else:
        reason = _DATA_REASONS.get(state or "", "a value cannot be stored as given")
    return JSONResponse({"detail": reason}, status_code=422)


def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    if _sqlstate(exc) != CHECK_VIOLATION:
        raise exc  # a key or reference clash the library did not foresee: a server error, logged as such
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)  # type: ignore[attr-defined]
    column = _BOUNDED.get(constraint or "")
    body: dict[str, object] = {"detail": f"{column} is outside its bounds" if column else
                               f"a value breaks the rule {constraint}"}
    if column:
        body["where"] = column
    return JSONResponse(body, status_code=422)


def install(app: FastAPI) -> None:
    """Answer every GisError with its own status code and ``{"detail", "where"}``."""
    app.add_exception_handler(GisError, _gis_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
