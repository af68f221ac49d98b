"""Findings followed to the end (督查督办、整改、回头看) and the quarterly contest (四季竞赛、五大比拼).

Items carry no personal data (the check's owner name is not kept), so every signed-in role reads them. An
inspector (or admin) opens, verifies and reopens items and runs the re-check (回头看); a district editor moves the
items of their district (rectifying, rectified) and uploads evidence. Writes answer after their commit.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from api.auth import Principal, Role, require, require_any
from api.deps import NO_NUL, AsOf, Conn, Day, IntId, Text, get_settings, get_today, get_tolerance
from api.pages import page_header, root_path
from gis import contest as contest_scores
from gis import rectification
from gis.domain.limits import MAX_NOTE
from gis.domain.tolerance import Tolerance
from gis.io.export import FORMATS, content_disposition
from gis.maps.findings_page import contest_html, findings_html
from gis.platform.config import Settings
from gis.records import findings
from gis.records.targets import YEAR_RANGE

router = APIRouter(tags=["findings"])

Reader = Annotated[Principal, Depends(require(Role.viewer))]
Editor = Annotated[Principal, Depends(require(Role.district_editor))]
Inspector = Annotated[Principal, Depends(require(Role.inspector))]
Recorder = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
Today = Annotated[date, Depends(get_today)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class FindingIn(BaseModel):
    """A finding of a check to follow: the check, the parcel it flags, the deadline."""

    model_config = ConfigDict(extra="forbid")
    check: Text = Field(description="The check's name (paid-not-demolished, …; see /checks).", max_length=64)
    parcel_id: int = Field(ge=1, le=2**63 - 1, description="The parcel the check flags.")
    deadline: Day = Field(description="Rectify by the end of this day.")
    params: dict[str, float] = Field(default_factory=dict, description="The check's parameters (its defaults "
                                     "otherwise); the re-check runs with the same.")
    unit_code: Text | None = Field(None, min_length=1, max_length=64, description="The assisting unit responsible.")
    note: Text | None = Field(None, max_length=MAX_NOTE)


class StatusIn(BaseModel):
    """A move of an item's status, with a note."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["rectifying", "rectified", "verified", "reopened"]
    note: Text | None = Field(None, max_length=MAX_NOTE)


class RecheckIn(BaseModel):
    """Which rectified items to re-check: all of them, or these."""

    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(None, max_length=10_000)


@router.get("/findings", response_model=None)
def list_findings(
    request: Request, _principal: Reader, conn: Conn, today: Today,
    # "" is "all", as the page's filter form sends it.
    status: Annotated[Literal[("", *findings.STATUSES)] | None, Query(description="Only items in this status.")] = None,
    district: Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="Only this district's (code).")
                        ] = None,
    overdue: Annotated[Literal["", "true", "false"] | None, Query(description="Only overdue items (true) or the "
                                                                            "others (false).")] = None,
    format: Annotated[Literal["json", "html"], Query(description="json, or html: the findings list page.")] = "json",
) -> Any:
    """The rectification items by deadline, with overdue (still pending past the deadline) and days overdue."""
    late = {"true": True, "false": False}.get(overdue or "")
    items = findings.list_items(conn, today=today, status=status or None, district=district or None, overdue=late)
    if format == "html":
        districts = dict(conn.execute(text("SELECT code, name FROM districts ORDER BY code")).all())
        return HTMLResponse(findings_html(
            items, today=today.isoformat(), districts=districts, checks=rectification.known_checks(),
            status=status or None, district=district or None, overdue=late,
            header=page_header(request, current="findings"), base_url=root_path(request)))
    return {"today": today.isoformat(), "count": len(items), "items": [findings.as_json(i) for i in items]}


@router.post("/findings", status_code=201)
def post_finding(principal: Inspector, conn: Conn, today: Today, settings: SettingsDep,
                 body: Annotated[FindingIn, Body()]) -> dict[str, Any]:
    """Follow a check's finding on a parcel: the district responsible is the parcel's; status open."""
    item = rectification.open_item(conn, check=body.check, parcel_id=body.parcel_id, deadline=body.deadline,
                                   principal=principal, params=body.params, unit_code=body.unit_code, note=body.note,
                                   today=today, tz=settings.city_timezone)
    return findings.as_json(item)


