"""Imagery: registration, COG, tiles, zonal statistics and the post-freeze check, each against an
independent computation (pixel centres tested with shapely, rasterio.mask, Pillow decoding PNGs).

The rasters are written by the tests in EPSG:32650 (UTM 50N) while the parcels are stored in
EPSG:4549, so every path crosses a reprojection.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import rasterio
import rasterio.mask
import shapely
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject
from sqlalchemy import text
from typer.testing import CliRunner

from gis.imagery.change import ChangeRule, parcel_change, post_freeze_check
from gis.imagery.demo import DEMO_CRS, NOTE_KEY, planted_codes, write_demo_imagery
from gis.imagery.layers import delete_layer, delete_layers_under, imagery_basemaps, register_layer, to_cog
from gis.imagery.stats import parcel_stats, zonal_stats
from gis.platform import cluster, migrate
from gis.platform.db import get_engine
from gis.platform.errors import InvalidInput
from tests.conftest import SHARED_DATA, make_temp_dir
from tests.worlds import settings_for

TEST_CRS = "EPSG:32650"
ALEXANDRIA = SHARED_DATA / "us-alexandria-elevation"
WEB_MERCATOR_HALF = 20037508.342789244


def write_tif(path: Path, data: np.ndarray, transform: Affine, *, crs: str | None = TEST_CRS, nodata=None) -> Path:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


def csv_rows(body: str) -> list[dict]:
    """The parcel rows of an export CSV (its last line is the totals row)."""
    return [r for r in csv.DictReader(io.StringIO(body)) if not r["地块编号"].startswith("合计")]


def layer_count(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM imagery_layers")).scalar_one()


@pytest.fixture(scope="module")
def raster_dir(engine):
    path = make_temp_dir("pb-imagery-")
    yield path
    with engine.begin() as conn:
        delete_layers_under(conn, path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def parcels_utm(demo_city) -> gpd.GeoDataFrame:
    """The demo parcels in the rasters' CRS (pyproj through GeoPandas, not the service's code)."""
    return demo_city.parcels.to_crs(TEST_CRS)


def grid_around(geoms: gpd.GeoSeries, pixel: float, margin: float = 10.0) -> tuple[Affine, int, int]:
    w, s, e, n = geoms.total_bounds
    x0, y0 = np.floor(w - margin), np.ceil(n + margin)
    width, height = int(np.ceil((e + margin - x0) / pixel)), int(np.ceil((y0 - s + margin) / pixel))
    return Affine(pixel, 0, x0, 0, -pixel, y0), width, height


def pixel_centres(transform: Affine, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return transform @ (cols, rows)


# --------------------------------------------------------------------------------------------
# Zonal statistics


def test_zonal_stats_equal_a_hand_computation(tmp_path):
    values = (np.arange(10)[:, None] * 10 + np.arange(10)[None, :]).astype("float32")  # row*10 + col
    values[3, 4] = -1  # nodata inside the zone
    path = write_tif(tmp_path / "grid.tif", values, Affine(1, 0, 500000, 0, -1, 3400000), nodata=-1)
    # Covers the centres of rows 2..4 and columns 3..6, no other centre.
    zone = shapely.box(500003.2, 3400000 - 4.8, 500006.8, 3400000 - 2.2)
    with rasterio.open(path) as src:
        stats = zonal_stats(src, zone, threshold=40)
        outside = zonal_stats(src, shapely.box(500020, 3399980, 500030, 3399990), threshold=40)
    # rows 2,3,4 × cols 3..6 = 23..26, 33..36, 43..46 (sum 414), less the nodata 34: 11 pixels, sum 380.
    assert stats.pixel_count == 11
    assert stats.mean == pytest.approx(380 / 11)
    assert (stats.min, stats.max) == (23, 46)
    assert stats.share_above == pytest.approx(4 / 11)  # 43..46
    assert stats.coverage == pytest.approx((3.6 * 2.6 - 1) / (3.6 * 2.6))  # the nodata pixel lies wholly inside
    assert outside.pixel_count == 0 and outside.mean is None


def test_parcel_stats_agree_with_pixel_centres_in_each_parcel(engine, client, parcels_utm, raster_dir):
    anchor = parcels_utm.geometry.iloc[200].centroid
    chosen = parcels_utm[parcels_utm.geometry.centroid.distance(anchor) < 60]
    assert len(chosen) >= 5
    transform, width, height = grid_around(chosen.geometry, pixel=0.5)
    rows, cols = np.mgrid[0:height, 0:width]
    data = ((cols * 0.37 + rows * 0.11) % 7).astype("float32")
    data[: height // 3, : width // 3] = -9999  # a nodata corner
    path = write_tif(raster_dir / "zonal.tif", data, transform, nodata=-9999)
    with engine.begin() as conn:
        layer = register_layer(conn, path, acquired_on=date(2025, 5, 1), kind="hag")
        rows_out = parcel_stats(conn, layer.id, [int(i) for i in chosen["id"]], threshold=3.5)
    xs, ys = pixel_centres(transform, height, width)
    x0, y0 = transform.c, transform.f
    grid = shapely.box(x0, y0 - height * 0.5, x0 + width * 0.5, y0)
    valid_area = grid.difference(shapely.box(x0, y0 - (height // 3) * 0.5, x0 + (width // 3) * 0.5, y0))
    by_id = {r["parcel_id"]: r for r in rows_out}
    for pid, geom in zip(chosen["id"], chosen.geometry, strict=True):
        inside = shapely.contains_xy(geom, xs, ys)
        valid = inside & (data != -9999)
        got = by_id[int(pid)]
        assert got["pixel_count"] == int(valid.sum()) > 0
        assert got["mean"] == pytest.approx(float(data[valid].astype("float64").mean()), rel=1e-9)
        assert got["max"] == pytest.approx(float(data[valid].max()))
        assert got["share_above"] == pytest.approx(float((data[valid] > 3.5).mean()))
        assert got["coverage"] == pytest.approx(geom.intersection(valid_area).area / geom.area, rel=1e-6)
    assert min(r["coverage"] for r in rows_out) < 0.99, "some parcel reaches into the nodata corner"
    api = client.post(f"/imagery/{layer.id}/stats", json={"parcel_ids": [int(i) for i in chosen["id"]],
                                                          "threshold": 3.5})
    assert api.status_code == 200 and api.json()["parcels"] == rows_out
    default = client.post(f"/imagery/{layer.id}/stats", json={"parcel_ids": [int(chosen["id"].iloc[0])]}).json()
    assert default["threshold"] == 2.0  # a height layer's default: GIS_IMAGERY_HEIGHT_THRESHOLD_M
    unknown = client.post(f"/imagery/{layer.id}/stats", json={"parcel_ids": [10**9]})
    assert unknown.status_code == 422 and unknown.json()["where"] == "parcel_ids"


def test_classification_change_is_new_built_or_new_vegetation(tmp_path):
    """Cells that became built-up, or vegetation from non-vegetation, clipped by the parcel; by hand."""
    transform = Affine(1, 0, 500000, 0, -1, 3400000)
    before = np.full((20, 20), 40, dtype="uint8")  # cropland
    before[10:, 10:] = 60  # bare
    after = before.copy()
    after[2:6, 2:7] = 50  # cropland → built-up: 4 × 5 = 20 cells
    after[12:15, 12:15] = 10  # bare → trees: 3 × 3 = 9 cells, new vegetation
    after[2:5, 12:15] = 10  # cropland → trees: still vegetation, not a change
    paths = [write_tif(tmp_path / f"{n}.tif", a, transform) for n, a in (("b", before), ("a", after))]
    rule = ChangeRule("classification", 2.0, 20.0, 0.01, built_classes=(50,), vegetation_classes=(10, 20, 30, 40))
    everything = shapely.box(500000, 3399980, 500020, 3400000)
    half = shapely.box(500000, 3399980, 500004.5, 3400000)  # cuts the built block at x = 4.5: columns 2, 3, half 4
    with rasterio.open(paths[0]) as b, rasterio.open(paths[1]) as a:
        whole = parcel_change(a, b, everything, rule, raster_crs=TEST_CRS, area_crs=TEST_CRS)
        part = parcel_change(a, b, half, rule, raster_crs=TEST_CRS, area_crs=TEST_CRS)
    assert (whole.built_m2, whole.vegetation_m2, whole.changed_m2) == (20.0, 9.0, 29.0)
    assert whole.coverage == 1.0 and whole.max_gain_m is None
    assert part.built_m2 == pytest.approx(4 * 2.5) and part.vegetation_m2 == 0


# --------------------------------------------------------------------------------------------
# COG and tiles


def test_to_cog_writes_a_cog_with_overviews_and_the_same_pixels(tmp_path):
    data = np.random.default_rng(1).random((1024, 1024)).astype("float32")
    plain = write_tif(tmp_path / "plain.tif", data, Affine(1, 0, 500000, 0, -1, 3400000), nodata=-9999)
    out = to_cog(plain, tmp_path / "cog.tif", kind="hag")
    with rasterio.open(out) as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cog.overviews(1), "overviews were built"
        assert cog.crs.to_epsg() == 32650 and cog.nodata == -9999
        np.testing.assert_array_equal(cog.read(1), data)
    with pytest.raises(InvalidInput, match="not a raster"):
        to_cog(_text_file(tmp_path), tmp_path / "x.tif")


def _text_file(folder: Path) -> Path:
    path = folder / "notes.tif"
    path.write_text("not an image at all\n")
    return path


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """The tile holding a point, and the point's pixel position in it (independent Web Mercator arithmetic)."""
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    size = 2 * WEB_MERCATOR_HALF / 2**z
    tx, ty = int((x + WEB_MERCATOR_HALF) // size), int((WEB_MERCATOR_HALF - y) // size)
    px = (x + WEB_MERCATOR_HALF - tx * size) / size * 256
    py = (WEB_MERCATOR_HALF - y - ty * size) / size * 256
    return tx, ty, px, py


@pytest.fixture(scope="module")
def orthophoto(engine, parcels_utm, raster_dir):
    """A 100 m × 100 m RGB orthophoto at 0.5 m: west half red, east half blue, a nodata square at the north-west."""
    c = parcels_utm.geometry.iloc[300].centroid
    transform = Affine(0.5, 0, np.floor(c.x) - 50, 0, -0.5, np.floor(c.y) + 50)
    rgb = np.zeros((3, 200, 200), dtype="uint8")
    rgb[0, :, :100] = 255
    rgb[2, :, 100:] = 255
    rgb[:, :40, :40] = 0  # nodata (0, 0, 0)
    plain = write_tif(raster_dir / "ortho_plain.tif", rgb, transform, nodata=0)
    cog = to_cog(plain, raster_dir / "ortho.tif")
    with engine.begin() as conn:
        layer = register_layer(conn, cog, acquired_on=date(2025, 4, 1), kind="orthophoto", attribution="测试影像")
    return layer, transform


def _lonlat(transform: Affine, col: float, row: float) -> tuple[float, float]:
    x, y = transform @ (col, row)
    return Transformer.from_crs(TEST_CRS, 4326, always_xy=True).transform(x, y)


def test_tile_is_256_png_with_known_colour_and_transparency(client, orthophoto):
    layer, transform = orthophoto
    assert layer.is_cog
    z = 16
    lon, lat = _lonlat(transform, 50, 150)  # in the red half
    tx, ty, px, py = _tile_of(lon, lat, z)
    r = client.get(f"/imagery/{layer.id}/tiles/{z}/{tx}/{ty}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content)).convert("RGBA")
    assert img.size == (256, 256)
    assert img.getpixel((int(px), int(py))) == (255, 0, 0, 255)
    lon_b, lat_b = _lonlat(transform, 160, 150)  # the blue half
    _, _, bx, by = _tile_of(lon_b, lat_b, z)
    if 0 <= bx < 256 and 0 <= by < 256:
        assert img.getpixel((int(bx), int(by))) == (0, 0, 255, 255)
    for col, row in ((20, 20), (-40, 150), (100, 260)):  # the nodata square, 20 m west, 30 m south of the image
        lon_o, lat_o = _lonlat(transform, col, row)
        ox, oy, qx, qy = _tile_of(lon_o, lat_o, z)
        assert (ox, oy) == (tx, ty), "the test point lies in the same tile"
        assert img.getpixel((int(qx), int(qy)))[3] == 0
    far = client.get(f"/imagery/{layer.id}/tiles/{z}/{tx + 50}/{ty}.png")
    assert far.status_code == 204
    assert client.get(f"/imagery/{layer.id}/tiles/3/9/1.png").status_code == 422
    assert client.get("/imagery/999999/tiles/1/0/0.png").status_code == 404


def test_height_tile_uses_the_colour_ramp(client, engine, parcels_utm, raster_dir):
    from rio_tiler.colormap import cmap

    c = parcels_utm.geometry.iloc[400].centroid
    transform = Affine(1, 0, np.floor(c.x) - 40, 0, -1, np.floor(c.y) + 40)
    heights = np.full((80, 80), 5.0, dtype="float32")
    heights[:, 60:] = 40.0  # the ramp's top is measured from the data: 1st..99th percentile, at least 10 m
    with engine.begin() as conn:
        layer = register_layer(conn, write_tif(raster_dir / "hag_ramp.tif", heights, transform, nodata=-9999),
                               acquired_on=date(2025, 4, 2), kind="hag")
    assert layer.value_range[1] == pytest.approx(40.0)
    lon, lat = _lonlat(transform, 20, 40)
    tx, ty, px, py = _tile_of(lon, lat, 17)
    img = Image.open(io.BytesIO(client.get(f"/imagery/{layer.id}/tiles/17/{tx}/{ty}.png").content)).convert("RGBA")
    expected = np.array(cmap.get("viridis")[int(5.0 / 40.0 * 255)][:3])
    assert np.abs(np.array(img.getpixel((int(px), int(py)))[:3]) - expected).max() <= 3
    assert img.getpixel((int(px), int(py)))[3] == 255


def test_layers_listed_and_offered_as_basemaps(client, engine, orthophoto):
    layer, _ = orthophoto
    listed = client.get("/imagery").json()["layers"]
    assert layer.id in [x["id"] for x in listed]
    one = client.get(f"/imagery/{layer.id}").json()
    assert one["kind"] == "orthophoto" and one["crs"] == TEST_CRS and one["footprint"]["type"] == "MultiPolygon"
    lon, lat = np.array(one["footprint"]["coordinates"][0][0]).mean(axis=0)
    assert 118 < lon < 120 and 30 < lat < 31.5
    assert client.get("/imagery/999999").status_code == 404
    with engine.connect() as conn:
        basemaps = {b["id"]: b for b in imagery_basemaps(conn)}
    entry = basemaps[layer.id]
    assert entry["attribution"] == "测试影像" and "正射影像" in entry["name"]
    url = entry["url_template"].format(z=3, x=6, y=3)
    assert client.get(url).status_code in (200, 204)


# --------------------------------------------------------------------------------------------
# Bad input: nothing registered


def test_bad_inputs_are_refused_and_nothing_is_registered(engine, demo_city, parcels_utm, tmp_path):
    c = parcels_utm.geometry.iloc[0].centroid
    inside = Affine(1, 0, np.floor(c.x), 0, -1, np.floor(c.y))
    ones = np.ones((20, 20), dtype="float32")
    cases = {
        "not a raster": _text_file(tmp_path),
        "no coordinate reference system": write_tif(tmp_path / "nocrs.tif", ones, inside, crs=None),
        "does not overlap": write_tif(tmp_path / "far.tif", ones, Affine(1, 0, 300000, 0, -1, 1000000)),
        "no such file": tmp_path / "missing.tif",
    }
    with engine.begin() as conn:
        before = layer_count(conn)
        for message, path in cases.items():
            with pytest.raises(InvalidInput, match=message) as err:
                register_layer(conn, path, acquired_on=date(2025, 1, 1), kind="hag")
            assert err.value.where == "file"
        good = write_tif(tmp_path / "good.tif", ones, inside)
        with pytest.raises(InvalidInput, match="unknown imagery kind"):
            register_layer(conn, good, acquired_on=date(2025, 1, 1), kind="lidar")
        with pytest.raises(InvalidInput, match="integer class codes"):
            register_layer(conn, good, acquired_on=date(2025, 1, 1), kind="classification")
        assert layer_count(conn) == before


# --------------------------------------------------------------------------------------------
# Post-freeze change on the demo city


@pytest.fixture(scope="module")
def demo_imagery(engine, settings, demo_city, raster_dir):
    with engine.begin() as conn:
        manifest = write_demo_imagery(conn, raster_dir / "demo", settings)
    yield manifest
    with engine.begin() as conn:
        delete_layers_under(conn, raster_dir / "demo")
        conn.execute(text("DELETE FROM dataset_notes WHERE key = :k"), {"k": NOTE_KEY})


def test_demo_imagery_is_synthetic_in_another_crs_and_recorded(engine, demo_imagery):
    assert demo_imagery["crs"] == DEMO_CRS and demo_imagery["synthetic"]
    assert len(demo_imagery["planted"]["new_building"]) == 3 and len(demo_imagery["planted"]["new_planting"]) == 1
    with engine.connect() as conn:
        note = conn.execute(text("SELECT value FROM dataset_notes WHERE key = :k"), {"k": NOTE_KEY}).scalar_one()
    assert note["planted"] == demo_imagery["planted"]
    for epoch in demo_imagery["layers"].values():
        with rasterio.open(epoch["path"]) as src:
            assert src.crs.to_string() == DEMO_CRS and src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_change_check_flags_exactly_the_planted_parcels(engine, settings, demo_city, demo_imagery):
    with engine.connect() as conn:
        result = post_freeze_check(conn, demo_imagery["project_id"], settings)
    assert result.before.id == demo_imagery["layers"]["before"]["id"]
    assert result.after.id == demo_imagery["layers"]["after"]["id"]
    assert {p.code for p in result.flagged} == planted_codes(demo_imagery)
    assert len(result.parcels) > 30, "the epochs cover a real stretch of the footprint"
    by_code = {p.code: p for p in result.parcels}
    for code in demo_imagery["below_threshold"]["small_shed"]:
        assert 4 <= by_code[code].changed_m2 < settings.imagery_flag_min_m2 and not by_code[code].flagged
    # Independently: changed pixels (gain > threshold) whose centres lie in the parcel, 1 m² each in UTM.
    # New structures keep 2 m inside their parcel, so every changed cell lies wholly in it.
    with rasterio.open(demo_imagery["layers"]["before"]["path"]) as b, \
            rasterio.open(demo_imagery["layers"]["after"]["path"]) as a:
        gain = a.read(1).astype("float64") - b.read(1)
        xs, ys = pixel_centres(a.transform, a.height, a.width)
    parcels = demo_city.parcels.set_index("code").to_crs(DEMO_CRS)
    for p in result.flagged:
        geom = parcels.geometry[p.code]
        cells = (shapely.contains_xy(geom, xs, ys) & (gain > settings.imagery_change_threshold_m)).sum()
        assert p.changed_m2 == pytest.approx(float(cells), rel=0.01)
        assert p.changed_share == pytest.approx(p.changed_m2 / geom.area, rel=0.01)
        assert p.suspected == "building_or_planting" and p.coverage == pytest.approx(1.0)


def test_no_change_when_both_epochs_are_equal(engine, settings, demo_imagery, raster_dir):
    before = demo_imagery["layers"]["before"]
    same = raster_dir / "demo_same_as_before.tif"
    shutil.copyfile(before["path"], same)
    after_on = date.fromisoformat(demo_imagery["freeze_date"]) + timedelta(days=30)
    with engine.begin() as conn:
        copy = register_layer(conn, same, acquired_on=after_on, kind="hag")
    try:
        with engine.connect() as conn:
            result = post_freeze_check(conn, demo_imagery["project_id"], settings,
                                       before_id=before["id"], after_id=copy.id)
        assert result.parcels and not result.flagged
        assert all(p.changed_m2 == 0 for p in result.parcels)
    finally:
        with engine.begin() as conn:
            delete_layer(conn, copy.id)


def test_epochs_on_different_grids_are_aligned(engine, settings, demo_imagery, raster_dir):
    """The before epoch warped to Web Mercator at 0.5 m (finer, so nearest neighbour round-trips exactly):
    the check warps it back onto the after epoch's UTM grid and finds the same parcels and areas."""
    before = demo_imagery["layers"]["before"]
    with engine.connect() as conn:
        reference = post_freeze_check(conn, demo_imagery["project_id"], settings)
    with rasterio.open(before["path"]) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:3857", src.width, src.height, *src.bounds, resolution=0.5
        )
        data = np.full((height, width), -9999, dtype="float32")
        reproject(rasterio.band(src, 1), data, dst_transform=transform, dst_crs="EPSG:3857",
                  resampling=Resampling.nearest, dst_nodata=-9999)
    path = write_tif(raster_dir / "demo_before_3857.tif", data, transform, crs="EPSG:3857", nodata=-9999)
    with engine.begin() as conn:
        warped = register_layer(conn, path, acquired_on=date.fromisoformat(before["acquired_on"]), kind="hag")
    try:
        with engine.connect() as conn:
            result = post_freeze_check(conn, demo_imagery["project_id"], settings, before_id=warped.id,
                                       after_id=demo_imagery["layers"]["after"]["id"])
        assert {p.code for p in result.flagged} == planted_codes(demo_imagery)
        expected = {p.code: p.changed_m2 for p in reference.parcels}
        assert {p.code: p.changed_m2 for p in result.parcels} == pytest.approx(expected, abs=1e-6)
    finally:
        with engine.begin() as conn:
            delete_layer(conn, warped.id)


def test_post_freeze_endpoint_chips_and_csv(client, demo_imagery):
    pid = demo_imagery["project_id"]
    body = client.get(f"/projects/{pid}/checks/post-freeze").json()
    flagged = [p for p in body["parcels"] if p["flagged"]]
    assert {p["code"] for p in flagged} == planted_codes(demo_imagery)
    assert body["rule"]["min_area_m2"] == 20.0 and body["freeze_date"] == demo_imagery["freeze_date"]
    chips = {}
    for epoch in ("before", "after"):
        r = client.get(flagged[0]["chips"][epoch])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        chips[epoch] = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        assert max(chips[epoch].shape[:2]) == 256
    assert (chips["before"] != chips["after"]).any(), "the new structure shows"
    assert ((chips["after"] == (230, 0, 0)).all(axis=2)).sum() > 50, "the parcel's outline is drawn"
    strict = client.get(f"/projects/{pid}/checks/post-freeze", params={"min_area_m2": 5, "threshold_m": 2}).json()
    assert {p["code"] for p in strict["parcels"] if p["flagged"]} >= planted_codes(demo_imagery)

    r = client.get(f"/projects/{pid}/checks/post-freeze", params={"format": "csv", "flagged_only": True})
    assert r.status_code == 200 and "post-freeze_xinan_road" in r.headers["content-disposition"]
    rows = csv_rows(r.content.decode("utf-8-sig"))
    assert {row["地块编号"] for row in rows} == planted_codes(demo_imagery)
    assert all(row["疑似冻结后变化"] == "是" and float(row["变化面积(㎡)"]) >= 20 for row in rows)
    r = client.get(f"/projects/{pid}/checks/post-freeze", params={"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    header = [c.value for c in sheet[1]]
    flagged_col = header.index("疑似冻结后变化")
    assert sum(row[flagged_col] == "是" for row in sheet.iter_rows(min_row=2, values_only=True)) == len(rows)

    geo = client.get(f"/projects/{pid}/checks/post-freeze", params={"format": "geojson", "flagged_only": True}).json()
    assert {f["properties"]["code"] for f in geo["features"]} == planted_codes(demo_imagery)
    assert client.get("/projects/999999/checks/post-freeze").status_code == 404
    assert client.get(f"/projects/{pid}/checks/post-freeze", params={"kind": "classification"}).status_code == 422


def test_roles_tiles_for_viewers_post_freeze_for_inspectors(client, anon_client, role_headers, demo_imagery):
    pid, layer = demo_imagery["project_id"], demo_imagery["layers"]["after"]["id"]
    assert anon_client.get("/imagery").status_code == 401
    listed = client.get("/imagery", headers=role_headers["viewer"])
    assert listed.status_code == 200 and listed.json()["layers"]
    assert all("path" not in layer for layer in listed.json()["layers"]), "server paths are for admins"
    assert "path" not in client.get(f"/imagery/{layer}", headers=role_headers["inspector"]).json()
    assert all("path" in layer for layer in client.get("/imagery").json()["layers"])  # the admin sees them
    assert client.get(f"/imagery/{layer}/tiles/0/0/0.png", headers=role_headers["viewer"]).status_code in (200, 204)
    check = f"/projects/{pid}/checks/post-freeze"
    assert client.get(check, headers=role_headers["viewer"]).status_code == 403
    assert client.get(check, headers=role_headers["district_editor"]).status_code == 403
    assert client.get(check, headers=role_headers["inspector"]).status_code == 200


def test_cli_post_freeze_and_bad_add(monkeypatch, settings, demo_imagery, tmp_path):
    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["imagery", "post-freeze", demo_imagery["project_code"], "--format", "csv",
                                  "--flagged-only", "--chips", str(tmp_path / "chips")])
        assert out.exit_code == 0, out.output
        codes = {row["地块编号"] for row in csv_rows(out.stdout.lstrip("\ufeff"))}
        assert codes == planted_codes(demo_imagery)
        assert len(list((tmp_path / "chips").glob("*.png"))) == 2 * len(codes)
        before_id = demo_imagery["layers"]["before"]["id"]
        stats = runner.invoke(app, ["imagery", "stats", str(before_id), *sorted(codes)])
        assert stats.exit_code == 0, stats.output
        assert {row["地块编号"] for row in csv_rows(stats.stdout.lstrip("\ufeff"))} == codes
        bad = runner.invoke(app, ["imagery", "add", str(_text_file(tmp_path)), "--date", "2025-01-01", "--kind", "hag"])
        assert isinstance(bad.exception, InvalidInput) and "not a raster" in str(bad.exception)
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------------------------
# Real data: Old Town Alexandria, 2 m height above ground (UTM 18N) and building footprints (EPSG:4326)


@pytest.fixture(scope="module")
def alexandria(pg_dir, settings):
    s = settings_for(pg_dir, database_name="alexandria", srid=26918)
    cluster.start(s)
    migrate.upgrade(s)
    engine = get_engine(s)
    buildings = gpd.read_file(ALEXANDRIA / "buildings.geojson")
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE imagery_layers, parcels, districts RESTART IDENTITY CASCADE"))
        # A district covering the footprints, built by PostGIS from their extent.
        w, s_, e, n = buildings.total_bounds
        conn.execute(
            text("INSERT INTO districts (id, code, name, geom) VALUES (1, 'oldtown', 'Old Town', "
                 "ST_Multi(ST_Transform(ST_Expand(ST_MakeEnvelope(:w, :s, :e, :n, 4326), 0.001), 26918)))"),
            {"w": w, "s": s_, "e": e, "n": n},
        )
        # The footprints go in as WGS 84 and PostGIS transforms them; the test transforms them with pyproj.
        for i, geom in enumerate(buildings.geometry):
            conn.execute(
                text("INSERT INTO parcels (code, kind, district_id, geom) "
                     "VALUES (:code, 'house', 1, ST_Multi(ST_Transform(ST_GeomFromText(:wkt, 4326), 26918)))"),
                {"code": f"B{i:03d}", "wkt": geom.wkt},
            )
        layer = register_layer(conn, ALEXANDRIA / "hag.tif", acquired_on=date(2023, 3, 11), kind="hag")
        ids = dict(conn.execute(text("SELECT code, id FROM parcels")).all())
    return engine, layer, buildings, ids


def test_alexandria_per_footprint_stats_agree_with_rasterio(alexandria):
    engine, layer, buildings, ids = alexandria
    assert layer.crs == "EPSG:26918" and layer.resolution == (2.0, 2.0)
    with engine.connect() as conn:
        rows = {r["code"]: r for r in parcel_stats(conn, layer.id, list(ids.values()), threshold=5.0)}
    footprints = buildings.to_crs(26918)
    compared = 0
    with rasterio.open(ALEXANDRIA / "hag.tif") as src:
        for i, geom in enumerate(footprints.geometry):
            masked, _ = rasterio.mask.mask(src, [geom], crop=True, filled=False)
            values = masked[0].compressed().astype("float64")
            got = rows[f"B{i:03d}"]
            assert got["pixel_count"] == values.size
            if values.size:
                compared += 1
                assert got["mean"] == pytest.approx(values.mean(), rel=1e-9)
                assert got["max"] == pytest.approx(values.max())
                assert got["share_above"] == pytest.approx((values > 5.0).mean())
    assert compared >= 80, "nearly every footprint holds a pixel centre"
    # Buildings stand above the ground: most footprints are mostly above 5 m.
    assert np.median([r["share_above"] for r in rows.values() if r["pixel_count"]]) > 0.5
