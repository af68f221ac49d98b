"""Ad hoc overlap queries: any line (with a corridor width) or polygon against the parcels."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import Principal, Role, require
from api.deps import NO_NUL, Conn, IntId, StrictNumber, corridor_width, get_settings, get_today, get_tolerance
from gis.blockers import Tolerance
from gis.config import Settings
from gis.geometry_input import QueryGeometry, city_extent, parse_geometry
from gis.overlaps import compare_alignments, distance_bands, overlap_report

router = APIRouter(prefix="/overlaps", tags=["overlaps"], dependencies=[Depends(require(Role.viewer))])

Tol = Annotated[Tolerance, Depends(get_tolerance)]
Today = Annotated[date, Depends(get_today)]
Config = Annotated[Settings, Depends(get_settings)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]


Crs = Annotated[str, Field(max_length=40, pattern=NO_NUL)] | IntId | None


class OverlapRequest(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON geometry or Feature: a (Multi)LineString or (Multi)Polygon.")
    crs: Crs = Field(default=None, description="EPSG code; 4326 by default.")
    width_m: StrictNumber | None = corridor_width()
    with_geometry: bool = False


class BandsRequest(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON (Multi)LineString: the centre line.")
    crs: Crs = None
    bands: list[Annotated[StrictNumber, Field(json_schema_extra={"minimum": 0, "maximum": 5000})]] = Field(default=[0, 30, 60, 120, 300], min_length=1, max_length=50,
                                      description="Band edges in metres from the line (0 to 5000, ascending).")


class Candidate(BaseModel):
    name: str = Field(max_length=100, pattern=NO_NUL)
    geometry: dict[str, Any]
    crs: Crs = None
    width_m: StrictNumber | None = corridor_width()


class CompareRequest(BaseModel):
    candidates: list[Candidate] = Field(min_length=2, max_length=10)


def _parse(conn: Connection, settings: Settings, geometry: dict, crs: object, width: float | None,
           where: str = "geometry", needs_footprint: bool = True) -> QueryGeometry:
    return parse_geometry(geometry, crs=crs, width_m=width, working_srid=settings.srid,
                          extent=city_extent(conn), where=where, width_where=where.replace("geometry", "width_m"),
                          needs_footprint=needs_footprint)


@router.post("")
def overlaps(body: OverlapRequest, conn: Conn, settings: Config, tolerance: Tol, today: Today,
             principal: Viewer) -> dict:
    """Every parcel the line's corridor or the polygon overlaps, with totals and totals by district."""
    query = _parse(conn, settings, body.geometry, body.crs, body.width_m)
    return overlap_report(conn, query, settings.srid, tolerance, today, with_geometry=body.with_geometry,
                          reveal_personal=principal.reveal_personal)


@router.post("/bands")
def bands(body: BandsRequest, conn: Conn, settings: Config, principal: Viewer) -> dict:
    """Parcels near a centre line in distance bands, each with its totals."""
    query = _parse(conn, settings, body.geometry, body.crs, None, needs_footprint=False)
    return distance_bands(conn, query, settings.srid, body.bands, reveal_personal=principal.reveal_personal)


@router.post("/compare")
def compare(body: CompareRequest, conn: Conn, settings: Config, tolerance: Tol, today: Today,
            principal: Viewer) -> dict:
    """Candidate alignments side by side (比选)."""
    candidates = [
        (c.name, _parse(conn, settings, c.geometry, c.crs, c.width_m, where=f"candidates[{i}].geometry"))
        for i, c in enumerate(body.candidates)
    ]
    return compare_alignments(conn, candidates, settings.srid, tolerance, today,
                              reveal_personal=principal.reveal_personal)
