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
