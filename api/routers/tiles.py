"""Vector tiles (Mapbox Vector Tile) of parcels, projects and districts for the maps."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from api.auth import Role, require
from api.deps import TILE_INDEX_RANGE, TILE_ZOOM_RANGE, Conn, get_settings
from gis.config import Settings
from gis.tiles import MEDIA_TYPE, vector_tile

router = APIRouter(tags=["tiles"], dependencies=[Depends(require(Role.viewer))])
# Stages change during the day: a browser may reuse a tile for a minute; no shared cache keeps it.
TILE_CACHE = {"Cache-Control": "private, max-age=60"}


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response,
            responses={200: {"content": {MEDIA_TYPE: {}}}, 204: {"description": "No feature in this tile."}})
def tile(
    layer: str,
    z: Annotated[int, Path(json_schema_extra=TILE_ZOOM_RANGE)],  # ranges stated; gis.tiles checks them
    x: Annotated[int, Path(json_schema_extra=TILE_INDEX_RANGE)],
    y: Annotated[int, Path(json_schema_extra=TILE_INDEX_RANGE)],
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
    shift: Annotated[Literal["gcj02"] | None, Query(description="gcj02: drawn for a GCJ-02 basemap.")] = None,
) -> Response:
    """A vector tile (EPSG:3857, extent 4096, buffer 64) of parcels (from zoom 12), projects or districts;
    204 when empty."""
    data = vector_tile(conn, layer, z, x, y, srid=settings.srid, gcj02=shift == "gcj02")
    if data is None:
        return Response(status_code=204, headers=TILE_CACHE)
    return Response(data, media_type=MEDIA_TYPE, headers=TILE_CACHE)
