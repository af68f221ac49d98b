"""Projects from planners' files and fields: create, edit, revise the alignment, archive, with no SQL.

A demo city of its own (database 'projects_admin') so that revisions and new projects leave the shared demo
city alone. Expected answers come from shapely on the generator's frames, never from PostGIS.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import mapping
from sqlalchemy import text

from gis.demo.load import load_city
from gis.domain.stages import today_in
from gis.platform import cluster, migrate
from gis.platform.db import get_engine
from tests.conftest import bearer, make_role_tokens
from tests.worlds import settings_for

MIN_M2, MIN_SHARE = 1.0, 0.005
SHIFT_M = 30.0
TO_WGS = Transformer.from_crs(4549, 4326, always_xy=True)


def to_wgs(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def admin_db(pg_dir, demo_city):
    s = settings_for(pg_dir, database_name="projects_admin")
    cluster.start(s)
    migrate.upgrade(s)
    engine = get_engine(s)
    with engine.begin() as conn:
        load_city(conn, demo_city)
    tokens = make_role_tokens(engine, [str(int(demo_city.districts["id"].iloc[0]))], prefix="pa")
    from api.app import create_app

    with TestClient(create_app(s), headers=bearer(tokens["admin"])) as client:
        yield client, s, engine, {r: bearer(t) for r, t in tokens.items()}


def _overlaps(parcels, footprint) -> dict[str, float]:
    """code → overlap m² of every parcel overlapping ``footprint`` beyond the tolerance (independently)."""
    shapely.prepare(footprint)
    geoms = parcels.geometry.values
    hit = shapely.intersects(footprint, geoms)
    out = {}
    for code, geom in zip(parcels["code"].values[hit], geoms[hit]):
        area = shapely.area(shapely.intersection(geom, footprint))
        if area >= MIN_M2 and area >= MIN_SHARE * geom.area:
            out[code] = area
    return out


def _xinan(demo_city):
    return demo_city.projects.set_index("code").loc["xinan_road"]


def test_a_shifted_alignment_diff_agrees_with_shapely(admin_db, demo_city):
    client, s, engine, _ = admin_db
    project = _xinan(demo_city)
    line, width = project["centerline"], float(project["corridor_width_m"])
    shifted = shapely.affinity.translate(line, xoff=SHIFT_M)
    body = {"geometry": mapping(shifted), "crs": "EPSG:4549", "width_m": width, "note": "向东平移30米"}
    preview = client.post("/projects/xinan_road/alignment/preview", json=body)
    assert preview.status_code == 200, preview.text
    r = client.put("/projects/xinan_road/alignment", json=body)
    assert r.status_code == 200, r.text
    revisions = r.json()["revisions"]
    assert [v["revision"] for v in revisions] == [1, 2] and revisions[1]["current"]
    assert revisions[1]["note"] == "向东平移30米" and revisions[1]["created_by"] == "pa-admin"

    # The oracle: one straight-through line, so its corridor is the flat-ended buffer.
    before = _overlaps(demo_city.parcels, shapely.buffer(line, width / 2, cap_style="flat"))
    after = _overlaps(demo_city.parcels, shapely.buffer(shifted, width / 2, cap_style="flat"))
    diff = client.get("/projects/xinan_road/revisions/1/diff/2").json()
    assert {h["code"] for h in diff["entering"]} == after.keys() - before.keys()
    assert {h["code"] for h in diff["leaving"]} == before.keys() - after.keys()
    assert diff["entering"] and diff["leaving"]
    changes = [after.get(c, 0.0) - before.get(c, 0.0) for c in before.keys() | after.keys()]
    assert diff["overlap_gained_m2"] == pytest.approx(sum(d for d in changes if d > 0), rel=1e-4)
    assert diff["overlap_lost_m2"] == pytest.approx(-sum(d for d in changes if d < 0), rel=1e-4)
    assert diff["overlap_gained_mu"] == pytest.approx(diff["overlap_gained_m2"] / (10000 / 15), rel=1e-4)
    households = dict(zip(demo_city.parcels["code"], demo_city.parcels["households"]))
    assert diff["households_entering"] == sum(households[c] for c in after.keys() - before.keys())
    holdouts = set(demo_city.parcels.loc[demo_city.parcels["holdout"], "code"])
    assert set(diff["holdouts_entering"]) == (after.keys() - before.keys()) & holdouts
    assert diff["before"]["parcels"] == len(before) and diff["after"]["parcels"] == len(after)
    # The preview said the same before anything was saved.
    assert {h["code"] for h in preview.json()["entering"]} == after.keys() - before.keys()

    # Blockers now follow the new alignment; as of yesterday, the one in force then.
    stage = dict(zip(demo_city.parcels["code"], demo_city.parcels["stage"]))
    now = client.get("/projects/xinan_road/blockers", params={"limit": 10000}).json()
    assert {b["code"] for b in now["items"]} == {c for c in after if stage[c] != "cleared"}
    yesterday = today_in(s.city_timezone) - timedelta(days=1)
    then = client.get("/projects/xinan_road/blockers",
                      params={"limit": 10000, "as_of": yesterday.isoformat()}).json()
    in_then = {b["code"] for b in then["items"]}
    assert in_then <= before.keys() and not in_then & (after.keys() - before.keys())


def test_project_created_from_a_dxf_file_with_a_cad_layer(admin_db, demo_city, tmp_path):
    client, *_ = admin_db
    line = shapely.affinity.translate(_xinan(demo_city)["centerline"], yoff=-200)
    decoy = shapely.affinity.translate(line, yoff=-400)
    path = tmp_path / "red_line.dxf"
    import geopandas as gpd

    gpd.GeoDataFrame({"Layer": ["中线", "道路边线"]}, geometry=[line, decoy]).to_file(path, driver="DXF")
    form = {"code": "dxf_road", "name": "图纸道路", "kind": "road", "width_m": "30", "layer": "中线"}
    no_crs = client.post("/projects", data=form, files={"file": ("red_line.dxf", path.read_bytes())})
    assert no_crs.status_code == 422 and no_crs.json()["where"] == "crs", no_crs.text
    r = client.post("/projects", data=form | {"crs": "4549"}, files={"file": ("red_line.dxf", path.read_bytes())})
    assert r.status_code == 201, r.text
    created = r.json()
    expected = _overlaps(demo_city.parcels, shapely.buffer(line, 15, cap_style="flat"))
    assert created["code"] == "dxf_road" and created["parcels"] == len(expected)
    assert created["footprint_m2"] == pytest.approx(shapely.buffer(line, 15, cap_style="flat").area, rel=1e-6)
    wrong_layer = client.post("/projects", data=form | {"crs": "4549", "code": "dxf2", "layer": "无此图层"},
                              files={"file": ("red_line.dxf", path.read_bytes())})
    assert wrong_layer.status_code == 422 and "中线" in wrong_layer.json()["detail"]


def test_create_edit_archive(admin_db, demo_city):
    client, _, engine, headers = admin_db
    zone = shapely.box(*shapely.affinity.scale(_xinan(demo_city)["footprint"].envelope, 0.2, 0.2).bounds)
    body = {"code": "test_zone", "name": "测试园区", "kind": "zone", "geometry": mapping(to_wgs(zone)),
            "freeze_date": "2026-03-01", "deadline": "2027-12-31"}
    assert client.post("/projects", json=body, headers=headers["district_editor"]).status_code == 403
    r = client.post("/projects", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["parcels"] == len(_overlaps(demo_city.parcels, zone))
    assert client.post("/projects", json=body).status_code == 409
    patched = client.patch("/projects/test_zone", json={"name": "测试园区二期", "deadline": "2028-06-30"})
    assert patched.status_code == 200 and patched.json()["name"] == "测试园区二期"
    assert patched.json()["deadline"] == "2028-06-30" and patched.json()["freeze_date"] == "2026-03-01"
    assert client.patch("/projects/test_zone", json={"nmae": "x"}).status_code == 422
    assert client.patch("/projects/test_zone", json={"deadline": "2020-01-01"}).status_code == 422
    assert "test_zone" in {p["code"] for p in client.get("/projects").json()["projects"]}
    assert client.get("/projects/test_zone/blockers").status_code == 200

    assert client.delete("/projects/test_zone").status_code == 204
    assert "test_zone" not in {p["code"] for p in client.get("/projects").json()["projects"]}
    assert client.get("/projects/test_zone").status_code == 404
    assert client.get("/projects/test_zone/map").status_code == 404
    revisions = client.get("/projects/test_zone/revisions").json()["revisions"]
    assert len(revisions) == 1 and revisions[0]["created_by"] == "pa-admin"
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM revision_parcel_overlaps o JOIN projects p "
                                 "ON p.id = o.project_id WHERE p.code = 'test_zone'")).scalar_one()
    assert kept == r.json()["parcels"]


@pytest.mark.parametrize("change, status, where", [
    ({"width_m": 0}, 422, "width_m"),
    ({"width_m": -5}, 422, "width_m"),
    ({"width_m": 50_000}, 422, "width_m"),
    ({"code": "Xinan Road!"}, 422, "code"),
    ({"code": "xinan_road"}, 409, "code"),
    ({"kind": "canal"}, 422, None),
    ({"geometry": {"type": "LineString", "coordinates": [[117.0, 31.9], [117.01, 31.91]]}}, 422,
     "geometry.coordinates"),
    ({"geometry": {"type": "Point", "coordinates": [118.97, 30.61]}}, 422, "geometry.type"),
    ({"colour": "red"}, 422, None),
    ({"shift_east_m": 15_000}, 422, "geometry"),  # near the city, but outside every district
])
def test_bad_project_input_is_refused_and_nothing_is_written(admin_db, demo_city, change, status, where):
    client, _, engine, _ = admin_db
    shift = change.pop("shift_east_m", 0)
    line = to_wgs(shapely.affinity.translate(_xinan(demo_city)["centerline"], xoff=shift, yoff=300))
    body = {"code": "bad_one", "name": "坏项目", "kind": "road", "geometry": mapping(line), "width_m": 30} | change
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM projects")).scalar_one()
    r = client.post("/projects", json=body)
    assert r.status_code == status, r.text
    if where:
        assert r.json()["where"] == where
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM projects")).scalar_one() == before


def test_bad_revisions_are_refused(admin_db, demo_city, tmp_path):
    client, *_ = admin_db
    hsr = demo_city.projects.set_index("code").loc["hsr"]
    same = {"geometry": mapping(hsr["centerline"]), "crs": "EPSG:4549", "width_m": float(hsr["corridor_width_m"])}
    r = client.put("/projects/hsr/alignment", json=same)
    assert r.status_code == 422 and "identical" in r.json()["detail"]
    assert client.put("/projects/no_such_project/alignment", json=same).status_code == 404
    assert client.get("/projects/no_such_project/blockers").status_code == 404
    assert client.get("/projects/hsr/revisions/1/diff/9").status_code == 404
    polygons = tmp_path / "zone.geojson"
    pyogrio.write_dataframe(__import__("geopandas").GeoDataFrame(geometry=[demo_city.projects.geometry.iloc[2]],
                                                                 crs=4549), polygons)
    r = client.put("/projects/hsr/alignment", data={"width_m": "60"},
                   files={"file": ("zone.geojson", polygons.read_bytes())})
    assert r.status_code == 422 and "no lines" in r.json()["detail"], r.text
    r = client.put("/projects/hsr/alignment", json=same | {"effective_from": "1999-01-01", "width_m": 61})
    assert r.status_code == 422 and r.json()["where"] == "effective_from"


def test_routes_take_the_code_or_the_id(admin_db):
    client, *_ = admin_db
    by_id = {p["code"]: p["id"] for p in client.get("/projects").json()["projects"]}
    for path in ("", "/blockers", "/map", "/map/blockers.geojson", "/revisions"):
        a = client.get(f"/projects/devzone{path}")
        b = client.get(f"/projects/{by_id['devzone']}{path}")
        assert a.status_code == b.status_code == 200, path
        if path != "/map":
            assert a.json() == b.json(), path
    assert client.get("/public/projects/devzone").json() == client.get(f"/public/projects/{by_id['devzone']}").json()


def test_revision_list_and_dates(admin_db):
    client, *_ = admin_db
    listed = client.get("/projects/xinan_road/revisions", params={"geometry": "true"}).json()["revisions"]
    assert listed[0]["effective_from"] == "2026-02-10"  # the demo's freeze date: revision 1's day
    assert listed[-1]["effective_from"] == today_in("Asia/Shanghai").isoformat()
    assert listed[0]["footprint"]["type"] == "MultiPolygon"
    assert date.fromisoformat(listed[-1]["created_at"][:10]) <= date.today() + timedelta(days=1)
    assert json.dumps(listed, ensure_ascii=False)


def test_revision_map_page_shows_both_footprints_and_the_changed_parcels(admin_db):
    client, *_ = admin_db
    r = client.get("/projects/xinan_road/revisions/1/diff/2/map")
    assert r.status_code == 200, r.text
    diff = client.get("/projects/xinan_road/revisions/1/diff/2").json()
    page = r.text
    assert "改线对比" in page and "第1版红线" in page and "第2版红线" in page
    assert f"新进入 {len(diff['entering'])} 宗" in page and f"移出 {len(diff['leaving'])} 宗" in page
    for hit in diff["entering"][:5] + diff["leaving"][:5]:
        assert hit["code"] in page
