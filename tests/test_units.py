"""Assisting units (协保单位) and front-line dispatch (指挥分部) on a small world of their own, by hand: the unit
ranking as of three days (before and after a reassignment), the assignment history, district editors assigning in
their district only, the dispatch check's missed weeks and days, and the weekly agenda's two sections."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from gis.analysis.dispatch import posts_missing_visits
from gis.analysis.units import assisting_units_of, unit_ranking
from gis.checks import DispatchGaps, dispatch_gaps_check, get_check
from gis.platform.db import get_engine
from gis.platform.errors import Forbidden, InvalidInput
from gis.records import dispatch, units
from gis.records.users import Principal, Role
from tests.conftest import add_parcel_with_history, bearer, city_time, make_role_tokens
from tests.worlds import two_districts

TODAY = date(2026, 6, 1)
ADMIN = Principal("test-admin", Role.admin)
EDITOR_A = Principal("test-editor", Role.district_editor, frozenset({1}))
# The worlds lie near 118.9 E, 30.6 N (WORLD_ORIGIN in EPSG:4549); a point inside district A and one far off.
A_LON_LAT = (118.9624, 30.6127)


@pytest.fixture(scope="module")
def world(pg_dir):
    """Districts A (1) and B (2). Parcels (households; stage moves in March 2026, city time):
    P1 A, 2 households, signed 10 Mar; P2 A, cleared 8 Mar (signed 5 Mar); P3 A, holdout, appraised 2 Mar;
    P4 B, holdout, signed 12 Mar; P5 B, appraised 2 Mar. Units U1 甲单位 (staff 张三, 李四), U2 乙单位 (王五),
    U3 丙单位 (no households). On 1 Mar U1 (张三) gets P1, P2, P3 and U2 (王五) gets P4, P5; on 15 Mar P3 is
    reassigned to U2, and P1 to U1's 李四 (same unit, other staff)."""
    s = two_districts(pg_dir, "units")
    p = {}
    p[1] = add_parcel_with_history(s, 1, m2=100, moves=[(city_time(2026, 3, 10), "appraised", "signed")])
    p[2] = add_parcel_with_history(s, 1, m2=100, moves=[(city_time(2026, 3, 5), "appraised", "signed"),
                                                       (city_time(2026, 3, 6), "signed", "paid"),
                                                       (city_time(2026, 3, 7), "paid", "demolished"),
                                                       (city_time(2026, 3, 8), "demolished", "cleared")])
    p[3] = add_parcel_with_history(s, 1, m2=100, moves=[(city_time(2026, 3, 2), "surveyed", "appraised")])
    p[4] = add_parcel_with_history(s, 2, m2=100, moves=[(city_time(2026, 3, 12), "appraised", "signed")])
    p[5] = add_parcel_with_history(s, 2, m2=100, moves=[(city_time(2026, 3, 2), "surveyed", "appraised")])
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET households = 2 WHERE id = :id"), {"id": p[1]})
        conn.execute(text("UPDATE parcels SET holdout = true WHERE id = ANY(:ids)"), {"ids": [p[3], p[4]]})
        for code, name in (("U1", "甲单位"), ("U2", "乙单位"), ("U3", "丙单位")):
            units.add_unit(conn, code, name, "test")
        zhang = units.add_staff(conn, "U1", "张三", phone="13900001111", title="科员")["id"]
        li = units.add_staff(conn, "U1", "李四")["id"]
        wang = units.add_staff(conn, "U2", "王五")["id"]
        first = units.assign(conn, [p[1], p[2], p[3]], "U1", ADMIN, staff_id=zhang, on=date(2026, 3, 1), today=TODAY)
        assert first == {"unit": "U1", "on": "2026-03-01", "assigned": 3, "reassigned": 0, "unchanged": 0}
        units.assign(conn, [p[4], p[5]], "U2", ADMIN, staff_id=wang, on=date(2026, 3, 1), today=TODAY)
        again = units.assign(conn, [p[3]], "U2", ADMIN, staff_id=wang, on=date(2026, 3, 15), today=TODAY,
                             note="原协保人员不能胜任，调整")
        assert again["reassigned"] == 1
        units.assign(conn, [p[1]], "U1", ADMIN, staff_id=li, on=date(2026, 3, 15), today=TODAY)
    tokens = make_role_tokens(get_engine(s), ["a"], prefix="units")
    return SimpleNamespace(settings=s, parcels=p, staff={"张三": zhang, "李四": li, "王五": wang},
                           headers={r: bearer(t) for r, t in tokens.items()})


