"""Vector tiles: decoded with mapbox-vector-tile and checked against the database for the tile's envelope."""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape
from sqlalchemy import text

from gis.maps.gcj02 import mercator_offset
from gis.maps.tiles import BUFFER, EXTENT, TILE_LAYERS

HALF = 20037508.342789244  # half the Web Mercator world, metres
PARCEL_PROPERTIES = {"code", "kind", "stage", "holdout", "district"}


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / (1 << z)
    return -HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def decode(data: bytes, z: int, x: int, y: int) -> dict:
    """The tile's layers with geometries in Web Mercator metres."""
    west, south, east, _ = tile_bounds(z, x, y)
    unit = (east - west) / EXTENT
    return mapbox_vector_tile.decode(data, default_options={
        "transformer": lambda tx, ty: (west + tx * unit, south + ty * unit)})


@pytest.fixture(scope="module")
def busy_point(demo_city) -> tuple[float, float]:
    """Longitude and latitude of the parcel nearest the parcels' median: the busy part of the demo city."""
    to_wgs = Transformer.from_crs(demo_city.srid, 4326, always_xy=True)
    points = demo_city.parcels.geometry.representative_point()
    cx, cy = points.x.median(), points.y.median()
    nearest = ((points.x - cx) ** 2 + (points.y - cy) ** 2).idxmin()
    return to_wgs.transform(points.x[nearest], points.y[nearest])


@pytest.fixture(scope="module")
def busy_tile(busy_point):
    z = 16
    return (z, *tile_of(*busy_point, z))


def test_parcel_tile_matches_the_database(client, engine, settings, busy_tile):
    z, x, y = busy_tile
    r = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in r.headers["cache-control"]
    layers = decode(r.content, z, x, y)
    assert set(layers) == {"parcels"}
    assert layers["parcels"]["extent"] == EXTENT
    features = {f["id"]: f for f in layers["parcels"]["features"]}
    assert len(features) == len(layers["parcels"]["features"]) > 20

    # Independently: parcels intersecting the tile envelope plus its buffer, found in Web Mercator.
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.id, p.code, p.kind, p.stage, p.holdout, d.code AS district, "
            "       ST_AsBinary(ST_Transform(p.geom, 3857)) AS wkb "
            "FROM parcels p JOIN districts d ON d.id = p.district_id "
            "WHERE ST_Intersects(ST_Transform(p.geom, 3857), ST_TileEnvelope(:z, :x, :y, margin => :m))"
        ), {"z": z, "x": x, "y": y, "m": BUFFER / EXTENT}).mappings().all()
    expected = {r["id"]: r for r in rows}
    assert set(features) == set(expected)

    west, south, east, north = tile_bounds(z, x, y)
    margin = (east - west) * BUFFER / EXTENT
    clip = box(west - margin, south - margin, east + margin, north + margin)
    for pid, feature in features.items():
        row = expected[pid]
        assert feature["properties"] == {k: row[k] for k in PARCEL_PROPERTIES}
        assert feature["type"] == "Feature"
        drawn = shape(feature["geometry"])
        truth = shapely.from_wkb(bytes(row["wkb"])).intersection(clip)
        # Snapped to a 4096 grid (about 15 cm at zoom 16): the shapes agree but for the snapping.
        assert drawn.symmetric_difference(truth).area <= 0.05 * truth.area + 2.0, row["code"]


