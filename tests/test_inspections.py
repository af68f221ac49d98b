"""The checks of gis.inspections (久拖未决按优先, 拆除不到位, 抢栽抢种/偷建私建 as a registered check), each against a
hand computation on a small world of its own: parcels placed on known rectangles, rasters written cell by cell."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from sqlalchemy import text

from gis import checks
from gis.domain.stages import today_in
from gis.imagery.layers import register_layer
from gis.inspections.demolition import DemolitionIncomplete, demolition_incomplete
from gis.inspections.post_freeze import PostFreeze, post_freeze
from gis.inspections.priority import PRIORITY_WEIGHTS, StalledPriority, stalled_priority
from gis.platform.db import get_app_engine, get_engine
from gis.platform.errors import InvalidInput
from gis.records.footprints import refresh_parcels
from tests.conftest import add_parcel, make_temp_dir
from tests.worlds import WORLD_ORIGIN, insert_zone, two_districts


def _place(s, pid: int, x0: float, y0: float, size: float = 20) -> None:
    x, y = WORLD_ORIGIN
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET geom = ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid)) "
                          "WHERE id = :id"),
                     {"id": pid, "x0": x + x0, "y0": y + y0, "x1": x + x0 + size, "y1": y + y0 + size,
                      "srid": s.srid})
        refresh_parcels(conn, [pid])


def _age(s, pid: int, days: int, stage: str | None = None) -> None:
    """Move the parcel's events (or only those setting ``stage``) to ``days`` days ago."""
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcel_events SET at = now() - make_interval(days => :d) WHERE parcel_id = :id "
                          "AND (CAST(:stage AS text) IS NULL OR stage_to = :stage)"),
                     {"d": days, "id": pid, "stage": stage})


def _code(s, pid: int) -> str:
    with get_engine(s).connect() as conn:
        return conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": pid}).scalar_one()


def _run(s, check, params, as_of=None) -> checks.CheckResult:
    with get_app_engine(s).connect() as conn:
        return check(conn, params, as_of=as_of or today_in(s.city_timezone), tz=s.city_timezone)


# ---------------------------------------------------------------------------------------------
# 久拖未决, ranked


@pytest.fixture(scope="module")
def ranked(pg_dir):
    s = two_districts(pg_dir, "inspections_priority")
    today = today_in(s.city_timezone)
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "一期", (500, 1500), "2025-06-01", today + timedelta(days=60))
    p = {name: add_parcel(s, 1) for name in ("old", "holdout", "recent", "fresh")}
    outside = add_parcel(s, 1, inside_project=False)
    for name, days in (("old", 100), ("holdout", 40), ("recent", 35), ("fresh", 10)):
        _age(s, p[name], days)
    _age(s, outside, 200)
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET holdout = true WHERE id = :id"), {"id": p["holdout"]})
    return SimpleNamespace(settings=s, today=today, codes={k: _code(s, v) for k, v in p.items()},
                           outside=_code(s, outside))


def test_stalled_cases_are_ranked_by_the_stated_priority(ranked):
    s = ranked.settings
    result = _run(s, stalled_priority, StalledPriority(top=3, days=30))
    # By hand: 20 m squares (400 m² = 0.4), Z1's deadline 60 days ahead ((180 - 60) / 30 = 4 points),
    # one point per 30 days in stage, 10 for the holdout; 'fresh' (10 days) is not stalled, the parcel outside
    # every footprint is in none.
    assert PRIORITY_WEIGHTS == {"days": 1.0, "area": 1.0, "holdout": 10.0, "deadline": 1.0}
    expected = [("holdout", 40 / 30 + 0.4 + 10 + 4), ("old", 100 / 30 + 0.4 + 4), ("recent", 35 / 30 + 0.4 + 4)]
    assert [(f["code"], f["rank"]) for f in result.findings] == [
        (ranked.codes[name], i) for i, (name, _) in enumerate(expected, start=1)]
    for f, (_name, score) in zip(result.findings, expected, strict=True):
        assert f["priority"] == pytest.approx(score, abs=1e-3)
        assert f["days_to_deadline"] == 60 and f["area_m2"] == pytest.approx(400)
    assert result.summary == {"stalled_cases": 3, "listed": 3}
    assert "10×是否钉子户" in result.rule and "前3宗" in result.rule
    top1 = _run(s, stalled_priority, StalledPriority(top=1, days=30))
    assert [f["code"] for f in top1.findings] == [ranked.codes["holdout"]]
    assert top1.summary == {"stalled_cases": 3, "listed": 1}


