"""Imports: files made here in every format, real French cadastre data, every kind of bad row.

Parcels are compared outside PostGIS (shapely on WKB, pyproj for transforms); a failing import is
checked to leave the database as it was by row counts and a checksum over every parcel and event.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from gis.demo.load import copy_table
from gis.io.export import PARCEL_COLUMNS, parcel_query, query_rows, write_export
from gis.io.profiles import Profile, save_profile
from gis.platform.config import SQM_PER_MU
from gis.platform.db import get_engine
from gis.records.importer import import_file
from tests.conftest import SHARED_DATA, bearer, make_role_tokens
from tests.worlds import empty_database

COMPARED = ("kind", "district_code", "owner_name", "owner_id_number", "owner_phone", "households", "floor_area_m2",
            "land_area_mu", "stage", "stage_since", "holdout", "legacy", "holdout_note", "surveyed_on", "appraised_on",
            "signed_on", "paid_on", "demolished_on", "cleared_on")
FRENCH = SHARED_DATA / "fr-cadastre-rail" / "cadastre-91216-parcelles.json"


@pytest.fixture(scope="module")
def target_db(pg_dir, io_city):
    """Database 'imports_target': the demo districts and projects, no parcels; imports land here."""
    s = empty_database(pg_dir, "imports_target")
    engine = get_engine(s)
    with engine.begin() as conn:
        copy_table(conn, "districts", io_city.city.districts.rename_geometry("geom"), srid=s.srid)
        copy_table(conn, "projects", io_city.city.projects, srid=s.srid)
    return s


@pytest.fixture
def target(target_db):
    """The target database, emptied of parcels before each test."""
    with get_engine(target_db).begin() as conn:
        conn.execute(text("TRUNCATE project_parcel_overlaps, documents, payments, parcel_events, parcels CASCADE"))
    return target_db


def run_import(s, path, **kwargs):
    with get_engine(s).begin() as conn:
        return import_file(conn, path, settings=s, **kwargs)


def export_city(io_city, fmt, path, **kwargs):
    statement, params = parcel_query()
    return write_export(query_rows(io_city.engine, statement, params), PARCEL_COLUMNS, fmt, path,
                        srid=io_city.settings.srid, reveal_personal=True, **kwargs)


def parcels_of(s) -> pd.DataFrame:
    statement, params = parcel_query()
    with get_engine(s).connect() as conn:
        frame = pd.DataFrame([dict(r) for r in conn.execute(statement, params).mappings()])
    frame["geom"] = shapely.from_wkb([bytes(g) for g in frame["geom"]])
    return frame.set_index("code")


def snapshot(s) -> tuple:
    """Row counts and a checksum over every parcel and event: equal snapshots, unchanged database."""
    with get_engine(s).connect() as conn:
        return conn.execute(text("""
            SELECT (SELECT count(*) FROM parcels), (SELECT count(*) FROM parcel_events),
                   (SELECT count(*) FROM project_parcel_overlaps),
                   (SELECT md5(coalesce(string_agg(md5(p::text), '' ORDER BY id), '')) FROM parcels p),
                   (SELECT md5(coalesce(string_agg(md5(e::text), '' ORDER BY parcel_id, id), '')) FROM parcel_events e)
        """)).one()


def assert_same_parcels(expected: pd.DataFrame, actual: pd.DataFrame, columns=COMPARED) -> None:
    assert sorted(actual.index) == sorted(expected.index)
    actual = actual.loc[expected.index]
    distance = shapely.hausdorff_distance(expected["geom"].to_numpy(), actual["geom"].to_numpy())
    assert distance.max() < 0.001, f"geometry moved by up to {distance.max()} m"
    for column in columns:
        a, b = expected[column], actual[column]
        if column in ("floor_area_m2", "land_area_mu"):
            both = a.notna() & b.notna()
            assert (a.isna() == b.isna()).all(), column
            np.testing.assert_allclose(a[both].astype(float), b[both].astype(float), rtol=1e-12, err_msg=column)
        else:
            assert (a.isna() == b.isna()).all() and (a[a.notna()] == b[a.notna()]).all(), column


def issues_by_row(report) -> dict[int, list]:
    out: dict[int, list] = {}
    for issue in report.issues:
        out.setdefault(issue.row, []).append(issue)
    return out


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "fgb", "kml"])
def test_round_trip_export_then_import_gives_the_same_parcels(io_city, target, tmp_path, fmt):
    path = tmp_path / f"city.{fmt}"
    if fmt == "shp":
        path = tmp_path / "city.shp.zip"
    export_city(io_city, fmt, path)
    report = run_import(target, path, actor="tester")
    assert report.ok and report.committed, report.issues[:5]
    assert report.created == len(io_city.city.parcels) and report.updated == 0
    assert_same_parcels(parcels_of(io_city.settings), parcels_of(target))
    with get_engine(target).connect() as conn:
        events = conn.execute(text("SELECT kind, actor, count(*) FROM parcel_events GROUP BY 1, 2")).all()
        overlaps = conn.execute(text("SELECT count(*) FROM project_parcel_overlaps")).scalar_one()
    assert events == [("created", "tester", len(io_city.city.parcels))]
    with get_engine(io_city.settings).connect() as conn:
        assert overlaps == conn.execute(text("SELECT count(*) FROM project_parcel_overlaps")).scalar_one()
    again = run_import(target, path)  # the same file again changes nothing
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(io_city.city.parcels))


def test_a_file_of_known_and_new_parcels_adds_the_new_ones(io_city, target, tmp_path):
    """Half the city first, then all of it: the second import creates the other half, leaves the first."""
    whole = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", whole)
    frame = pyogrio.read_dataframe(whole)
    half = tmp_path / "half.gpkg"
    pyogrio.write_dataframe(frame.iloc[: len(frame) // 2], half)
    assert run_import(target, half).created == len(frame) // 2
    report = run_import(target, whole, actor="tester")
    assert report.committed
    assert (report.created, report.updated, report.unchanged) == (len(frame) - len(frame) // 2, 0, len(frame) // 2)
    assert_same_parcels(parcels_of(io_city.settings), parcels_of(target))
    with get_engine(target).connect() as conn:
        created = conn.execute(text("SELECT count(*) FROM parcel_events WHERE kind = 'created' AND actor = 'tester'"))
        assert created.scalar_one() == report.created


def test_xlsx_and_csv_exports_import_back_as_attribute_updates(io_city, target, tmp_path):
    """Spreadsheets carry no geometry: importing one updates attributes of parcels that exist."""
    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    assert run_import(target, gpkg).ok
    for fmt in ("xlsx", "csv"):
        path = tmp_path / f"city.{fmt}"
        export_city(io_city, fmt, path)
        report = run_import(target, path)
        assert report.ok and report.skipped_rows == 1  # the totals row
        assert (report.created, report.updated, report.unchanged) == (0, 0, len(io_city.city.parcels))
        assert report.mapping["片区代码"] == "district" and "片区" in report.unused_columns


# ---------------------------------------------------------------------------------------------
# Files as surveyors send them


def sample(io_city, n=12) -> gpd.GeoDataFrame:
    return io_city.city.parcels.iloc[:n].copy()


def test_gbk_shapefile_without_cpg_is_detected(io_city, target, tmp_path):
    src = sample(io_city)
    names = {1: "西津", 2: "南山", 3: "河沥溪", 4: "汪溪"}
    frame = gpd.GeoDataFrame({
        "宗地代码": src.code, "权利人": src.owner_name, "类型": src.kind.map({"house": "房屋", "land": "土地"}),
        "乡镇": src.district_id.map(names), "建筑面积": src.floor_area_m2.astype(float),
        "进度": src.stage.map({"surveyed": "调查登记", "appraised": "已评估", "signed": "签约", "paid": "已付款",
                               "demolished": "已拆除", "cleared": "交地"}),
    }, geometry=src.geometry.to_numpy(), crs=io_city.settings.srid)
    folder = tmp_path / "gbk"
    folder.mkdir()
    pyogrio.write_dataframe(frame, folder / "宗地.shp", encoding="GBK")
    (folder / "宗地.cpg").unlink()
    dbf = folder / "宗地.dbf"
    raw = bytearray(dbf.read_bytes())
    raw[29] = 0  # no language driver byte either, as many tools write
    dbf.write_bytes(bytes(raw))
    assert "张" not in raw.decode("utf-8", errors="replace")  # really not UTF-8
    archive = tmp_path / "宗地.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    report = run_import(target, archive)
    assert report.ok, report.issues
    assert report.encoding == "GB18030" and any("GBK" in n for n in report.notes)
    assert report.mapping == {"宗地代码": "code", "权利人": "owner_name", "类型": "kind", "乡镇": "district",
                              "建筑面积": "floor_area_m2", "进度": "stage"}
    got = parcels_of(target)
    expected = src.set_index("code").rename(columns={"geometry": "geom"})
    expected["district_code"] = expected.district_id.map({1: "xijin", 2: "nanshan", 3: "helixi", 4: "wangxi"})
    assert_same_parcels(expected, got, ("owner_name", "kind", "district_code", "floor_area_m2", "stage"))


@pytest.mark.parametrize("epsg", [4528, 4549])
def test_gauss_kruger_geopackage_with_and_without_zone_prefix(io_city, target, tmp_path, epsg):
    src = sample(io_city)
    to_zone = Transformer.from_crs(io_city.settings.srid, epsg, always_xy=True)
    geoms = shapely.transform(src.geometry.to_numpy(), lambda xy: np.column_stack(to_zone.transform(*xy.T)))
    frame = gpd.GeoDataFrame({"地块编号": src.code, "类型": src.kind, "户主": src.owner_name}, geometry=geoms, crs=epsg)
    path = tmp_path / f"zone{epsg}.gpkg"
    pyogrio.write_dataframe(frame, path, layer="宗地")
    assert (shapely.get_coordinates(geoms)[:, 0] > 1e6).all() == (epsg == 4528)
    report = run_import(target, path)
    assert report.ok and report.crs == epsg and report.created == len(src), report.issues
    got = parcels_of(target)
    expected = src.set_index("code").rename(columns={"geometry": "geom"})
    assert_same_parcels(expected, got, ("owner_name", "kind"))
    assert set(got.district_code) <= {"xijin", "nanshan", "helixi", "wangxi"}  # assigned from the geometry

    wrong = 4549 if epsg == 4528 else 4528  # the prefix and the declared CRS disagree: named, nothing written
    before = snapshot(target)
    report = run_import(target, path, crs=wrong, dry_run=False)
    assert not report.ok and report.rejected == len(src)
    hint = "carries a zone prefix" if epsg == 4528 else "has no zone prefix"
    assert all(hint in i.message and f"EPSG:{epsg}" in i.message for i in report.issues if i.kind == "outside_city")
    assert snapshot(target) == before


def test_xlsx_boundary_point_table_with_chinese_headers_and_lon_lat(io_city, target, tmp_path):
    src = sample(io_city, 5)
    to_wgs = Transformer.from_crs(io_city.settings.srid, 4326, always_xy=True)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["宗地代码", "权利人", "类型", "片区", "建筑面积(㎡)", "点号", "经度", "纬度"])
    for p in src.itertuples():
        ring = np.asarray(p.geometry.geoms[0].exterior.coords)[:-1]
        lon, lat = to_wgs.transform(ring[:, 0], ring[:, 1])
        for k, (x, y) in enumerate(zip(lon, lat, strict=True)):
            first = k == 0
            ws.append([p.code, p.owner_name if first else None, "房屋" if p.kind == "house" else "土地",
                       {1: "西津", 2: "南山", 3: "河沥溪", 4: "汪溪"}[p.district_id] if first else None,
                       p.floor_area_m2 if first and pd.notna(p.floor_area_m2) else None, k + 1, float(x), float(y)])
    ws.append(["合计", None, None, None, None, None, None, None])
    path = tmp_path / "界址点.xlsx"
    book.save(path)
    report = run_import(target, path)
    assert report.ok, report.issues
    assert report.crs == 4326 and report.created == 5 and report.skipped_rows == 1
    assert report.mapping["经度"] == "lon" and report.mapping["点号"] == "point_no"
    expected = src.set_index("code").rename(columns={"geometry": "geom"})
    expected["geom"] = [shapely.MultiPolygon([shapely.Polygon(g.geoms[0].exterior)]) for g in expected.geom]
    got = parcels_of(target)
    assert_same_parcels(expected, got, ("owner_name", "kind", "floor_area_m2"))


def test_csv_with_wkt_in_gbk_and_a_declared_crs(io_city, target, tmp_path):
    src = sample(io_city, 6)
    lines = ["编号,地类,片区,面积(亩),WKT"] + [
        f'{p.code},耕地,{ {1: "西津", 2: "南山", 3: "河沥溪", 4: "汪溪"}[p.district_id]},1.5,"{p.geometry.wkt}"'
        for p in src.itertuples()
    ]
    path = tmp_path / "parcels.csv"
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    report = run_import(target, path, crs=io_city.settings.srid)
    assert report.ok and report.encoding == "GB18030" and report.created == 6, report.issues
    got = parcels_of(target)
    assert (got.kind == "land").all() and (got.land_area_mu == 1.5).all()


# ---------------------------------------------------------------------------------------------
# Bad rows


def feature(code, geometry, **props):
    return {"type": "Feature", "properties": {"code": code, "kind": "house", "district": "西津", **props},
            "geometry": geometry}


def square(lon, lat, d=0.0002):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d],
                                                [lon, lat]]]}


def test_each_kind_of_bad_row_is_named_and_nothing_is_written(io_city, target, tmp_path, monkeypatch):
    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    assert run_import(target, gpkg).ok
    before = snapshot(target)
    centre = io_city.city.districts.to_crs(4326).iloc[0].geometry.representative_point()
    x, y = centre.x, centre.y
    bowtie = {"type": "Polygon", "coordinates": [[[x, y], [x + 3e-4, y + 3e-4], [x + 3e-4, y], [x, y + 3e-4],
                                                  [x, y]]]}
    flat = {"type": "Polygon", "coordinates": [[[x, y], [x + 1e-4, y], [x + 2e-4, y], [x, y]]]}
    features = [
        feature("NEW-1", square(x, y)),  # row 1: fine
        feature("NEW-2", bowtie),  # row 2: repaired (a warning)
        feature("NEW-3", flat),  # row 3: no area: rejected
        feature("NEW-4", square(x + 0.001, y)),  # rows 4, 5: one code twice
        feature("NEW-4", square(x + 0.002, y)),
        feature("NEW-6", square(x + 0.003, y), district="东城"),  # row 6: unknown district
        feature("NEW-7", square(y, x)),  # row 7: latitude and longitude swapped
        feature(None, square(x + 0.004, y)),  # row 8: no code
        feature("NEW-9", square(x + 0.005, y), kind=None),  # row 9: a new parcel without its kind
        feature("NEW-10", square(x + 0.006, y), households="三户"),  # row 10: not a number
        feature("NEW-11", {"type": "LineString", "coordinates": [[x, y], [x + 1e-3, y]]}),  # row 11: not an area
        feature("NEW-12", square(x + 0.007, y), stage="拆迁中"),  # row 12: no such stage
    ]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    report = run_import(target, path)
    assert not report.ok and not report.committed
    rows = issues_by_row(report)
    expected = {
        3: ("invalid_geometry", "NEW-3", "no area"),
        4: ("duplicate_code", "NEW-4", "appears 2 times"),
        5: ("duplicate_code", "NEW-4", "also row 4"),
        6: ("unknown_district", "NEW-6", "东城"),
        7: ("outside_city", "NEW-7", "latitude and longitude swapped"),
        8: ("missing", None, "no parcel code"),
        9: ("missing", "NEW-9", "kind"),
        10: ("bad_value", "NEW-10", "households"),
        11: ("geometry_type", "NEW-11", "LineString is not a parcel"),
        12: ("bad_value", "NEW-12", "stage"),
    }
    for row, (kind, code, words) in expected.items():
        errors = [i for i in rows.get(row, []) if i.severity == "error"]
        assert any(i.kind == kind and i.code == code and words in i.message for i in errors), (row, rows.get(row))
    assert report.rejected == len(expected)
    assert 1 not in rows
    assert [i.kind for i in rows[2]] == ["repaired_geometry"] and "MakeValid" in rows[2][0].message
    assert snapshot(target) == before

    # The same file through the CLI: exit 1 and the report names the rows.
    result = run_cli(monkeypatch, target, "import", str(path), "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 1, result.output
    assert "10 rows rejected: nothing was imported" in " ".join(result.output.split())
    written = json.loads((tmp_path / "r.json").read_text())
    assert {i["row"] for i in written["issues"] if i["severity"] == "error"} == set(expected)
    assert snapshot(target) == before


def test_upsert_writes_history_and_applies_the_workflow(io_city, target, tmp_path):
    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    assert run_import(target, gpkg).ok
    current = parcels_of(target)
    appraised = current[current.stage == "appraised"].index[:2]
    surveyed = current[current.stage == "surveyed"].index[0]
    taken = {*appraised, surveyed}
    house = next(c for c in current[current.kind == "house"].index if c not in taken)
    moved = next(c for c in current.index if c not in taken | {house})
    frame = gpd.GeoDataFrame({
        "code": [appraised[0], appraised[1], surveyed, house, moved],
        "stage": ["signed", "cleared", None, None, None],
        "floor_area_m2": [None, None, None, 999.5, None],
        "holdout": [None, None, True, None, None],
    }, geometry=[None, None, None, None, shapely.affinity.translate(current.loc[moved, "geom"], 0.5, 0)],
        crs=target.srid)
    path = tmp_path / "changes.gpkg"
    pyogrio.write_dataframe(frame, path)
    before = snapshot(target)
    report = run_import(target, path, actor="surveyor-7")
    assert not report.ok  # appraised → cleared skips four stages: the workflow refuses, nothing is written
    assert [(i.row, i.kind) for i in report.issues if i.severity == "error"] == [(2, "stage_move")]
    assert "not an allowed move" in report.issues[0].message
    assert snapshot(target) == before

    frame = frame.drop(index=1)
    pyogrio.write_dataframe(frame, path)
    dry = run_import(target, path, actor="surveyor-7", dry_run=True)
    assert dry.ok and not dry.committed and snapshot(target) == before
    assert dry.changes == {"attributes": 1, "flags": 1, "geometry": 1, "stage": 1} and dry.updated == 4
    report = run_import(target, path, actor="surveyor-7")
    assert report.committed and report.changes == dry.changes
    after = parcels_of(target)
    assert after.loc[appraised[0], "stage"] == "signed" and after.loc[appraised[0], "signed_on"] is not None
    assert after.loc[house, "floor_area_m2"] == 999.5 and bool(after.loc[surveyed, "holdout"])
    assert after.loc[moved, "version"] == current.loc[moved, "version"] + 1
    with get_engine(target).connect() as conn:
        events = {(r.code, r.kind): r for r in conn.execute(text(
            "SELECT p.code, e.kind, e.actor, e.stage_from, e.stage_to, e.changes FROM parcel_events e "
            "JOIN parcels p ON p.id = e.parcel_id WHERE e.kind <> 'created'"))}
    assert set(events) == {(appraised[0], "stage"), (house, "attributes"), (surveyed, "flags"), (moved, "geometry")}
    assert all(e.actor == "surveyor-7" for e in events.values())
    stage = events[(appraised[0], "stage")]
    assert (stage.stage_from, stage.stage_to) == ("appraised", "signed")
    assert events[(house, "attributes")].changes["floor_area_m2"]["to"] == 999.5
    assert events[(surveyed, "flags")].changes == {"holdout": {"from": False, "to": True}}
    area = events[(moved, "geometry")].changes["area_m2"]
    assert area["from"] == pytest.approx(current.loc[moved, "geom"].area, abs=0.01)


# ---------------------------------------------------------------------------------------------
# Real data: the French cadastre into a Lambert-93 service


def test_french_cadastre_imports_with_a_saved_profile(pg_dir, tmp_path):
    s = empty_database(pg_dir, "imports_fr", srid=2154)
    source = gpd.read_file(FRENCH)
    to_l93 = Transformer.from_crs(4326, 2154, always_xy=True)
    projected = shapely.transform(source.geometry.to_numpy(), lambda xy: np.column_stack(to_l93.transform(*xy.T)))
    commune = shapely.union_all(projected).buffer(100)
    with get_engine(s).begin() as conn:
        conn.execute(text("INSERT INTO districts (id, code, name, geom) VALUES "
                          "(1, '91216', 'Épinay-sur-Orge', ST_Multi(ST_GeomFromText(:wkt, 2154)))"),
                     {"wkt": commune.wkt})
        save_profile(conn, Profile(name="etalab-cadastre", description="Etalab cadastre parcels (parcelles)",
                                   mapping={"id": "code", "contenance": "land_area_m2", "commune": "-"},
                                   defaults={"kind": "land"}))
    report = run_import(s, FRENCH, profile="etalab-cadastre")
    assert report.ok, report.issues[:5]
    assert report.crs == 4326 and report.working_srid == 2154
    assert report.created == len(source) == 4241
    got = parcels_of(s)
    assert sorted(got.index) == sorted(source["id"])
    src = source.set_index("id")
    src["l93_m2"] = shapely.area(projected)
    got = got.join(src[["contenance", "l93_m2"]])
    has_area = got.contenance.notna()
    assert (~has_area).sum() == 1 and got.land_area_mu[~has_area].isna().all()
    np.testing.assert_allclose(got.land_area_mu[has_area] * SQM_PER_MU, got.contenance[has_area], rtol=1e-12)
    np.testing.assert_allclose(got.area_m2, got.l93_m2, rtol=1e-3)
    assert abs(got.area_m2.sum() / got.l93_m2.sum() - 1) < 1e-6
    assert (got.district_code == "91216").all() and (got.kind == "land").all()


# ---------------------------------------------------------------------------------------------
# The API


def test_api_upload_profiles_roles_and_size_limit(io_city, target, tmp_path):
    from api.app import create_app

    tokens = make_role_tokens(get_engine(target), ["xijin"], prefix="imp")
    centre = io_city.city.districts.to_crs(4326)
    inside = {row.code: row.geometry.representative_point() for row in centre.itertuples()}
    body = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"宗地号": "API-1", "QLR": "王小明"}, "geometry": square(inside["xijin"].x,
                                                                                           inside["xijin"].y)},
        {"type": "Feature", "properties": {"宗地号": "API-2", "QLR": "李四"}, "geometry": square(inside["wangxi"].x,
                                                                                       inside["wangxi"].y)},
    ]}
    upload = json.dumps(body, ensure_ascii=False).encode()
    with TestClient(create_app(target)) as client:
        admin, editor, viewer = (bearer(tokens[r]) for r in ("admin", "district_editor", "viewer"))
        profile = {"name": "county-survey", "mapping": {"宗地号": "code", "QLR": "owner_name"},
                   "defaults": {"kind": "house"}}
        assert client.post("/imports/profiles", json=profile, headers=admin).status_code == 201
        assert client.post("/imports/profiles", json={**profile, "mapping": {"x": "nonsense"}},
                           headers=admin).status_code == 422
        listed = client.get("/imports/profiles", headers=editor).json()
        assert [p["name"] for p in listed] == ["county-survey"]

        files = {"file": ("县调查.geojson", upload, "application/geo+json")}
        r = client.post("/imports", files=files, data={"profile": "county-survey", "dry_run": "true"}, headers=admin)
        assert r.status_code == 200 and r.json()["created"] == 2 and not r.json()["committed"]
        r = client.post("/imports", files=files, data={"profile": "county-survey"}, headers=editor)
        assert r.status_code == 422  # the editor of 西津 may not create a parcel in 汪溪
        assert [(i["row"], i["kind"]) for i in r.json()["report"]["issues"]] == [(2, "forbidden")]
        refused = client.post("/imports", files=files, data={"profile": "county-survey"}, headers=viewer)
        assert refused.status_code == 403
        r = client.post("/imports", files=files, data={"profile": "county-survey"}, headers=admin)
        assert r.status_code == 200 and r.json()["committed"] and r.json()["created"] == 2
        assert client.post("/imports", files={"file": ("x.dxf", b"0", "text/plain")}, headers=admin).status_code == 422
    with get_engine(target).connect() as conn:
        assert conn.execute(text("SELECT actor FROM parcel_events WHERE kind = 'created'")).scalars().all() == [
            "imp-admin", "imp-admin"]
    small = target.model_copy(update={"max_upload_bytes": 1000})
    with TestClient(create_app(small)) as client:
        r = client.post("/imports", files={"file": ("big.geojson", b" " * 5000, "application/geo+json")},
                        headers=bearer(tokens["admin"]))
        assert r.status_code == 413


def test_cli_saves_the_mapping_used_as_a_profile_and_exports(io_city, target, tmp_path, monkeypatch):
    path = tmp_path / "plots.csv"
    path.write_text("宗地号,QLR,类型,X,Y\n", encoding="utf-8")
    result = run_cli(monkeypatch, target, "import", str(path), "--map", "宗地号=code", "--map", "QLR=owner_name",
                     "--dry-run", "--save-profile", "plots")
    assert result.exit_code == 0, result.output
    with get_engine(target).connect() as conn:
        saved = conn.execute(text("SELECT mapping FROM import_profiles WHERE name = 'plots'")).scalar_one()
    assert saved == {"宗地号": "code", "QLR": "owner_name", "类型": "kind", "X": "lon", "Y": "lat"}

    out = tmp_path / "xijin.xlsx"
    result = run_cli(monkeypatch, io_city.settings, "export", "parcels", "--district", "xijin", "--stage", "signed",
                     "--format", "xlsx", "-o", str(out))
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(out, data_only=True).active
    expected = io_city.city.parcels[(io_city.city.parcels.district_id == 1) & (io_city.city.parcels.stage == "signed")]
    assert sheet.max_row == len(expected) + 2 and sheet.cell(sheet.max_row, 1).value == f"合计（{len(expected)} 宗）"
    result = run_cli(monkeypatch, io_city.settings, "export", "parcels", "--format", "geojson", "-o", "-")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["features"]) == len(io_city.city.parcels)


def run_cli(monkeypatch, s, *args):
    """``gis ARGS`` in this process, against the database of settings ``s``."""
    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("GIS_DATABASE_NAME", s.database_name)
    monkeypatch.setenv("GIS_SRID", str(s.srid))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------
# Bulk loads: an import that at least doubles the parcels sets their indexes and keys aside


CATALOG_SQL = """
SELECT 'index', c.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
       i.indisunique, i.indisprimary, i.indisvalid AND i.indisready
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname IN ('parcels', 'parcel_events', 'districts', 'payments', 'documents', 'project_parcel_overlaps')
UNION ALL
SELECT 'constraint', c.relname, k.conname, pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred,
       k.convalidated
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relname IN ('parcels', 'parcel_events', 'districts', 'payments', 'documents', 'project_parcel_overlaps')
ORDER BY 1, 2, 3
"""


def catalog(s) -> list[tuple]:
    """Every index and constraint of the parcels, their history and the tables around them, as PostgreSQL
    describes them."""
    with get_engine(s).connect() as conn:
        return [tuple(r) for r in conn.execute(text(CATALOG_SQL))]


@pytest.fixture
def bulk_spy(monkeypatch):
    """Imports of any size take the bulk path; records the indexes left while the rows go in."""
    import gis.records.importer as importer

    seen: list[list[str]] = []
    real = importer.deferred_indexes

    @contextmanager
    def spy(conn, tables):
        with real(conn, tables):
            seen.append(sorted(conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename IN ('parcels', 'parcel_events')")).scalars()))
            yield

    monkeypatch.setattr(importer, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(importer, "deferred_indexes", spy)
    return seen


def test_bulk_import_leaves_the_schema_as_the_migrations_made_it(io_city, target, tmp_path, bulk_spy):
    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    schema = catalog(target)
    assert {r[2] for r in schema} >= {"parcels_geom_idx", "parcels_code_key", "parcels_district_id_fkey",
                                      "parcel_events_parcel_id_fkey", "parcel_events_stage_idx"}

    report = run_import(target, gpkg, actor="bulk")
    assert report.ok and report.committed and report.created == len(io_city.city.parcels)
    assert bulk_spy == [["parcel_events_pkey", "parcels_pkey"]]  # only the primary keys were kept up
    assert catalog(target) == schema
    assert_same_parcels(parcels_of(io_city.settings), parcels_of(target))
    with get_engine(target).connect() as conn:
        events = conn.execute(text("SELECT kind, actor, count(*) FROM parcel_events GROUP BY 1, 2")).all()
        overlaps = conn.execute(text("SELECT count(*) FROM project_parcel_overlaps")).scalar_one()
        # The rebuilt indexes answer: a spatial search by the GiST, a code lookup by the unique index.
        conn.execute(text("SET enable_seqscan = off"))
        near = conn.execute(text("SELECT count(*) FROM parcels WHERE geom && ST_Expand((SELECT geom FROM parcels "
                                 "ORDER BY code LIMIT 1), 1)")).scalar_one()
        plan = " ".join(conn.execute(text("EXPLAIN SELECT id FROM parcels WHERE code = 'x'")).scalars())
        # The tile cache's log was written with the indexes set aside: every new parcel's tiles expire.
        unlogged = conn.execute(text("SELECT count(*) FROM parcels p WHERE NOT EXISTS (SELECT FROM tile_edits e "
                                     "WHERE e.source = 'parcels' AND ST_Covers(e.extent, p.geom))")).scalar_one()
    assert unlogged == 0
    assert events == [("created", "bulk", len(io_city.city.parcels))]
    with get_engine(io_city.settings).connect() as conn:
        assert overlaps == conn.execute(text("SELECT count(*) FROM project_parcel_overlaps")).scalar_one()
    assert near >= 1 and "parcels_code_key" in plan

    # Doubling no more: the next import keeps the indexes up row by row.
    again = run_import(target, gpkg)
    assert (again.created, again.unchanged) == (0, len(io_city.city.parcels)) and len(bulk_spy) == 1


def test_failing_bulk_import_changes_neither_schema_nor_data(io_city, target, tmp_path, bulk_spy, monkeypatch):
    """Half the city first, then the whole file (as many new parcels as there are): a bulk load. A key the
    rebuilt foreign key finds dangling, or any later failure, and everything is as before."""
    import psycopg

    import gis.records.importer as importer

    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    half = tmp_path / "half.gpkg"
    frame = gpd.read_file(gpkg)
    frame.iloc[: len(frame) // 2].to_file(half, driver="GPKG")
    assert run_import(target, half).created == len(frame) // 2
    bulk_spy.clear()
    schema, before = catalog(target), snapshot(target)

    real_write_rows = importer._write_rows

    def write_rows_and_a_stray_event(conn, *args):
        real_write_rows(conn, *args)
        conn.execute(text("INSERT INTO parcel_events (parcel_id, actor, kind) VALUES (-1, 'stray', 'created')"))

    monkeypatch.setattr(importer, "_write_rows", write_rows_and_a_stray_event)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        run_import(target, gpkg)
    assert len(bulk_spy) == 1
    assert catalog(target) == schema and snapshot(target) == before

    monkeypatch.setattr(importer, "_write_rows", real_write_rows)
    monkeypatch.setattr(importer, "refresh_parcels", lambda conn, ids: 1 / 0)  # after the indexes are rebuilt
    with pytest.raises(ZeroDivisionError):
        run_import(target, gpkg)
    assert len(bulk_spy) == 2
    assert catalog(target) == schema and snapshot(target) == before


def test_the_service_login_never_takes_the_bulk_path(io_city, target, tmp_path, bulk_spy):
    """The API's uploads run as the service's login, which owns no table: row by row, whatever the size."""
    from gis.platform.bulk import may_defer_indexes
    from gis.platform.db import get_app_engine

    gpkg = tmp_path / "city.gpkg"
    export_city(io_city, "gpkg", gpkg)
    with get_engine(target).connect() as conn:
        assert may_defer_indexes(conn, ("parcels", "parcel_events"))
    schema = catalog(target)
    with get_app_engine(target).begin() as conn:
        assert not may_defer_indexes(conn, ("parcels", "parcel_events"))
        report = import_file(conn, gpkg, settings=target)
    assert report.committed and report.created == len(io_city.city.parcels)
    assert bulk_spy == [] and catalog(target) == schema


def test_file_wkb_is_reused_only_when_it_is_a_plain_2d_multipolygon():
    """The staging COPY reuses the file's own WKB; anything else (Z, M, an SRID, big-endian, a polygon)
    is written anew by GEOS. Either way the hex is what shapely writes for the checked geometry."""
    import pyarrow as pa

    from gis.records.importer import _plain_multipolygons, _wkb_hex

    multi = shapely.MultiPolygon([shapely.box(0, 0, 10, 10)])
    cases = [
        shapely.to_wkb(multi),  # the one to reuse
        shapely.to_wkb(multi, byte_order=0),  # big-endian
        shapely.to_wkb(shapely.force_3d(multi)),  # Z
        shapely.to_wkb(shapely.set_srid(multi, 4549), include_srid=True),  # EWKB with an SRID
        shapely.to_wkb(shapely.box(0, 0, 10, 10)),  # a polygon
        None,
        b"\x01\x06",  # too short to say
    ]
    file_wkb = pa.array(cases, type=pa.binary())
    assert _plain_multipolygons(file_wkb).tolist() == [True, False, False, False, False, False, False]
    assert _plain_multipolygons(file_wkb.slice(1)).tolist() == [False, False, False, False, False, False]

    checked = np.array([multi, multi, multi, multi, multi, None, shapely.MultiPolygon([shapely.box(1, 1, 2, 2)])],
                       dtype=object)
    as_in_file = _plain_multipolygons(file_wkb)
    hexed = _wkb_hex(checked, file_wkb, as_in_file).to_pylist()
    expected = [None if g is None else shapely.to_wkb(g).hex() for g in checked]
    assert hexed == expected


def test_the_command_line_starts_without_imagery_maps_or_migrations():
    """`gis import` (any command) loads rasterio, rio-tiler, alembic, matplotlib and folium only in the
    commands that use them."""
    import subprocess
    import sys

    heavy = ("rasterio", "rio_tiler", "alembic", "matplotlib", "folium")
    code = f"import sys, cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_district_grid_places_parcels_as_their_point_on_surface_does(io_city, monkeypatch):
    """Parcels, and copies shifted across the district borders and out of the city: where the grid names
    a district, that district covers the parcel and no other meets it (checked with shapely); placing
    them with the grid or without gives the same districts."""
    import gis.records.importer as importer

    with get_engine(io_city.settings).connect() as conn:
        city = importer._load_city(conn, io_city.settings)
    parcels = io_city.city.parcels.geometry.to_numpy()
    shifts = np.random.default_rng(5).uniform(-5000, 5000, size=(6 * len(parcels), 2))
    geoms = np.array([*parcels, *(shapely.affinity.translate(g, dx, dy)
                                  for g, (dx, dy) in zip(np.tile(parcels, 6), shifts, strict=True))], dtype=object)

    found = city.grid.districts(geoms)
    districts = city.tree.geometries
    placed = np.flatnonzero(found >= 0)
    assert len(placed) > len(geoms) / 3 and (found < 0).sum() > 100  # both ways are taken
    for k in placed:
        assert districts[found[k]].covers(geoms[k])
        assert sum(bool(d.intersects(geoms[k])) for d in districts) == 1

    def place(grid_min_rows):
        monkeypatch.setattr(importer, "GRID_MIN_ROWS", grid_min_rows)
        report = importer.ImportReport(file="x", format="gpkg", dry_run=True, working_srid=city.srid)
        none = pd.Series(pd.array([None] * len(geoms), dtype="Int64"))
        ids, spatial = importer._place_in_districts(geoms.copy(), none, np.arange(len(geoms)), [None] * len(geoms),
                                                    city, importer._Issues(report))
        return ids.to_numpy(dtype=np.int64, na_value=-1), spatial

    with_grid, without = place(1), place(len(geoms) + 1)
    assert (with_grid[0] == without[0]).all() and (with_grid[1] == without[1]).all()


def test_history_names_the_file_by_fingerprint_never_by_its_name(io_city, target, tmp_path):
    """Planners name files after households; the history every role reads carries the file's SHA-256 instead."""
    person_file = tmp_path / "黄辉霞_341881200012042564.gpkg"
    export_city(io_city, "gpkg", person_file)
    report = run_import(target, person_file, file_name=person_file.name)
    assert report.committed
    with get_engine(target).connect() as conn:
        notes = set(conn.execute(text("SELECT DISTINCT note FROM parcel_events")).scalars())
    assert notes == {f"导入文件 sha256:{hashlib.sha256(person_file.read_bytes()).hexdigest()[:16]}"}
