"""A read replica (issue 19): a second embedded cluster runs as a hot standby of the first, and with
``read_database_url`` set the API's GET routes read there while writes and sign-ins stay on the primary.

That a GET really read the standby is shown by pausing the standby's replay: a parcel added on the primary is
missing from the replica's answer until replay resumes, and present in the primary's at once."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.platform import cluster
from gis.platform.db import get_engine
from tests.conftest import add_parcel, bearer, make_role_tokens, make_temp_dir
from tests.worlds import insert_two_districts, insert_zone, settings_for


@pytest.fixture(scope="module")
def pair():
    """A primary (a small world: districts A and B, zone Z1 over both, two blocking parcels) and its standby."""
    primary_dir, standby_dir = make_temp_dir("pb-primary-"), make_temp_dir("pb-standby-")
    primary = settings_for(primary_dir, database_name="replicated")
    standby = settings_for(standby_dir, database_name="replicated")
    try:
        cluster.start(primary)
        from gis.platform import migrate

        migrate.upgrade(primary)
        with get_engine(primary).begin() as conn:
            insert_two_districts(conn, primary.srid)
            insert_zone(conn, primary.srid, 1, "Z1", "测试园区", (500, 1500), "2025-06-01", "2027-06-30")
        for district in (1, 2):
            add_parcel(primary, district, stage="signed")
        tokens = make_role_tokens(get_engine(primary), ["a"])
        cluster.start_standby(primary, standby)
        yield primary, standby, tokens
    finally:
        cluster.stop(standby)
        cluster.stop(primary)
        shutil.rmtree(standby_dir, ignore_errors=True)
        shutil.rmtree(primary_dir, ignore_errors=True)


def superuser(s):
    return get_engine(s).execution_options(isolation_level="AUTOCOMMIT")


def caught_up(primary, standby) -> None:
    # The insert position, not the write one: the test clusters commit asynchronously (cluster.py), so a commit
    # record may still be in the WAL buffers, past pg_current_wal_lsn(), until the WAL writer flushes it.
    with superuser(primary).connect() as p:
        target = p.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
    with superuser(standby).connect() as r:
        for _ in range(300):
            if r.execute(text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), :t) >= 0"), {"t": target}).scalar():
                return
            time.sleep(0.05)
    raise AssertionError("the standby did not replay the primary's WAL within 15 s")


def blocker_codes(client, headers) -> set[str]:
    r = client.get("/projects/Z1/blockers", headers=headers)
    assert r.status_code == 200, r.text
    return {b["code"] for b in r.json()["items"]}


def test_get_routes_read_the_standby_and_writes_go_to_the_primary(pair):
    from api.app import create_app

    primary, standby, tokens = pair
    with superuser(standby).connect() as r:
        assert r.execute(text("SELECT pg_is_in_recovery()")).scalar() is True  # a standby, not a copy
    caught_up(primary, standby)
    replica_url = cluster.connection_url(standby, user=primary.app_db_user)
    viewer, editor = bearer(tokens["viewer"]), bearer(tokens["district_editor"])
    with TestClient(create_app(primary.model_copy(update={"read_database_url": replica_url}))) as replica_app, \
            TestClient(create_app(primary)) as primary_app:
        before = blocker_codes(replica_app, viewer)
        assert len(before) == 2 and before == blocker_codes(primary_app, viewer)

        with superuser(standby).connect() as r:
            r.execute(text("SELECT pg_wal_replay_pause()"))
        try:
            added = add_parcel(primary, 1, stage="appraised")
            with get_engine(primary).connect() as conn:
                code = conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": added}).scalar_one()
            assert blocker_codes(primary_app, viewer) == before | {code}
            assert blocker_codes(replica_app, viewer) == before  # read on the paused standby

            # A write through the replica-reading app lands on the primary (the standby would refuse it).
            parcel = replica_app.get(f"/parcels/{added}", headers=editor)
            assert parcel.status_code == 404  # not on the standby yet: the GET went there
            version = primary_app.get(f"/parcels/{added}", headers=editor).json()["version"]
            r = replica_app.patch(f"/parcels/{added}", json={"holdout": True, "version": version}, headers=editor)
            assert r.status_code == 200, r.text
            with get_engine(primary).connect() as conn:
                assert conn.execute(text("SELECT holdout FROM parcels WHERE id = :id"), {"id": added}).scalar()
        finally:
            with superuser(standby).connect() as r:
                r.execute(text("SELECT pg_wal_replay_resume()"))
        caught_up(primary, standby)
        assert blocker_codes(replica_app, viewer) == before | {code}
        assert replica_app.get(f"/parcels/{added}", headers=editor).json()["holdout"] is True
