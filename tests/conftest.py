"""Test fixtures: a real PostgreSQL+PostGIS cluster, started in a temporary folder for the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gis import cluster, migrate
from gis.config import Settings
from gis.db import get_engine

for _name in [k for k in os.environ if k.startswith("GIS_")]:
    del os.environ[_name]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEMO_PARCELS = 5000
DEMO_SEED = 42


def make_temp_dir(prefix: str) -> Path:
    # Not under pytest's tmp_path: that is mode 700, which the postgres user cannot enter under root.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, database_url=None, pg_fsync=False, **overrides)


@pytest.fixture(scope="session")
def pg_dir() -> Iterator[Path]:
    path = make_temp_dir("pb-test-")
    yield path
    cluster.stop(settings_for(path))
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(pg_dir: Path) -> Settings:
    s = settings_for(pg_dir)
    cluster.start(s)
    migrate.upgrade(s)
    return s


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    return get_engine(settings)


@pytest.fixture(scope="session")
def demo_city(settings: Settings, engine: Engine):
    """The demo city of 5,000 parcels, generated once and loaded into the session's database."""
    from gis.demo.generator import generate_city
    from gis.demo.load import load_city

    city = generate_city(DEMO_PARCELS, seed=DEMO_SEED, srid=settings.srid)
    with engine.begin() as conn:
        load_city(conn, city)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return city


@pytest.fixture(scope="session")
def client(settings: Settings, demo_city):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c
