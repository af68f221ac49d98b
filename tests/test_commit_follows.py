"""A write is confirmed only after it commits: a commit that fails is an error response, never a success.

Deferred constraint triggers refuse, at COMMIT and only then, rows carrying a marker value; every write
route family sends one. Before the fix the routes answered 200/201 and the database kept the old state.
"""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.domain.stages import today_in
from gis.platform.db import get_engine
from tests.conftest import add_parcel

MARK = "fail-at-commit"
TRIGGERS = {
    "parcels": "NEW.holdout_note = 'fail-at-commit' OR NEW.owner_name = 'fail-at-commit'",
    "payments": "NEW.note = 'fail-at-commit'",
    "documents": "NEW.kind = 'fail_at_commit'",
    "project_revisions": "NEW.note = 'fail-at-commit'",
}


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    engine = get_engine(workflow_db.settings)
    with engine.begin() as conn:
        conn.execute(text("""CREATE OR REPLACE FUNCTION refuse_at_commit() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'refused at commit'; END $$ LANGUAGE plpgsql"""))
        for table, condition in TRIGGERS.items():
            conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_at_commit ON {table}"))
            conn.execute(text(f"""CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON {table}
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({condition})
                EXECUTE FUNCTION refuse_at_commit()"""))
    # The server's own errors answered as a response, as a real server does, not raised into the test.
    with TestClient(create_app(workflow_db.settings), raise_server_exceptions=False) as client:
        yield workflow_db, client, engine
    with engine.begin() as conn:
        for table in TRIGGERS:
            conn.execute(text(f"DROP TRIGGER refuse_at_commit ON {table}"))


def _refused(r) -> None:
    assert r.status_code >= 500, r.text
    assert "detail" in r.json()
    assert "etag" not in {k.lower() for k in r.headers}


def test_patch_whose_commit_fails_is_an_error_and_changes_nothing(world):
    w, c, engine = world
    pid = add_parcel(w.settings, 1)
    r = c.patch(f"/parcels/{pid}", json={"holdout_note": MARK}, headers=w.headers["admin"] | {"If-Match": '"1"'})
    _refused(r)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version, holdout_note FROM parcels WHERE id = :id"), {"id": pid}).one() == (
            1, None)
        assert conn.execute(text("SELECT count(*) FROM parcel_events WHERE parcel_id = :id AND kind <> 'created' "
                                 "AND kind <> 'stage'"), {"id": pid}).scalar_one() == 0


def test_payment_whose_commit_fails_is_an_error(world):
    w, c, engine = world
    pid = add_parcel(w.settings, 1, stage="signed")
    r = c.post(f"/parcels/{pid}/payments", headers=w.headers["admin"], json={
        "paid_on": today_in(w.settings.city_timezone).isoformat(), "amount_yuan": "1000.00", "item": "house_value",
        "note": MARK})
    _refused(r)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payments WHERE parcel_id = :id"), {"id": pid}).scalar_one() == 0


def test_document_whose_commit_fails_is_an_error(world):
    w, c, engine = world
    pid = add_parcel(w.settings, 1)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO document_requirements (stage, kind) VALUES ('surveyed', 'fail_at_commit') "
                          "ON CONFLICT DO NOTHING"))
    r = c.post(f"/parcels/{pid}/documents", headers=w.headers["admin"], data={"kind": "fail_at_commit"},
               files={"file": ("c.pdf", b"%PDF-1.4 x")})
    try:
        _refused(r)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM documents WHERE parcel_id = :id"),
                                {"id": pid}).scalar_one() == 0
    finally:  # the module's database is shared: the workflow tests count the required kinds
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM document_requirements WHERE kind = 'fail_at_commit'"))


def test_import_whose_commit_fails_is_an_error_with_nothing_saved(world):
    w, c, engine = world
    x, y = 400_100.0, 3_388_100.0
    features = [{"type": "Feature", "properties": {"code": f"CF{i}", "kind": "house", "owner_name": MARK if i == 2
                                                   else "某某", "floor_area_m2": 100},
                 "geometry": {"type": "Polygon", "coordinates": [[[x + i * 30, y], [x + i * 30 + 20, y],
                                                                  [x + i * 30 + 20, y + 20], [x + i * 30, y + 20],
                                                                  [x + i * 30, y]]]}} for i in range(3)]
    body = json.dumps({"type": "FeatureCollection", "features": features,
                       "crs": {"type": "name", "properties": {"name": "EPSG:4549"}}})
    r = c.post("/imports", headers=w.headers["admin"],
               files={"file": ("parcels.geojson", io.BytesIO(body.encode()))})
    _refused(r)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM parcels WHERE code LIKE 'CF%'")).scalar_one() == 0


def test_import_whose_database_connection_dies_mid_insert_is_an_error_with_nothing_saved(world):
    """The connection doing the import is killed while it inserts the parcels (a statement trigger holds the
    INSERT long enough to find it): the client gets an error, never "committed", and no parcel is saved."""
    import threading
    import time

    w, c, engine = world
    x, y = 400_100.0, 3_388_300.0
    features = [{"type": "Feature", "properties": {"code": f"KD{i}", "kind": "house", "owner_name": "某某",
                                                   "floor_area_m2": 100},
                 "geometry": {"type": "Polygon", "coordinates": [[[x + i * 30, y], [x + i * 30 + 20, y],
                                                                  [x + i * 30 + 20, y + 20], [x + i * 30, y + 20],
                                                                  [x + i * 30, y]]]}} for i in range(3)]
    body = json.dumps({"type": "FeatureCollection", "features": features,
                       "crs": {"type": "name", "properties": {"name": "EPSG:4549"}}})
    with engine.begin() as conn:
        conn.execute(text("""CREATE OR REPLACE FUNCTION slow_insert() RETURNS trigger AS $$
            BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$ LANGUAGE plpgsql"""))
        conn.execute(text("CREATE TRIGGER slow_insert BEFORE INSERT ON parcels FOR EACH STATEMENT "
                          "EXECUTE FUNCTION slow_insert()"))
    killed = threading.Event()

    def kill_the_insert() -> None:
        with engine.connect() as watcher:
            for _ in range(600):
                done = watcher.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE '%INSERT INTO parcels%' AND state = 'active' AND pid <> pg_backend_pid()"
                )).scalars().all()
                watcher.commit()
                if done:
                    killed.set()
                    return
                time.sleep(0.05)

    try:
        watcher = threading.Thread(target=kill_the_insert)
        watcher.start()
        r = c.post("/imports", headers=w.headers["admin"],
                   files={"file": ("parcels.geojson", io.BytesIO(body.encode()))})
        watcher.join(60)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER slow_insert ON parcels"))
    assert killed.is_set(), "the import's INSERT was never seen running"
    assert r.status_code >= 500 and "detail" in r.json(), r.text
    assert "committed" not in r.json()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM parcels WHERE code LIKE 'KD%'")).scalar_one() == 0


def test_alignment_revision_whose_commit_fails_is_an_error(world):
    w, c, engine = world
    from tests.worlds import WORLD_ORIGIN

    x, y = WORLD_ORIGIN
    boundary = {"type": "Polygon", "coordinates": [[[x + 600, y], [x + 1400, y], [x + 1400, y + 900],
                                                     [x + 600, y + 900], [x + 600, y]]]}
    r = c.put("/projects/Z1/alignment", headers=w.headers["admin"],
              json={"geometry": boundary, "crs": "EPSG:4549", "note": MARK})
    _refused(r)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT revision FROM projects WHERE code = 'Z1'")).scalar_one() == 1