def test_no_personal_data_in_tiles(client, busy_tile):
    z, x, y = busy_tile
    layers = mapbox_vector_tile.decode(client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").content)
    keys = set().union(*(f["properties"] for f in layers["parcels"]["features"]))
    assert keys == PARCEL_PROPERTIES


def test_district_and_project_tiles(client, engine, demo_city):
    to_wgs = Transformer.from_crs(demo_city.srid, 4326, always_xy=True)
    west, south, east, north = demo_city.districts.total_bounds
    lon, lat = to_wgs.transform((west + east) / 2, (south + north) / 2)
    z = 9  # one tile holds the whole city (about 20 km across)
    x, y = tile_of(lon, lat, z)
    districts = decode(client.get(f"/tiles/districts/{z}/{x}/{y}.mvt").content, z, x, y)["districts"]
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, name FROM districts")).all())
        project_codes = dict(conn.execute(text("SELECT id, code FROM projects")).all())
    assert {f["id"]: f["properties"]["name"] for f in districts["features"]} == names
    projects = decode(client.get(f"/tiles/projects/{z}/{x}/{y}.mvt").content, z, x, y)["projects"]
    assert {f["id"]: f["properties"]["code"] for f in projects["features"]} == project_codes
    assert set(projects["features"][0]["properties"]) == {"code", "name", "kind"}
    # Parcels start at their minimum zoom: below it the tile is empty.
    assert TILE_LAYERS["parcels"].min_zoom > z
    assert client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").status_code == 204


def test_empty_tile_is_204(client):
    r = client.get("/tiles/parcels/16/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert "max-age" in r.headers["cache-control"]


@pytest.mark.parametrize(("path", "status", "where"), [
    ("/tiles/parcels/23/0/0.mvt", 422, "z"),
    ("/tiles/parcels/-1/0/0.mvt", 422, "z"),
    ("/tiles/parcels/3/8/0.mvt", 404, None),
    ("/tiles/parcels/3/0/-1.mvt", 404, None),
    ("/tiles/owners/3/0/0.mvt", 404, None),
    ("/tiles/parcels/3/0/x.mvt", 422, None),
    ("/tiles/parcels/14/0/0.mvt?shift=bd09", 422, None),
])
def test_bad_tile_addresses(client, path, status, where):
    r = client.get(path)
    assert r.status_code == status
    body = r.json()
    assert "detail" in body
    if where:
        assert body["where"] == where


def test_tiles_need_a_sign_in(anon_client, role_headers, busy_tile):
    z, x, y = busy_tile
    assert anon_client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").status_code == 401
    assert anon_client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers=role_headers["viewer"]).status_code == 200


def test_gcj02_tile_moves_each_parcel_to_its_gcj02_position(client, engine, busy_point):
    """Drawn for a GCJ-02 basemap, each parcel sits where the exact per-vertex GCJ-02 shift puts it, to within
    a tenth of a screen pixel (each tile is moved by an affine map fitted to the offset over it)."""
    from gis.maps.gcj02 import wgs84_to_gcj02

    z = 16
    x, y = tile_of(*(float(v) for v in wgs84_to_gcj02(*busy_point)), z)  # where the busy parcels are drawn
    r = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt?shift=gcj02")
    assert r.status_code == 200
    shifted = {f["id"]: shape(f["geometry"]) for f in decode(r.content, z, x, y)["parcels"]["features"]}
    west, south, east, north = tile_bounds(z, x, y)
    inner = box(west, south, east, north).buffer(-(east - west) * 0.05)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, ST_AsBinary(ST_Transform(geom, 4326)) FROM parcels WHERE id = ANY(:ids)"
        ), {"ids": [pid for pid, g in shifted.items() if inner.contains(g)]}).all()
    assert len(rows) > 5
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    pixel = (east - west) / 256
    for pid, wkb in rows:
        exact = shapely.transform(shapely.from_wkb(bytes(wkb)), _gcj02_mercator)
        assert shifted[pid].centroid.distance(exact.centroid) < pixel / 10
        true_position = shapely.transform(shapely.from_wkb(bytes(wkb)), lambda c: np.column_stack(
            to_merc.transform(c[:, 0], c[:, 1])))
        assert shifted[pid].centroid.distance(true_position.centroid) > 100  # the offset is hundreds of metres
    dx, dy = mercator_offset(*busy_point)
    assert 100 < math.hypot(dx, dy) < 1000


def _gcj02_mercator(coords):
    from gis.maps.gcj02 import wgs84_to_gcj02

    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack(Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat))
