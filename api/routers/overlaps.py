"""Ad hoc overlap queries: any line (with a corridor width) or polygon against the parcels."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import Principal, Role, require
from api.deps import NO_NUL, Conn, IntId, StrictNumber, corridor_width, get_settings, get_today, get_tolerance
from api.export import ListFormat, export_response, workbook_response
from gis.analysis.overlaps import (
    BAND_EXPORT_COLUMNS,
    COMPARE_EXPORT_COLUMNS,
    COMPARE_SUMMARY_COLUMNS,
    OVERLAP_EXPORT_COLUMNS,
    band_export_rows,
    compare_alignments,
    compare_export,
    crossings,
    distance_bands,
    overlap_export_rows,
    overlap_hits,
    overlap_report,
)
from gis.domain.geometry import QueryGeometry, city_extent, parse_geometry
from gis.domain.tolerance import Tolerance
from gis.io.export import Sheet
from gis.platform.config import Settings

router = APIRouter(prefix="/overlaps", tags=["overlaps"], dependencies=[Depends(require(Role.viewer))])

Tol = Annotated[Tolerance, Depends(get_tolerance)]
Today = Annotated[date, Depends(get_today)]
Config = Annotated[Settings, Depends(get_settings)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Format = Annotated[ListFormat, Query(description="json (the answer), or the parcels as a file: geojson, csv (UTF-8 "
                                                 "with BOM), xlsx (with a 合计 row), gpkg, shp (zipped), kml, fgb.")]


Crs = Annotated[str, Field(max_length=40, pattern=NO_NUL)] | IntId | None


class OverlapRequest(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON geometry or Feature: a (Multi)LineString or (Multi)Polygon.")
    crs: Crs = Field(default=None, description="EPSG code; 4326 by default.")
    width_m: StrictNumber | None = corridor_width()
    with_geometry: bool = False


class CrossingsRequest(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON geometry or Feature: a (Multi)LineString or (Multi)Polygon.")
    crs: Crs = Field(default=None, description="EPSG code; 4326 by default.")


class BandsRequest(BaseModel):
    geometry: dict[str, Any] = Field(description="GeoJSON (Multi)LineString: the centre line.")
    crs: Crs = None
    bands: list[Annotated[StrictNumber, Field(json_schema_extra={"minimum": 0, "maximum": 5000})]] = Field(
                                      default=[0, 30, 60, 120, 300], min_length=1, max_length=50,
                                      description="Band edges in metres from the line (0 to 5000, ascending).")


class Candidate(BaseModel):
    name: str = Field(max_length=100, pattern=NO_NUL)
    geometry: dict[str, Any]
    crs: Crs = None
    width_m: StrictNumber | None = corridor_width()


class CompareRequest(BaseModel):
    candidates: list[Candidate] = Field(min_length=2, max_length=10)


def _json(answer: dict[str, Any]) -> Response:
    # orjson writes thousands of parcels in milliseconds, where FastAPI's encoder takes a tenth of a second.
    return Response(orjson.dumps(answer), media_type="application/json")


def _parse(conn: Connection, settings: Settings, geometry: dict, crs: object, width: float | None,
           where: str = "geometry", needs_footprint: bool = True) -> QueryGeometry:
    return parse_geometry(geometry, crs=crs, width_m=width, working_srid=settings.srid,
                          extent=city_extent(conn), where=where, width_where=where.replace("geometry", "width_m"),
                          needs_footprint=needs_footprint)


@router.post("", response_model=None)
def overlaps(body: OverlapRequest, conn: Conn, settings: Config, tolerance: Tol, today: Today,
             principal: Viewer, format: Format = "json") -> Response:
    """Every parcel the line's corridor or the polygon overlaps, with totals and totals by district; with
    ``format`` the parcels as a file (占压分析), the same rows and areas."""
    query = _parse(conn, settings, body.geometry, body.crs, body.width_m)
    if format == "json":
        return _json(overlap_report(conn, query, settings.srid, tolerance, today, with_geometry=body.with_geometry,
                                    reveal_personal=principal.reveal_personal))
    # Personal data is masked by the writer, by the caller's role, as in every other download.
    hits = overlap_hits(conn, query, settings.srid, tolerance, today, reveal_personal=True, with_wkb=True)
    return export_response(overlap_export_rows(hits), "占压分析", format, srid=settings.srid, today=today,
                           columns=OVERLAP_EXPORT_COLUMNS, reveal_personal=principal.reveal_personal,
                           title="占压分析 地块清单", tz=settings.city_timezone)


@router.post("/bands", response_model=None)
def bands(body: BandsRequest, conn: Conn, settings: Config, today: Today, principal: Viewer,
          format: Format = "json") -> Response:
    """Parcels near a centre line in distance bands, each with its totals; with ``format`` the parcels as a file,
    band by band."""
    query = _parse(conn, settings, body.geometry, body.crs, None, needs_footprint=False)
    if format == "json":
        return _json(distance_bands(conn, query, settings.srid, body.bands, reveal_personal=principal.reveal_personal))
    answer = distance_bands(conn, query, settings.srid, body.bands, reveal_personal=True, with_wkb=True)
    return export_response(band_export_rows(answer), "距离带分析", format, srid=settings.srid, today=today,
                           columns=BAND_EXPORT_COLUMNS, reveal_personal=principal.reveal_personal,
                           title="距离带分析 地块清单", tz=settings.city_timezone)


@router.post("/compare", response_model=None)
def compare(body: CompareRequest, conn: Conn, settings: Config, tolerance: Tol, today: Today,
            principal: Viewer, format: Format = "json") -> Response:
    """Candidate alignments side by side (比选). As a file: XLSX has the side-by-side sheet and one sheet per
    candidate; the other formats list every candidate's parcels with the candidate's name (方案)."""
    candidates = [
        (c.name, _parse(conn, settings, c.geometry, c.crs, c.width_m, where=f"candidates[{i}].geometry"))
        for i, c in enumerate(body.candidates)
    ]
    if format == "json":
        return _json(compare_alignments(conn, candidates, settings.srid, tolerance, today,
                                        reveal_personal=principal.reveal_personal))
    summary, parcels = compare_export(conn, candidates, settings.srid, tolerance, today)
    if format == "xlsx":
        sheets = [Sheet("方案比选", summary, COMPARE_SUMMARY_COLUMNS, unit="个方案"),
                  *(Sheet(name, rows, COMPARE_EXPORT_COLUMNS) for (name, _), rows in zip(candidates, parcels))]
        return workbook_response(sheets, "方案比选", today=today, reveal_personal=principal.reveal_personal,
                                 tz=settings.city_timezone)
    return export_response([row for rows in parcels for row in rows], "方案比选", format, srid=settings.srid,
                           today=today, columns=COMPARE_EXPORT_COLUMNS, reveal_personal=principal.reveal_personal,
                           title="方案比选 地块清单", tz=settings.city_timezone)


@router.post("/crossings")
def crossings_route(body: CrossingsRequest, conn: Conn, settings: Config) -> dict[str, Any]:
    """Which active projects' red lines the drawn line (or polygon) meets, where it crosses them and how much of
    it lies inside each; the line's length (the polygon's area), in metres of the working CRS."""
    query = _parse(conn, settings, body.geometry, body.crs, None, needs_footprint=False)
    return crossings(conn, query, settings.srid)
