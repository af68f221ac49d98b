"""The GIS downloads' field legend and Chinese values: a parallel ``<field>_zh`` with the labels of every code and
yes/no field, the GeoPackage's field aliases (its schema extension, read with sqlite3: Debian 12's GDAL 3.6 does not
show them as aliases) and a Shapefile zip's legend sidecar."""

from __future__ import annotations

import io
import sqlite3
import zipfile

import pyogrio

from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.io.export import PARCEL_COLUMNS
from gis.io.field_legend import legend


def xinan_download(client, role_headers, fmt: str) -> bytes:
    r = client.get("/projects/xinan_road/blockers", params={"format": fmt}, headers=role_headers["viewer"])
    assert r.status_code == 200, r.text
    return r.content


def test_a_geopackage_has_chinese_values_beside_the_codes_and_its_fields_aliases(client, role_headers, tmp_path):
    path = tmp_path / "blockers.gpkg"
    path.write_bytes(xinan_download(client, role_headers, "gpkg"))
    frame = pyogrio.read_dataframe(path)
    assert len(frame) > 0
    assert (frame["stage_zh"] == frame["stage"].map(STAGE_LABELS_ZH)).all()
    assert (frame["kind_zh"] == frame["kind"].map(KIND_LABELS_ZH)).all()
    assert set(frame["holdout_zh"]) <= {"是", "否"}
    assert ((frame["holdout_zh"] == "是") == frame["holdout"].astype(bool)).all()
    with sqlite3.connect(path) as db:
        aliases = dict(db.execute("SELECT column_name, name FROM gpkg_data_columns"))
    assert aliases["stage"] == "阶段" and aliases["code"] == "地块编号" and aliases["stage_zh"] == "阶段（中文）"
    assert aliases["overlap_m2"].endswith("(㎡)")  # units in the legend


def test_a_shapefile_zip_has_short_fields_chinese_values_and_a_legend_sidecar(client, role_headers, tmp_path):
    content = xinan_download(client, role_headers, "shp")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        sidecar = next(n for n in names if n.endswith("_字段说明.tsv"))
        text = archive.read(sidecar).decode("utf-8")
        archive.extractall(tmp_path)
    assert text.startswith("\ufeff字段\t中文名")
    rows = dict(line.split("\t") for line in text.lstrip("\ufeff").splitlines()[1:])
    frame = pyogrio.read_dataframe(next(tmp_path.glob("*.shp")))
    assert all(len(c.encode()) <= 10 for c in frame.columns)
    assert set(frame.columns) - {"geometry"} == set(rows)  # every field explained, and only those
    assert rows["stage_zh"] == "阶段（中文）" and rows["floor_m2"] == "建筑面积(㎡)"
    assert (frame["stage_zh"] == frame["stage"].map(STAGE_LABELS_ZH)).all()


def test_the_legend_names_every_field_with_its_parallel_label_fields():
    rows = dict(legend(PARCEL_COLUMNS, "shp"))
    assert rows["district"] == "片区代码" and rows["kind_zh"] == "类型（中文）"
    assert rows["holdout_zh"] == "钉子户（中文）"
    assert all(len(name) <= 10 for name in rows)
