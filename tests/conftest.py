"""Test fixtures: a real PostgreSQL+PostGIS cluster, started in a temporary folder for the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from gis.platform import cluster, migrate
from gis.platform.config import Settings
from gis.platform.db import app_database_url, get_engine
from tests.worlds import WORLD_ORIGIN, insert_document_requirements, insert_zone, settings_for, two_districts

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
def client(settings: Settings, demo_city, role_tokens):
    """The API over the demo city, signed in as an admin (Authorization: Bearer) unless a request says otherwise.

    Its GET routes read as on a replica (``read_database_url``): through sessions that refuse every write, so any
    GET in the suite that writes fails, as it would on a hot standby."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    read_only = f"{app_database_url(settings)}&options=-c%20default_transaction_read_only%3Don"
    with TestClient(create_app(settings.model_copy(update={"read_database_url": read_only})),
                    headers=bearer(role_tokens["admin"])) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# Roles: one test user per role, and a client without credentials.


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_role_tokens(engine: Engine, editor_districts: list[str], prefix: str = "test") -> dict[str, str]:
    """Create ``<prefix>-<role>`` users (the district editor bound to ``editor_districts``): role name → token."""
    from gis.records.users import Role, add_user

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name LIKE :p"), {"p": f"{prefix}-%"})
        return {
            role.value: add_user(conn, f"{prefix}-{role.value}", role,
                                 editor_districts if role == Role.district_editor else []).token
            for role in Role
        }


@pytest.fixture(scope="session")
def role_tokens(engine: Engine, demo_city) -> dict[str, str]:
    """Role name → API token in the demo database; the district editor edits the first demo district only."""
    return make_role_tokens(engine, [str(int(demo_city.districts["id"].iloc[0]))])


@pytest.fixture(scope="session")
def role_headers(role_tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    """Role name → request headers, e.g. ``client.get(url, headers=role_headers["viewer"])``."""
    return {role: bearer(token) for role, token in role_tokens.items()}


@pytest.fixture(scope="session")
def anon_client(client):
    """The same app as ``client`` with no credentials (401 everywhere but the public paths)."""
    from fastapi.testclient import TestClient

    return TestClient(client.app)


@pytest.fixture(scope="session")
def workflow_db(pg_dir: Path, settings: Settings):
    """Database 'workflow': districts A (id 1) and B (id 2), 1 km squares side by side, a zone project (id 1)
    over their common edge, document requirements, and users per role (``.tokens``; the editor edits A only).
    Add parcels with ``add_parcel``."""
    from types import SimpleNamespace

    s = two_districts(pg_dir, "workflow")
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "测试园区", (500, 1500), "2025-06-01", "2027-06-30")
        insert_document_requirements(conn)
    tokens = make_role_tokens(get_engine(s), ["a"])
    return SimpleNamespace(settings=s, tokens=tokens, headers={r: bearer(t) for r, t in tokens.items()})


_next_cell = iter(range(10**6))