def _ranking(world, day: date) -> dict[str, dict]:
    with get_engine(world.settings).connect() as conn:
        return {u["code"]: u for u in unit_ranking(conn, as_of=day)["units"]}


def test_unit_ranking_by_hand_after_the_reassignment(world):
    """20 Mar: U1 holds P1 (2 households, signed) and P2 (1, cleared): 3 households, 3 signed, 1 cleared, no
    holdout. U2 holds P3 (holdout, appraised), P4 (holdout, signed), P5 (appraised): 3, 1 signed, 0 cleared, 2
    holdouts, 1 resolved. U3 holds nothing and comes last."""
    r = _ranking(world, date(2026, 3, 20))
    measures = ("parcels", "households", "signed", "cleared", "holdouts", "holdouts_resolved", "rank")
    assert {c: tuple(r[c][m] for m in measures) for c in r} == {
        "U1": (2, 3, 3, 1, 0, 0, 1), "U2": (3, 3, 1, 0, 2, 1, 2), "U3": (0, 0, 0, 0, 0, 0, 3)}
    assert r["U1"]["signed_share"] == 1.0 and r["U1"]["cleared_share"] == round(1 / 3, 4)
    assert r["U2"]["signed_share"] == round(1 / 3, 4) and r["U3"]["signed_share"] is None


def test_unit_ranking_by_hand_before_the_reassignment(world):
    """14 Mar: U1 still holds P3: 4 households, 3 signed (P1's 2, P2's 1), 1 cleared, 1 holdout not resolved
    (0.75 signed); U2 holds P4 (signed 12 Mar, a holdout resolved) and P5: 2 households, 1 signed (0.5).
    9 Mar: P1 not yet signed: U1 1 of 4 (0.25), U2 0 of 2; U1 first still."""
    r = _ranking(world, date(2026, 3, 14))
    assert (r["U1"]["households"], r["U1"]["signed"], r["U1"]["cleared"], r["U1"]["holdouts"],
            r["U1"]["holdouts_resolved"]) == (4, 3, 1, 1, 0)
    assert (r["U2"]["households"], r["U2"]["signed"], r["U2"]["holdouts"], r["U2"]["holdouts_resolved"]) == (2, 1, 1, 1)
    assert (r["U1"]["signed_share"], r["U2"]["signed_share"]) == (0.75, 0.5)
    early = _ranking(world, date(2026, 3, 9))
    assert (early["U1"]["signed"], early["U2"]["signed"]) == (1, 0)
    assert [early[c]["rank"] for c in ("U1", "U2", "U3")] == [1, 2, 3]


def test_equal_units_share_a_rank(world):
    """28 Feb: nothing assigned yet; every unit has no households and all three share rank 1."""
    r = _ranking(world, date(2026, 2, 28))
    assert [r[c]["rank"] for c in ("U1", "U2", "U3")] == [1, 1, 1]


