"""Schema migrations (Alembic), run programmatically so the CLI, the API and tests share them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from gis.platform.config import Settings, get_settings
from gis.platform.db import get_engine, working_srid
from gis.platform.errors import GisError

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: Connection, settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    cfg.attributes["srid"] = settings.srid
    cfg.attributes["app_db_user"] = settings.app_db_user
    return cfg


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    """Bring the schema to ``revision``, then check it uses the configured working CRS."""
    settings = settings or get_settings()
    with get_engine(settings).begin() as conn:
        _check_encoding(conn)
        command.upgrade(_config(conn, settings), revision)
        if revision == "head":
            _check_srid(conn, settings)


def downgrade(settings: Settings | None = None, revision: str = "base") -> None:
    """Take the schema back to ``revision`` (by default all the way: every table and its data goes)."""
    settings = settings or get_settings()
    with get_engine(settings).begin() as conn:
        command.downgrade(_config(conn, settings), revision)


def current_revision(conn: Connection) -> str | None:
    """The schema's Alembic revision; None for a database never migrated."""
    exists = conn.execute(text("SELECT to_regclass('public.alembic_version') IS NOT NULL")).scalar_one()
    if not exists:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _check_srid(conn: Connection, settings: Settings) -> None:
    stored = working_srid(conn)
    if stored != settings.srid:
        raise GisError(
            f"the database stores geometry in EPSG:{stored} but GIS_SRID is {settings.srid};"
            " use the SRID the database was created with, or a new database"
        )


def _check_encoding(conn: Connection) -> None:
    # Names, addresses and labels are Chinese, and the owner's name is masked in SQL by characters
    # (gis.domain.privacy.mask_name_sql), which only a UTF8 database counts as Python does.
    encoding = conn.execute(text("SHOW server_encoding")).scalar_one()
    if encoding != "UTF8":
        raise GisError(f"the database stores text as {encoding}; it must be UTF8 (create it with ENCODING 'UTF8')")
