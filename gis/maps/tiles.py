"""Mapbox vector tiles of the city's parcels, projects and districts, built in PostGIS.

Each tile is one ``ST_AsMVT`` over ``ST_AsMVTGeom`` in Web Mercator; rows are found through the
layer's spatial index with the tile envelope (plus the buffer) transformed to the working CRS, never
the column. Properties are what a map needs to draw and pick a feature, no personal data: a
parcel's code, kind, stage, holdout flag and district code, with its id as the feature id.

Parcels start at zoom ``min_zoom`` (below it a tile of a large city would hold every parcel of a
county): lower zooms answer "empty".
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


TILE_LAYERS: dict[str, TileLayer] = {
    "parcels": TileLayer(
        "parcels t JOIN districts d ON d.id = t.district_id", "t.geom",
        "t.id, t.code, t.kind, t.stage, t.holdout, d.code AS district", min_zoom=12,
    ),
    "projects": TileLayer("projects t", "t.footprint", "t.id, t.code, t.name, t.kind"),
    "districts": TileLayer("districts t", "t.geom", "t.id, t.code, t.name"),
}

_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
           ST_Transform(ST_Expand(ST_Translate(ST_TileEnvelope(:z, :x, :y, margin => :margin), -:dx, -:dy), :slack),
                        :srid) AS query
), features AS (
    SELECT {columns},
           ST_AsMVTGeom(ST_Affine(ST_Transform({geom}, 3857), :a, :b, :d, :e, :xoff, :yoff),
                        bounds.tile, :extent, :buffer) AS geom
    FROM {source}, bounds
    WHERE {geom} && bounds.query
    ORDER BY t.id  -- the same tile is the same bytes whichever plan the statistics of the day pick
)
SELECT ST_AsMVT(features, :layer, :extent, 'geom', 'id') FROM features WHERE geom IS NOT NULL
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


def _display_shift(z: int, x: int, y: int) -> dict[str, float]:
    """Parameters moving the tile's features to GCJ-02: an affine map fitted over the tile, and for the
    index search, the inverse of its translation widened by what its linear part can add."""
    size = 2 * _HALF_WORLD / (1 << z)
    cx, cy = -_HALF_WORLD + (x + 0.5) * size, _HALF_WORLD - (y + 0.5) * size
    a, b, d, e, xoff, yoff = mercator_affine(cx, cy, size / 2)
    dx, dy = a * cx + b * cy + xoff - cx, d * cx + e * cy + yoff - cy
    slack = (abs(a - 1) + abs(b) + abs(d) + abs(e - 1)) * size + 1.0
    return {"a": a, "b": b, "d": d, "e": e, "xoff": xoff, "yoff": yoff, "dx": dx, "dy": dy, "slack": slack}


def vector_tile(
    conn: Connection, layer: str, z: int, x: int, y: int, *, srid: int, gcj02: bool = False
) -> bytes | None:
    """The tile's bytes, or None when it holds no feature.

    ``gcj02`` draws the tile for a GCJ-02 basemap (``gis.maps.gcj02.mercator_affine``); the data is untouched.
    """
    spec = TILE_LAYERS.get(layer)
    if spec is None:
        raise NotFound(f"no tile layer {layer!r}; layers are {', '.join(TILE_LAYERS)}")
    check_tile(z, x, y)
    if z < spec.min_zoom:
        return None
    sql = _SQL.format(columns=spec.columns, geom=spec.geom, source=spec.source)
    data = conn.execute(text(sql), {
        "z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "srid": srid, "extent": EXTENT, "buffer": BUFFER,
        "layer": layer, **(_display_shift(z, x, y) if gcj02 else _IDENTITY),
    }).scalar_one()
    return bytes(data) if data else None
