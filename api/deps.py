"""FastAPI dependencies: the database connection, shared query parameters."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from gis.config import Settings
from gis.errors import DatabaseUnavailable


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection in a transaction for one request, committed when the handler returns."""
    try:
        with request.app.state.engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc
