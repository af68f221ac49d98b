"""Database access: one engine per URL, the embedded cluster started on demand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from gis import cluster
from gis.config import Settings, get_settings
from gis.errors import DatabaseUnavailable

SEARCH_PATH = "public, postgis"


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded cluster's (started if it is not running)."""
    if settings.database_url:
        url = settings.database_url
        return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    cluster.start(settings)
    return cluster.connection_url(settings)


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _set_search_path(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI hook
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET search_path = {SEARCH_PATH}")
        dbapi_conn.commit()

    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for(database_url(settings or get_settings()))


@contextmanager
def connect(settings: Settings | None = None) -> Iterator[Connection]:
    """A connection in a transaction, committed on success."""
    try:
        with get_engine(settings).begin() as conn:
            yield conn
    except OperationalError as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc


def working_srid(conn: Connection) -> int:
    """The SRID the schema was created with (read from the parcels geometry column)."""
    return int(conn.execute(text("SELECT Find_SRID('public', 'parcels', 'geom')")).scalar_one())
