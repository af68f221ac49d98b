"""Tiles kept by data version: a repeat is 304, a stage change of a parcel in the tile is a new tile at once; low
zooms are grid cells whose counts are the parcels', checked against shapely and pyproj."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from gis.maps.tiles import CELLS, TILE_LAYERS
from gis.platform.db import get_engine
from tests.conftest import add_parcel
from tests.test_tiles import decode, tile_bounds, tile_of


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    with TestClient(create_app(workflow_db.settings)) as c:
        yield workflow_db, c


def _tile_with(w, pid: int, z: int = 17) -> tuple[int, int, int]:
    """The zoom-``z`` tile holding the centre of parcel ``pid``."""
    with get_engine(w.settings).connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(geom), 4326) "
                                     "AS c FROM parcels WHERE id = :id) s"), {"id": pid}).one()
    return (z, *tile_of(lon, lat, z))


def _stages(data: bytes, z: int, x: int, y: int) -> dict[int, str]:
    return {f["id"]: f["properties"]["stage"] for f in decode(data, z, x, y)["parcels"]["features"]}


def test_a_repeat_with_its_etag_is_304(world):
    w, c = world
    h = w.headers["viewer"]
    z, x, y = _tile_with(w, add_parcel(w.settings, 1))
    first = c.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers=h)
    assert first.status_code == 200 and first.headers["etag"]
    assert "must-revalidate" in first.headers["cache-control"]
    again = c.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers=h | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    # Another tile's tag, or none, is the tile itself, the same bytes as built (from the cache).
    other = c.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers=h | {"If-None-Match": '"elsewhere"'})
    assert other.status_code == 200 and other.content == first.content
    assert c.app.state.tile_cache.hits >= 1
    # The tag is the layer's, the address's and the version's: the districts layer of the same tile differs.
    districts = c.get(f"/tiles/districts/{z}/{x}/{y}.mvt", headers=h)
    assert districts.headers["etag"] != first.headers["etag"]


def test_a_stage_change_of_a_parcel_in_a_cached_tile_invalidates_it(world):
    w, c = world
    h, editor = w.headers["viewer"], w.headers["district_editor"]
    pid = add_parcel(w.settings, 1, stage="surveyed")
    z, x, y = _tile_with(w, pid)
    path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    before = c.get(path, headers=h)
    assert _stages(before.content, z, x, y)[pid] == "surveyed"
    assert c.get(path, headers=h | {"If-None-Match": before.headers["etag"]}).status_code == 304  # cached, unchanged
    version = c.get(f"/parcels/{pid}", headers=editor).headers["etag"]
    r = c.patch(f"/parcels/{pid}", json={"stage": "appraised"}, headers=editor | {"If-Match": version})
    assert r.status_code == 200, r.text
    # The old tag no longer matches, and the tile is rebuilt with the parcel's new stage.
    after = c.get(path, headers=h | {"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert _stages(after.content, z, x, y)[pid] == "appraised"
    # A tile elsewhere in the city is keyed by the same layer version: it is rebuilt too, never served stale.
    with get_engine(w.settings).connect() as conn:
        assert conn.execute(text("SELECT stage FROM parcels WHERE id = :id"), {"id": pid}).scalar_one() == "appraised"


def test_an_import_or_direct_write_invalidates_too(world):
    """The version is raised by the table's trigger, whoever writes: here a statement outside the API."""
    w, c = world
    h = w.headers["viewer"]
    pid = add_parcel(w.settings, 1)
    z, x, y = _tile_with(w, pid)
    path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    tag = c.get(path, headers=h).headers["etag"]
    with get_engine(w.settings).begin() as conn:
        conn.execute(text("UPDATE parcels SET holdout = true WHERE id = :id"), {"id": pid})
    r = c.get(path, headers=h | {"If-None-Match": tag})
    assert r.status_code == 200
    holdouts = {f["id"]: f["properties"]["holdout"] for f in decode(r.content, z, x, y)["parcels"]["features"]}
    assert holdouts[pid] is True


def test_the_ogc_tile_is_the_same_cached_tile(world):
    """OGC API - Tiles (row before column) answers from the maps' cache: same bytes, same ETag, a 304 for a repeat,
    and a new tile after a write."""
    w, c = world
    h = w.headers["viewer"]
    pid = add_parcel(w.settings, 1)
    z, x, y = _tile_with(w, pid)
    maps = c.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers=h)
    ogc_path = f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}"
    hits = c.app.state.tile_cache.hits
    ogc = c.get(ogc_path, headers=h)
    assert ogc.status_code == 200 and ogc.content == maps.content and ogc.headers["etag"] == maps.headers["etag"]
    assert c.app.state.tile_cache.hits == hits + 1
    assert c.get(ogc_path, headers=h | {"If-None-Match": ogc.headers["etag"]}).status_code == 304
    with get_engine(w.settings).begin() as conn:
        conn.execute(text("UPDATE parcels SET holdout = true WHERE id = :id"), {"id": pid})
    r = c.get(ogc_path, headers=h | {"If-None-Match": ogc.headers["etag"]})
    assert r.status_code == 200 and {f["id"]: f["properties"]["holdout"]
                                     for f in decode(r.content, z, x, y)["parcels"]["features"]}[pid] is True
    # an unknown collection is still a 404 saying so, before any tile is built
    missing = c.get("/ogc/collections/nope/tiles/WebMercatorQuad/17/0/0", headers=h)
    assert missing.status_code == 404 and "no collection 'nope'" in missing.text, missing.text


def test_low_zoom_tiles_are_grid_cells_counting_the_parcels(client, engine, demo_city):
    """Below the detail zoom every parcel is counted once, in the cell of its box's centre; the cells' stage is the
    most common stage of their parcels."""
    spec = TILE_LAYERS["parcels"]
    z = spec.detail_zoom - 1
    parcels = demo_city.parcels
    to_wgs = Transformer.from_crs(demo_city.srid, 4326, always_xy=True)
    to_merc = Transformer.from_crs(demo_city.srid, 3857, always_xy=True)
    b = shapely.bounds(parcels.geometry.values)
    cx, cy = to_merc.transform((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2)
    # the tile of the median parcel, the busiest part of the city
    x, y = tile_of(*to_wgs.transform(float(np.median((b[:, 0] + b[:, 2]) / 2)),
                                     float(np.median((b[:, 1] + b[:, 3]) / 2))), z)
    west, south, east, north = tile_bounds(z, x, y)
    inside = (cx >= west) & (cx < east) & (cy >= south) & (cy < north)
    with engine.connect() as conn:
        stage = dict(conn.execute(text("SELECT code, stage FROM parcels")).all())
    r = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt")
    assert r.status_code == 200
    features = decode(r.content, z, x, y)["parcels"]["features"]
    assert sum(f["properties"]["parcels"] for f in features) == int(inside.sum()) > 0
    assert sum(f["properties"]["blocking"] for f in features) == sum(
        stage[code] != "cleared" for code in parcels["code"][inside])
    assert len(features) <= CELLS * CELLS
    # Each cell is one square of 1/CELLS of the tile, holding the centres it counts.
    size = (east - west) / CELLS
    i = np.floor((cx[inside] - west) / size).astype(int)
    j = np.floor((cy[inside] - south) / size).astype(int)
    assert len(features) == len(set(zip(i, j, strict=True)))
    assert not set().union(*(f["properties"] for f in features)) & {"owner_name", "code"}
    mapbox_vector_tile.decode(r.content)  # a valid tile
