"""Imagery layers, their tiles, per-parcel statistics, and the post-freeze check with its chips.

Layers, tiles and statistics are for every signed-in user (the maps use the tiles as basemaps);
the post-freeze check is an inspection (纪检监察): inspectors and admins, like ``/checks``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.auth import Principal, Role, require
from api.deps import (
    AreaM2,
    BigId,
    Conn,
    IntId,
    ProjectId,
    Share,
    StrictNumber,
    TileIndex,
    TileZoom,
    get_settings,
    get_today,
)
from api.export import export_response
from gis.imagery.change import EXPORT_COLUMNS, export_rows, post_freeze_check, post_freeze_chip
from gis.imagery.layers import KINDS, get_layer, list_layers
from gis.imagery.render import tile_png
from gis.imagery.stats import MAX_PARCELS, default_threshold, parcel_stats
from gis.io.export import FORMATS
from gis.platform.config import Settings

router = APIRouter(tags=["imagery"])
VIEWER = [Depends(require(Role.viewer))]
INSPECTOR = [Depends(require(Role.inspector))]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]


def _public_facts(layer: dict, principal: Principal) -> dict:
    """A layer as the caller may see it: where the file lies on the server is for admins only."""
    return layer if principal.role == Role.admin else {k: v for k, v in layer.items() if k != "path"}

Config = Annotated[Settings, Depends(get_settings)]
PNG = "image/png"
# Tiles of a registered file do not change; a re-registered file gets a new layer id.
TILE_CACHE = "public, max-age=86400"

OUTPUTS = ("json", *FORMATS)
FOOTPRINT_SQL = "SELECT ST_AsGeoJSON(ST_Transform(footprint, 4326), 7) FROM imagery_layers WHERE id = :id"


@router.get("/imagery")
def imagery_layers(
    conn: Conn, principal: Viewer,
    kind: Annotated[Literal[tuple(KINDS)] | None, Query(description="Only layers of this kind.")] = None,
) -> dict:
    """Every registered layer: kind, date, CRS, grid, extent (WGS 84) and its tile URL template."""
    return {"layers": [_public_facts(layer.as_dict(), principal) for layer in list_layers(conn, kind)]}


@router.get("/imagery/{layer_id}")
def imagery_layer(layer_id: IntId, conn: Conn, principal: Viewer) -> dict:
    """One layer, with its footprint as GeoJSON (WGS 84)."""
    layer = get_layer(conn, layer_id)
    footprint = conn.execute(text(FOOTPRINT_SQL), {"id": layer_id}).scalar_one()
    return {**_public_facts(layer.as_dict(), principal), "footprint": json.loads(footprint)}


@router.get("/imagery/{layer_id}/tiles/{z}/{x}/{y}.png", response_class=Response, dependencies=VIEWER)
def imagery_tile(layer_id: IntId, z: TileZoom, x: TileIndex, y: TileIndex, conn: Conn) -> Response:
    """A 256 px Web Mercator tile, reprojected on the fly; 204 when the tile misses the image."""
    png = tile_png(get_layer(conn, layer_id), z, x, y)
    if png is None:
        return Response(status_code=204, headers={"Cache-Control": TILE_CACHE})
    return Response(png, media_type=PNG, headers={"Cache-Control": TILE_CACHE})


class StatsRequest(BaseModel):
    parcel_ids: list[BigId] = Field(min_length=1, max_length=MAX_PARCELS)
    threshold: StrictNumber | None = Field(default=None, ge=-1e6, le=1e6, description="Share above this value; "
                                           "heights default to GIS_IMAGERY_HEIGHT_THRESHOLD_M.")
    band: int = Field(default=1, ge=1, le=1000, strict=True)


@router.post("/imagery/{layer_id}/stats", dependencies=VIEWER)
def imagery_stats(layer_id: IntId, body: StatsRequest, conn: Conn, settings: Config) -> dict:
    """Zonal statistics of the layer for each parcel: mean, min, max, share above the threshold, pixel count."""
    layer = get_layer(conn, layer_id)
    threshold = body.threshold if body.threshold is not None else default_threshold(
        layer, settings.imagery_height_threshold_m
    )
    rows = parcel_stats(conn, layer_id, body.parcel_ids, threshold=threshold, band=body.band)
    return {"layer_id": layer_id, "band": body.band, "threshold": threshold, "parcels": rows}


class PostFreezeQuery(BaseModel):
    kind: Literal["hag", "dsm", "classification"] | None = None
    before: IntId | None = None
    after: IntId | None = None
    threshold_m: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    min_area_m2: AreaM2 | None = None
    min_share: Share | None = None


def _epochs_query(q: PostFreezeQuery, before_id: int, after_id: int) -> str:
    """The query string that pins a chip to the epochs the check compared."""
    return f"?before={before_id}&after={after_id}" + (f"&kind={q.kind}" if q.kind else "")


@router.get("/projects/{project_id}/checks/post-freeze", response_model=None, dependencies=INSPECTOR)
def post_freeze(
    project_id: ProjectId,
    request: Request,
    conn: Conn,
    settings: Config,
    today: Annotated[date, Depends(get_today)],
    q: Annotated[PostFreezeQuery, Query()],
    output: Annotated[str, Query(alias="format", pattern="^(" + "|".join(OUTPUTS) + ")$",
                                 description="json, or a parcel list file: " + ", ".join(FORMATS) + ".")] = "json",
    flagged_only: bool = False,
) -> dict | Response:
    """Building or planting after the project's freeze: per parcel of the footprint, the changed area and share
    between an epoch before and one after the freeze date, and the parcels flagged, with links to their chips.
    ``format=geojson`` is the check as a map layer."""
    result = post_freeze_check(
        conn, project_id, settings, kind=q.kind, before_id=q.before, after_id=q.after,
        threshold_m=q.threshold_m, min_area_m2=q.min_area_m2, min_share=q.min_share,
    )
    if output != "json":
        return export_response(
            export_rows(conn, result, flagged_only=flagged_only), f"post-freeze_{result.project_code}", output,
            srid=settings.srid, today=today, columns=EXPORT_COLUMNS, title="冻结后抢建抢栽核查",
            tz=settings.city_timezone,
        )
    body = result.as_dict()
    pin = _epochs_query(q, result.before.id, result.after.id)
    prefix = f"{request.scope.get('root_path', '')}/projects/{project_id}/checks/post-freeze"
    for parcel in body["parcels"]:
        if parcel["flagged"]:
            parcel["chips"] = {e: f"{prefix}/{parcel['parcel_id']}/{e}.png{pin}" for e in ("before", "after")}
    if flagged_only:
        body["parcels"] = [p for p in body["parcels"] if p["flagged"]]
    return body


@router.get("/projects/{project_id}/checks/post-freeze/{parcel_id}/{epoch}.png", response_class=Response,
            dependencies=INSPECTOR)
def post_freeze_chip_png(
    project_id: ProjectId, parcel_id: BigId, epoch: Literal["before", "after"], conn: Conn,
    q: Annotated[PostFreezeQuery, Query()],
) -> Response:
    """A small picture of the parcel in the before or after epoch, its outline drawn in red."""
    png = post_freeze_chip(conn, project_id, parcel_id, epoch, kind=q.kind, before_id=q.before, after_id=q.after)
    return Response(png, media_type=PNG)