def test_assignment_history_and_the_agenda_lookup(world):
    """P3's periods: U1 from 1 Mar to 15 Mar, U2 from 15 Mar; two 'assignment' events naming the units by code
    and staff by id; the agenda's lookup gives each parcel's unit and staff on a day, staff masked."""
    p, staff = world.parcels, world.staff
    with get_engine(world.settings).connect() as conn:
        periods = units.assignments(conn, parcel_id=p[3])
        events = conn.execute(text("SELECT changes, note FROM parcel_events WHERE parcel_id = :id AND "
                                   "kind = 'assignment' ORDER BY id"), {"id": p[3]}).all()
        before = assisting_units_of(conn, [p[1], p[3]], as_of=date(2026, 3, 14), reveal_personal=True)
        after = assisting_units_of(conn, [p[1], p[3], p[5]], as_of=date(2026, 3, 20))
        none_yet = assisting_units_of(conn, [p[1]], as_of=date(2026, 2, 28))
    assert [(a["unit"], a["assigned_on"], a["ended_on"]) for a in periods] == [
        ("U1", date(2026, 3, 1), date(2026, 3, 15)), ("U2", date(2026, 3, 15), None)]
    assert [e.changes["unit"] for e in events] == [{"from": None, "to": "U1"}, {"from": "U1", "to": "U2"}]
    assert events[1].changes["staff_id"] == {"from": staff["张三"], "to": staff["王五"]}
    assert events[1].note == "原协保人员不能胜任，调整"
    assert {k: (v["unit"], v["staff_name"]) for k, v in before.items()} == {p[1]: ("U1", "张三"), p[3]: ("U1", "张三")}
    assert {k: (v["unit"], v["staff_name"]) for k, v in after.items()} == {
        p[1]: ("U1", "李*"), p[3]: ("U2", "王*"), p[5]: ("U2", "王*")}
    assert none_yet == {}


def test_district_editors_assign_in_their_district_only(world):
    """The editor of A may not assign B's P4 (nor a request holding it with A's P1): refused, nothing stored."""
    p = world.parcels
    with get_engine(world.settings).begin() as conn:
        with pytest.raises(Forbidden):
            units.assign(conn, [p[1], p[4]], "U3", EDITOR_A, on=date(2026, 4, 1), today=TODAY)
        with pytest.raises(InvalidInput):  # a day after today
            units.assign(conn, [p[1]], "U3", EDITOR_A, on=date(2026, 6, 2), today=TODAY)
        with pytest.raises(InvalidInput):  # staff of another unit
            units.assign(conn, [p[1]], "U3", ADMIN, staff_id=world.staff["王五"], on=date(2026, 4, 1), today=TODAY)
    with get_engine(world.settings).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_assignments a JOIN assisting_units u ON u.id = a.unit_id "
                                 "WHERE u.code = 'U3'")).scalar() == 0


# ---------------------------------------------------------------------------------------------
# Front-line dispatch


@pytest.fixture(scope="module")
def posts(world):
    """Post A set up Monday 2 Mar 2026: visits 4 Mar (commander) and 18 Mar (deputy); on duty 23–29 Mar but for
    25 and 28 Mar. Post B set up Wednesday 25 Mar: no visit, no duty."""
    s = world.settings
    lon, lat = A_LON_LAT
    with get_engine(s).begin() as conn:
        dispatch.add_post(conn, "a", "甲区指挥分部", "赵指挥", ["钱副", "孙副"], established_on=date(2026, 3, 2),
                          today=TODAY, lon=lon, lat=lat, srid=s.srid)
        dispatch.add_post(conn, "b", "乙区指挥分部", "周指挥", [], established_on=date(2026, 3, 25), today=TODAY,
                          lon=lon + 0.01, lat=lat, srid=s.srid)
        for day, leader, role in ((date(2026, 3, 4), "赵指挥", "commander"), (date(2026, 3, 18), "钱副", "deputy")):
            dispatch.record_visit(conn, "a", ADMIN, visited_on=day, today=TODAY, leader=leader, leader_role=role,
                                  lon=lon, lat=lat, srid=s.srid, problems="P3户拒不签约", decisions="协保单位调整")
        for d in range(23, 30):
            if d not in (25, 28):
                dispatch.record_duty(conn, "a", EDITOR_A, duty_on=date(2026, 3, d), today=TODAY, person="吴办")
    return world


def _gaps(posts, day: date, weeks: int, days: int, **kw) -> set[tuple]:
    with get_engine(posts.settings).connect() as conn:
        result = dispatch_gaps_check(conn, DispatchGaps(weeks=weeks, days=days), as_of=day, **kw)
    return result, {(f["district"], f["gap"], f["from_day"].isoformat(), f["to_day"].isoformat())
                    for f in result.findings}


