"""The parcel history: the timeline, concurrent edits over real HTTP, and a database that refuses to
rewrite history for the service's own login."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from gis.platform.db import get_app_engine, get_engine
from tests.conftest import add_parcel, live_server

CLIENTS = 20


@pytest.fixture(scope="module")
def app(workflow_db):
    from api.app import create_app

    return create_app(workflow_db.settings)


def _events(settings, pid: int) -> list[tuple]:
    with get_engine(settings).connect() as conn:
        return conn.execute(
            text("SELECT id, actor, kind, changes FROM parcel_events WHERE parcel_id = :id ORDER BY id"), {"id": pid}
        ).all()


def test_parcel_shows_its_timeline(workflow_db, app):
    h = workflow_db.headers
    pid = add_parcel(workflow_db.settings, 1, stage="signed")
    with TestClient(app) as c:
        assert c.patch(f"/parcels/{pid}", json={"holdout": True, "version": 1}, headers=h["district_editor"]).is_success
        parcel = c.get(f"/parcels/{pid}", headers=h["inspector"]).json()
        history = c.get(f"/parcels/{pid}/history", headers=h["inspector"]).json()
        assert c.get("/parcels/999999/history", headers=h["viewer"]).status_code == 404
    assert parcel["timeline"] == history
    assert [(e["kind"], e["stage_to"]) for e in history] == [
        ("created", "surveyed"), ("stage", "appraised"), ("stage", "signed"), ("flags", None)]
    last = history[-1]
    assert (last["actor"], last["changes"]) == ("test-district_editor", {"holdout": {"from": False, "to": True}})
    assert [e["id"] for e in history] == [row[0] for row in _events(workflow_db.settings, pid)]


def test_twenty_clients_edit_at_once_and_exactly_one_wins(workflow_db, app):
    """Same parcel, same version, 20 HTTP clients released together: one 200, nineteen 412, one event."""
    s = workflow_db.settings
    pid = add_parcel(s, 1)
    before = _events(s, pid)
    barrier = threading.Barrier(CLIENTS)

    def edit(i: int, base: str) -> httpx.Response:
        with httpx.Client(base_url=base, headers=workflow_db.headers["district_editor"], timeout=60) as c:
            c.get("/me")  # connect first, so the PATCHes leave together
            barrier.wait()
            return c.patch(f"/parcels/{pid}", json={"holdout_note": f"第{i}号意见"}, headers={"If-Match": '"1"'})

    with live_server(app) as base, ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(lambda i: edit(i, base), range(CLIENTS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (CLIENTS - 1), statuses
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    after = _events(s, pid)
    assert len(after) == len(before) + 1
    assert after[-1][1:3] == ("test-district_editor", "flags")
    assert after[-1][3] == {"holdout_note": {"from": None, "to": f"第{winner}号意见"}}
    with get_engine(s).connect() as conn:
        note, version = conn.execute(
            text("SELECT holdout_note, version FROM parcels WHERE id = :id"), {"id": pid}
        ).one()
    assert (note, version) == (f"第{winner}号意见", 2)  # the winner's edit, not lost and not overwritten
    assert responses[winner].headers["etag"] == '"2"'
    # Every loser is told why: it read version 1 after the winner committed (the version check), or while the
    # winner's transaction was open, and then the UPDATE's own WHERE version = 1 stopped it ("meanwhile"). Which
    # of the two each loser meets depends on the machine's load, so both are accepted; the database deciding the
    # race is shown deterministically by test_a_commit_between_read_and_write_is_a_412.
    assert all("version" in r.json()["detail"] or "meanwhile" in r.json()["detail"]
               for r in responses if r.status_code == 412)


def test_a_commit_between_read_and_write_is_a_412(workflow_db, app):
    """The race is decided by the UPDATE's own WHERE version = :v: an edit that read version 1 and passed the
    version check, then waited on a row another transaction was changing, is a 412 once that one commits."""
    import time

    s = workflow_db.settings
    pid = add_parcel(s, 1)
    engine = get_engine(s)
    with engine.connect() as holder, engine.connect() as watcher, TestClient(app) as c, ThreadPoolExecutor(1) as pool:
        tx = holder.begin()
        holder.execute(text("UPDATE parcels SET holdout_note = '先到', version = version + 1 WHERE id = :id"),
                       {"id": pid})
        late = pool.submit(c.patch, f"/parcels/{pid}", json={"holdout_note": "后到"},
                           headers=workflow_db.headers["district_editor"] | {"If-Match": '"1"'})
        for _ in range(600):  # until the PATCH's UPDATE waits on the row lock: it has read version 1 by then
            if watcher.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND datname = current_database()")).scalar_one():
                break
            watcher.rollback()
            time.sleep(0.05)
        else:
            pytest.fail("the PATCH never reached its UPDATE")
        tx.commit()
        r = late.result(timeout=60)
    assert r.status_code == 412 and "meanwhile" in r.json()["detail"], r.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT holdout_note, version FROM parcels WHERE id = :id"),
                            {"id": pid}).one() == ("先到", 2)


@pytest.mark.parametrize("statement", [
    "UPDATE parcel_events SET note = 'rewritten' WHERE parcel_id = :id",
    "DELETE FROM parcel_events WHERE parcel_id = :id",
    "TRUNCATE parcel_events",
])
def test_the_database_refuses_to_rewrite_history_for_the_service_login(workflow_db, app, statement):
    s = workflow_db.settings
    pid = add_parcel(s, 1)
    engine = get_app_engine(s)
    assert app.state.engine is engine  # the API works through exactly this login
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == s.app_db_user
        assert s.app_db_user != conn.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'parcels'")
                                             ).scalar_one()
        # It may append to the history and edit parcels ...
        conn.execute(text("INSERT INTO parcel_events (parcel_id, actor, kind, note) VALUES (:id, 't', 'flags', 'ok')"),
                     {"id": pid})
        conn.execute(text("UPDATE parcels SET households = 4 WHERE id = :id"), {"id": pid})
        # ... but not change or remove what is written.
        with pytest.raises(ProgrammingError) as refused:
            conn.execute(text(statement), {"id": pid})
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
        conn.rollback()
    assert len(_events(s, pid)) == 1  # the fixture's 'created' event, untouched
