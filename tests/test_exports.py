"""Exports: every format re-read with an independent reader, checked against the generator's parcels."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime

import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH, today_in
from gis.io import export as ex
from gis.io.export import PARCEL_COLUMNS, parcel_query, query_rows, write_export
from gis.platform.config import SQM_PER_MU
from tests.conftest import bearer, make_role_tokens


@pytest.fixture(scope="module")
def parcels(io_city):
    """The generator's parcels by code, with their areas computed by shapely (independently of PostGIS)."""
    frame = io_city.city.parcels.set_index("code")
    frame["shapely_m2"] = shapely.area(frame.geometry.to_numpy())
    return frame


def export(io_city, fmt, path, **kwargs):
    statement, params = parcel_query(**kwargs.pop("filters", {}))
    rows = query_rows(io_city.engine, statement, params)
    return write_export(rows, PARCEL_COLUMNS, fmt, path, srid=io_city.settings.srid, **kwargs)


def test_xlsx_has_chinese_headers_frozen_row_totals_areas_and_dates(io_city, parcels, tmp_path):
    path = tmp_path / "parcels.xlsx"
    assert export(io_city, "xlsx", path) == len(parcels)
    book = openpyxl.load_workbook(path, data_only=True)
    ws = book.active
    assert ws.title == "地块清单"
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header == [c.label for c in PARCEL_COLUMNS]
    assert header[:4] == ["地块编号", "类型", "片区代码", "片区"]
    assert "图形面积(㎡)" in header and "图形面积(亩)" in header
    col = {label: i for i, label in enumerate(header)}
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    body, total = rows[:-1], rows[-1]
    assert len(body) == len(parcels)
    assert total[0] == f"合计（{len(parcels)} 宗）"
    for row in body:
        p = parcels.loc[row[col["地块编号"]]]
        assert row[col["图形面积(㎡)"]] == pytest.approx(p.shapely_m2, rel=1e-6)
        assert row[col["图形面积(亩)"]] == pytest.approx(p.shapely_m2 / SQM_PER_MU, rel=1e-6)
        assert row[col["类型"]] == KIND_LABELS_ZH[p.kind]
        assert row[col["阶段"]] == STAGE_LABELS_ZH[p.stage]
        assert isinstance(row[col["阶段起始日期"]], datetime)  # a real date cell, not text
        assert row[col["阶段起始日期"]].date() == p.stage_since
        assert row[col["钉子户"]] in ("是", "否")
        assert "*" in row[col["权利人"]] and row[col["权利人"]] != p.owner_name  # masked by default
        assert row[col["身份证号"]][:4] == p.owner_id_number[:4] and "*" in row[col["身份证号"]]
    assert total[col["图形面积(㎡)"]] == pytest.approx(parcels.shapely_m2.sum(), rel=1e-9)
    assert total[col["图形面积(亩)"]] == pytest.approx(parcels.shapely_m2.sum() / SQM_PER_MU, rel=1e-9)
    assert total[col["建筑面积(㎡)"]] == pytest.approx(parcels.floor_area_m2.sum(), rel=1e-9)
    assert total[col["户数"]] == parcels.households.sum()
    # Totals are live formulas over the filtered rows, with the computed value cached for readers.
    formulas = openpyxl.load_workbook(path).active
    assert formulas.cell(len(rows) + 1, col["图形面积(㎡)"] + 1).value.startswith("=SUBTOTAL(9,")
    cell = ws.cell(2, col["图形面积(㎡)"] + 1)
    assert cell.number_format == "#,##0.00" and ws.cell(2, col["阶段起始日期"] + 1).is_date
    assert ws.column_dimensions["A"].width == pytest.approx(16, abs=1)
    assert ws.auto_filter.ref.startswith("A1:")


