"""Database access: one engine per URL, the embedded cluster started on demand.

Two logins: the owner (``get_engine``: migrations, the demo loader, tests' set-up) and the
service's own non-owner login (``get_app_engine``, ``connect``: the API and the CLI's normal work),
which the database refuses, for instance, any UPDATE or DELETE of the parcel history.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache

from psycopg.errors import QueryCanceled
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gis.platform import cluster
from gis.platform.config import Settings, get_settings
from gis.platform.errors import DatabaseUnavailable, GisError, ServiceBusy

SEARCH_PATH = "public, postgis"
PING_AFTER_IDLE_S = 5.0
# SQLAlchemy logs statements at INFO and result rows at DEBUG whenever its logger is enabled, as
# it is under a root logger at DEBUG; rows carry owner names and ID numbers, so it stays at WARNING.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def _with_driver(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def database_url(settings: Settings) -> str:
    """The owner's URL: the configured one, or the embedded cluster's (started if it is not running)."""
    if settings.database_url:
        return _with_driver(settings.database_url)
    cluster.start(settings)
    return cluster.connection_url(settings)


def app_database_url(settings: Settings) -> str:
    """The service's own login: GIS_APP_DATABASE_URL, else GIS_DATABASE_URL, else the embedded cluster's
    socket as ``app_db_user`` (trust authentication there, so only the user name differs)."""
    if settings.app_database_url:
        return _with_driver(settings.app_database_url)
    if settings.database_url:
        return _with_driver(settings.database_url)
    cluster.start(settings)
    return cluster.connection_url(settings, user=settings.app_db_user)


@dataclass(frozen=True)
class PoolSpec:
    """How an engine's pool is bounded: connections kept and added, the longest wait for one (then
    ServiceBusy), and each statement's time limit in ms (0: none)."""

    size: int = 10
    overflow: int = 10
    timeout_s: float = 30.0
    statement_timeout_ms: int = 0

    @classmethod
    def service(cls, settings: Settings) -> PoolSpec:
        """The service's pool, from the settings."""
        return cls(settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_s,
                   round(settings.db_statement_timeout_s * 1000))


# /health has connections of its own: it must answer (within a second) while the service's pool is taken.
HEALTH_POOL = PoolSpec(size=1, overflow=1, timeout_s=0.5, statement_timeout_ms=1000)


@lru_cache(maxsize=32)  # a few logins and pools per database
def _engine_for(url: str, pool: PoolSpec = PoolSpec()) -> Engine:
    # hide_parameters: bound values (owner names, ID numbers) stay out of exception texts and logs.
    # client_encoding: text is UTF-8 whatever PGCLIENTENCODING says, and a database that is not UTF8 is still
    # read far enough to be refused with a message (gis.platform.migrate) instead of failing SQLAlchemy's first
    # connect on undecoded bytes.
    engine = create_engine(url, pool_size=pool.size, max_overflow=pool.overflow, pool_timeout=pool.timeout_s,
                           hide_parameters=True, connect_args={"client_encoding": "UTF8"})
    # One round trip for the session's settings; the values are integers and constants, no user input.
    session_sql = (f"SET search_path = {SEARCH_PATH}; SET jit = off;"
                   f" SET statement_timeout = {int(pool.statement_timeout_ms)}")

    # Instead of pool_pre_ping, which costs every request a round trip: a connection is pinged only
    # when it has lain idle (a restarted or failed-over server is found then); one in steady use that
    # breaks fails its request and SQLAlchemy then replaces every pooled connection.
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record) -> None:  # noqa: ANN001 - pool hook
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001 - pool hook
        if time.monotonic() - record.info.get("idle_since", math.inf) > PING_AFTER_IDLE_S:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError("a pooled connection did not answer") from exc

    @event.listens_for(engine, "connect")
    def _session_defaults(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI hook
        # JIT compiles for seconds to save milliseconds on these short analytical queries
        # (the stalled-parcels check: 6 s with it, 0.14 s without). The statement timeout bounds how long
        # one request can hold a connection (a huge tile, a lock waited on): past it, 503 and not a stall.
        with dbapi_conn.cursor() as cur:
            cur.execute(session_sql)
        dbapi_conn.commit()

    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The owner's engine: schema changes and bulk loads only (no statement time limit)."""
    return _engine_for(database_url(settings or get_settings()))


def get_app_engine(settings: Settings | None = None) -> Engine:
    """The service's engine, for everything the API and the CLI do on behalf of a user; its pool and statement
    time are bounded by the settings (``PoolSpec.service``)."""
    settings = settings or get_settings()
    return _engine_for(app_database_url(settings), PoolSpec.service(settings))


def get_read_engine(settings: Settings | None = None) -> Engine | None:
    """The service's engine on the read replica (``read_database_url``), pooled as the primary's; None without one."""
    settings = settings or get_settings()
    if not settings.read_database_url:
        return None
    return _engine_for(_with_driver(settings.read_database_url), PoolSpec.service(settings))


def get_health_engine(settings: Settings | None = None) -> Engine:
    """The service's login on a small pool of its own (``HEALTH_POOL``), for /health only."""
    return _engine_for(app_database_url(settings or get_settings()), HEALTH_POOL)


def database_error(exc: Exception) -> GisError | None:
    """The library's error for a database failure that is not the caller's fault: ServiceBusy when no pooled
    connection came free in time or a statement was cancelled (its time limit), DatabaseUnavailable when the
    server cannot be reached; None for anything else. The one place these are told apart."""
    if isinstance(exc, PoolTimeout):
        return ServiceBusy("the server is busy: no database connection came free in time; try again shortly")
    if isinstance(exc, OperationalError):
        if isinstance(exc.orig, QueryCanceled):
            return ServiceBusy("the server is busy: the query ran past its time limit; try again shortly")
        return DatabaseUnavailable("the database is not reachable")
    return None


@contextmanager
def transaction(engine: Engine, *, autocommit: bool = False) -> Iterator[Connection]:
    """A connection in a transaction, committed on success (``autocommit``: each statement its own
    transaction); DatabaseUnavailable when the server is not there, ServiceBusy under overload."""
    try:
        if autocommit:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
        else:
            with engine.begin() as conn:
                yield conn
    except (OperationalError, PoolTimeout) as exc:
        raise database_error(exc) from exc  # type: ignore[misc] - never None for these two


def connect(settings: Settings | None = None) -> AbstractContextManager[Connection]:
    """A connection (the service's login) in a transaction, committed on success."""
    return transaction(get_app_engine(settings))


def working_srid(conn: Connection) -> int:
    """The SRID the schema was created with (read from the parcels geometry column)."""
    return int(conn.execute(text("SELECT Find_SRID('public', 'parcels', 'geom')")).scalar_one())
