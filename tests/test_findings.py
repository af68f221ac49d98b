"""Findings followed to the end (督查督办、整改、回头看) and the quarterly contest (四季竞赛、五大比拼), on small worlds
computed by hand: the re-check reopens a still-failing item and verifies a fixed one; overdue and new items; who
may make which move; the quarter's scores, ranks and change against the quarter before."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine
from gis.records.findings import new_items, overdue_items
from gis.records.units import add_unit
from tests.conftest import add_parcel, bearer, make_role_tokens
from tests.conftest import city_time as _local
from tests.worlds import WORLD_ORIGIN, insert_document_requirements, two_districts

TZ = "Asia/Shanghai"  # the tests' settings keep the city's default time zone

# ---------------------------------------------------------------------------------------------
# 回头看 and the roles, through the API


@pytest.fixture(scope="module")
def world(pg_dir):
    """Districts A and B; P1 and P2 in A and P3 in B, each paid 30 days ago and not demolished (the
    paid-not-demolished check with days=10 flags all three); the editor edits A only."""
    from api.app import create_app

    s = two_districts(pg_dir, "findings")
    with get_engine(s).begin() as conn:
        insert_document_requirements(conn)
        add_unit(conn, "U01", "市住建局", "test")
    tokens = make_role_tokens(get_engine(s), ["a"])
    headers = {r: bearer(t) for r, t in tokens.items()}
    parcels = [add_parcel(s, 1, stage="paid", paid_yuan=1000), add_parcel(s, 1, stage="paid", paid_yuan=1000),
               add_parcel(s, 2, stage="paid", paid_yuan=1000)]
    with TestClient(create_app(s)) as client:
        yield s, client, headers, parcels


def _open(client, headers, parcel_id, deadline):
    return client.post("/findings", headers=headers["inspector"], json={
        "check": "paid-not-demolished", "parcel_id": parcel_id, "deadline": str(deadline), "params": {"days": 10},
        "unit_code": "U01"})


def test_recheck_reopens_the_failing_and_verifies_the_fixed(world):
    s, client, headers, (p1, p2, p3) = world
    today = today_in(TZ)
    r1, r2 = _open(client, headers, p1, today + timedelta(days=5)), _open(client, headers, p2, today)
    assert r1.status_code == 201, r1.text
    f1, f2 = r1.json()["id"], r2.json()["id"]
    assert r1.json()["district"] == "a" and r1.json()["status"] == "open" and "owner" not in str(r1.json()["detail"])
    # the same finding twice: refused while the first is followed
    assert _open(client, headers, p1, today).status_code == 409
    for fid in (f1, f2):
        r = client.post(f"/findings/{fid}/status", headers=headers["district_editor"], json={"status": "rectified"})
        assert r.status_code == 200, r.text
    # P2 is really demolished; P1 is not
    with get_engine(s).begin() as conn:
        conn.execute(text("INSERT INTO parcel_events (parcel_id, actor, kind, stage_from, stage_to) "
                          "VALUES (:p, 'test', 'stage', 'paid', 'demolished')"), {"p": p2})
        conn.execute(text("UPDATE parcels SET stage = 'demolished' WHERE id = :p"), {"p": p2})
    r = client.post("/findings/recheck", headers=headers["inspector"], json={})
    assert r.status_code == 200, r.text
    assert (r.json()["reopened"], r.json()["verified"]) == ([f1], [f2])
    one = client.get(f"/findings/{f1}", headers=headers["viewer"]).json()
    assert one["status"] == "reopened"
    assert [(e["kind"], e["status_from"], e["status_to"]) for e in one["history"]] == [
        ("created", None, "open"), ("status", "open", "rectified"), ("recheck", "rectified", "reopened")]
    assert client.get(f"/findings/{f2}", headers=headers["viewer"]).json()["status"] == "verified"
    # the reopened item can be rectified again; a verified one only reopened by an inspector
    assert client.post(f"/findings/{f2}/status", headers=headers["district_editor"],
                       json={"status": "reopened"}).status_code == 403
    assert client.post(f"/findings/{f2}/status", headers=headers["inspector"],
                       json={"status": "rectifying"}).status_code == 409


def test_who_may_move_what(world):
    s, client, headers, (_p1, _p2, p3) = world
    r = _open(client, headers, p3, today_in(TZ) + timedelta(days=3))
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    # B's item: A's editor may not touch it, nor attach evidence; an admin may
    assert client.post(f"/findings/{fid}/status", headers=headers["district_editor"],
                       json={"status": "rectifying"}).status_code == 403
    files = {"file": ("整改照片.jpg", io.BytesIO(b"jpeg bytes"), "image/jpeg")}
    assert client.post(f"/findings/{fid}/documents", headers=headers["district_editor"], files=files).status_code == 403
    r = client.post(f"/findings/{fid}/documents", headers=headers["admin"], files=files)
    assert r.status_code == 201, r.text
    # an inspector does not rectify; an editor does not verify
    assert client.post(f"/findings/{fid}/status", headers=headers["inspector"],
                       json={"status": "rectified"}).status_code == 403
    assert client.post(f"/findings/{fid}/status", headers=headers["viewer"],
                       json={"status": "rectified"}).status_code == 403
    assert client.post("/findings", headers=headers["district_editor"], json={
        "check": "paid-not-demolished", "parcel_id": p3, "deadline": "2100-01-01"}).status_code == 403
    # bad input: unknown check, a parcel the check does not flag, a past deadline, an unknown status
    assert client.post("/findings", headers=headers["inspector"], json={
        "check": "nope", "parcel_id": p3, "deadline": "2100-01-01"}).status_code == 422
    clean = add_parcel(s, 2)
    r = client.post("/findings", headers=headers["inspector"], json={
        "check": "paid-not-demolished", "parcel_id": clean, "deadline": "2100-01-01"})
    assert r.status_code == 422 and "does not flag" in r.text
    assert _open(client, headers, p3, date(2001, 1, 1)).status_code == 422
    # the responsible unit is one of the assisting units, in the API and in the database
    r = client.post("/findings", headers=headers["inspector"], json={
        "check": "paid-not-demolished", "parcel_id": p3, "deadline": "2100-01-01", "params": {"days": 10},
        "unit_code": "U99"})
    assert r.status_code == 422 and "U99" in r.text and "unit_code" in r.text, r.text
    with pytest.raises(IntegrityError, match="findings_unit_code_fkey"), get_engine(s).begin() as conn:
        conn.execute(text("UPDATE findings SET unit_code = 'U99' WHERE id = :f"), {"f": fid})
    for params in ({"days": 10.5}, {"days": -1}, {"nope": 1}, {"days": 1e300}):
        r = client.post("/findings", headers=headers["inspector"], json={
            "check": "paid-not-demolished", "parcel_id": p3, "deadline": "2100-01-01", "params": params})
        assert r.status_code == 422 and r.json(), (params, r.text)
    assert client.post("/findings", headers=headers["inspector"], json={
        "check": "paid-not-demolished", "parcel_id": p3, "deadline": "2100-01-01", "note": "a\x00b"}).status_code == 422
    assert client.post(f"/findings/{fid}/status", headers=headers["admin"],
                       json={"status": "done"}).status_code == 422
    assert client.get("/findings", headers=headers["viewer"], params={"status": "x"}).status_code == 422
    assert client.get("/findings", headers=headers["viewer"], params={"nope": 1}).status_code in (400, 422)
    detail = client.get(f"/findings/{fid}", headers=headers["viewer"]).json()
    assert [d["filename"] for d in detail["documents"]] == ["整改照片.jpg"]
    assert [e["kind"] for e in detail["history"]] == ["created", "evidence"]


def test_overdue_and_new_items(world):
    s, client, headers, (_p1, _p2, p3) = world
    today = today_in(TZ)
    fresh = _open(client, headers, add_parcel(s, 1, stage="paid", paid_yuan=5), today + timedelta(days=1))
    assert fresh.status_code == 201, fresh.text
    with get_engine(s).begin() as conn:
        # an item whose deadline passed 4 days ago, opened 10 days ago and still open
        pid = add_parcel(s, 2, stage="paid", paid_yuan=5)
        fid = conn.execute(text(
            "INSERT INTO findings (check_name, parcel_id, district_id, deadline, created_by, created_at) "
            "VALUES ('paid_not_demolished', :p, 2, :d, 'test', now() - interval '10 days') RETURNING id"),
            {"p": pid, "d": today - timedelta(days=4)}).scalar_one()
        conn.execute(text("INSERT INTO finding_events (finding_id, at, actor, kind, status_to) "
                          "VALUES (:f, now() - interval '10 days', 'test', 'created', 'open')"), {"f": fid})
        overdue = overdue_items(conn, today)
        assert [(o["id"], o["days_overdue"]) for o in overdue] == [(fid, 4)]
        # a week ago it was not yet overdue
        assert overdue_items(conn, today - timedelta(days=7)) == []
        opened_today = {i["id"] for i in new_items(conn, today)}
        assert fresh.json()["id"] in opened_today and fid not in opened_today
    week_ago = client.get("/findings/overdue", headers=headers["viewer"],
                          params={"as_of": str(today - timedelta(days=7))}).json()
    assert week_ago["count"] == 0
    assert [i["id"] for i in client.get("/findings/overdue", headers=headers["viewer"]).json()["items"]] == [fid]
    listed = client.get("/findings", headers=headers["viewer"], params={"overdue": "true"}).json()
    assert [i["id"] for i in listed["items"]] == [fid]
    by_b = client.get("/findings", headers=headers["viewer"], params={"district": "b", "status": "open"}).json()
    assert fid in [i["id"] for i in by_b["items"]] and all(i["district"] == "b" for i in by_b["items"])
    page = client.get("/findings", headers=headers["viewer"], params={"format": "html", "overdue": "true"})
    assert page.status_code == 200 and "督查整改台账" in page.text and f'data-id="{fid}"' in page.text


# ---------------------------------------------------------------------------------------------
# The quarter's contest, by hand

YEAR = 2024


def _house(conn, srid, code, district, events, *, holdout=False, m2=100.0):
    """A 20 m house parcel with its stage (and flag) events: [(instant, kind, from, to, changes)]."""
    x, y = WORLD_ORIGIN
    n = int(code[1:])
    pid = conn.execute(text(
        "INSERT INTO parcels (code, kind, district_id, floor_area_m2, stage, holdout, geom) VALUES (:c, 'house', :d, "
        ":m2, :stage, :h, ST_Multi(ST_MakeEnvelope(:x, :y, :x + 20, :y + 20, :srid))) RETURNING id"),
        {"c": code, "d": district, "m2": m2, "stage": [e for e in events if e[3]][-1][3], "h": holdout,
         "x": x + (district - 1) * 1000 + 40 * n, "y": y + 40, "srid": srid}).scalar_one()
    for at, kind, before, after, changes in events:
        conn.execute(text("INSERT INTO parcel_events (parcel_id, at, actor, kind, stage_from, stage_to, changes) "
                          "VALUES (:p, :at, 'test', :k, :f, :t, CAST(:ch AS jsonb))"),
                     {"p": pid, "at": at, "k": kind, "f": before, "t": after, "ch": changes})
    return pid


def _doc(conn, pid, kind, at):
    conn.execute(text("INSERT INTO documents (parcel_id, kind, filename, sha256, size_bytes, uploaded_by, "
                      "uploaded_at) VALUES (:p, :k, 'x.pdf', repeat('a', 64), 1, 'test', :at)"),
                 {"p": pid, "k": kind, "at": at})


def _item(conn, pid, district, deadline, rectified_at):
    fid = conn.execute(text(
        "INSERT INTO findings (check_name, parcel_id, district_id, deadline, status, created_by, created_at) "
        "VALUES ('incomplete_archives', :p, :d, :dl, 'rectified', 'test', :c) RETURNING id"),
        {"p": pid, "d": district, "dl": deadline, "c": _local(YEAR, 4, 1)}).scalar_one()
    conn.execute(text("INSERT INTO finding_events (finding_id, at, actor, kind, status_to) VALUES "
                      "(:f, :c, 'test', 'created', 'open'), (:f, :r, 'test', 'status', 'rectified')"),
                 {"f": fid, "c": _local(YEAR, 4, 1), "r": rectified_at})


@pytest.fixture(scope="module")
def contest_world(pg_dir):
    """A: A1 surveyed 5 Jan, signed 10 Feb, cleared 10 May (300 m²), archive complete; A2 surveyed, a holdout
    from 20 Jan to 1 May, its survey record filed; A3 surveyed, signed 15 Apr, no documents. B: B1 surveyed,
    signed 1 Mar, archive complete; B2 surveyed, a holdout since 10 Jan, survey record filed. Targets of A: Q1 1
    parcel, Q2 600 m²; none for B. Items due in Q2: A's two (one rectified on time, one 5 days late), B's one
    (rectified at 23:00 of its deadline day)."""
    s = two_districts(pg_dir, "contest")
    flag_on = '{"holdout": {"from": false, "to": true}}'
    flag_off = '{"holdout": {"from": true, "to": false}}'
    with get_engine(s).begin() as conn:
        insert_document_requirements(conn)
        jan5 = _local(YEAR, 1, 5)
        a1 = _house(conn, s.srid, "A1", 1, [(jan5, "created", None, "surveyed", None),
                                          (_local(YEAR, 2, 10), "stage", "surveyed", "signed", None),
                                          (_local(YEAR, 5, 10), "stage", "signed", "cleared", None)], m2=300)
        a2 = _house(conn, s.srid, "A2", 1, [(jan5, "created", None, "surveyed", None),
                                          (_local(YEAR, 1, 20), "flags", None, None, flag_on),
                                          (_local(YEAR, 5, 1), "flags", None, None, flag_off)])
        a3 = _house(conn, s.srid, "A3", 1, [(jan5, "created", None, "surveyed", None),
                                          (_local(YEAR, 4, 15), "stage", "surveyed", "signed", None)])
        b1 = _house(conn, s.srid, "B1", 2, [(jan5, "created", None, "surveyed", None),
                                          (_local(YEAR, 3, 1), "stage", "surveyed", "signed", None)])
        b2 = _house(conn, s.srid, "B2", 2, [(jan5, "created", None, "surveyed", None),
                                          (_local(YEAR, 1, 10), "flags", None, None, flag_on)], holdout=True)
        jan6 = _local(YEAR, 1, 6)
        for pid, kind, at in ((a1, "survey_record", jan6), (a1, "contract", _local(YEAR, 2, 11)),
                              (a2, "survey_record", jan6), (b1, "survey_record", jan6),
                              (b1, "contract", _local(YEAR, 3, 2)), (b2, "survey_record", jan6)):
            _doc(conn, pid, kind, at)
        conn.execute(text("INSERT INTO targets (district_id, year, quarter, parcels, house_m2) VALUES "
                          "(1, :y, 1, 1, NULL), (1, :y, 2, NULL, 600)"), {"y": YEAR})
        _item(conn, a1, 1, date(YEAR, 5, 31), _local(YEAR, 5, 20))
        _item(conn, a3, 1, date(YEAR, 6, 10), _local(YEAR, 6, 15))
        _item(conn, b1, 2, date(YEAR, 6, 1), _local(YEAR, 6, 1, 23, 0))
    tokens = make_role_tokens(get_engine(s), ["a"])
    return s, {r: bearer(t) for r, t in tokens.items()}


def test_quarter_scores_ranks_and_change_by_hand(contest_world):
    from gis.contest import contest

    s, _headers = contest_world
    with get_engine(s).connect() as conn:
        answer = contest(conn, Tolerance(1.0, 0.005), year=YEAR, quarter=2, today=date(2026, 1, 1))
    by = {d["district"]: d for d in answer["districts"]}
    a, b = by["a"], by["b"]
    rate = {k: (v or {}).get("rate") for k, v in a["rates"].items()}
    # A in Q2: signed A1 (cleared) and A3 of 3; 300 of 600 m²; A2's holdout resolved; 1 of 2 items on time;
    # A3's archive incomplete
    assert rate == {"signing": round(2 / 3, 6), "clearance": 0.5, "holdouts": 1.0, "findings": 0.5,
                    "archives": round(2 / 3, 6)}
    assert a["score"] == round(100 * (0.25 * 2 / 3 + 0.25 * 0.5 + 0.2 * 1 + 0.15 * 0.5 + 0.15 * 2 / 3), 2) == 66.67
    # B: 1 of 2 signed; no target (its weight shared); B2 still a holdout; its item rectified on its deadline day
    assert {k: (v or {}).get("rate") for k, v in b["rates"].items()} == {
        "signing": 0.5, "clearance": None, "holdouts": 0.0, "findings": 1.0, "archives": 1.0}
    assert b["score"] == round(100 * (0.25 * 0.5 + 0 + 0.15 + 0.15) / 0.75, 2) == 56.67
    # Q1: A 1/3 signed, 0 of 1 parcel, A2 flagged and open, no items, A3 without its survey record;
    # B 1/2 signed, B2 open, archive complete
    assert a["previous_score"] == round(100 * (0.25 / 3 + 0.15 * 2 / 3) / 0.85, 2) == 21.57
    assert b["previous_score"] == round(100 * (0.125 + 0.15) / 0.6, 2) == 45.83
    assert [(d["district"], d["rank"], d["previous_rank"], d["rank_change"], d["score_change"])
            for d in answer["districts"]] == [("a", 1, 2, 1, 45.1), ("b", 2, 1, -1, 10.84)]
    assert [c["weight"] for c in answer["comparisons"]] == [0.25, 0.25, 0.2, 0.15, 0.15]


def test_contest_routes(contest_world):
    from api.app import create_app

    s, headers = contest_world
    with TestClient(create_app(s)) as client:
        r = client.get("/contest", headers=headers["viewer"], params={"year": YEAR, "quarter": 2})
        assert r.status_code == 200 and r.json()["districts"][0]["district"] == "a"
        page = client.get("/contest", headers=headers["viewer"], params={"year": YEAR, "quarter": 2,
                                                                         "format": "html"})
        assert page.status_code == 200 and "五大比拼" in page.text and "66.67" in page.text and "<svg" in page.text
        x = client.get("/contest", headers=headers["viewer"], params={"year": YEAR, "quarter": 2, "format": "xlsx"})
        assert x.status_code == 200 and x.content[:2] == b"PK"
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(x.content)).active
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        assert any(row[:2] == [1, "甲区"] and 66.67 in row for row in rows)
        assert client.get("/contest", headers=headers["viewer"], params={"year": 2100, "quarter": 4}).status_code == 422
        assert client.get("/contest", headers=headers["viewer"], params={"quarter": 5}).status_code == 422
        assert client.get("/contest").status_code == 401


def test_cli_contest_and_findings(contest_world, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app as cli
    from gis.platform.config import get_settings

    s, _headers = contest_world
    for key, value in {"GIS_DATA_DIR": str(s.data_dir), "GIS_PG_FSYNC": "false",
                       "GIS_DATABASE_NAME": s.database_name, "GIS_PG_PORT": str(s.pg_port)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = tmp_path / "contest.xlsx"
        r = runner.invoke(cli, ["contest", "--year", str(YEAR), "--quarter", "2", "--json", "--xlsx", str(out)])
        assert r.exit_code == 0, r.output
        import json

        answer = json.loads(r.stdout)
        assert [(d["district"], d["score"]) for d in answer["districts"]] == [("a", 66.67), ("b", 56.67)]
        assert out.read_bytes()[:2] == b"PK"
        refused = runner.invoke(cli, ["contest", "--year", "2100", "--quarter", "4"])
        assert refused.exit_code == 1
        listed = runner.invoke(cli, ["findings", "list", "--district", "a", "--json"])
        assert listed.exit_code == 0 and [i["district"] for i in json.loads(listed.stdout)] == ["a", "a"]
        moved = runner.invoke(cli, ["findings", "status", "1", "verified", "--note", "现场复核"])
        assert moved.exit_code == 0, moved.output
        with get_engine(s).connect() as conn:
            assert conn.execute(text("SELECT status FROM findings WHERE id = 1")).scalar() == "verified"
    finally:
        get_settings.cache_clear()


def test_the_demo_city_follows_findings_in_every_status(demo_city, engine):
    """Planted by the demo build (gis.demo.findings): the plan twice over, so two items of each plan row, and on the
    demo's day six overdue (open, rectifying, reopened past their deadline), from several checks."""
    from zoneinfo import ZoneInfo

    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT status, count(*) FROM findings GROUP BY status")).all())
        last = conn.execute(text("SELECT max(at) FROM parcel_events")).scalar()
        day = last.astimezone(ZoneInfo(TZ)).date()
        overdue = overdue_items(conn, day)
        per_item = conn.execute(text("SELECT count(*) FROM finding_events GROUP BY finding_id ORDER BY 1")).scalars()
    assert counts == {"open": 4, "rectifying": 6, "rectified": 2, "verified": 2, "reopened": 2}
    assert sorted(o["status"] for o in overdue) == ["open", "open", "rectifying", "rectifying", "reopened",
                                                    "reopened"]
    assert sorted(per_item) == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4]
    assert len({o["check_name"] for o in overdue}) >= 2


@pytest.mark.parametrize("statement", ["UPDATE finding_events SET note = 'rewritten'", "DELETE FROM finding_events",
                                       "TRUNCATE finding_events"])
def test_the_service_login_may_not_rewrite_an_items_history(world, statement):
    import psycopg
    from sqlalchemy.exc import ProgrammingError

    from gis.platform.db import get_app_engine

    s = world[0]
    with get_app_engine(s).connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == s.app_db_user
        with pytest.raises(ProgrammingError) as refused:
            conn.execute(text(statement))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)