def test_dispatch_check_flags_missed_weeks_and_days_by_hand(posts):
    """As of Sunday 29 Mar, 4 weeks: A's weeks from 2, 9, 16, 23 Mar; visits in the 2nd and 16th's: 9 and 23
    missed. B's weeks start before it was set up: none. 7 days (23–29 Mar): A misses 25 and 28; B, set up 25
    Mar, misses 25–29."""
    result, gaps = _gaps(posts, date(2026, 3, 29), 4, 7)
    assert gaps == {("a", "visit", "2026-03-09", "2026-03-15"), ("a", "visit", "2026-03-23", "2026-03-29"),
                    ("a", "duty", "2026-03-25", "2026-03-25"), ("a", "duty", "2026-03-28", "2026-03-28"),
                    *{("b", "duty", f"2026-03-{d}", f"2026-03-{d}") for d in range(25, 30)}}
    assert result.summary == {"visit": 2, "duty": 7}
    assert {f["commander"] for f in result.findings} == {"赵*挥", "周*挥"}
    assert get_check("dispatch-gaps").run is dispatch_gaps_check


def test_dispatch_check_counts_complete_weeks_only(posts):
    """As of Saturday 28 Mar the week of 23 Mar is not over: the last 4 complete weeks are from 23 Feb (before A
    was set up), 2, 9 and 16 Mar: only 9 Mar's is missed. No days asked: no day gaps; names shown to inspectors."""
    result, gaps = _gaps(posts, date(2026, 3, 28), 4, 0, reveal_personal=True)
    assert gaps == {("a", "visit", "2026-03-09", "2026-03-15")}
    assert result.findings[0]["commander"] == "赵指挥"
    assert result.findings[0]["last_visit_on"] == date(2026, 3, 4)


def test_agenda_posts_missing_visits(posts):
    """The weekly agenda's section: as of 29 Mar, post A missed the weeks of 9 and 23 Mar; its last visit 18 Mar."""
    with get_engine(posts.settings).connect() as conn:
        missing = posts_missing_visits(conn, date(2026, 3, 29), weeks=4)
    assert [(m["district"], m["missed"], m["missed_weeks"], m["last_visit_on"], m["commander"]) for m in missing] == [
        ("a", 2, [date(2026, 3, 9), date(2026, 3, 23)], date(2026, 3, 18), "赵*挥")]


def test_visits_are_refused_far_away_or_outside_the_editors_district(posts):
    s = posts.settings
    lon, lat = A_LON_LAT
    with get_engine(s).begin() as conn:
        with pytest.raises(InvalidInput):
            dispatch.record_visit(conn, "a", ADMIN, visited_on=date(2026, 4, 1), today=TODAY, leader="赵指挥",
                                  leader_role="commander", lon=lon + 1, lat=lat, srid=s.srid)
        with pytest.raises(Forbidden):
            dispatch.record_duty(conn, "b", EDITOR_A, duty_on=date(2026, 4, 1), today=TODAY, person="吴办")


# ---------------------------------------------------------------------------------------------
# The API over the same world


@pytest.fixture(scope="module")
def api(posts):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(posts.settings)) as client:
        yield client


