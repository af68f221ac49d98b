"""One map from the library's errors to HTTP responses: a JSON body saying what and where.

Messages that quote a server path (GDAL's and pyogrio's name the file they could not read:
``/tmp/pb-upload-x1y2/upload.gpkg: not recognized ...``) show only the file's own name: where the server
keeps its temporary files and data is nobody's business, and a path could carry an upload's name.

Overload and outages (a 503) carry ``Retry-After``; a database failure that escaped the library's own
translation (``gis.db.database_error``: pool wait exceeded, statement cancelled, server gone) is mapped here
too, so it is a 503 and never a 500.
"""

from __future__ import annotations

import re
import tempfile

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gis.db import database_error
from gis.errors import GisError

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(GisError, _gis_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OperationalError, _database_error)
