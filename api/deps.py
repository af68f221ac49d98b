"""FastAPI dependencies: the database connection, shared query parameters (bounded: ``api.params``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from api.capacity import Capacity
from api.params import (
    NO_NUL,
    TILE_INDEX_RANGE,
    TILE_ZOOM_RANGE,
    AreaM2,
    BigId,
    Day,
    IntId,
    Offset,
    Share,
    StrictNumber,
    Text,
    TileIndex,
    TileZoom,
    corridor_width,
    limited,
)
from gis.domain.limits import MAX_INT32, PAST_DAY
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.config import Settings
from gis.platform.db import transaction
from gis.platform.errors import InvalidInput
from gis.records.projects import resolve_project

__all__ = [
    "NO_NUL",
    "TILE_INDEX_RANGE",
    "TILE_ZOOM_RANGE",
    "AreaM2",
    "BigId",
    "Day",
    "IntId",
    "Offset",
    "Share",
    "StrictNumber",
    "Text",
    "TileIndex",
    "TileZoom",
    "corridor_width",
    "limited",
]  # re-exported: one import

P = ParamSpec("P")
T = TypeVar("T")


# Dependencies that only read app state are ``async def``: a plain ``def`` would be run in the
# thread pool, one hop per dependency per request, which costs more than the work itself.


# A GET never writes, so it may read on the replica (``read_database_url``) when there is one. Sign-ins and token
# look-ups stay on the primary (api.auth): a token just issued must work at once. A replica lags the primary by its
# replay delay: a client that writes and reads straight back gets the write's own answer, not a GET.
READ_METHODS = frozenset({"GET", "HEAD"})


def engine_for(request: Request) -> Engine:
    """The engine for this request: the read replica's for GET and HEAD, else the primary's."""
    state = request.app.state
    return state.read_engine if request.method in READ_METHODS else state.engine


async def get_engine(request: Request) -> Engine:
    """The app's SQLAlchemy engine for this request (``engine_for``), made once at startup."""
    return engine_for(request)


async def get_settings(request: Request) -> Settings:
    """The settings the app was made with (not read from the environment again)."""
    return request.app.state.settings


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection in a transaction for one request, committed when the handler returns."""
    with transaction(engine_for(request)) as conn:
        yield conn


# scope="function": the commit runs when the handler returns, before the response is sent, so a commit that
# fails is an error response and never a "saved" (FastAPI's default scope commits after sending). Streamed
# bodies read on connections of their own (gis.io.export.query_rows), so nothing needs this one afterwards.
Conn = Annotated[Connection, Depends(get_conn, scope="function")]


class Database:
    """The database for ``async def`` handlers: ``await db.run(fn, *args)`` calls ``fn(conn, *args)`` with a
    connection in a transaction, in the thread pool.

    One trip to the thread pool and back for the whole request, where a ``def`` handler with ``get_conn``
    takes three (the connection, the handler, the commit): worth it on the routes called most.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await run_in_threadpool(self._call, transaction(self.engine), fn, *args, **kwargs)

    async def read(self, fn: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``run`` without BEGIN and COMMIT, each a round trip: only for ``fn`` that reads in one statement."""
        return await run_in_threadpool(self._call, transaction(self.engine, autocommit=True), fn, *args, **kwargs)

    async def read_within(self, capacity: Capacity, fn: Callable[Concatenate[Connection, P], T], /,
                          *args: P.args, **kwargs: P.kwargs) -> T:
        """``read`` within ``capacity``: its slots, its bounded wait (then 503), its own threads."""
        return await capacity.run(self._call, transaction(self.engine, autocommit=True), fn, *args, **kwargs)

    @staticmethod
    def _call(connection: AbstractContextManager[Connection], fn: Callable[Concatenate[Connection, P], T], /,
              *args: P.args, **kwargs: P.kwargs) -> T:
        with connection as conn:
            return fn(conn, *args, **kwargs)


async def get_database(request: Request) -> Database:
    """A ``Database`` over the app's engine for this request (``engine_for``), for ``async def`` handlers."""
    return Database(engine_for(request))


def project_id_from_path(*, archived: bool = False) -> Callable[..., Awaitable[int]]:
    """A dependency: the project's id from the path, which may name it by id or by code.

    Codes start with a letter (``gis.records.projects.CODE_PATTERN``), so a number is an id and costs no lookup: the
    route itself answers 404 for an id that is not there. Archived projects only with ``archived``. An id
    beyond the database's integers is a 422, not a query.
    """

    async def project_id(
        request: Request,
        project_id: Annotated[str, Path(max_length=64, pattern=NO_NUL,
                                        description="The project's id (1 to 2147483647) or its code (e.g. "
                                                    "xinan_road).")],
    ) -> int:
        if project_id.isascii() and project_id.isdigit():
            if not 1 <= int(project_id) <= MAX_INT32:
                raise InvalidInput(f"a project id is between 1 and {MAX_INT32}", "project_id")
            return int(project_id)
        return await Database(engine_for(request)).read(resolve_project, project_id, archived=archived)

    return project_id


ProjectId = Annotated[int, Depends(project_id_from_path())]
AnyProjectId = Annotated[int, Depends(project_id_from_path(archived=True))]


async def get_tolerance(
    request: Request,
    min_overlap_m2: Annotated[AreaM2 | None, Query(description="Tolerance: overlaps below this area (m², 0 to "
                                                   "1000000000) are slivers, not blockers. Default from "
                                                   "settings.")] = None,
    min_share: Annotated[Share | None, Query(description="Tolerance: overlaps below this share of the parcel (0 to "
                                             "1) are slivers. Default from settings.")] = None,
) -> Tolerance:
    """The sliver tolerance for this request: the configured one, either bound replaced by the query string."""
    default = Tolerance.from_settings(request.app.state.settings)
    return Tolerance(
        default.min_overlap_m2 if min_overlap_m2 is None else min_overlap_m2,
        default.min_share if min_share is None else min_share,
    )


async def get_today(request: Request) -> date:
    """Today in the city's time zone (reports and day counts are city dates)."""
    return today_in(request.app.state.settings.city_timezone)


async def get_as_of(
    request: Request,
    as_of: Annotated[Day | None, Query(description="Answer as of the end of this day (YYYY-MM-DD, city time, "
                                                   "1980-01-01 to today); default today.")] = None,
) -> date | None:
    """The ``as_of`` day asked for: a day that has ended or is today; a future one is refused (422)."""
    return check_past_day(as_of, await get_today(request), "as_of")


def check_past_day(day: date | None, today: date, where: str) -> date | None:
    """``day`` if it is within the days a record can have and not after ``today``; InvalidInput naming
    ``where`` otherwise."""
    problem = PAST_DAY.problem(day, today)
    if problem:
        raise InvalidInput(f"{where} {problem}", where)
    return day


AsOf = Annotated[date | None, Depends(get_as_of)]