def test_csv_is_utf8_with_bom_chinese_headers_totals_and_areas(io_city, parcels, tmp_path):
    path = tmp_path / "parcels.csv"
    districts = io_city.city.districts.set_index("id")
    district_id = int(parcels.district_id.value_counts().index[0])
    name = districts.loc[district_id, "name"]
    export(io_city, "csv", path, reveal_personal=True, filters={"districts": [name]})
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert header == [c.label for c in PARCEL_COLUMNS]
    col = {label: i for i, label in enumerate(header)}
    expected = parcels[parcels.district_id == district_id]
    assert len(expected) > 50 and sorted(r[0] for r in body) == sorted(expected.index)
    assert {r[col["片区"]] for r in body} == {name}
    for row in body:
        p = parcels.loc[row[0]]
        assert float(row[col["图形面积(㎡)"]]) == pytest.approx(p.shapely_m2, abs=0.005)
        assert float(row[col["图形面积(亩)"]]) == pytest.approx(p.shapely_m2 / SQM_PER_MU, abs=0.00005)
        assert row[col["权利人"]] == p.owner_name  # revealed on request
        assert row[col["阶段起始日期"]] == p.stage_since.isoformat()
    assert total[0] == f"合计（{len(expected)} 宗）"
    assert float(total[col["图形面积(㎡)"]]) == pytest.approx(expected.shapely_m2.sum(), abs=0.005)
    assert float(total[col["土地面积(亩)"]]) == pytest.approx(expected.land_area_mu.sum(), abs=0.00005)
    assert int(total[col["户数"]]) == expected.households.sum()


