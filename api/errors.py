"""One map from the library's errors to HTTP responses: a JSON body saying what and where.

Overload and outages (a 503) carry ``Retry-After``; a database failure that escaped the library's own
translation (``gis.db.database_error``: pool wait exceeded, statement cancelled, server gone) is mapped here
too, so it is a 503 and never a 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gis.db import database_error
from gis.errors import GisError


def _gis_error(request: Request, exc: GisError) -> JSONResponse:
    body: dict[str, object] = {"detail": str(exc)}
    if exc.where:
        body["where"] = exc.where
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