def test_api_ranking_unit_and_masking_by_role(api, posts):
    h = posts.headers
    ranking = api.get("/units/ranking", params={"as_of": "2026-03-20"}, headers=h["viewer"]).json()
    assert [(u["code"], u["rank"], u["households"], u["signed"]) for u in ranking["units"]] == [
        ("U1", 1, 3, 3), ("U2", 2, 3, 1), ("U3", 3, 0, 0)]
    seen = {r: api.get("/units/U1", headers=h[r]).json() for r in ("viewer", "inspector")}
    assert [s["name"] for s in seen["viewer"]["staff"]] == ["张*", "李*"]
    assert seen["viewer"]["staff"][0]["phone"] == "139****1111"
    assert [s["name"] for s in seen["inspector"]["staff"]] == ["张三", "李四"]
    history = api.get("/units/assignments", params={"parcel_id": posts.parcels[3]}, headers=h["viewer"]).json()
    assert [(a["unit"], a["ended_on"], a["staff_name"]) for a in history["assignments"]] == [
        ("U1", "2026-03-15", "张*"), ("U2", None, "王*")]
    listed = api.get("/command-posts", headers=h["viewer"]).json()["posts"]
    assert [(p["district"], p["commander"], p["deputies"]) for p in listed] == [
        ("a", "赵*挥", ["钱*", "孙*"]), ("b", "周*挥", [])]
    visits = api.get("/command-posts/a/visits", headers=h["inspector"]).json()["visits"]
    assert [(v["visited_on"], v["leader"], v["leader_role"]) for v in visits] == [
        ("2026-03-18", "钱副", "deputy"), ("2026-03-04", "赵指挥", "commander")]
    gaps = api.get("/checks/dispatch-gaps", params={"as_of": "2026-03-29", "weeks": 4, "days": 7},
                   headers=h["inspector"]).json()
    assert gaps["summary"] == {"visit": 2, "duty": 7} and gaps["count"] == 9
    assert api.get("/checks/dispatch-gaps", headers=h["viewer"]).status_code == 403


def test_api_editor_assigns_and_logs_in_own_district_only(api, posts):
    h, p = posts.headers, posts.parcels
    lon, lat = A_LON_LAT
    refused = api.post("/units/U3/assignments", json={"parcels": [p[4]], "on": "2026-04-01"},
                       headers=h["district_editor"])
    assert refused.status_code == 403
    assert api.post("/units/U3/assignments", json={"parcels": [p[5]]}, headers=h["viewer"]).status_code == 403
    done = api.post("/units/U3/assignments", json={"parcels": [posts.parcels[2]], "on": "2026-04-01"},
                    headers=h["district_editor"])
    assert done.status_code == 200 and done.json()["reassigned"] == 1
    assert api.get("/units/assignments", params={"unit": "U3"}, headers=h["viewer"]).json()["count"] == 1
    assert api.post("/command-posts/b/duty", json={"duty_on": "2026-04-01", "person": "吴办"},
                    headers=h["district_editor"]).status_code == 403
    ok = api.post("/command-posts/a/visits", json={"visited_on": "2026-04-01", "leader": "赵指挥",
                                                   "leader_role": "commander", "lon": lon, "lat": lat,
                                                   "problems": "测试"}, headers=h["district_editor"])
    assert ok.status_code == 201, ok.text
    with get_engine(posts.settings).begin() as conn:  # leave the world as the other tests expect it
        conn.execute(text("DELETE FROM frontline_visits WHERE visited_on = '2026-04-01'"))


