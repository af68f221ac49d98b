"""Vector tiles (Mapbox Vector Tile) of parcels, projects and districts for the maps."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.auth import Role, require
from api.deps import TILE_INDEX_RANGE, TILE_ZOOM_RANGE, Database, get_database, get_settings
from api.versioned import versioned_response
from gis.maps.tile_cache import tile_key
from gis.maps.tiles import MEDIA_TYPE, vector_tile
from gis.platform.config import Settings

router = APIRouter(tags=["tiles"], dependencies=[Depends(require(Role.viewer))])
# Stages change during the day: a browser may reuse a tile for a minute; no shared cache keeps it.
TILE_CACHE = {"Cache-Control": "private, max-age=60"}


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", response_class=Response,
            responses={200: {"content": {MEDIA_TYPE: {}}}, 204: {"description": "No feature in this tile."},
                       503: {"description": "Busy: no tile slot came free in time; see Retry-After."}})
async def tile(
    layer: str,
    z: Annotated[int, Path(json_schema_extra=TILE_ZOOM_RANGE)],  # ranges stated; gis.maps.tiles checks them
    x: Annotated[int, Path(json_schema_extra=TILE_INDEX_RANGE)],
    y: Annotated[int, Path(json_schema_extra=TILE_INDEX_RANGE)],
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    settings: Annotated[Settings, Depends(get_settings)],
    shift: Annotated[Literal["gcj02"] | None, Query(description="gcj02: drawn for a GCJ-02 basemap.")] = None,
) -> Response:
    """A vector tile (EPSG:3857, extent 4096, buffer 64) of parcels (from zoom 12; up to zoom 14 as grid cells
    with counts), projects or districts; 204 when empty. Each carries an ETag of its own data version: a repeat
    with ``If-None-Match`` is 304 until a write touches what this tile draws (an edit elsewhere in the city leaves
    it valid). Built tiles are kept in memory
    (``gis.maps.tile_cache``); new ones are built a few at a time (``tile_concurrency``), and a request that
    cannot start within ``tile_queue_timeout_s`` is answered 503 with Retry-After."""
    return await cached_tile(request, db, settings, layer, z, x, y, shift=shift or "")


async def cached_tile(request: Request, db: Database, settings: Settings, layer: str, z: int, x: int, y: int, *,
                      shift: str = "", media_type: str = MEDIA_TYPE) -> Response:
    """The tile from the app's cache, built on a miss; 304 when ``If-None-Match`` names its current version, the
    versions of the edits logged in its own box (``gis.maps.tile_cache.tile_key``).
    The maps' tiles and the OGC API's are the same tiles, so both answer through here."""
    key = await db.read(tile_key, layer, z, x, y, shift, srid=settings.srid)
    build = partial(db.read_within, request.app.state.tile_capacity, vector_tile, layer, z, x, y,
                    srid=settings.srid, gcj02=shift == "gcj02")
    return await versioned_response(request, request.app.state.tile_cache, key, build,
                                    lambda data, headers: tile_response(data, media_type, headers))


def tile_response(data: bytes | None, media_type: str, headers: dict[str, str] | None = None) -> Response:
    """The tile, or 204 when it holds no feature; cacheable by the browser for a minute unless ``headers`` say
    otherwise."""
    headers = headers or TILE_CACHE
    if data is None:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=media_type, headers=headers)
