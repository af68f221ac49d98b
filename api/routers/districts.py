"""Districts: their list, boundaries imported from a planner's file, renaming, deleting; and district against
district progress and ranking.

Fixed paths (``/districts/progress``, ``/districts/imports``) are declared before ``/{code}``; the district
map (``GET /districts/map``) lives in the maps router, and no GET route here takes ``/{code}``.

The writes run through ``Database.run``, which commits before it returns: the answer is built only once the
transaction has committed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, Role, require
from api.deps import NO_NUL, Conn, Database, Day, IntId, Text, get_database, get_settings, get_today, get_tolerance
from api.export import ListFormat, export_response
from api.uploads import saved_upload, upload_name
from gis.analysis.progress import PROGRESS_EXPORT_COLUMNS, district_progress, progress_export_rows
from gis.domain.tolerance import Tolerance
from gis.io.profiles import parse_mapping
from gis.platform.config import Settings
from gis.records import districts as store
from gis.records.targets import add_district_targets

router = APIRouter(prefix="/districts", tags=["districts"], dependencies=[Depends(require(Role.viewer))])

Admin = Annotated[Principal, Depends(require(Role.admin))]
Db = Annotated[Database, Depends(get_database)]


@router.get("")
async def get_districts(
    db: Db,
    geometry: Annotated[bool, Query(description="Include each boundary as GeoJSON (WGS 84).")] = False,
) -> dict[str, Any]:
    """Every district: code, name, parcels in it, area in m² and mu."""
    return {"districts": await db.read(store.list_districts, with_geometry=geometry)}


@router.get("/progress", response_model=None)
def progress(
    conn: Conn,
    tolerance: Annotated[Tolerance, Depends(get_tolerance)],
    today: Annotated[date, Depends(get_today)],
    settings: Annotated[Settings, Depends(get_settings)],
    project_id: Annotated[IntId | None, Query(description="Only this project.")] = None,
    as_of: Annotated[Day | None, Query(description="The ranking and targets at the end of this day, replayed "
                                                    "from the history (default today).")] = None,
    format: Annotated[ListFormat, Query(description="json, or the ranking as a file (one row per district, with "
                                                    "its boundary in the GIS formats): geojson, csv, xlsx, gpkg, "
                                                    "shp (zipped), kml, fgb.")] = "json",
) -> dict[str, Any] | Response:
    """Per district and per project: total, cleared, remaining, percent, change over 1/3/7 days, rank; and the
    district's targets of the year and the quarter (年度任务: done, percent, on pace or behind). With ``as_of``,
    everything is replayed from the history to the end of that day."""
    day = as_of or today
    answer = district_progress(conn, tolerance, day, tz=settings.city_timezone, project_id=project_id,
                               replay=as_of is not None)
    add_district_targets(conn, answer, tolerance, day, tz=settings.city_timezone)
    if format == "json":
        return answer
    return export_response(progress_export_rows(conn, answer), "片区进度比拼", format, srid=settings.srid,
                           today=day, columns=PROGRESS_EXPORT_COLUMNS, title="片区征迁进度比拼",
                           tz=settings.city_timezone)


@router.post("/imports")
async def post_import(
    principal: Admin,
    db: Db,
    file: Annotated[UploadFile, File(description="GeoPackage, zipped Shapefile, GeoJSON, KML, FlatGeobuf or DXF")],
    map_: Annotated[list[Text] | None, Form(alias="map", description='"COLUMN=code", "COLUMN=name" or '
                                                                     '"COLUMN=code,name"; repeat the field')] = None,
    layer: Annotated[Text | None, Form(max_length=200,
                                       description="The layer to read; in a DXF drawing, the CAD layer")] = None,
    crs: Annotated[IntId | None, Form(description="EPSG code of the coordinates (a DXF states none)")] = None,
    dry_run: Annotated[bool, Form(description="Check and report, write nothing")] = False,
) -> dict[str, Any]:
    """Import district boundaries (admins): replaced by code, parcels reassigned by largest overlap, all or
    nothing. 200 with the report once committed; 422 ``{"detail", "where"}`` for a refusal (overlaps, bad
    values, no polygons, CRS to declare), with nothing written; uploads over the configured size get 413."""
    mapping = parse_mapping(map_)
    async with saved_upload(file) as path:
        report = await db.run(store.import_districts, path, mapping=mapping, layer=layer or None, crs=crs,
                              actor=principal.name, dry_run=dry_run, file_name=upload_name(file))
    return report.as_dict()


class DistrictPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=store.MAX_NAME_CHARS, pattern=NO_NUL,
                      description="The district's new name.")


@router.patch("/{code}")
async def patch_district(code: str, body: DistrictPatch, principal: Admin, db: Db) -> dict[str, Any]:
    """Rename a district (admins). 404 for an unknown code, 409 for a name another district has."""
    return await db.run(store.rename_district, code, body.name, principal.name)


@router.delete("/{code}", status_code=204, dependencies=[Depends(require(Role.admin))])
async def delete_district(code: str, db: Db) -> Response:
    """Delete a district (admins). 404 for an unknown code; 409 while parcels, users or compensation standards
    refer to it."""
    await db.run(store.delete_district, code)
    return Response(status_code=204)