@pytest.mark.parametrize(("method", "path", "body", "where"), [
    ("post", "/units", {"code": "1bad", "name": "x"}, "code"),
    ("post", "/units", {"code": "U1", "name": "again"}, "code"),
    ("post", "/units/U1/staff", {"name": "x" * 101}, "name"),
    ("post", "/units/U1/assignments", {"parcels": []}, "parcels"),
    ("post", "/units/U1/assignments", {"parcels": ["NOPE"]}, "parcels"),
    ("post", "/units/U1/assignments", {"parcels": [1], "on": "2999-01-01"}, "on"),
    ("post", "/units/nope/assignments", {"parcels": [1]}, "unit"),
    ("post", "/command-posts", {"district": "a", "name": "x", "commander": "y", "established_on": "2026-01-01",
                                "lon": 118.96, "lat": 30.61}, "district"),
    ("post", "/command-posts/a/visits", {"visited_on": "2026-04-01", "leader": "x", "leader_role": "mayor",
                                         "lon": 118.96, "lat": 30.61}, "leader_role"),
    ("post", "/command-posts/a/visits", {"visited_on": "2026-04-01", "leader": "x", "leader_role": "deputy",
                                         "lon": 200, "lat": 30.61}, "lon"),
    ("post", "/command-posts/a/duty", {"duty_on": "2026-04-01", "person": ""}, "person"),
    ("get", "/units/ranking?as_of=2999-01-01", None, "as_of"),
    ("get", "/command-posts/zz/visits", None, "post"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(api, posts, method, path, body, where):
    with get_engine(posts.settings).connect() as conn:
        before = conn.execute(text("SELECT (SELECT count(*) FROM assisting_units), (SELECT count(*) FROM unit_staff), "
                                   "(SELECT count(*) FROM unit_assignments), (SELECT count(*) FROM frontline_visits), "
                                   "(SELECT count(*) FROM duty_days)")).one()
    r = getattr(api, method)(path, **({"json": body} if body is not None else {}), headers=posts.headers["admin"])
    assert 400 <= r.status_code < 500, r.text
    assert where in r.text
    with get_engine(posts.settings).connect() as conn:
        after = conn.execute(text("SELECT (SELECT count(*) FROM assisting_units), (SELECT count(*) FROM unit_staff), "
                                  "(SELECT count(*) FROM unit_assignments), (SELECT count(*) FROM frontline_visits), "
                                  "(SELECT count(*) FROM duty_days)")).one()
    assert before == after


def test_cli_units_and_posts(posts, monkeypatch):
    """``gis units`` and ``gis posts`` call the same functions: a unit added, a parcel assigned (by code), the
    ranking as JSON; a refusal is exit code 1 with the library's error."""
    import json

    from typer.testing import CliRunner

    from cli import app as cli
    from gis.platform.config import get_settings
    from gis.platform.errors import NotFound

    s = posts.settings
    for key, value in {"GIS_DATA_DIR": str(s.data_dir), "GIS_PG_FSYNC": "false",
                       "GIS_DATABASE_NAME": s.database_name, "GIS_PG_PORT": str(s.pg_port)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        with get_engine(s).connect() as conn:
            code = conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": posts.parcels[5]}).scalar()
        assert runner.invoke(cli, ["units", "add", "U9", "玖单位"]).exit_code == 0
        assigned = runner.invoke(cli, ["units", "assign", "U9", code, "--on", "2026-05-01"])
        assert assigned.exit_code == 0, assigned.output
        assert json.loads(assigned.stdout)["reassigned"] == 1
        ranking = json.loads(runner.invoke(cli, ["units", "ranking", "--as-of", "2026-05-02"]).stdout)
        assert {u["code"]: u["households"] for u in ranking["units"]}["U9"] == 1
        listed = json.loads(runner.invoke(cli, ["posts", "list"]).stdout)
        assert [p["commander"] for p in listed] == ["赵*挥", "周*挥"]
        missing = runner.invoke(cli, ["units", "assign", "NOPE", code])
        assert missing.exit_code == 1 and isinstance(missing.exception, NotFound)
    finally:
        get_settings.cache_clear()
        with get_engine(s).begin() as conn:
            conn.execute(text("DELETE FROM unit_assignments WHERE unit_id = (SELECT id FROM assisting_units "
                              "WHERE code = 'U9')"))
            conn.execute(text("UPDATE unit_assignments SET ended_on = NULL WHERE parcel_id = :p AND "
                              "ended_on = '2026-05-01'"), {"p": posts.parcels[5]})
            conn.execute(text("DELETE FROM assisting_units WHERE code = 'U9'"))


def test_dispatch_gaps_as_files_carry_the_posts_points(api, posts):
    """The check's GIS downloads place each gap at its post's office (a point); the spreadsheet has its rows."""
    h = posts.headers["inspector"]
    params = {"as_of": "2026-03-29", "weeks": 4, "days": 7}
    gj = api.get("/checks/dispatch-gaps", params=params | {"format": "geojson"}, headers=h)
    assert gj.status_code == 200, gj.text
    features = gj.json()["features"]
    assert len(features) == 9 and {f["geometry"]["type"] for f in features} == {"Point"}
    for fmt in ("gpkg", "xlsx", "csv"):
        r = api.get("/checks/dispatch-gaps", params=params | {"format": fmt}, headers=h)
        assert r.status_code == 200 and r.content, (fmt, r.text[:300])
