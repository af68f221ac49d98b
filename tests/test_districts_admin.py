"""Districts from the planners' files (gis.records.districts, `gis districts`, /districts): real French communes.

A Lambert-93 (EPSG:2154) service starts with no district. The two communes of the shared cadastre files —
Paris 18e and Épinay-sur-Orge — become its districts (each the union of its parcels, buffered 5 m), then its
parcels are imported, boundaries are changed, and every outcome is checked against shapely + pyproj on the
same files, outside PostGIS. A refusal is checked to leave the districts, the parcels and their history as
they were. The tests of this module build on one another, in the order they are written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from gis.io.readers import file_fingerprint
from gis.platform.config import SQM_PER_MU
from gis.platform.db import connect, get_engine
from gis.platform.errors import Conflict, InvalidInput, NotFound
from gis.records import parcels
from gis.records.districts import (
    OVERLAP_TOLERANCE_M2,
    delete_district,
    import_districts,
    list_districts,
    rename_district,
)
from gis.records.importer import import_file
from tests.conftest import SHARED_DATA, bearer, make_role_tokens
from tests.worlds import empty_database

FILES = {"75118": SHARED_DATA / "fr-cadastre-rail" / "cadastre-75118-parcelles.json",
         "91216": SHARED_DATA / "fr-cadastre-rail" / "cadastre-91216-parcelles.json"}
NAMES = {"75118": "Paris 18e", "91216": "Épinay-sur-Orge"}
ETALAB = {"id": "code", "contenance": "land_area_m2", "commune": "-"}  # the Etalab cadastre's columns
BUFFER_M = 5.0
STRIP_M = 200.0  # the re-drawn Paris: a gap this wide between its west and its new east district
TO_L93 = Transformer.from_crs(4326, 2154, always_xy=True)
TO_WGS = Transformer.from_crs(2154, 4326, always_xy=True)


def project(geom, t=TO_L93):
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def communes():
    """Per commune: its parcels in Lambert-93 (code → geometry, projected here) and its district boundary."""
    out = {}
    for code, path in FILES.items():
        raw = json.loads(path.read_text())
        geoms = project(np.array([shapely.geometry.shape(f["geometry"]) for f in raw["features"]]))
        parcel_geoms = dict(zip((f["properties"]["id"] for f in raw["features"]), geoms, strict=True))
        district = shapely.union_all(geoms).buffer(BUFFER_M, quad_segs=2)
        out[code] = SimpleNamespace(name=NAMES[code], parcels=parcel_geoms, district=district)
    return out


def write_layer(path, records: list[dict], *, crs=2154, driver=None, **kwargs):
    """A file of features: each record's 'geometry' with its other keys as columns."""
    frame = gpd.GeoDataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in records],
                             geometry=[r["geometry"] for r in records], crs=crs)
    pyogrio.write_dataframe(frame, path, driver=driver, **kwargs)
    return path


def run_import(s, path, **kwargs):
    """import_districts on the service's own login (the API's), committed unless it raises."""
    with connect(s) as conn:
        return import_districts(conn, path, actor=kwargs.pop("actor", "test-planner"), **kwargs)


def snapshot(engine):
    """Districts, every parcel's district and version, and the history, as a comparable value."""
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT id, code, name, md5(ST_AsEWKB(geom)::text) FROM districts ORDER BY id")).all(),
            conn.execute(text("SELECT md5(string_agg(id || ':' || district_id || ':' || version, ',' ORDER BY id)) "
                              "FROM parcels")).scalar_one(),
            conn.execute(text("SELECT count(*), max(id) FROM parcel_events")).one(),
        )


@contextmanager
def unchanged(engine):
    before = snapshot(engine)
    yield
    assert snapshot(engine) == before