@router.post("/findings/recheck")
def post_recheck(principal: Inspector, conn: Conn, today: Today, settings: SettingsDep,
                 body: Annotated[RecheckIn, Body()] = RecheckIn()) -> dict[str, Any]:
    """回头看: re-run the check of every rectified item (or of ``ids``): verified when it passes, reopened when not."""
    return rectification.recheck(conn, principal, today=today, tz=settings.city_timezone, ids=body.ids)


@router.get("/findings/overdue")
def get_overdue(_principal: Reader, conn: Conn, today: Today, settings: SettingsDep, as_of: AsOf = None
                ) -> dict[str, Any]:
    """Items still pending past their deadline at the end of the day (default today), replayed from the history:
    the weekly dispatch agenda's overdue findings."""
    day = as_of or today
    items = findings.overdue_items(conn, day, tz=settings.city_timezone)
    return {"as_of": day.isoformat(), "count": len(items), "items": [findings.as_json(i) for i in items]}


@router.get("/findings/{finding_id}")
def get_finding(finding_id: IntId, _principal: Reader, conn: Conn, today: Today) -> dict[str, Any]:
    """One item with its finding, history and evidence files."""
    return findings.as_json(findings.get_item(conn, finding_id, today=today))


@router.post("/findings/{finding_id}/status")
def post_status(finding_id: IntId, principal: Editor, conn: Conn, today: Today,
                body: Annotated[StatusIn, Body()]) -> dict[str, Any]:
    """Move an item: rectifying and rectified by the district's editors; verified and reopened by inspectors."""
    findings.set_status(conn, finding_id, body.status, principal, note=body.note)
    return findings.as_json(findings.get_item(conn, finding_id, today=today))


@router.post("/findings/{finding_id}/documents", status_code=201)
def post_evidence(finding_id: IntId, principal: Recorder, conn: Conn, settings: SettingsDep,
                  file: Annotated[UploadFile, File(description="Evidence of the rectification.")]) -> dict[str, Any]:
    """Attach an evidence file (整改佐证材料) to an item of the caller's district."""
    return findings.as_json(findings.add_evidence(
        conn, finding_id, filename=file.filename, chunks=iter(lambda: file.file.read(1 << 20), b""),
        data_dir=settings.data_dir, max_bytes=settings.document_max_bytes, principal=principal))


@router.get("/contest", response_model=None)
def get_contest(
    request: Request, _principal: Reader, conn: Conn, today: Today, settings: SettingsDep,
    tolerance: Annotated[Tolerance, Depends(get_tolerance)],
    year: Annotated[int | None, Query(ge=YEAR_RANGE[0], le=YEAR_RANGE[1], description="Default: today's.")] = None,
    quarter: Annotated[int | None, Query(ge=1, le=4, description="Default: today's.")] = None,
    format: Annotated[Literal["json", "html", "xlsx"], Query(description="json, html (table and chart) or "
                                                                         "xlsx.")] = "json",
) -> Any:
    """四季竞赛、五大比拼: the quarter's five comparisons with their weights, each district's rates, score and rank,
    and the change against the previous quarter."""
    answer = contest_scores.contest(conn, tolerance, year=year or today.year,
                                    quarter=quarter or (today.month - 1) // 3 + 1, today=today,
                                    tz=settings.city_timezone)
    if format == "html":
        return HTMLResponse(contest_html(answer, header=page_header(request, current="contest"),
                                         base_url=root_path(request)))
    if format == "xlsx":
        return Response(contest_scores.contest_xlsx(answer), media_type=FORMATS["xlsx"].media_type, headers={
            "Content-Disposition": content_disposition(f"contest_{answer['year']}Q{answer['quarter']}.xlsx")})
    return answer

