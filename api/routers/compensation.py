"""Itemised compensation (逐项补偿): a parcel's calculation and its workbook, its survey facts, a hypothetical
household's estimate, and the survey import. The public calculator's estimate (no login) is in api.routers.public.

Writes answer only after their transaction has committed.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import Engine

from api.auth import Principal, Role, require, require_any
from api.deps import NO_NUL, BigId, Conn, Day, IntId, StrictNumber, get_engine, get_today
from api.uploads import kept_upload
from gis.analysis import compensation
from gis.domain.compensation import COUNT_QUANTITY, MAX_COUNTS, MAX_GRADE, TRANSITION_MONTHS
from gis.io.export import FORMATS, content_disposition
from gis.platform.db import transaction
from gis.records import parcels, surveys

router = APIRouter(tags=["compensation"])

Reader = Annotated[Principal, Depends(require(Role.viewer))]
Recorder = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]


class CountIn(BaseModel):
    """An attachment or a crop by kind: the quantity in its standard's unit (items, metres, mu)."""

    model_config = ConfigDict(extra="forbid")
    item: Literal["attachments", "crops"]
    grade: StrictStr = Field(min_length=1, max_length=MAX_GRADE, pattern=NO_NUL,
                             description="The kind: 围墙, 水井, 果树, 青苗 …")
    quantity: StrictNumber = Field(gt=COUNT_QUANTITY.gt, le=COUNT_QUANTITY.le)


class SurveyIn(BaseModel):
    """A parcel's survey facts; the classes in code or Chinese (砖混, 精装修)."""

    model_config = ConfigDict(extra="forbid")
    structure: StrictStr | None = Field(None, max_length=20, pattern=NO_NUL, description="钢混, 砖混, 砖木 or 简易.")
    decoration: StrictStr | None = Field(None, max_length=20, pattern=NO_NUL,
                                         description="无装修, 简易装修, 中等装修 or 精装修.")
    business_area_m2: StrictNumber | None = Field(None, ge=0, le=1_000_000, description="Floor area used for "
                                                                                       "business, m².")
    transition_months: StrictInt | None = Field(None, ge=TRANSITION_MONTHS.ge, le=TRANSITION_MONTHS.le)
    counts: list[CountIn] | None = Field(None, max_length=MAX_COUNTS)


class EstimateIn(SurveyIn):
    """A hypothetical household: its district and kind, its areas and survey facts, and the day of agreement."""

    district: StrictStr | IntId = Field(description="District code, name or id.")
    kind: Literal["house", "land"]
    agreed_on: Day | None = Field(None, description="The agreement's day (default today): it chooses the standards "
                                                    "in force and the signing incentive.")
    floor_area_m2: StrictNumber | None = Field(None, gt=0, le=1_000_000, description="A house's floor area, m².")
    land_area_mu: StrictNumber | None = Field(None, gt=0, le=100_000, description="Land's area, mu.")
    households: StrictInt | None = Field(None, ge=1, le=10_000)


def estimate_values(body: EstimateIn) -> dict[str, Any]:
    """The request as the engine's plain values (counts as dicts)."""
    return body.model_dump(exclude_none=True)


@router.post("/compensation/estimate")
def post_estimate(_principal: Reader, conn: Conn, today: Today, body: Annotated[EstimateIn, Body()]) -> dict[str, Any]:
    """Every item of a hypothetical household's compensation, with rate, quantity, the standard's article and the
    total, by the standards of its district in force on the agreement's day (today by default)."""
    return compensation.estimate(conn, estimate_values(body), today=today)


@router.get("/parcels/{parcel_id}/compensation")
def get_parcel_compensation(parcel_id: BigId, _principal: Reader, conn: Conn, today: Today) -> dict[str, Any]:
    """A parcel's itemised compensation by the standards in force on its agreement's day, and each item beside what
    was paid on it (the difference positive when paid above the standard)."""
    return compensation.parcel_calculation(conn, parcel_id, today=today)


@router.get("/parcels/{parcel_id}/compensation.xlsx")
def get_parcel_compensation_xlsx(parcel_id: BigId, _principal: Reader, conn: Conn, today: Today) -> Response:
    """The parcel's itemised calculation as a workbook (逐项补偿计算表), named by its code."""
    calc = compensation.parcel_calculation(conn, parcel_id, today=today)
    code = parcels.get_parcel(conn, parcel_id, with_geometry=False)["code"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calc.xlsx"
        compensation.write_calculation_xlsx(calc, path, on=today)
        content = path.read_bytes()
    return Response(content, media_type=FORMATS["xlsx"].media_type,
                    headers={"Content-Disposition": content_disposition(f"逐项补偿计算_{code}.xlsx")})


@router.get("/parcels/{parcel_id}/survey")
def get_survey(parcel_id: BigId, _principal: Reader, conn: Conn) -> dict[str, Any]:
    """The parcel's survey facts (empty when none are recorded); 404 for an unknown parcel."""
    parcels.get_parcel(conn, parcel_id, with_geometry=False)
    facts = surveys.get_survey(conn, parcel_id)
    return {"parcel_id": parcel_id} | (facts.as_dict() if facts else {})


@router.put("/parcels/{parcel_id}/survey")
def put_survey(parcel_id: BigId, principal: Recorder, engine: EngineDep,
               body: Annotated[SurveyIn, Body()]) -> JSONResponse:
    """Record the parcel's survey facts, replacing those recorded (district editors in their districts, admins)."""
    with transaction(engine) as conn:
        out = surveys.put_survey(conn, parcel_id, body.model_dump(exclude_none=True), principal)
    return JSONResponse(out)


@router.post("/surveys/imports")
def post_survey_import(
    principal: Admin,
    engine: EngineDep,
    file: Annotated[UploadFile, File(description="The parcel file (XLSX or CSV) or a survey sheet: 地块编号, 房屋结构, "
                                                 "装修等级, 经营面积, 过渡期, 附属物 (围墙:20；水井:1), 青苗.")],
    dry_run: Annotated[bool, Form(description="Check every row; store nothing.")] = False,
) -> JSONResponse:
    """Import the survey facts of stored parcels: every row checked, all stored or none."""
    with kept_upload(file) as path, transaction(engine) as conn:
        out = surveys.import_surveys(conn, path, principal.name, dry_run=dry_run)
    return JSONResponse(out)
