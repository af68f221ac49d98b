"""Files that are not what they claim: a Shapefile cut short, an empty file, names a file system cannot hold.
Each is refused with a 422 naming the file, and nothing is imported."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import text

from gis.io.readers import open_source
from gis.platform.db import get_engine
from gis.platform.errors import InvalidInput
from tests.worlds import WORLD_ORIGIN

X, Y = WORLD_ORIGIN


def _shapefile(folder: Path, n: int = 40) -> Path:
    """``n`` house parcels of 10 m in district A of the workflow world, as a Shapefile in EPSG:4549."""
    frame = gpd.GeoDataFrame(
        {"code": [f"SHP{i:03d}" for i in range(n)], "kind": ["house"] * n},
        geometry=[box(X + 100 + i % 20 * 12, Y + 100 + i // 20 * 12, X + 110 + i % 20 * 12, Y + 110 + i // 20 * 12)
                  for i in range(n)],
        crs="EPSG:4549",
    )
    path = folder / "parcels.shp"
    frame.to_file(path)
    return path


def _zipped(shp: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for part in shp.parent.glob(shp.stem + ".*"):
            z.write(part, part.name)
    return out.getvalue()


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    with TestClient(create_app(workflow_db.settings)) as c:
        yield workflow_db, c


def _count(s, code_like: str) -> int:
    with get_engine(s).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM parcels WHERE code LIKE :c"), {"c": code_like}).scalar_one()


def test_a_whole_shapefile_is_read(tmp_path):
    shp = _shapefile(tmp_path)
    with open_source(shp) as source:
        assert source.count == 40
        assert sum(len(b.rows) for b in source.batches(1000)) == 40


@pytest.mark.parametrize("cut", [1, 56, 300])
def test_a_shapefile_cut_short_is_refused(tmp_path, cut):
    """Defect 11: GDAL reads what is left of a truncated .shp and the rest of the parcels would be lost."""
    shp = _shapefile(tmp_path)
    data = shp.read_bytes()
    shp.write_bytes(data[:-cut])  # the .shx and .dbf stay whole
    with pytest.raises(InvalidInput, match="cut short") as caught, open_source(shp):
        pass
    assert caught.value.where == "file"


def test_a_dbf_that_disagrees_with_the_index_is_refused(tmp_path):
    shp = _shapefile(tmp_path)
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[4:8] = (39).to_bytes(4, "little")  # the table now says 39 records, the index 40
    dbf.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="disagree"), open_source(shp):
        pass


def test_a_truncated_shapefile_upload_imports_nothing(world, tmp_path):
    db, client = world
    shp = _shapefile(tmp_path)
    shp.write_bytes(shp.read_bytes()[:-300])
    r = client.post("/imports", files={"file": ("parcels.zip", _zipped(shp))}, headers=db.headers["admin"])
    assert r.status_code == 422 and r.json()["where"] == "file" and "cut short" in r.json()["detail"]
    assert _count(db.settings, "SHP%") == 0
    (tmp_path / "whole").mkdir()
    whole = _shapefile(tmp_path / "whole")
    r = client.post("/imports", files={"file": ("parcels.zip", _zipped(whole))}, headers=db.headers["admin"],
                    data={"dry_run": "true"})
    assert r.status_code == 200 and r.json()["created"] == 40, r.text[:300]


@pytest.mark.parametrize(("route", "name", "content", "words"), [
    ("/imports", "parcels.csv", b"", "empty"),
    ("/imports", "x" * 300 + ".csv", b"code\nA1\n", "255 bytes"),
    ("/imports", "..", b"code\nA1\n", "unsupported file type"),
    ("/imports", "../../etc/passwd.csv", b"", "empty"),
    ("/districts/imports", "districts.geojson", b"", "empty"),
    ("/districts/imports", "..", b"{}", "unsupported"),
    ("/districts/imports", "名" * 90 + ".gpkg", b"x", "255 bytes"),
    ("/standards/imports", "..", b"x", ""),
    ("/standards/imports", "s.xlsx", b"", ""),
    ("/admin/files/layers", "a.gpkg", b"", "empty"),
])
def test_empty_files_and_impossible_names_are_refused(world, route, name, content, words):
    """Defect 7: a 0-byte CSV, a file named ``..``, a name over 255 bytes were 500s."""
    db, client = world
    r = client.post(route, files={"file": (name, content)}, headers=db.headers["admin"])
    assert r.status_code == 422, r.text[:300]
    assert words in r.text
