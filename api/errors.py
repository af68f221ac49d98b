"""One map from the library's errors to HTTP responses: a JSON body saying what and where."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gis.errors import GisError


def _gis_error(_request: Request, exc: GisError) -> JSONResponse:
    body: dict[str, object] = {"detail": str(exc)}
    if exc.where:
        body["where"] = exc.where
    if getattr(exc, "point", None) is not None:  # where on the map (an invalid geometry's self-intersection)
        body["point"] = list(exc.point)
    return JSONResponse(body, status_code=exc.status_code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GisError, _gis_error)