def districts_of_parcels(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT p.code, d.code FROM parcels p JOIN districts d ON d.id = p.district_id")).all())


def stored_boundary(engine, code):
    with engine.connect() as conn:
        return shapely.from_wkb(bytes(conn.execute(
            text("SELECT ST_AsBinary(geom) FROM districts WHERE code = :c"), {"c": code}).scalar_one()))


def square(x, y, side):
    return shapely.box(x, y, x + side, y + side)


@pytest.fixture(scope="module")
def fr(pg_dir, communes, tmp_path_factory):
    """Database 'districts_fr' (Lambert-93), empty; a parcel import is tried first (and refused), then the
    communes are imported as districts from a GeoPackage, then both communes' parcels."""
    s = empty_database(pg_dir, "districts_fr", srid=2154)
    engine = get_engine(s)
    folder = tmp_path_factory.mktemp("districts")
    with pytest.raises(InvalidInput) as refused, engine.begin() as conn:
        import_file(conn, FILES["75118"], mapping=ETALAB, defaults={"kind": "land"}, settings=s)
    gpkg = write_layer(folder / "communes.gpkg", [
        {"code": code, "name": c.name, "geometry": c.district} for code, c in communes.items()])
    first = run_import(s, gpkg)
    imported = {}
    for code, path in FILES.items():
        with engine.begin() as conn:
            imported[code] = import_file(conn, path, mapping=ETALAB, defaults={"kind": "land"}, settings=s,
                                         actor="test-surveyor")
    return SimpleNamespace(settings=s, engine=engine, folder=folder, refused=refused.value, first=first,
                           imported=imported)


# ---------------------------------------------------------------------------------------------
# A fresh database: districts first, then parcels


def test_a_fresh_database_takes_its_districts_from_a_geopackage(fr, communes):
    assert "no districts yet" in str(fr.refused) and "gis districts import" in str(fr.refused)
    report = fr.first
    assert (report.created, report.updated, report.unchanged) == (["75118", "91216"], [], [])
    assert report.committed and report.crs == 2154 and report.working_srid == 2154 and report.features == 2
    assert report.mapping == {"code": "code", "name": "name"}
    assert report.parcels_moved == [] and report.parcels_outside == []
    with connect(fr.settings) as conn:
        listed = list_districts(conn)
    assert [(d["id"], d["code"], d["name"]) for d in listed] == [(1, "75118", "Paris 18e"),
                                                               (2, "91216", "Épinay-sur-Orge")]
    for d in listed:
        expected = communes[d["code"]].district.area
        assert d["area_m2"] == pytest.approx(expected, rel=1e-4)
        assert d["area_mu"] == pytest.approx(expected / SQM_PER_MU, rel=1e-4)
        assert d["parcels"] == len(communes[d["code"]].parcels)


def test_the_parcel_import_now_puts_every_parcel_in_its_commune(fr, communes):
    for code, report in fr.imported.items():
        assert report.ok, report.issues[:5]
        assert report.created == len(communes[code].parcels)
    got = districts_of_parcels(fr.engine)
    expected = {p: code for code, c in communes.items() for p in c.parcels}
    assert got == expected


# ---------------------------------------------------------------------------------------------
# Boundaries re-drawn: parcels follow by largest overlap


def largest_overlap(geom, districts: dict) -> str | None:
    """The district ``geom`` overlaps most (ties: the smaller code), None if it overlaps none; in shapely."""
    areas = {code: geom.intersection(d).area for code, d in districts.items() if geom.intersects(d)}
    areas = {code: a for code, a in areas.items() if a > 0}
    return min(areas, key=lambda code: (-areas[code], code)) if areas else None


def test_redrawn_boundaries_move_parcels_to_the_district_they_overlap_most(fr, communes):
    paris = communes["75118"]
    xmin, ymin, xmax, ymax = paris.district.bounds
    x0 = float(np.median([g.centroid.x for g in paris.parcels.values()]))
    west = paris.district.intersection(shapely.box(xmin - 1, ymin - 1, x0, ymax + 1))
    east = paris.district.intersection(shapely.box(x0 + STRIP_M, ymin - 1, xmax + 1, ymax + 1))
    path = write_layer(fr.folder / "paris-redrawn.gpkg", [
        {"code": "75118", "name": "Paris 18e", "geometry": west},
        {"code": "75118E", "name": "Paris 18e est", "geometry": east},
    ])
    with fr.engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT code, version FROM parcels")).all())
        last_event = conn.execute(text("SELECT max(id) FROM parcel_events")).scalar_one()

    report = run_import(fr.settings, path, actor="test-planner")

    # An independent computation: each Paris parcel against every district after the import.
    after = {"75118": west, "75118E": east, "91216": communes["91216"].district}
    best = {code: largest_overlap(g, after) for code, g in paris.parcels.items()}
    moved = {code for code, d in best.items() if d not in (None, "75118")}
    outside = {code for code, d in best.items() if d is None}
    assert moved and outside and {best[c] for c in moved} == {"75118E"}
    assert (report.created, report.updated, report.unchanged) == (["75118E"], ["75118"], [])
    assert [(m.code, m.from_district, m.to_district) for m in report.parcels_moved] == [
        (code, "75118", "75118E") for code in sorted(moved)]
    assert report.parcels_outside == sorted(outside)
    assert report.counts["parcels_moved"] == len(moved) and report.counts["parcels_outside"] == len(outside)

    got = districts_of_parcels(fr.engine)
    for code in paris.parcels:
        assert got[code] == ("75118E" if code in moved else "75118"), code  # outside: keeps its district
    assert all(got[code] == "91216" for code in communes["91216"].parcels)
    with fr.engine.connect() as conn:
        now = dict(conn.execute(text("SELECT code, version FROM parcels")).all())
        events = conn.execute(text(
            "SELECT p.code, e.kind, e.actor, e.changes, e.note, e.stage_from, e.stage_to "
            "FROM parcel_events e JOIN parcels p ON p.id = e.parcel_id WHERE e.id > :last"), {"last": last_event}).all()
        ids = dict(conn.execute(text("SELECT code, id FROM districts")).all())
        assert ids["75118E"] == 3  # max + 1
        some = conn.execute(text("SELECT id FROM parcels WHERE code = :c"), {"c": min(moved)}).scalar_one()
        timeline = parcels.history(conn, some)
    assert {code for code in now if now[code] != versions[code]} == moved
    assert all(now[c] == versions[c] + 1 for c in moved)
    assert sorted(e.code for e in events) == sorted(moved)
    for e in events:
        # The shape an edit by hand or a parcel import writes: kind 'attributes', {field: {from, to}}.
        assert (e.kind, e.actor, e.stage_from, e.stage_to) == ("attributes", "test-planner", None, None)
        assert e.changes == {"district_id": {"from": ids["75118"], "to": ids["75118E"]}}
        assert e.note == f"片区边界导入 {file_fingerprint(path)}"  # the file's fingerprint, never its name
    assert timeline[-1]["kind"] == "attributes" and timeline[-1]["changes"]["district_id"]["to"] == ids["75118E"]

    # The same file again changes nothing.
    with unchanged(fr.engine):
        again = run_import(fr.settings, path)
    assert (again.created, again.updated, again.unchanged) == ([], [], ["75118", "75118E"])
    assert again.parcels_moved == [] and again.parcels_outside == []


# ---------------------------------------------------------------------------------------------
# Refusals: overlaps, bad files, bad values — nothing written


def overlap_in(message: str) -> float:
    return float(re.search(r"overlap by ([\d,.]+) m²", message).group(1).replace(",", ""))


def test_overlapping_districts_are_refused_with_the_pair_and_the_area(fr, communes, tmp_path):
    epinay = stored_boundary(fr.engine, "91216")
    with fr.engine.connect() as conn:
        epinay_name = conn.execute(text("SELECT name FROM districts WHERE code = '91216'")).scalar_one()
    xmin, ymin, xmax, ymax = epinay.bounds
    intruder = shapely.box(xmin - 500, ymin - 500, (xmin + xmax) / 2, (ymin + ymax) / 2)
    expected = intruder.intersection(epinay).area
    assert expected > 10_000
    path = write_layer(tmp_path / "intruder.geojson", [{"code": "91999", "name": "Intrus", "geometry": intruder}])
    with unchanged(fr.engine), pytest.raises(InvalidInput) as refused:
        run_import(fr.settings, path)
    message = str(refused.value)
    assert "91999 (Intrus; feature 1)" in message and f"91216 ({epinay_name}; stored, not in the file)" in message
    assert overlap_in(message) == pytest.approx(expected, rel=1e-3)
    assert refused.value.where == "geometry"

    # Within one file: two features drawn over each other, 40 m × 25 m.
    x, y = xmin, ymin - 5_000
    a, b = square(x, y, 500), square(x + 460, y + 475, 500)
    path = write_layer(tmp_path / "pair.gpkg", [{"code": "A", "name": "甲", "geometry": a},
                                                 {"code": "B", "name": "乙", "geometry": b}])
    with unchanged(fr.engine), pytest.raises(InvalidInput) as refused:
        run_import(fr.settings, path)
    assert "A (甲; feature 1) and B (乙; feature 2)" in str(refused.value)
    assert overlap_in(str(refused.value)) == pytest.approx(a.intersection(b).area, rel=1e-3) == 1000

    # Below the tolerance (a shared boundary digitised twice: 0.5 m²) is allowed.
    b = square(x + 499.5, y + 499, 500)
    assert 0 < a.intersection(b).area < OVERLAP_TOLERANCE_M2
    path = write_layer(tmp_path / "sliver.gpkg", [{"code": "A", "name": "甲", "geometry": a},
                                                   {"code": "B", "name": "乙", "geometry": b}])
    with unchanged(fr.engine):
        report = run_import(fr.settings, path, dry_run=True)
    assert report.created == ["A", "B"] and not report.committed


def test_files_and_values_that_are_refused_leave_everything_as_it_was(fr, tmp_path):
    where = shapely.box(660_000, 6_800_000, 661_000, 6_801_000)  # far from both communes
    cases = []
    line = tmp_path / "line.geojson"
    write_layer(line, [{"code": "L", "name": "线", "geometry": shapely.LineString([(660_000, 6_800_000),
                                                                                   (661_000, 6_801_000)])}])
    cases.append((line, {}, "holds no polygons", "file"))
    cases.append((write_layer(tmp_path / "noname.geojson", [{"code": "N1", "remark": "x", "geometry": where}]),
                  {}, "the file's columns: code, remark", "map"))
    cases.append((tmp_path / "noname.geojson", {"remark": "nom"}, "maps to 'nom'", "map.remark"))
    cases.append((tmp_path / "noname.geojson", {"missing": "name"}, "no column 'missing'", "map.missing"))
    cases.append((write_layer(tmp_path / "long.geojson", [
        {"code": "C" * 41, "name": "长", "geometry": where}]), {}, "longer than 40 characters", "feature 1"))
    cases.append((write_layer(tmp_path / "blank.geojson", [
        {"code": "C1", "name": "名", "geometry": where},
        {"code": "C2", "name": "  ", "geometry": shapely.box(662_000, 6_800_000, 663_000, 6_801_000)}]),
        {}, "feature 2 has no name", "feature 2"))
    cases.append((write_layer(tmp_path / "twonames.geojson", [
        {"code": "C1", "name": "甲", "geometry": where},
        {"code": "C1", "name": "乙", "geometry": shapely.box(662_000, 6_800_000, 663_000, 6_801_000)}]),
        {}, "code C1 is given two names: '甲' (feature 1) and '乙' (feature 2)", "feature 2"))
    cases.append((write_layer(tmp_path / "samename.geojson", [{"code": "C1", "name": "Paris 18e", "geometry": where}]),
                  {}, "two districts would be named 'Paris 18e': 75118 and C1", "name"))
    flat = shapely.Polygon([(660_000, 6_800_000), (661_000, 6_800_000), (660_500, 6_800_000)])
    cases.append((write_layer(tmp_path / "flat.geojson", [{"code": "C1", "name": "扁", "geometry": flat}]),
                  {}, "nothing of it is an area", "feature 1"))
    for path, mapping, message, where_ in cases:
        with unchanged(fr.engine), pytest.raises(InvalidInput) as refused:
            run_import(fr.settings, path, mapping=mapping)
        assert message in str(refused.value), (path.name, str(refused.value))
        assert refused.value.where == where_, (path.name, refused.value.where)

    # A bow-tie is repaired (and said so); two features of one code become one district.
    bow_tie = shapely.Polygon([(660_000, 6_800_000), (661_000, 6_801_000), (661_000, 6_800_000),
                               (660_000, 6_801_000)])
    path = write_layer(tmp_path / "repair.gpkg", [
        {"code": "R1", "name": "修复", "geometry": bow_tie},
        {"code": "R1", "name": "修复", "geometry": shapely.box(662_000, 6_800_000, 663_000, 6_801_000)}])
    with unchanged(fr.engine):
        report = run_import(fr.settings, path, dry_run=True)
    assert report.created == ["R1"] and report.features == 2
    assert any("feature 1 (R1): invalid boundary (Self-intersection" in n and "→ 500,000.00 m²" in n
               for n in report.notes), report.notes


def test_zipped_shapefile_with_a_gbk_table_gives_chinese_names(fr, communes, tmp_path):
    folder = tmp_path / "shp"
    folder.mkdir()
    row = {"编码": "91216", "名称": "埃皮奈叙尔奥尔日", "geometry": communes["91216"].district}
    write_layer(folder / "片区.shp", [row], encoding="GBK")
    (folder / "片区.cpg").unlink(missing_ok=True)
    dbf = folder / "片区.dbf"
    raw = bytearray(dbf.read_bytes())
    raw[29] = 0  # no language driver byte either, as many tools write
    dbf.write_bytes(bytes(raw))
    assert "埃皮奈".encode("gbk") in raw
    archive = tmp_path / "片区.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    report = run_import(fr.settings, archive)
    assert report.mapping == {"编码": "code", "名称": "name"}
    assert any("GBK" in n for n in report.notes), report.notes
    assert (report.updated, report.parcels_moved, report.parcels_outside) == (["91216"], [], [])
    with connect(fr.settings) as conn:
        names = {d["code"]: d["name"] for d in list_districts(conn)}
    assert names["91216"] == "埃皮奈叙尔奥尔日"
    assert stored_boundary(fr.engine, "91216").equals(communes["91216"].district)


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_kml_and_dxf_districts_and_deleting_what_nothing_uses(fr, communes, tmp_path):
    xmin, ymin, _, _ = communes["91216"].district.bounds
    k_l93 = square(xmin, ymin - 5_000, 1_000)
    kml = write_layer(tmp_path / "k.kml", [{"code": "K1", "name": "测试片区K", "geometry": project(k_l93, TO_WGS)}],
                      crs=4326, driver="KML")
    report = run_import(fr.settings, kml)
    assert report.created == ["K1"] and report.crs == 4326
    assert stored_boundary(fr.engine, "K1").area == pytest.approx(k_l93.area, rel=1e-6)

    # A CAD drawing: closed polylines, the CAD layer as the code and the name, no CRS in the file; the
    # drawing's frame, on a CAD layer of its own, would overlap the district.
    d_l93 = square(xmin + 2_000, ymin - 5_000, 800)
    frame = d_l93.buffer(100, join_style="mitre")
    dxf = write_layer(tmp_path / "d.dxf", [{"Layer": "D1", "geometry": shapely.LineString(d_l93.exterior.coords)},
                                           {"Layer": "图框", "geometry": shapely.LineString(frame.exterior.coords)}],
                      crs=None, driver="DXF")
    with unchanged(fr.engine), pytest.raises(InvalidInput) as refused:
        run_import(fr.settings, dxf, mapping={"Layer": "code,name"}, layer="D1")
    assert "declare it (--crs)" in str(refused.value) and refused.value.where == "crs"
    with unchanged(fr.engine), pytest.raises(InvalidInput) as refused:
        run_import(fr.settings, dxf, mapping={"Layer": "code,name"}, crs=2154)
    assert "D1 (D1; feature 1) and 图框 (图框; feature 2) overlap" in str(refused.value)
    report = run_import(fr.settings, dxf, mapping={"Layer": "code,name"}, crs=2154, layer="D1")
    assert report.created == ["D1"] and report.mapping == {"Layer": "code,name"} and report.features == 1
    assert shapely.hausdorff_distance(stored_boundary(fr.engine, "D1"), d_l93) < 0.001  # DXF: 3 decimals

    # K1 has no parcels; while a district editor or a compensation standard refers to it, it stays.
    make_role_tokens(fr.engine, ["K1"], prefix="k1")
    with fr.engine.begin() as conn:
        conn.execute(text("INSERT INTO compensation_standards (district_id, kind, item, unit, rate_yuan, valid_from) "
                          "SELECT id, 'land', 'land', 'mu', 50000, '2026-01-01' FROM districts WHERE code = 'K1'"))
    with unchanged(fr.engine), pytest.raises(Conflict) as refused, connect(fr.settings) as conn:
        delete_district(conn, "K1")
    assert "1 users edit it (k1-district_editor)" in str(refused.value)
    assert "1 compensation standards" in str(refused.value) and "parcels" not in str(refused.value)
    with fr.engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name LIKE 'k1-%'"))
        conn.execute(text("DELETE FROM compensation_standards"))
    with connect(fr.settings) as conn:
        delete_district(conn, "K1")
        delete_district(conn, "D1")
    with connect(fr.settings) as conn:
        assert [d["code"] for d in list_districts(conn)] == ["75118", "75118E", "91216"]
        with pytest.raises(NotFound):
            delete_district(conn, "K1")
        with pytest.raises(NotFound):
            rename_district(conn, "K1", "x", "test")
        with pytest.raises(Conflict):
            rename_district(conn, "75118E", "Paris 18e", "test")
    with unchanged(fr.engine), pytest.raises(Conflict) as refused, connect(fr.settings) as conn:
        delete_district(conn, "91216")
    assert f"{len(communes['91216'].parcels)} parcels lie in it" in str(refused.value)


# ---------------------------------------------------------------------------------------------
# End to end: the API and the command line


def test_api_lists_imports_renames_and_deletes_districts(fr, communes, tmp_path):
    from api.app import create_app

    tokens = make_role_tokens(fr.engine, ["91216"], prefix="dst")
    admin, editor, viewer = (bearer(tokens[r]) for r in ("admin", "district_editor", "viewer"))
    xmin, ymin, _, _ = communes["91216"].district.bounds
    a1 = square(xmin, ymin - 8_000, 1_200)
    body = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"DM": "A1", "MC": "新区"},
                                                       "geometry": shapely.geometry.mapping(project(a1, TO_WGS))}]}
    upload = {"file": ("新区.geojson", json.dumps(body, ensure_ascii=False).encode(), "application/geo+json")}
    form = {"map": ["DM=code", "MC=name"]}
    with TestClient(create_app(fr.settings)) as client:
        listed = client.get("/districts", headers=viewer)
        assert listed.status_code == 200
        assert [d["code"] for d in listed.json()["districts"]] == ["75118", "75118E", "91216"]
        shapes = client.get("/districts", params={"geometry": "true"}, headers=viewer).json()["districts"]
        epinay = next(d for d in shapes if d["code"] == "91216")
        assert epinay["geometry"]["type"] == "MultiPolygon"
        assert project(shapely.geometry.shape(epinay["geometry"])).area == pytest.approx(epinay["area_m2"], rel=1e-4)
        assert client.get("/districts/progress", headers=viewer).status_code == 200
        assert client.get("/districts/map", headers=viewer).status_code == 200

        with unchanged(fr.engine):
            for who in (viewer, editor):
                assert client.post("/districts/imports", files=upload, data=form, headers=who).status_code == 403
            dry = client.post("/districts/imports", files=upload, data=form | {"dry_run": "true"}, headers=admin)
            assert dry.status_code == 200, dry.text
            assert dry.json()["created"] == ["A1"] and not dry.json()["committed"]
            overlapping = client.post("/districts/imports", headers=admin, data=form, files={"file": (
                "x.geojson", json.dumps({"type": "FeatureCollection", "features": [{
                    "type": "Feature", "properties": {"DM": "A2", "MC": "重叠"},
                    "geometry": shapely.geometry.mapping(project(communes["91216"].district.envelope, TO_WGS))}]}),
                "application/geo+json")})
            assert overlapping.status_code == 422 and overlapping.json()["where"] == "geometry"
            assert "A2 (重叠; feature 1) and 91216" in overlapping.json()["detail"]
        r = client.post("/districts/imports", files=upload, data=form, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["committed"] and r.json()["created"] == ["A1"] and r.json()["counts"]["created"] == 1
        assert r.json()["mapping"] == {"DM": "code", "MC": "name"} and r.json()["file"] == "新区.geojson"
        # The answer came after the commit: another connection sees the district already.
        with fr.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM districts WHERE code = 'A1'")).scalar_one() == "新区"

        renamed = client.patch("/districts/A1", json={"name": "新区二"}, headers=admin)
        assert renamed.status_code == 200 and renamed.json()["name"] == "新区二"
        assert renamed.json()["area_m2"] == pytest.approx(a1.area, rel=1e-6)
        with unchanged(fr.engine):
            assert client.patch("/districts/A1", json={"name": "x", "extra": 1}, headers=admin).status_code == 422
            assert client.patch("/districts/A1", json={"name": "x"}, headers=editor).status_code == 403
            missing = client.patch("/districts/nope", json={"name": "x"}, headers=admin)
            assert missing.status_code == 404 and "nope" in missing.json()["detail"]
            assert client.delete("/districts/nope", headers=admin).status_code == 404
            assert client.delete("/districts/A1", headers=editor).status_code == 403
            busy = client.delete("/districts/91216", headers=admin)
            assert busy.status_code == 409 and "parcels lie in it" in busy.json()["detail"]
        assert "91216" in [d["code"] for d in client.get("/districts", headers=viewer).json()["districts"]]
        gone = client.delete("/districts/A1", headers=admin)
        assert gone.status_code == 204 and gone.content == b""
        assert "A1" not in [d["code"] for d in client.get("/districts", headers=viewer).json()["districts"]]
    small = fr.settings.model_copy(update={"max_upload_bytes": 1000})
    with TestClient(create_app(small)) as client:
        r = client.post("/districts/imports", files={"file": ("big.geojson", b" " * 5000, "application/geo+json")},
                        headers=admin)
        assert r.status_code == 413


def cli(monkeypatch, s, *args):
    """``gis ARGS`` in this process (typer's CliRunner), against the database of settings ``s``."""
    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("GIS_DATABASE_NAME", s.database_name)
    monkeypatch.setenv("GIS_SRID", str(s.srid))
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def test_command_line_imports_lists_renames_and_deletes(fr, communes, tmp_path, monkeypatch):
    xmin, ymin, _, _ = communes["91216"].district.bounds
    c1 = square(xmin, ymin - 11_000, 900)
    path = write_layer(tmp_path / "乡镇.gpkg", [{"乡镇代码": "C1", "乡镇名称": "命令行镇", "geometry": c1}])
    result = cli(monkeypatch, fr.settings, "districts", "import", str(path), "--map", "乡镇代码=code",
                 "--map", "乡镇名称=name", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "试运行" in result.output and "C1" in result.output
    report_file = tmp_path / "report.json"
    result = cli(monkeypatch, fr.settings, "districts", "import", str(path), "--map", "乡镇代码=code",
                 "--map", "乡镇名称=name", "--report", str(report_file))
    assert result.exit_code == 0, result.output
    assert "已导入" in result.output and "新建" in result.output
    assert json.loads(report_file.read_text())["created"] == ["C1"]

    result = cli(monkeypatch, fr.settings, "districts", "list", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.stdout.strip().splitlines()]
    assert rows[0] == ["编码", "名称", "地块数", "面积(m²)", "面积(亩)"]
    c1_row = next(r for r in rows if r[0] == "C1")
    assert c1_row[1:3] == ["命令行镇", "0"] and float(c1_row[3]) == pytest.approx(c1.area, rel=1e-6)
    assert "片区" in cli(monkeypatch, fr.settings, "districts", "list").output

    result = cli(monkeypatch, fr.settings, "districts", "rename", "C1", "命令行街道")
    assert result.exit_code == 0 and "命令行街道" in result.output
    result = cli(monkeypatch, fr.settings, "districts", "delete", "91216")
    assert result.exit_code == 1 and isinstance(result.exception, Conflict)
    result = cli(monkeypatch, fr.settings, "districts", "delete", "C1")
    assert result.exit_code == 0, result.output
    with connect(fr.settings) as conn:
        assert "C1" not in [d["code"] for d in list_districts(conn)]

    # As a user runs it: a refusal is exit code 1 and the reason, no traceback (cli.main).
    line = write_layer(tmp_path / "line.geojson", [{"code": "L", "name": "线", "geometry": shapely.LineString(
        [(660_000, 6_800_000), (661_000, 6_801_000)])}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIS_")} | {
        "GIS_DATA_DIR": str(fr.settings.data_dir), "GIS_DATABASE_NAME": "districts_fr", "GIS_SRID": "2154",
        "GIS_PG_FSYNC": "false"}
    proc = subprocess.run([sys.executable, "-m", "cli", "districts", "import", str(line)], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "holds no polygons" in proc.stderr and "Traceback" not in proc.stderr
