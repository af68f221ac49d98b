"""Mapbox vector tiles of the city's parcels, projects and districts, built in PostGIS.

Each tile is one ``ST_AsMVT`` over ``ST_AsMVTGeom`` in Web Mercator; rows are found through the
layer's spatial index with the tile envelope (plus the buffer) transformed to the working CRS, never
the column. Properties are what a map needs to draw and pick a feature, no personal data: a
parcel's code, kind, stage, holdout flag and district code, with its id as the feature id.

Parcels start at zoom ``min_zoom`` (below it a tile of a large city would hold every parcel of a
county): lower zooms answer "empty". From there up to ``detail_zoom`` single parcels are a few pixels
wide and a tile of a 1,000,000-parcel city held 100,000 of them (6.6 MB): those zooms are generalised
into a grid of ``CELLS`` × ``CELLS`` squares a tile, each drawn once with what the map colours by
(the most common stage and district of the parcels whose centre falls in it, whether any is a holdout)
and the counts (``parcels``, ``blocking``: not yet cleared). A tile then holds at most ``CELLS``²
features, whatever the city's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.maps.gcj02 import mercator_affine
from gis.platform.errors import InvalidInput, NotFound

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


@dataclass(frozen=True)
class TileLayer:
    source: str  # FROM clause; the layer's table is aliased t
    geom: str
    columns: str  # the feature id column "id" first, then the properties
    min_zoom: int = 0
    detail_zoom: int = 0  # below it (from min_zoom) the layer is drawn as grid cells (_CELLS_SQL)


TILE_LAYERS: dict[str, TileLayer] = {
    "parcels": TileLayer(
        "parcels t JOIN districts d ON d.id = t.district_id", "t.geom",
        "t.id, t.code, t.kind, t.stage, t.holdout, d.code AS district", min_zoom=12, detail_zoom=15,
    ),
    "projects": TileLayer("projects t", "t.footprint", "t.id, t.code, t.name, t.kind"),
    "districts": TileLayer("districts t", "t.geom", "t.id, t.code, t.name"),
}

# The tile in Web Mercator, and the box to search in the working CRS: the tile with its buffer, moved back by the
# display shift's translation and widened by what its linear part can add. A tile is made of the rows whose box meets
# ``query`` and of nothing else (grid cells too), which is what lets the tile cache expire it by that box alone.
SEARCH_BOUNDS = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Expand(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), :slack),
                        :srid) AS query
)"""
# MATERIALIZED: inlined, the final filter on geom is pushed into the scan and each feature is clipped twice.
_SQL = SEARCH_BOUNDS + """, features AS MATERIALIZED (
    SELECT {columns},
           ST_AsMVTGeom({mercator}, bounds.tile, :extent, :buffer) AS geom
    FROM {source}, bounds
    WHERE {geom} && bounds.query
    ORDER BY t.id  -- the same tile is the same bytes whichever plan the statistics of the day pick
)
SELECT ST_AsMVT(features, :layer, :extent, 'geom', 'id') FROM features WHERE geom IS NOT NULL
"""
CELLS = 64  # grid cells a side in a generalised tile: 4 pixels of a 256-pixel tile
# The generalised tile: parcels counted by the grid cell of their box's centre in Web Mercator (so the cells line
# up with the tile's own grid), then each cell one square. The centre is stored with the parcel (``centre_3857``,
# migration 0021), so a tile reads it instead of transforming a point per parcel. The cells are MATERIALIZED and
# the point moved by an OFFSET 0 sub-select: inlined, each cell's index and the shift were computed once per use
# (six times a row) and districts joined row by row.
_CELLS_SQL = SEARCH_BOUNDS + """, grid AS (
    SELECT tile, query, ST_XMin(tile) AS x0, ST_YMin(tile) AS y0, (ST_XMax(tile) - ST_XMin(tile)) / :cells AS size
    FROM bounds
), cells AS MATERIALIZED (
    SELECT floor((ST_X(c.centre) - g.x0) / g.size) AS i, floor((ST_Y(c.centre) - g.y0) / g.size) AS j,
           t.stage, t.holdout, d.code AS district
    FROM grid g, parcels t JOIN districts d ON d.id = t.district_id,
         LATERAL (SELECT ST_Affine(t.centre_3857, :a, :b, :d, :e, :xoff, :yoff) AS centre OFFSET 0) c
    WHERE t.geom && g.query
), counted AS (
    SELECT i, j, count(*) AS parcels, count(*) FILTER (WHERE stage <> 'cleared') AS blocking,
           mode() WITHIN GROUP (ORDER BY stage) AS stage, bool_or(holdout) AS holdout,
           mode() WITHIN GROUP (ORDER BY district) AS district
    FROM cells
    WHERE i >= 0 AND i < :cells AND j >= 0 AND j < :cells
    GROUP BY i, j
), features AS (
    SELECT n.parcels, n.blocking, n.stage, n.holdout, n.district,
           ST_AsMVTGeom(ST_MakeEnvelope(g.x0 + n.i * g.size, g.y0 + n.j * g.size, g.x0 + (n.i + 1) * g.size,
                                        g.y0 + (n.j + 1) * g.size, 3857), g.tile, :extent, 0) AS geom
    FROM counted n, grid g
    ORDER BY n.i, n.j
)
SELECT ST_AsMVT(features, :layer, :extent, 'geom') FROM features WHERE geom IS NOT NULL
"""
_IDENTITY = {"a": 1.0, "b": 0.0, "d": 0.0, "e": 1.0, "xoff": 0.0, "yoff": 0.0, "dx": 0.0, "dy": 0.0, "slack": 0.0}
_HALF_WORLD = 20037508.342789244


