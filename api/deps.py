"""FastAPI dependencies: the database connection, shared query parameters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import Query, Request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from gis.blockers import Tolerance
from gis.stages import today_in

from gis.config import Settings
from gis.errors import DatabaseUnavailable


# Dependencies that only read app state are ``async def``: a plain ``def`` would be run in the
# thread pool, one hop per dependency per request, which costs more than the work itself.


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection in a transaction for one request, committed when the handler returns."""
    try:
        with request.app.state.engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc


async def get_tolerance(
    request: Request,
    min_overlap_m2: Annotated[float | None, Query(ge=0, description="Tolerance: overlaps below this area (m²) are "
                                                  "slivers, not blockers. Default from settings.")] = None,
    min_share: Annotated[float | None, Query(ge=0, le=1, description="Tolerance: overlaps below this share of the "
                                             "parcel are slivers. Default from settings.")] = None,
) -> Tolerance:
    default = Tolerance.from_settings(request.app.state.settings)
    return Tolerance(
        default.min_overlap_m2 if min_overlap_m2 is None else min_overlap_m2,
        default.min_share if min_share is None else min_share,
    )


async def get_today(request: Request) -> date:
    """Today in the city's time zone (reports and day counts are city dates)."""
    return today_in(request.app.state.settings.city_timezone)
