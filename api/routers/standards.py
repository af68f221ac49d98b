"""Compensation standards (补偿标准): read by everyone signed in, set by admins from JSON or a planner's sheet.

Writes answer only after their transaction has committed (``transaction`` around the call, the response
built after it), so a 200 means the standards are stored. Refused rows get 422 with every issue (row and
column) and nothing is stored.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from sqlalchemy import Engine

from api.auth import Principal, Role, require
from api.deps import Conn, Day, Text, get_engine, get_today
from api.uploads import kept_upload, upload_name
from gis.io.export import content_disposition
from gis.platform.db import transaction
from gis.records import standards

router = APIRouter(prefix="/standards", tags=["standards"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StandardsQuery(BaseModel):
    """The listing's filters; any other query parameter is refused (422), not silently ignored."""

    model_config = ConfigDict(extra="forbid")
    district: Text | None = Field(None, max_length=100, description="District code or name.")
    kind: Text | None = Field(None, max_length=40, description="house or land (房屋, 土地).")
    item: Text | None = Field(None, max_length=100, description="house_value, land, crops … or the Chinese label "
                                                                "(房屋价值补偿 …).")
    on: Day | None = Field(None, description="Only the standards in force on this day (YYYY-MM-DD, 1980-01-01 to "
                                             "2100-12-31).")


class StandardIn(BaseModel):
    """One standard. Values are checked by gis.records.standards exactly as an imported sheet's cells are."""

    model_config = ConfigDict(extra="forbid")
    district: StrictStr | StrictInt = Field(description="District code or name.")
    kind: StrictStr = Field(description="house or land (房屋, 土地).")
    item: StrictStr = Field(description="house_value, relocation, temporary_resettlement, business_loss, subsidy, "
                                        "incentive (houses); land, crops, subsidy, incentive (land).")
    rate_yuan: StrictFloat | StrictInt | StrictStr = Field(description="Yuan per unit, at most two decimals.")
    unit: StrictStr | None = Field(None, description="m2 or mu (元/㎡, 元/亩); default m2 for houses, mu for land.")
    valid_from: StrictStr = Field(description="The day it takes effect, YYYY-MM-DD.")
    note: StrictStr | None = Field(None, description="The policy document it comes from (依据).")



@router.get("")
def get_standards(_principal: Viewer, conn: Conn, query: Annotated[StandardsQuery, Query()]) -> dict[str, Any]:
    """The standards, each with the day it ends (the day before its successor's ``valid_from``, none while it
    is the latest); with ``on``, only those in force that day."""
    rows = standards.list_standards(conn, district=query.district, kind=query.kind, item=query.item, on=query.on)
    return {"filters": query.model_dump(mode="json"), "count": len(rows),
            "standards": [standards.as_json(r) for r in rows]}


@router.put("")
def put_standards(
    principal: Admin,
    engine: EngineDep,
    today: Today,
    rows: Annotated[list[StandardIn], Body(min_length=1, max_length=standards.MAX_ROWS)],
) -> JSONResponse:
    """Store standards (all or none): new ones are added, ones sent again unchanged stay, ones not yet in force
    are corrected; an in-force standard's rate is never rewritten. Answers with the standards as stored."""
    with transaction(engine) as conn:
        report = standards.put_standards(conn, [r.model_dump(exclude_none=True) for r in rows], principal.name,
                                         today=today)
    return JSONResponse(report.as_dict())


@router.post("/imports")
def post_import(
    principal: Admin,
    engine: EngineDep,
    today: Today,
    file: Annotated[UploadFile, File(description="XLSX (or CSV) with the template's columns.")],
    dry_run: Annotated[bool, Form(description="Check every row; store nothing.")] = False,
) -> JSONResponse:
    """Import a planner's sheet of standards: every row checked, all stored or none."""
    with kept_upload(file) as path, transaction(engine) as conn:
        report = standards.import_standards(conn, path, principal.name, today=today, dry_run=dry_run,
                                            source=upload_name(file, "standards.xlsx"))
    return JSONResponse(report.as_dict())


@router.get("/template.xlsx")
def get_template(_principal: Viewer, conn: Conn, today: Today) -> Response:
    """The XLSX template planners fill in: Chinese headers, one example row, the accepted values."""
    return Response(standards.standards_template(conn, today=today), media_type=XLSX,
                    headers={"Content-Disposition": content_disposition("补偿标准模板.xlsx")})
