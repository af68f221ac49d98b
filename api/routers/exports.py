"""``GET /parcels/export?format=``: the parcel list (filtered) as a file."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import Principal, Role, require
from api.capacity import render_slot
from api.deps import IntId, engine_for, get_settings, get_today
from api.export import export_response
from gis.domain.stages import check_stages
from gis.domain.tolerance import Tolerance
from gis.io import crs as crs_mod
from gis.io.export import FORMATS, PARCEL_COLUMNS, parcel_query, query_rows
from gis.platform.config import Settings
from gis.platform.db import transaction
from gis.platform.errors import InvalidInput, NotFound
from gis.records.districts import check_districts
from gis.records.projects import resolve_project

router = APIRouter(tags=["exports"])

ExportFormat = Literal[tuple(FORMATS)]  # type: ignore[valid-type]


@router.get("/parcels/export", response_class=StreamingResponse, dependencies=[Depends(render_slot)])
def export_parcels(
    request: Request,
    principal: Annotated[Principal, Depends(require(Role.viewer))],
    settings: Annotated[Settings, Depends(get_settings)],
    today: Annotated[date, Depends(get_today)],
    format: Annotated[ExportFormat, Query(description="csv, xlsx, geojson, gpkg, shp (zipped), fgb or kml")] = "xlsx",
    district: Annotated[list[str] | None, Query(description="District code or name; repeat for several")] = None,
    stage: Annotated[list[str] | None, Query(description="Stage; repeat for several")] = None,
    kind: Annotated[Literal["house", "land"] | None, Query()] = None,
    holdout: Annotated[bool | None, Query()] = None,
    project: Annotated[str | None, Query(description="Only the parcels in this project's footprint (code or id), "
                                                     "beyond the sliver tolerance")] = None,
    crs: Annotated[IntId | None, Query(description="EPSG code for GeoPackage, Shapefile and FlatGeobuf; default the "
                                                 "working CRS (GeoJSON and KML are always EPSG:4326)")] = None,
) -> StreamingResponse:
    """Parcels as a download named ``parcels[_district]_<date>.<ext>``; personal data masked unless the role
    may see it. Large lists stream: rows are read from a server-side cursor in batches."""
    if crs is not None:
        crs_mod.check(crs, settings.srid)
    check_stages(stage or ())
    with transaction(engine_for(request), autocommit=True) as conn:
        check_districts(conn, district or ())
        try:
            project_id = resolve_project(conn, project) if project is not None else None
        except NotFound as exc:  # a filter naming nothing is a bad filter, not a missing page
            raise InvalidInput(str(exc), "project") from None
    statement, params = parcel_query(districts=district or (), stages=stage or (), kind=kind, holdout=holdout,
                                     project_id=project_id, tolerance=Tolerance.from_settings(settings).params)
    rows = query_rows(engine_for(request), statement, params)
    base = "_".join(["parcels", *([project] if project else []), *(district or [])])
    return export_response(rows, base, format, srid=settings.srid, today=today, columns=PARCEL_COLUMNS,
                           reveal_personal=principal.reveal_personal, crs=crs, tz=settings.city_timezone)
