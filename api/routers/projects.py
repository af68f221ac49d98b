"""Projects with their progress, and the parcels still blocking each one."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.auth import Principal, Role, require
from api.deps import Database, get_database, get_settings, get_today, get_tolerance
from gis.blockers import MAX_LIMIT, BlockerFilter, Tolerance, find_blockers
from gis.config import Settings
from gis.projects import get_project, list_projects

router = APIRouter(prefix="/projects", tags=["projects"], dependencies=[Depends(require(Role.viewer))])

Db = Annotated[Database, Depends(get_database)]
Tol = Annotated[Tolerance, Depends(get_tolerance)]
Today = Annotated[date, Depends(get_today)]


@router.get("")
async def projects(db: Db, tolerance: Tol, today: Today,
                   geometry: Annotated[bool, Query(description="Include footprints (GeoJSON, WGS 84).")] = False
                   ) -> dict:
    """Every project with parcels in its footprint, cleared, still blocking, and days to the deadline."""
    return {"tolerance": tolerance.as_dict(), "date": today.isoformat(),
            "projects": await db.run(list_projects, tolerance, today, with_geometry=geometry)}


@router.get("/{project_id}")
async def project(project_id: int, db: Db, tolerance: Tol, today: Today) -> dict:
    """One project with its footprint (GeoJSON, WGS 84) and progress."""
    return await db.run(get_project, project_id, tolerance, today)


async def blocker_filter(
    district: Annotated[list[str] | None, Query(description="District code, name or id; repeatable.")] = None,
    stage: Annotated[list[str] | None, Query(description="Stage; repeatable.")] = None,
    kind: Annotated[Literal["house", "land"] | None, Query()] = None,
    holdout: Annotated[bool | None, Query(description="Only holdouts (true) or only others (false).")] = None,
    min_overlap: Annotated[float | None, Query(ge=0, description="Only overlaps of at least this many m².")] = None,
    as_of: Annotated[date | None, Query(description="Answer as of the end of this day (YYYY-MM-DD).")] = None,
    sort: Annotated[str, Query(description="overlap_m2, share, days_in_stage, code, district or stage; "
                                           "prefix - for descending.")] = "-overlap_m2",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    geometry: Annotated[bool, Query(description="Include parcel geometries (WGS 84).")] = False,
) -> BlockerFilter:
    return BlockerFilter(
        districts=tuple(district or ()), stages=tuple(stage or ()), kind=kind, holdout=holdout,
        min_overlap_m2=min_overlap, as_of=as_of, sort=sort, limit=limit, offset=offset, with_geometry=geometry,
    )


@router.get("/{project_id}/blockers")
async def blockers(
    project_id: int,
    db: Db,
    tolerance: Tol,
    today: Today,
    settings: Annotated[Settings, Depends(get_settings)],
    query: Annotated[BlockerFilter, Depends(blocker_filter)],
    principal: Annotated[Principal, Depends(require(Role.viewer))],
    format: Annotated[Literal["json", "geojson"], Query(description="json, or geojson (RFC 7946).")] = "json",
) -> Response:
    """The parcels overlapping the footprint beyond the tolerance and not yet cleared."""
    if format == "geojson":
        query = BlockerFilter(**{**query.__dict__, "with_geometry": True})
    page = await db.read(find_blockers, project_id, query, tolerance, tz=settings.city_timezone, today=today,
                        reveal_personal=principal.reveal_personal)
    if format == "geojson":
        return Response(orjson.dumps(page.as_geojson()), media_type="application/geo+json")
    return Response(orjson.dumps(page.as_dict()), media_type="application/json")
