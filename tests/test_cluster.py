"""The embedded cluster: start, reuse, stop, and data that survives a restart."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest
from sqlalchemy import text

from gis.platform import cluster, migrate
from gis.platform.db import get_engine
from gis.platform.errors import GisError
from tests.conftest import make_temp_dir
from tests.worlds import settings_for


@pytest.fixture
def own_cluster():
    path = make_temp_dir("pb-cluster-")
    s = settings_for(path)
    yield s
    cluster.stop(s)
    shutil.rmtree(path, ignore_errors=True)


def _postmaster_pid(s) -> int:
    return int((s.cluster_dir / "postmaster.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for this container's init to reap it."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _connect(s):
    return psycopg.connect(host=str(s.socket_dir), port=s.pg_port, user="postgres", dbname=s.database_name)


def test_start_is_idempotent_and_reuses_the_running_server(own_cluster):
    st = cluster.start(own_cluster)
    assert st.initialised and st.running
    pid = _postmaster_pid(own_cluster)
    cluster.start(own_cluster)
    assert _postmaster_pid(own_cluster) == pid
    with _connect(own_cluster) as conn:
        assert conn.execute("SHOW server_encoding").fetchone()[0] == "UTF8"


def test_stop_leaves_no_server_process(own_cluster):
    cluster.start(own_cluster)
    pid = _postmaster_pid(own_cluster)
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    assert children, "a running server has child processes"
    st = cluster.stop(own_cluster)
    assert not st.running
    assert not (own_cluster.cluster_dir / "postmaster.pid").exists()
    assert not _alive(pid)
    assert not any(_alive(int(c)) for c in children)
    cluster.stop(own_cluster)  # stopping a stopped cluster is harmless


def test_data_survives_a_restart(own_cluster):
    cluster.start(own_cluster)
    with _connect(own_cluster) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('西津')")
    cluster.stop(own_cluster)
    cluster.start(own_cluster)
    with _connect(own_cluster) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("西津",)]


def test_migrations_from_empty_and_back(own_cluster):
    cluster.start(own_cluster)
    migrate.upgrade(own_cluster)
    engine = get_engine(own_cluster)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) is not None
        tables = {r[0] for r in conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        gist = {r[0] for r in conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexdef LIKE :p"), {"p": "%USING gist%"})}
        srid = conn.exec_driver_sql("SELECT Find_SRID('public', 'parcels', 'geom')").scalar_one()
    assert {"districts", "projects", "parcels", "parcel_events", "payments", "compensation_standards",
            "documents", "document_requirements"} <= tables
    assert {"parcels_geom_idx", "projects_footprint_idx", "districts_geom_idx"} <= gist
    assert srid == 4549
    migrate.upgrade(own_cluster)  # a second upgrade is a no-op
    migrate.downgrade(own_cluster)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('public.parcels')").scalar_one() is None
    migrate.upgrade(own_cluster)


def test_a_database_created_with_another_working_crs_is_refused(own_cluster):
    cluster.start(own_cluster)
    migrate.upgrade(own_cluster)
    other = own_cluster.model_copy(update={"srid": 2154})
    with pytest.raises(Exception, match="EPSG:4549"):
        migrate.upgrade(other)


def test_a_database_not_in_utf8_is_refused_before_any_table_is_made(own_cluster):
    cluster.start(own_cluster)
    with _connect(own_cluster) as conn:
        conn.autocommit = True  # CREATE DATABASE runs outside a transaction
        conn.execute("CREATE DATABASE bytes ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0")
    other = own_cluster.model_copy(update={"database_name": "bytes"})
    with pytest.raises(GisError, match="SQL_ASCII; it must be UTF8"):
        migrate.upgrade(other)
    with get_engine(other).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one() == 0