@pytest.mark.parametrize("bad", [{"top": 0}, {"top": 1001}, {"days": -1}])
def test_the_top_n_has_a_range(bad):
    with pytest.raises(InvalidInput):
        StalledPriority(**bad).validated()


# ---------------------------------------------------------------------------------------------
# 拆除不到位 and 抢栽抢种 on rasters written cell by cell (1 m cells in the working CRS)


def _tif(path, blocks: list[tuple[int, int, int, int, float]]) -> str:
    """A 200 × 60 m height raster from (580, 940) east and south of the world's origin, zero but for ``blocks``
    (col0, col1, row0, row1, value)."""
    x, y = WORLD_ORIGIN
    data = np.zeros((60, 200), dtype="float32")
    for c0, c1, r0, r1, v in blocks:
        data[r0:r1, c0:c1] = v
    with rasterio.open(path, "w", driver="GTiff", width=200, height=60, count=1, dtype="float32",
                       crs="EPSG:4549", transform=Affine(1, 0, x + 580, 0, -1, y + 940), nodata=-9999) as dst:
        dst.write(data[None])
    return str(path)


@pytest.fixture(scope="module")
def imaged(pg_dir):
    s = two_districts(pg_dir, "inspections_imagery")
    today = today_in(s.city_timezone)
    folder = make_temp_dir("pb-inspections-")
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "一期", (500, 1500), "2025-06-01", "2027-06-30")
        insert_zone(conn, s.srid, 2, "Z2", "二期", (0, 500), "2025-06-01", "2027-06-30")
    d = {name: add_parcel(s, 1, stage=stage) for name, stage in (
        ("standing", "demolished"), ("remnant", "demolished"), ("paid", "paid"), ("late", "demolished"))}
    for i, name in enumerate(("standing", "remnant", "paid", "late")):
        _place(s, d[name], 600 + 40 * i, 900)  # cols 20 + 40 i .. 40 + 40 i, rows 20..40 of the rasters
    _age(s, d["late"], 5, "demolished")  # recorded demolished after the imagery was taken
    with get_engine(s).begin() as conn:
        for name in ("standing", "paid", "late"):
            conn.execute(text("INSERT INTO documents (parcel_id, kind, filename, sha256, size_bytes, uploaded_by) "
                              "VALUES (:id, 'demolition_acceptance', 'a.pdf', :sha, 1, 'test')"),
                         {"id": d[name], "sha": "0" * 64})
        blocks = [(20, 30, 30, 35, 5.0),  # 'standing': 10 × 5 m still 5 m high: 50 m², 12.5 %
                  (60, 63, 37, 40, 5.0),  # 'remnant': 3 × 3 m: 9 m², below 20 m²
                  (100, 120, 20, 40, 8.0), (140, 160, 20, 40, 8.0)]  # 'paid' and 'late': whole houses
        register_layer(conn, _tif(folder / "before.tif", []), acquired_on=today.replace(year=2025, month=5, day=1),
                       kind="hag")
        register_layer(conn, _tif(folder / "after.tif", blocks), acquired_on=today - timedelta(days=10), kind="hag")
    return SimpleNamespace(settings=s, today=today, codes={k: _code(s, v) for k, v in d.items()})


def test_demolition_incomplete_by_imagery_and_by_missing_evidence(imaged):
    s, code = imaged.settings, imaged.codes
    result = _run(s, demolition_incomplete, DemolitionIncomplete())
    got = {(f["code"], f["rule"]) for f in result.findings}
    # 'paid' is not demolished; 'late' was recorded demolished after the imagery; 'remnant' leaves 9 m² < 20 m²
    # but has no demolition acceptance.
    assert got == {(code["standing"], "standing"), (code["remnant"], "no_evidence")}
    (standing,) = [f for f in result.findings if f["rule"] == "standing"]
    assert standing["standing_m2"] == pytest.approx(50.0, abs=1e-6)
    assert standing["standing_share"] == pytest.approx(50 / 400, abs=1e-9)
    assert standing["imagery_on"] == imaged.today - timedelta(days=10)
    assert result.summary == {"standing": 1, "no_evidence": 1, "demolished": 3, "demolished_with_imagery": 2}
    # Smaller thresholds (9 m², 2 %) catch the remnant too; a past day sees neither the imagery nor the evidence.
    looser = _run(s, demolition_incomplete, DemolitionIncomplete(min_area_m2=9, min_share=0.02))
    assert {f["code"] for f in looser.findings if f["rule"] == "standing"} == {code["standing"], code["remnant"]}
    past = _run(s, demolition_incomplete, DemolitionIncomplete(), as_of=imaged.today - timedelta(days=20))
    assert {(f["code"], f["rule"]) for f in past.findings} == {(code["standing"], "no_evidence"),
                                                               (code["remnant"], "no_evidence")}


