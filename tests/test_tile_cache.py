"""Tiles kept by data version: a repeat is 304, a stage change of a parcel in the tile is a new tile at once; low
zooms are grid cells whose counts are the parcels', checked against shapely and pyproj."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from gis.analysis.alignments import revise_alignment
from gis.domain.geometry import alignment_of
from gis.maps.gcj02 import wgs84_to_gcj02
from gis.maps.tile_cache import tile_key
from gis.maps.tiles import CELLS, TILE_LAYERS, search_params, vector_tile
from gis.platform.db import get_engine
from tests.conftest import add_parcel, bearer, make_role_tokens
from tests.test_tiles import decode, tile_bounds, tile_of
from tests.worlds import WORLD_ORIGIN, insert_zone, two_districts


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


@pytest.mark.parametrize("shift", ["", "gcj02"])
def test_low_zoom_tiles_are_grid_cells_counting_the_parcels(client, engine, demo_city, shift):
    """Below the detail zoom every parcel is counted once, in the cell of its box's centre (moved by the tile's
    GCJ-02 shift for such a basemap); the cells' stage is the most common stage of their parcels."""
    spec = TILE_LAYERS["parcels"]
    z = spec.detail_zoom - 1
    parcels = demo_city.parcels
    to_wgs = Transformer.from_crs(demo_city.srid, 4326, always_xy=True)
    to_merc = Transformer.from_crs(demo_city.srid, 3857, always_xy=True)
    b = shapely.bounds(parcels.geometry.values)
    cx, cy = to_merc.transform((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2)
    # the tile of the median parcel, the busiest part of the city
    lon, lat = to_wgs.transform(float(np.median((b[:, 0] + b[:, 2]) / 2)), float(np.median((b[:, 1] + b[:, 3]) / 2)))
    if shift:
        lon, lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    x, y = tile_of(lon, lat, z)
    if shift:  # the tile's affine fit of GCJ-02 (gis.maps.gcj02, checked against the exact shift elsewhere)
        m = search_params(z, x, y, srid=demo_city.srid, gcj02=True)
        cx, cy = m["a"] * cx + m["b"] * cy + m["xoff"], m["d"] * cx + m["e"] * cy + m["yoff"]
    west, south, east, north = tile_bounds(z, x, y)
    inside = (cx >= west) & (cx < east) & (cy >= south) & (cy < north)
    with engine.connect() as conn:
        facts = {code: (stage, district) for code, stage, district in conn.execute(text(
            "SELECT p.code, p.stage, d.code FROM parcels p JOIN districts d ON d.id = p.district_id")).all()}
    stage = {code: f[0] for code, f in facts.items()}
    r = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt" + (f"?shift={shift}" if shift else ""))
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
    # Each cell says its parcels' most common stage and district (a tie to the first by name) and their count.
    corner = [np.min(f["geometry"]["coordinates"][0], axis=0) for f in features]  # each square's south-west
    cell_of = {(round((cw - west) / size), round((cs - south) / size)): f["properties"]
               for (cw, cs), f in zip(corner, features, strict=True)}
    members: dict[tuple[int, int], list[str]] = {}
    for code, ci, cj in zip(parcels["code"][inside], i, j, strict=True):
        members.setdefault((int(ci), int(cj)), []).append(code)
    assert cell_of.keys() == members.keys()

    def most_common(values: list[str]) -> str:
        return min(set(values), key=lambda v: (-values.count(v), v))

    for cell, codes in members.items():
        props = cell_of[cell]
        assert props["parcels"] == len(codes)
        assert props["stage"] == most_common([facts[c][0] for c in codes])
        assert props["district"] == most_common([facts[c][1] for c in codes])
    assert not set().union(*(f["properties"] for f in features)) & {"owner_name", "code"}
    mapbox_vector_tile.decode(r.content)  # a valid tile


# ---------------------------------------------------------------------------------------------
# Per-tile expiry (migration 0020): an edit makes a miss of the tiles that could draw it, and of no other.
# A world of its own: districts A and B at the origin, C 30 km east, parcels and a zone project in A and in C.

FAR_M = 30_000.0  # district C, east of A and B: several zoom-13 tiles away


def _put_parcel(conn, srid: int, code: str, district_id: int, east_m: float, north_m: float,
                stage: str = "surveyed") -> int:
    """A 20 m square parcel ``east_m``, ``north_m`` from the world's origin, written by plain SQL."""
    x, y = WORLD_ORIGIN
    return conn.execute(text(
        "INSERT INTO parcels (code, kind, district_id, stage, geom) VALUES (:code, 'house', :d, :stage, "
        "ST_Multi(ST_MakeEnvelope(:x, :y, :x + 20, :y + 20, :srid))) RETURNING id"
    ), {"code": code, "d": district_id, "stage": stage, "x": x + east_m, "y": y + north_m, "srid": srid}).scalar_one()


def _tile_at(srid: int, east_m: float, north_m: float, z: int, gcj02: bool = False) -> tuple[int, int, int]:
    """The zoom-``z`` tile holding the point ``east_m``, ``north_m`` from the world's origin (as a GCJ-02 basemap
    draws it, when ``gcj02``)."""
    lon, lat = Transformer.from_crs(srid, 4326, always_xy=True).transform(WORLD_ORIGIN[0] + east_m,
                                                                           WORLD_ORIGIN[1] + north_m)
    if gcj02:
        lon, lat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    return (z, *tile_of(lon, lat, z))


def _expiry_world(pg_dir, name: str) -> SimpleNamespace:
    """Database ``name``: districts A, B and C; a 5 x 5 lattice of parcels in A and another in C (codes A00.., C00..);
    zone projects 1 (over A and B) and 2 (in C); users per role (the editor edits A)."""
    s = two_districts(pg_dir, name)
    x, y = WORLD_ORIGIN
    with get_engine(s).begin() as conn:
        conn.execute(text("INSERT INTO districts (id, code, name, geom) VALUES (3, 'c', '丙区', "
                          "ST_Multi(ST_MakeEnvelope(:x, :y, :x + 1000, :y + 1000, :srid)))"),
                     {"x": x + FAR_M, "y": y, "srid": s.srid})
        insert_zone(conn, s.srid, 1, "Z1", "近园区", (500, 1500), "2025-06-01", "2027-06-30")
        insert_zone(conn, s.srid, 2, "Z2", "远园区", (FAR_M + 200, FAR_M + 800), "2025-06-01", "2027-06-30")
        ids = {f"{d}{i}{j}": _put_parcel(conn, s.srid, f"{d}{i}{j}", district, east + 100 + 40 * i, 100 + 40 * j)
               for d, district, east in (("A", 1, 0.0), ("C", 3, FAR_M)) for i in range(5) for j in range(5)}
    tokens = make_role_tokens(get_engine(s), ["a"], prefix=name)
    return SimpleNamespace(settings=s, ids=ids, headers={r: bearer(t) for r, t in tokens.items()})


@pytest.fixture(scope="module")
def expiry(pg_dir):
    from api.app import create_app

    w = _expiry_world(pg_dir, "tile_expiry")
    with TestClient(create_app(w.settings)) as c:
        w.client = c
        yield w


def _get(w, layer: str, tile: tuple[int, int, int], etag: str | None = None, shift: str = ""):
    z, x, y = tile
    headers = w.headers["viewer"] | ({"If-None-Match": etag} if etag else {})
    return w.client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?shift={shift}" if shift else ""), headers=headers)


def _assert_kept(w, layer: str, tile: tuple[int, int, int], before) -> None:
    """The tile is still valid: 304 to its old tag, and without the tag the same bytes from the cache, not built."""
    cache = w.client.app.state.tile_cache
    assert _get(w, layer, tile, before.headers["etag"]).status_code == 304
    hits, misses = cache.hits, cache.misses
    again = _get(w, layer, tile)
    assert again.headers["etag"] == before.headers["etag"] and again.content == before.content
    assert (cache.hits, cache.misses) == (hits + 1, misses)


def _blocking(data: bytes, tile: tuple[int, int, int]) -> int:
    return sum(f["properties"]["blocking"] for f in decode(data, *tile)["parcels"]["features"])


def test_a_stage_change_expires_its_own_tile_and_no_other(expiry):
    w = expiry
    srid, pid = w.settings.srid, w.ids["A22"]
    near, far = _tile_at(srid, 190, 190, 17), _tile_at(srid, FAR_M + 190, 190, 17)
    before = {t: _get(w, "parcels", t) for t in (near, far)}
    near_gcj02 = _tile_at(srid, 190, 190, 17, gcj02=True)
    shifted = _get(w, "parcels", near_gcj02, shift="gcj02")
    assert all(r.status_code == 200 for r in [*before.values(), shifted])
    assert _stages(before[near].content, *near)[pid] == "surveyed"
    editor = w.headers["district_editor"]
    version = w.client.get(f"/parcels/{pid}", headers=editor).headers["etag"]
    r = w.client.patch(f"/parcels/{pid}", json={"stage": "appraised"}, headers=editor | {"If-Match": version})
    assert r.status_code == 200, r.text
    # The parcel's tile is rebuilt with its new stage, drawn plain or for a GCJ-02 basemap ...
    after = _get(w, "parcels", near, before[near].headers["etag"])
    assert after.status_code == 200 and after.headers["etag"] != before[near].headers["etag"]
    assert _stages(after.content, *near)[pid] == "appraised"
    assert _get(w, "parcels", near_gcj02, shifted.headers["etag"], shift="gcj02").status_code == 200
    # ... and a tile 30 km away keeps its tag and its cached bytes.
    _assert_kept(w, "parcels", far, before[far])


def test_grid_cells_at_a_low_zoom_expire_where_the_parcel_is(expiry):
    w = expiry
    srid = w.settings.srid
    z = TILE_LAYERS["parcels"].detail_zoom - 2
    near, far = _tile_at(srid, 270, 270, z), _tile_at(srid, FAR_M + 190, 190, z)  # near: parcel A44's centre
    assert near != far
    before = {t: _get(w, "parcels", t) for t in (near, far)}
    blocking = _blocking(before[near].content, near)
    with get_engine(w.settings).begin() as conn:
        conn.execute(text("UPDATE parcels SET stage = 'cleared' WHERE id = :id"), {"id": w.ids["A44"]})
    after = _get(w, "parcels", near, before[near].headers["etag"])
    assert after.status_code == 200 and _blocking(after.content, near) == blocking - 1
    _assert_kept(w, "parcels", far, before[far])


def _counted(data: bytes, tile: tuple[int, int, int]) -> int:
    return sum(f["properties"]["parcels"] for f in decode(data, *tile)["parcels"]["features"])


def test_a_moved_parcel_is_counted_in_the_low_zoom_cell_of_its_new_place(expiry):
    """The stored centre (migration 0021) follows the geometry: the parcel leaves one grid tile and joins another."""
    w = expiry
    z = TILE_LAYERS["parcels"].detail_zoom - 2
    near, far = _tile_at(w.settings.srid, 270, 270, z), _tile_at(w.settings.srid, FAR_M + 190, 190, z)
    before = {t: _counted(_get(w, "parcels", t).content, t) for t in (near, far)}

    def move(dx: float) -> dict[tuple[int, int, int], int]:
        with get_engine(w.settings).begin() as conn:
            conn.execute(text("UPDATE parcels SET geom = ST_Translate(geom, :dx, 0) WHERE id = :id"),
                         {"dx": dx, "id": w.ids["A44"]})
        return {t: _counted(_get(w, "parcels", t).content, t) - before[t] for t in (near, far)}

    try:
        assert move(FAR_M) == {near: -1, far: +1}
    finally:  # back: the module's other tests find A44 where it was
        assert move(-FAR_M) == {near: 0, far: 0}


def test_an_alignment_change_expires_the_tiles_of_the_old_and_the_new_corridor(expiry):
    """Project 1, a zone over A and B, becomes a 600 m corridor along a line north of them: the tile it left is
    rebuilt, and so is a tile its corridor reaches but its line's own box does not; project 2's, 30 km away, is kept."""
    w = expiry
    srid, z = w.settings.srid, 17
    x0, y0 = WORLD_ORIGIN
    old, far, reached = (_tile_at(srid, 1000, 150, z), _tile_at(srid, FAR_M + 500, 500, z),
                         _tile_at(srid, 1000, 1300, z))
    # The line 100 m south of the reached tile's southern edge, 300 m of corridor each side: it reaches the districts.
    west, south, east, _ = tile_bounds(*reached)
    to_storage = Transformer.from_crs(3857, srid, always_xy=True)
    line_y = to_storage.transform((west + east) / 2, south)[1] - 100
    before = {t: _get(w, "projects", t) for t in (old, far, reached)}
    assert before[old].status_code == 200 and before[reached].status_code == 204
    line = shapely.LineString([(x0 + 700, line_y), (x0 + 1300, line_y)])
    with get_engine(w.settings).begin() as conn:
        revise_alignment(conn, 1, alignment_of(line, 600.0, source_srid=srid), actor="test", today=date(2026, 1, 5))
    assert _get(w, "projects", old, before[old].headers["etag"]).status_code == 204  # the zone is gone from here
    now = _get(w, "projects", reached, before[reached].headers["etag"])
    assert now.status_code == 200
    assert [f["properties"]["code"] for f in decode(now.content, *reached)["projects"]["features"]] == ["Z1"]
    _assert_kept(w, "projects", far, before[far])


def test_an_inserted_and_a_deleted_parcel_expire_their_tiles(expiry):
    w = expiry
    srid = w.settings.srid
    empty, full, far = (_tile_at(srid, 700, 700, 18), _tile_at(srid, FAR_M + 110, 110, 18),
                        _tile_at(srid, FAR_M + 270, 270, 18))
    assert len({empty, full, far}) == 3
    before = {t: _get(w, "parcels", t) for t in (empty, full, far)}
    assert before[empty].status_code == 204 and w.ids["C00"] in _stages(before[full].content, *full)
    with get_engine(w.settings).begin() as conn:
        new = _put_parcel(conn, srid, "A-new", 1, 700, 700)
        conn.execute(text("DELETE FROM parcels WHERE id = :id"), {"id": w.ids["C00"]})
    added = _get(w, "parcels", empty, before[empty].headers["etag"])
    assert added.status_code == 200 and list(_stages(added.content, *empty)) == [new]
    gone = _get(w, "parcels", full, before[full].headers["etag"])
    assert gone.status_code in (200, 204) and gone.headers["etag"] != before[full].headers["etag"]
    assert w.ids["C00"] not in (_stages(gone.content, *full) if gone.status_code == 200 else {})
    _assert_kept(w, "parcels", far, before[far])


def _neighbourhood(srid: int, east_m: float, north_m: float, z: int, gcj02: bool, reach: int = 3):
    """The tiles within ``reach`` of the point's tile, or of where a GCJ-02 basemap draws it."""
    _, x, y = _tile_at(srid, east_m, north_m, z, gcj02)
    return [(z, x + i, y + j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)]


def test_every_tile_an_edit_changes_gets_a_new_key_and_few_others_do(expiry):
    """The oracle is the tiles' bytes: every tile around an edit (plain and GCJ-02, detail and grid zooms, two
    layers) built before and after; a tile whose bytes changed must have a new key, and most unchanged keep theirs."""
    w = expiry
    srid = w.settings.srid
    engine = get_engine(w.settings)

    def snapshot(layer, tiles, gcj02):
        with engine.connect() as conn:
            return {t: (tile_key(conn, layer, *t, "gcj02" if gcj02 else "", srid=srid),
                        vector_tile(conn, layer, *t, srid=srid, gcj02=gcj02)) for t in tiles}

    # A parcel wholly outside a zoom-18 tile, in its buffer (1.5 m east of its eastern edge; the buffer is 2.4 m):
    # that tile draws it.
    z, x, y = _tile_at(srid, 400, 600, 18)
    _, south, east, north = tile_bounds(z, x, y)
    edge_x, edge_y = Transformer.from_crs(3857, srid, always_xy=True).transform(east, (south + north) / 2)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO parcels (code, kind, district_id, geom) VALUES ('EDGE', 'land', 1, "
                          "ST_Multi(ST_MakeEnvelope(:x + 1.5, :y - 5, :x + 11.5, :y + 5, :srid)))"),
                     {"x": edge_x, "y": edge_y, "srid": srid})
    edits = [  # (layer, zoom, where, the statement: run once for each shift, so each run changes something again)
        ("parcels", 18, (edge_x - WORLD_ORIGIN[0], edge_y - WORLD_ORIGIN[1]),
         "UPDATE parcels SET holdout = NOT holdout WHERE code = 'EDGE'"),
        ("parcels", 18, (230, 230), "UPDATE parcels SET holdout = NOT holdout WHERE code = 'A33'"),
        ("parcels", 18, (150, 300), "UPDATE parcels SET geom = ST_Translate(geom, 0, 160) WHERE code = 'A14'"),
        ("parcels", 14, (150, 150), "UPDATE parcels SET stage = CASE stage WHEN 'signed' THEN 'paid' ELSE 'signed' END "
         "WHERE code IN ('A00', 'A11')"),
        ("projects", 16, (FAR_M + 800, 500),
         "UPDATE projects SET footprint = ST_Multi(ST_Buffer(footprint, 60)) WHERE code = 'Z2'"),
    ]
    for layer, z, (east, north), statement in edits:
        for gcj02 in (False, True):
            tiles = _neighbourhood(srid, east, north, z, gcj02)
            before = snapshot(layer, tiles, gcj02)
            with engine.begin() as conn:
                conn.execute(text(statement))
            after = snapshot(layer, tiles, gcj02)
            changed = [t for t in tiles if before[t][1] != after[t][1]]
            rekeyed = [t for t in tiles if before[t][0] != after[t][0]]
            assert changed, f"{statement}: no tile around it changed; the test would prove nothing"
            assert set(changed) <= set(rekeyed), f"{statement} (gcj02={gcj02}): stale {set(changed) - set(rekeyed)}"
            assert len(rekeyed) <= len(tiles) // 3, f"{statement}: {len(rekeyed)} of {len(tiles)} tiles expired"


