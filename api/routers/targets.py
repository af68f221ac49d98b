"""Annual targets (年度任务): read by everyone signed in, set by admins one at a time or from a planner's sheet;
progress against them replayed from the history for any day.

Writes answer only after their transaction has committed. Refused rows get 422 with every issue (row and
column) and nothing is stored.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from sqlalchemy import Engine

from api.auth import Principal, Role, require
from api.deps import Conn, Day, get_engine, get_settings, get_today, get_tolerance
from api.uploads import kept_upload, upload_name
from gis.domain.tolerance import Tolerance
from gis.platform.config import Settings
from gis.platform.db import transaction
from gis.records import targets

router = APIRouter(prefix="/targets", tags=["targets"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]
Number = StrictFloat | StrictInt | StrictStr


_ID = {"minimum": 1, "maximum": 2**31 - 1}


class TargetIn(BaseModel):
    """One target. Values are checked by gis.records.targets exactly as an imported sheet's cells are."""

    model_config = ConfigDict(extra="forbid")
    # Given as a sheet's cells are (numbers or text), checked by gis.records.targets; the ranges are stated here too.
    district: StrictStr | StrictInt = Field(description="District code, name or id.", json_schema_extra=_ID)
    year: StrictInt | StrictStr = Field(description="The year, 2000–2100.", json_schema_extra={
        "minimum": targets.YEAR_RANGE[0], "maximum": targets.YEAR_RANGE[1]})
    quarter: StrictInt | StrictStr | None = Field(None, description="1–4; none for the whole year.",
                                                  json_schema_extra={"minimum": 1, "maximum": 4})
    project: StrictStr | StrictInt | None = Field(None, description="Project code, name or id; none for the district.",
                                                  json_schema_extra=_ID)
    house_m2: Number | None = Field(None, description="Houses to clear, m² of floor area (2 decimals).",
                                    json_schema_extra={"minimum": 0, "maximum": float(targets.MAX_HOUSE_M2)})
    land_mu: Number | None = Field(None, description="Land to clear, mu (4 decimals).",
                                   json_schema_extra={"minimum": 0, "maximum": float(targets.MAX_LAND_MU)})
    parcels: StrictInt | StrictStr | None = Field(None, description="Parcels (宗) to clear.",
                                                  json_schema_extra={"minimum": 0, "maximum": targets.MAX_PARCELS})



@router.get("")
def get_targets(
    _principal: Viewer,
    conn: Conn,
    year: Annotated[int | None, Query(ge=targets.YEAR_RANGE[0], le=targets.YEAR_RANGE[1],
                                      description="Only this year's targets.")] = None,
    quarter: Annotated[int | None, Query(ge=1, le=4, description="Only this quarter's (1–4).")] = None,
) -> dict[str, Any]:
    """The targets, by district, year, quarter (the whole year first) and project."""
    rows = targets.list_targets(conn, year=year, quarter=quarter)
    return {"year": year, "quarter": quarter, "count": len(rows), "targets": [targets.as_json(r) for r in rows]}


@router.put("")
def put_target(principal: Admin, engine: EngineDep, target: Annotated[TargetIn, Body()]) -> JSONResponse:
    """Store one target; one of the same district, year, quarter and project gets these amounts."""
    with transaction(engine) as conn:
        report = targets.put_target(conn, target.model_dump(exclude_none=True), principal.name)
    return JSONResponse(report.as_dict())


@router.post("/imports")
def post_import(
    principal: Admin,
    engine: EngineDep,
    file: Annotated[UploadFile, File(description="XLSX (or CSV): 片区, 年度, 季度, 项目, 房屋（㎡ or 万㎡）, "
                                                 "土地（亩）, 宗数.")],
    dry_run: Annotated[bool, Form(description="Check every row; store nothing.")] = False,
) -> JSONResponse:
    """Import a planner's sheet of targets: every row checked, all stored or none."""
    with kept_upload(file) as path, transaction(engine) as conn:
        report = targets.import_targets(conn, path, principal.name, dry_run=dry_run,
                                        source=upload_name(file, "targets.xlsx"))
    return JSONResponse(report.as_dict())


@router.get("/progress")
def get_progress(
    _principal: Viewer,
    conn: Conn,
    today: Today,
    tolerance: Annotated[Tolerance, Depends(get_tolerance)],
    settings: Annotated[Settings, Depends(get_settings)],
    year: Annotated[int | None, Query(ge=targets.YEAR_RANGE[0], le=targets.YEAR_RANGE[1],
                                      description="The year (default: the as-of day's).")] = None,
    quarter: Annotated[int | None, Query(ge=1, le=4, description="Only this quarter's targets (1–4).")] = None,
    as_of: Annotated[Day | None, Query(description="Progress at the end of this day (default today), "
                                                   "replayed from the history.")] = None,
) -> dict[str, Any]:
    """Each target with done (cleared m², mu and parcels in its period up to the as-of day), percent, the
    share of the period elapsed, and on pace or behind."""
    return targets.targets_progress(conn, tolerance, year=year, quarter=quarter, as_of=as_of or today,
                                    tz=settings.city_timezone)