def test_geojson_is_rfc7946_in_wgs84_and_matches_the_parcels(io_city, parcels, tmp_path):
    path = tmp_path / "parcels.geojson"
    export(io_city, "geojson", path, reveal_personal=False)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert len(doc["features"]) == len(parcels)
    back = Transformer.from_crs(4326, io_city.settings.srid, always_xy=True)
    for feature in doc["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        lon, lat = geom.representative_point().coords[0]
        assert 118.5 < lon < 119.5 and 30.3 < lat < 31.0
        assert all(shapely.is_ccw(poly.exterior) for poly in geom.geoms)  # right-hand rule
        assert feature["id"] == feature["properties"]["code"]
        original = parcels.loc[feature["id"]].geometry
        projected = shapely.transform(geom, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
        assert shapely.hausdorff_distance(projected, original) < 0.001
        assert "*" in (feature["properties"]["owner_phone"] or "*")


def test_zipped_shapefile_has_prj_and_cpg_and_reads_back_in_utf8(io_city, parcels, tmp_path):
    path = tmp_path / "parcels.shp.zip"
    export(io_city, "shp", path, reveal_personal=True)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert {n.rsplit(".", 1)[1] for n in names} == {"shp", "shx", "dbf", "prj", "cpg", "tsv"}  # tsv: the legend
        assert z.read(next(n for n in names if n.endswith(".cpg"))).decode().strip().upper() in ("UTF-8", "UTF8")
        assert "Gauss" in z.read(next(n for n in names if n.endswith(".prj"))).decode()
    frame = pyogrio.read_dataframe(f"/vsizip/{path}")
    assert all(len(c.encode()) <= 10 for c in frame.columns)
    assert frame.crs.to_epsg() == io_city.settings.srid
    merged = frame.merge(parcels, left_on="code", right_index=True, suffixes=("", "_src"))
    assert len(merged) == len(parcels)
    assert (merged.owner_name == merged.owner_name_src).all()  # Chinese intact
    assert (merged.dist_name.isin(["西津", "南山", "河沥溪", "汪溪"])).all()


@pytest.mark.parametrize("fmt, epsg", [("gpkg", 4549), ("gpkg", 4528), ("fgb", 4549), ("kml", 4326)])
def test_gis_formats_carry_their_crs(io_city, parcels, tmp_path, fmt, epsg):
    path = tmp_path / f"parcels.{fmt}"
    export(io_city, fmt, path, crs=epsg if fmt == "gpkg" else None)
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == len(parcels)
    assert frame.crs.to_epsg() == epsg
    x = frame.geometry.representative_point().x
    assert {4549: (3e5, 7e5), 4528: (40.3e6, 40.7e6), 4326: (118.5, 119.5)}[epsg][0] < x.min()
    if fmt == "kml":
        assert (frame["Name"] == frame["code"]).all()  # placemark names are the codes


def test_file_names_carry_the_list_and_the_day():
    day = date(2026, 11, 26)
    assert ex.export_filename("blockers", "hsr", fmt="xlsx", on=day) == "blockers_hsr_2026-11-26.xlsx"
    assert ex.export_filename("parcels", fmt="shp", on=day) == "parcels_2026-11-26.shp.zip"
    header = ex.content_disposition(ex.export_filename("blockers", "新安路", fmt="csv", on=day))
    assert "filename*=UTF-8''blockers_%E6%96%B0%E5%AE%89%E8%B7%AF_2026-11-26.csv" in header


class Probe:
    """Rows made on demand, noting how far reading runs ahead of what the writer has finished."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0
        self.done = 0
        self.max_ahead = 0
        self.wkb = shapely.to_wkb(shapely.MultiPolygon([shapely.box(400_000, 3_390_000, 400_020, 3_390_015)]))

    def rows(self):
        for i in range(self.n):
            self.pulled += 1
            self.max_ahead = max(self.max_ahead, self.pulled - self.done)
            yield {"code": f"P{i:07d}", "kind": "house", "area_m2": 300.0, "stage_since": date(2025, 1, 1),
                   "geom": self.wkb}

    def progress(self, n: int) -> None:
        self.done += n


SMALL = [c for c in PARCEL_COLUMNS if c.key in ("code", "kind", "area_m2", "stage_since")]


@pytest.mark.parametrize("fmt", ["csv", "geojson", "xlsx", "gpkg", "shp"])
def test_exports_stream_in_batches(fmt, tmp_path):
    """However many rows, at most one batch is held before it is written: memory stays flat."""
    probe = Probe(3 * ex.BATCH_ROWS + 7)
    path = tmp_path / f"many{ex.FORMATS[fmt].suffix}"
    count = write_export(probe.rows(), SMALL, fmt, path, srid=4549, progress=probe.progress)
    assert count == probe.n == probe.done
    assert probe.max_ahead <= ex.BATCH_ROWS + 1


def test_csv_stream_yields_before_reading_everything():
    probe = Probe(5 * ex.BATCH_ROWS)
    stream = ex.stream_csv(probe.rows(), SMALL)
    next(stream)  # the header
    next(stream)  # the first batch
    assert probe.pulled <= ex.BATCH_ROWS


def test_api_export_streams_a_masked_or_revealed_file_by_role(io_city, parcels):
    from api.app import create_app

    tokens = make_role_tokens(io_city.engine, ["xijin"], prefix="export")
    with TestClient(create_app(io_city.settings)) as client:
        viewer = client.get("/parcels/export", params={"format": "csv", "district": "xijin"},
                            headers=bearer(tokens["viewer"]))
        assert viewer.status_code == 200
        assert viewer.headers["content-type"].startswith("text/csv")
        today = today_in(io_city.settings.city_timezone).isoformat()
        assert f'filename="parcels_xijin_{today}.csv"' in viewer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(viewer.content.decode("utf-8-sig"))))
        assert len(rows) - 2 == (parcels.district_id == 1).sum()
        assert all("*" in r[4] for r in rows[1:-1])
        admin = client.get("/parcels/export", params={"format": "csv", "district": "xijin"},
                           headers=bearer(tokens["admin"]))
        assert not any("*" in r[4] for r in list(csv.reader(io.StringIO(admin.content.decode("utf-8-sig"))))[1:-1])
        for fmt, media in (("xlsx", "spreadsheetml"), ("shp", "zip"), ("gpkg", "geopackage")):
            r = client.get("/parcels/export", params={"format": fmt}, headers=bearer(tokens["viewer"]))
            assert r.status_code == 200 and media in r.headers["content-type"]
            assert int(r.headers["content-length"]) == len(r.content) > 1000
        viewer_headers = bearer(tokens["viewer"])
        assert client.get("/parcels/export", params={"format": "dxf"}, headers=viewer_headers).status_code == 422
        assert client.get("/parcels/export", params={"format": "gpkg", "crs": 2154},
                          headers=bearer(tokens["viewer"])).status_code == 422
        assert client.get("/parcels/export").status_code == 401
