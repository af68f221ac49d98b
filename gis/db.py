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
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, OperationalError

from gis import cluster
from gis.config import Settings, get_settings
from gis.errors import DatabaseUnavailable

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


@lru_cache(maxsize=32)  # two logins per database
def _engine_for(url: str) -> Engine:
    # hide_parameters: bound values (owner names, ID numbers) stay out of exception texts and logs.
    engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)

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
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET search_path = {SEARCH_PATH}")
            # JIT compiles for seconds to save milliseconds on these short analytical queries
            # (the stalled-parcels check: 6 s with it, 0.14 s without).
            cur.execute("SET jit = off")
        dbapi_conn.commit()

    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The owner's engine: schema changes and bulk loads only."""
    return _engine_for(database_url(settings or get_settings()))


def get_app_engine(settings: Settings | None = None) -> Engine:
    """The service's engine, for everything the API and the CLI do on behalf of a user."""
    return _engine_for(app_database_url(settings or get_settings()))


@contextmanager
def transaction(engine: Engine, *, autocommit: bool = False) -> Iterator[Connection]:
    """A connection in a transaction, committed on success (``autocommit``: each statement its own
    transaction); DatabaseUnavailable when the server is not there."""
    try:
        if autocommit:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
        else:
            with engine.begin() as conn:
                yield conn
    except OperationalError as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc


def connect(settings: Settings | None = None) -> AbstractContextManager[Connection]:
    """A connection (the service's login) in a transaction, committed on success."""
    return transaction(get_app_engine(settings))


def working_srid(conn: Connection) -> int:
    """The SRID the schema was created with (read from the parcels geometry column)."""
    return int(conn.execute(text("SELECT Find_SRID('public', 'parcels', 'geom')")).scalar_one())