@pytest.fixture()
def fresh(pg_dir, request):
    """A world of its own for a test that writes the whole city."""
    return _expiry_world(pg_dir, f"tile_expiry_{request.node.name[5:40]}".lower())


def _log(settings) -> dict[str, int]:
    with get_engine(settings).connect() as conn:
        return dict(conn.execute(text("SELECT source, count(*) FROM tile_edits GROUP BY source")).all())


def test_a_whole_city_write_leaves_one_log_row_per_table(fresh):
    s = fresh.settings
    engine = get_engine(s)
    with engine.begin() as conn:  # many small edits, one row each
        for code in ("A00", "A11", "C22", "C44"):
            conn.execute(text("UPDATE parcels SET holdout = true WHERE code = :c"), {"c": code})
        conn.execute(text("UPDATE districts SET name = name || '*' WHERE id = 1"))
    assert _log(s)["parcels"] >= 4 + 2  # the two lattices' inserts, then the four edits
    with engine.begin() as conn:  # statements that touch no row log nothing, and raise no version
        versions = dict(conn.execute(text("SELECT source, version FROM tile_versions")).all())
        log = _log(s)
        conn.execute(text("UPDATE parcels SET stage = 'signed' WHERE code = 'nowhere'"))
        conn.execute(text("DELETE FROM projects WHERE id = 99"))
    assert _log(s) == log
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT source, version FROM tile_versions")).all()) == versions
    with engine.begin() as conn:
        for table in ("parcels", "projects", "districts"):
            conn.execute(text(f"UPDATE {table} SET name = name" if table != "parcels" else
                              "UPDATE parcels SET holdout = holdout"))
    assert _log(s) == {"parcels": 1, "projects": 1, "districts": 1}
    with engine.connect() as conn:
        # The row left is the last version and covers every row of its table.
        assert conn.execute(text(
            "SELECT bool_and(e.version = v.version) FROM tile_edits e JOIN tile_versions v USING (source)")).scalar()
        assert conn.execute(text("SELECT ST_Covers(e.extent, (SELECT ST_Collect(geom) FROM parcels)) "
                                 "FROM tile_edits e WHERE source = 'parcels'")).scalar()


