"""Small databases of their own for tests that write (the demo city stays untouched), built one way.

Each world is a database in the session's cluster, migrated and emptied, with districts A (id 1, code a) and
B (id 2, code b), 1 km squares side by side from ``WORLD_ORIGIN``; tests add what they need on top.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from gis.platform import cluster, migrate
from gis.platform.config import Settings
from gis.platform.db import get_engine

WORLD_ORIGIN = (400_000.0, 3_388_000.0)  # EPSG:4549 metres, near the demo city
DATA_TABLES = ("users, compensation_standards, project_parcel_overlaps, documents, payments, parcel_events, parcels, "
               "projects, document_requirements, districts")


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a database in the test cluster at ``data_dir`` (no fsync: a test cluster need not survive)."""
    return Settings(data_dir=data_dir, database_url=None, pg_fsync=False, **overrides)


def empty_database(pg_dir: Path, name: str, **overrides: object) -> Settings:
    """Database ``name`` in the session's cluster, migrated to the latest schema and holding no data."""
    s = settings_for(pg_dir, database_name=name, **overrides)
    cluster.start(s)
    migrate.upgrade(s)
    with get_engine(s).begin() as conn:
        conn.execute(text(f"TRUNCATE {DATA_TABLES} CASCADE"))
    return s


def insert_two_districts(conn: Connection, srid: int) -> None:
    """Districts A (id 1, code a) and B (id 2, code b): 1 km squares side by side from WORLD_ORIGIN."""
    x, y = WORLD_ORIGIN
    conn.execute(text(
        "INSERT INTO districts (id, code, name, geom) VALUES "
        "(1, 'a', '甲区', ST_Multi(ST_MakeEnvelope(:x, :y, :x + 1000, :y + 1000, :srid))), "
        "(2, 'b', '乙区', ST_Multi(ST_MakeEnvelope(:x + 1000, :y, :x + 2000, :y + 1000, :srid)))"
    ), {"x": x, "y": y, "srid": srid})


def two_districts(pg_dir: Path, name: str, **overrides: object) -> Settings:
    """An empty database with districts A and B."""
    s = empty_database(pg_dir, name, **overrides)
    with get_engine(s).begin() as conn:
        insert_two_districts(conn, s.srid)
    return s


def insert_zone(conn: Connection, srid: int, project_id: int, code: str, name: str, east_m: tuple[float, float],
                freeze_date: date | str, deadline: date | str) -> None:
    """A zone project over the worlds' districts, from ``east_m[0]`` to ``east_m[1]`` metres east of the origin."""
    x, y = WORLD_ORIGIN
    conn.execute(text(
        "INSERT INTO projects (id, code, name, kind, boundary, footprint, freeze_date, deadline) VALUES "
        "(:id, :code, :name, 'zone', ST_Multi(ST_MakeEnvelope(:x0, :y, :x1, :y + 1000, :srid)), "
        "ST_Multi(ST_MakeEnvelope(:x0, :y, :x1, :y + 1000, :srid)), :freeze, :deadline)"
    ), {"id": project_id, "code": code, "name": name, "x0": x + east_m[0], "x1": x + east_m[1], "y": y,
        "srid": srid, "freeze": freeze_date, "deadline": deadline})


def insert_document_requirements(conn: Connection) -> None:
    """The archive each stage needs in the worlds: a survey record, an appraisal report, a contract."""
    conn.execute(text("INSERT INTO document_requirements (stage, kind) VALUES ('surveyed', 'survey_record'), "
                      "('appraised', 'appraisal_report'), ('signed', 'contract')"))