def check_tile(z: int, x: int, y: int) -> None:
    """422 for a zoom out of range, 404 for a column or row that zoom does not have."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"zoom must be between 0 and {MAX_ZOOM}", where="z")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise NotFound(f"zoom {z} has columns and rows 0 to {n - 1}; there is no tile {z}/{x}/{y}")


def tile_layer(layer: str, z: int, x: int, y: int) -> TileLayer:
    """The layer, once the tile's address is checked (404 for a layer that does not exist)."""
    spec = TILE_LAYERS.get(layer)
    if spec is None:
        raise NotFound(f"no tile layer {layer!r}; layers are {', '.join(TILE_LAYERS)}")
    check_tile(z, x, y)
    return spec


def tile_size(z: int) -> float:
    """A zoom-``z`` tile's side in Web Mercator metres."""
    return 2 * _HALF_WORLD / (1 << z)


def _display_shift(z: int, x: int, y: int) -> dict[str, float]:
    """Parameters moving the tile's features to GCJ-02: an affine map fitted over the tile, and for the
    index search, the inverse of its translation widened by what its linear part can add."""
    size = tile_size(z)
    cx, cy = -_HALF_WORLD + (x + 0.5) * size, _HALF_WORLD - (y + 0.5) * size
    a, b, d, e, xoff, yoff = mercator_affine(cx, cy, size / 2)
    dx, dy = a * cx + b * cy + xoff - cx, d * cx + e * cy + yoff - cy
    slack = (abs(a - 1) + abs(b) + abs(d) + abs(e - 1)) * size + 1.0
    return {"a": a, "b": b, "d": d, "e": e, "xoff": xoff, "yoff": yoff, "dx": dx, "dy": dy, "slack": slack}


def search_params(z: int, x: int, y: int, *, srid: int, gcj02: bool = False) -> dict[str, float]:
    """The bound parameters of ``SEARCH_BOUNDS`` for a tile, drawn for a GCJ-02 basemap or not."""
    return {"z": z, "x": x, "y": y, "srid": srid, "margin": BUFFER / EXTENT,
            **(_display_shift(z, x, y) if gcj02 else _IDENTITY)}


def vector_tile(
    conn: Connection, layer: str, z: int, x: int, y: int, *, srid: int, gcj02: bool = False
) -> bytes | None:
    """The tile's bytes, or None when it holds no feature.

    ``gcj02`` draws the tile for a GCJ-02 basemap (``gis.maps.gcj02.mercator_affine``); the data is untouched.
    """
    spec = tile_layer(layer, z, x, y)
    if z < spec.min_zoom:
        return None
    params = search_params(z, x, y, srid=srid, gcj02=gcj02) | {"extent": EXTENT, "layer": layer}
    if z < spec.detail_zoom:
        data = conn.execute(text(_CELLS_SQL), params | {"cells": CELLS}).scalar_one()
    else:
        mercator = f"ST_Transform({spec.geom}, 3857)"
        if gcj02:  # the plain basemap's shift is the identity, and copying every geometry through it costs 8 % at z15
            mercator = f"ST_Affine({mercator}, :a, :b, :d, :e, :xoff, :yoff)"
        sql = _SQL.format(columns=spec.columns, geom=spec.geom, source=spec.source, mercator=mercator)
        data = conn.execute(text(sql), params | {"buffer": BUFFER}).scalar_one()
    return bytes(data) if data else None