def test_a_new_district_code_expires_the_tiles_of_its_parcels_wherever_they_lie(fresh):
    """Parcel tiles carry their district's code: recoding district A expires A's parcels' tiles, even a parcel of A
    drawn 5 km north of A's outline, and not the tiles of C's parcels. (One box a statement: the box of A and its
    parcels, which stops well short of C.)"""
    s = fresh.settings
    engine = get_engine(s)
    with engine.begin() as conn:
        stray = _put_parcel(conn, s.srid, "A-stray", 1, 200, 5000)
    stray_tile, c_tile = _tile_at(s.srid, 205, 5005, 18), _tile_at(s.srid, FAR_M + 110, 110, 18)
    with engine.connect() as conn:
        before = {t: tile_key(conn, "parcels", *t, srid=s.srid) for t in (stray_tile, c_tile)}
    with engine.begin() as conn:
        conn.execute(text("UPDATE districts SET code = 'a2' WHERE id = 1"))
    with engine.connect() as conn:
        assert tile_key(conn, "parcels", *stray_tile, srid=s.srid) != before[stray_tile]
        assert tile_key(conn, "parcels", *c_tile, srid=s.srid) == before[c_tile]
        data = vector_tile(conn, "parcels", *stray_tile, srid=s.srid)
    assert {f["id"]: f["properties"]["district"] for f in decode(data, *stray_tile)["parcels"]["features"]} == {
        stray: "a2"}


def test_truncate_expires_every_tile(fresh, pg_dir):
    from api.app import create_app

    s = fresh.settings
    tiles = [_tile_at(s.srid, 190, 190, 17), _tile_at(s.srid, FAR_M + 190, 190, 17)]
    with TestClient(create_app(s)) as c:
        fresh.client = c
        before = {t: _get(fresh, "parcels", t) for t in tiles}
        assert all(r.status_code == 200 for r in before.values())
        with get_engine(s).begin() as conn:
            conn.execute(text("TRUNCATE parcels CASCADE"))
        for t in tiles:
            r = _get(fresh, "parcels", t, before[t].headers["etag"])
            assert r.status_code == 204 and r.headers["etag"] != before[t].headers["etag"]
    with get_engine(s).connect() as conn:  # the truncation's version is every parcel tile's base, and the log is empty
        assert conn.execute(text("SELECT version = base FROM tile_versions WHERE source = 'parcels'")).scalar()
    assert "parcels" not in _log(s)