def add_parcel(s: Settings, district_id: int, *, stage: str = "surveyed", owner: str = "测试户主",
               paid_yuan: float | None = None, inside_project: bool = True) -> int:
    """A 20 m square house parcel in ``district_id`` (1 = A, 2 = B) at ``stage`` of the main path, with its
    'created' and stage events and dates 30 days back (and a payment when ``paid_yuan``); returns its id."""
    from datetime import timedelta

    from gis.domain.stages import STAGES, today_in
    from gis.records.footprints import refresh_parcels

    n = next(_next_cell)
    x0, y0 = WORLD_ORIGIN
    # A 20 m cell on a 40 m lattice (12 x 24 cells) in the half of the district inside or outside the project.
    base = 520 if (district_id == 1) == inside_project else 20
    x = x0 + (district_id - 1) * 1000 + base + n % 12 * 40
    y = y0 + 20 + n // 12 % 24 * 40
    day = today_in(s.city_timezone) - timedelta(days=30)
    reached = STAGES[: STAGES.index(stage) + 1]
    with get_engine(s).begin() as conn:
        pid = conn.execute(text(
            "INSERT INTO parcels (code, kind, district_id, owner_name, owner_id_number, owner_phone, floor_area_m2, "
            "stage, stage_since, geom) VALUES (:code, 'house', :d, :owner, '341881199001011234', '13800000000', 400, "
            ":stage, :day, ST_Multi(ST_MakeEnvelope(:x, :y, :x + 20, :y + 20, :srid))) RETURNING id"
        ), {"code": f"T{n:05d}", "d": district_id, "owner": owner, "stage": stage, "day": day, "x": x, "y": y,
            "srid": s.srid}).scalar_one()
        for k, st in enumerate(reached):
            conn.execute(text(f"UPDATE parcels SET {st}_on = :day WHERE id = :id"), {"day": day, "id": pid})
            conn.execute(text(
                "INSERT INTO parcel_events (parcel_id, at, actor, kind, stage_from, stage_to) "
                "VALUES (:id, now() - interval '30 days', 'fixture', :kind, :f, :t)"
            ), {"id": pid, "kind": "created" if k == 0 else "stage", "f": reached[k - 1] if k else None, "t": st})
        if paid_yuan:
            conn.execute(text("INSERT INTO payments (parcel_id, paid_on, amount_yuan, item) "
                              "VALUES (:id, :day, :a, 'house_value')"), {"id": pid, "day": day, "a": paid_yuan})
        refresh_parcels(conn, [pid])
    return pid


def city_time(y: int, m: int, d: int, hh: int = 10, mm: int = 0, tz: str = "Asia/Shanghai") -> datetime:
    """An instant given in the city's time (the tests' settings keep the default time zone)."""
    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(tz))


def add_parcel_with_history(s: Settings, district_id: int, *, moves: list[tuple[datetime, str | None, str]],
                            m2: float | None = None, mu: float | None = None, inside: bool = True) -> int:
    """``add_parcel`` with a history of its own: recorded (surveyed) 30 days before the first of ``moves``
    (at, from, to), then those stage events; a house of ``m2`` m² floor area, or land of ``mu`` mu."""
    from datetime import timedelta

    pid = add_parcel(s, district_id, inside_project=inside)
    with get_engine(s).begin() as conn:
        conn.execute(text("DELETE FROM parcel_events WHERE parcel_id = :id"), {"id": pid})
        conn.execute(text("UPDATE parcels SET kind = :kind, floor_area_m2 = :m2, land_area_mu = :mu, stage = :stage "
                          "WHERE id = :id"),
                     {"id": pid, "kind": "land" if mu is not None else "house", "m2": m2, "mu": mu,
                      "stage": moves[-1][2]})
        history = [(moves[0][0] - timedelta(days=30), None, "surveyed"), *moves]
        for k, (at, before, after) in enumerate(history):
            conn.execute(text("INSERT INTO parcel_events (parcel_id, at, actor, kind, stage_from, stage_to) "
                              "VALUES (:id, :at, 'test', :kind, :f, :t)"),
                         {"id": pid, "at": at, "kind": "stage" if k else "created", "f": before, "t": after})
    return pid


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread (real HTTP, real concurrency);
    yields the base URL. Logging is left to the test's configuration (caplog sees the access log)."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", access_log=True))
    started = threading.Event()
    original_startup = server.startup

    async def startup(sockets=None):  # noqa: ANN001 - uvicorn's signature
        await original_startup(sockets=sockets)
        started.set()

    server.startup = startup
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="session")
def io_city(pg_dir: Path, settings: Settings):
    """Database 'imports': a 300-parcel demo city of its own for the import and export tests
    (``.settings``, ``.engine`` (owner), ``.city``); tests that change it restore it."""
    from types import SimpleNamespace

    from gis.demo.generator import generate_city
    from gis.demo.load import load_city

    s = settings_for(pg_dir, database_name="imports")
    cluster.start(s)
    migrate.upgrade(s)
    city = generate_city(300, seed=11, srid=s.srid)
    with get_engine(s).begin() as conn:
        load_city(conn, city)
    return SimpleNamespace(settings=s, engine=get_engine(s), city=city)