def test_post_freeze_is_a_registered_check_over_every_project_with_imagery(imaged):
    s, code = imaged.settings, imaged.codes
    assert checks.get_check("post-freeze").run is post_freeze
    result = _run(s, post_freeze, PostFreeze())
    # Heights rose by more than 2 m after Z1's freeze over 50, 9, 400 and 400 m² of the four 400 m² parcels; the
    # 9 m² is below the 20 m² the settings flag. Z2 has no imagery: counted, not refused.
    assert [(f["code"], round(f["changed_m2"], 6)) for f in result.findings] == [
        (code["paid"], 400.0), (code["late"], 400.0), (code["standing"], 50.0)]
    assert {f["project_name"] for f in result.findings} == {"一期"}
    assert result.summary == {"projects_checked": 1, "projects_without_imagery": 1}
    # Before the after epoch was acquired, nothing could be compared.
    past = _run(s, post_freeze, PostFreeze(), as_of=imaged.today - timedelta(days=20))
    assert past.findings == [] and past.summary == {"projects_checked": 0, "projects_without_imagery": 2}


# ---------------------------------------------------------------------------------------------
# 有没有阳光征迁: payments against the recorded days of publication, recorded through the API


@pytest.fixture(scope="module")
def sunny(pg_dir):
    """Z1 (一期, east half) published 20 days ago through the API; Z2 (二期, west half) never. In Z1: 'early' paid
    under Z1 30 days ago, 'on_day' 20 days ago (the day of publication), 'unbooked' 25 days ago under no project;
    in Z2: 'west' paid 40 days ago under no project."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import bearer, make_role_tokens

    s = two_districts(pg_dir, "inspections_sunshine")
    today = today_in(s.city_timezone)
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "一期", (500, 1500), "2025-06-01", "2027-06-30")
        insert_zone(conn, s.srid, 2, "Z2", "二期", (0, 500), "2025-06-01", "2027-06-30")
    p = {name: add_parcel(s, 1, stage="paid") for name in ("early", "on_day", "unbooked")}
    p["west"] = add_parcel(s, 1, stage="paid", inside_project=False)
    with get_engine(s).begin() as conn:
        for name, days, project in (("early", 30, 1), ("on_day", 20, 1), ("unbooked", 25, None), ("west", 40, None)):
            conn.execute(text("INSERT INTO payments (parcel_id, project_id, paid_on, amount_yuan, item) "
                              "VALUES (:id, :project, :on, 1000, 'house_value')"),
                         {"id": p[name], "project": project, "on": today - timedelta(days=days)})
    tokens = make_role_tokens(get_engine(s), ["a"])
    client = TestClient(create_app(s), headers=bearer(tokens["admin"]))
    with client:
        r = client.post("/projects/Z1/disclosures", json={"published_on": (today - timedelta(days=20)).isoformat(),
                                                          "note": "村务公开栏"})
        assert r.status_code == 201, r.text
        yield SimpleNamespace(settings=s, today=today, codes={k: _code(s, v) for k, v in p.items()}, client=client,
                              tokens=tokens)


def test_sunshine_finds_payments_before_publication_and_projects_never_published(sunny):
    s, code = sunny.settings, sunny.codes
    result = _run(s, checks.get_check("sunshine").run, checks.get_check("sunshine").params())
    got = {f["code"]: f for f in result.findings}
    assert {c: (f["rule"], f["project_name"], f["days_early"]) for c, f in got.items()} == {
        code["early"]: ("paid_before_disclosure", "一期", 10),
        code["unbooked"]: ("paid_before_disclosure", "一期", 5),  # no project: counted under the one holding it
        code["west"]: ("no_disclosure", "二期", None),
    }
    assert got[code["early"]]["disclosed_on"] == sunny.today - timedelta(days=20)
    assert got[code["early"]]["paid_yuan"] == 1000.0
    assert result.summary == {"paid_before_disclosure": 2, "no_disclosure": 1, "projects_without_disclosure": 1}
    # 25 days ago Z1 had published nothing yet, and 'on_day' was not paid.
    past = _run(s, checks.get_check("sunshine").run, checks.get_check("sunshine").params(),
                as_of=sunny.today - timedelta(days=25))
    assert {f["code"]: f["rule"] for f in past.findings} == {
        code["early"]: "no_disclosure", code["unbooked"]: "no_disclosure", code["west"]: "no_disclosure"}
    assert past.summary["projects_without_disclosure"] == 2


def test_disclosures_are_recorded_once_by_admins_within_their_bounds(sunny):
    c, today = sunny.client, sunny.today
    listed = c.get("/projects/Z1/disclosures").json()
    assert [(d["published_on"], d["note"], d["recorded_by"]) for d in listed["disclosures"]] == [
        ((today - timedelta(days=20)).isoformat(), "村务公开栏", "test-admin")]
    day = (today - timedelta(days=20)).isoformat()
    assert c.post("/projects/Z1/disclosures", json={"published_on": day}).status_code == 409
    tomorrow = (today + timedelta(days=1)).isoformat()
    r = c.post("/projects/Z1/disclosures", json={"published_on": tomorrow})
    assert r.status_code == 422 and "published_on" in r.text
    assert c.post("/projects/Z1/disclosures", json={"published_on": "1970-01-01"}).status_code == 422
    assert c.post("/projects/Z1/disclosures", json={"published_on": day, "extra": 1}).status_code == 422
    assert c.post("/projects/Z1/disclosures", json={"published_on": day, "note": "x" * 2001}).status_code == 422
    assert c.post("/projects/99/disclosures", json={"published_on": day}).status_code == 404
    from tests.conftest import bearer

    for role in ("viewer", "district_editor", "inspector"):
        headers = bearer(sunny.tokens[role])
        assert c.post("/projects/Z2/disclosures", json={"published_on": day}, headers=headers).status_code == 403
        assert c.get("/projects/Z2/disclosures", headers=headers).json()["count"] == 0
    assert len(c.get("/projects/Z1/disclosures").json()["disclosures"]) == 1  # nothing else was written


def test_cli_records_a_disclosure_and_refuses_a_repeat(sunny, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    s = sunny.settings
    for key, value in {"GIS_DATA_DIR": str(s.data_dir), "GIS_PG_FSYNC": "false",
                       "GIS_DATABASE_NAME": s.database_name, "GIS_PG_PORT": str(s.pg_port)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        runner, day = CliRunner(), (sunny.today - timedelta(days=3)).isoformat()
        ok = runner.invoke(app, ["disclosures", "add", "Z2", "--on", day, "--actor", "cli-test"])
        assert ok.exit_code == 0, ok.output
        again = runner.invoke(app, ["disclosures", "add", "Z2", "--on", day, "--actor", "cli-test"])
        assert again.exit_code == 1 and "already recorded" in str(again.exception)  # main() prints it
        listed = runner.invoke(app, ["disclosures", "list", "Z2"])
        assert listed.exit_code == 0 and f'"published_on": "{day}"' in listed.stdout and "cli-test" in listed.stdout
    finally:
        get_settings.cache_clear()


def test_the_demo_city_published_late_once_and_the_new_checks_are_listed(client, demo_city):
    """The demo's first project published 5 days after its first booked payment (gis.demo.disclosures): the
    sunshine check finds the payments of those days under it, and nothing under the projects published in time."""
    from gis.demo.disclosures import LATE_DAYS
    from gis.demo.generator import DEFAULT_TODAY

    first = int(min(demo_city.projects["id"]))
    name = demo_city.projects.set_index("id").at[first, "name"]
    payments = demo_city.payments
    booked = payments[payments["project_id"] == first]
    published = min(booked["paid_on"]) + timedelta(days=LATE_DAYS)
    early = booked[booked["paid_on"] < published]
    codes = demo_city.parcels.set_index("id").loc[early["parcel_id"].unique(), "code"]
    body = client.get("/checks/sunshine", params={"as_of": DEFAULT_TODAY.isoformat()}).json()
    assert body["summary"]["no_disclosure"] == 0 and body["summary"]["projects_without_disclosure"] == 0
    found = {f["code"] for f in body["findings"]}
    assert set(codes) <= found and {f["project_name"] for f in body["findings"]} == {name}
    # the others are payments booked to no project on parcels of its footprint, in the same days
    unbooked = set(demo_city.parcels.set_index("id").loc[
        payments[payments["project_id"].isna() & (payments["paid_on"] < published)]["parcel_id"].unique(), "code"])
    assert found - set(codes) <= unbooked
    overview = client.get("/checks", params={"as_of": DEFAULT_TODAY.isoformat()}).json()
    listed = {c["check"]: c for c in overview["checks"]}
    assert {"sunshine", "demolition_incomplete", "post_freeze", "stalled_priority"} <= set(listed)
    assert listed["sunshine"]["count"] == body["count"] and listed["stalled_priority"]["count"] == 20
