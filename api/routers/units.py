"""Assisting units (协保单位): read by everyone signed in (staff names masked as owners' are), units and staff
set by admins, households assigned by admins anywhere and by district editors in their districts; the ranking
and a unit's page with its households on a map.

Writes answer only after their transaction has committed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from api.auth import Principal, Role, require, require_any
from api.capacity import render_slot
from api.deps import AsOf, BigId, Conn, Day, IntId, Text, get_engine, get_settings, get_today
from api.pages import page_header, root_path
from gis.analysis.units import unit_progress, unit_ranking
from gis.maps.assets import ensure_assets
from gis.maps.page import Basemap, MapContext
from gis.maps.unit_page import unit_page_html
from gis.platform.config import Settings
from gis.platform.db import transaction
from gis.records import units
from gis.records.targets import as_json  # dates as ISO text, decimals as numbers
from gis.records.units import MAX_NAME, MAX_PARCELS_PER_REQUEST, MAX_PERSON

router = APIRouter(prefix="/units", tags=["assisting units"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Assigner = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]
AppSettings = Annotated[Settings, Depends(get_settings)]
UnitRef = Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$", description="The unit's code or id.")]


class UnitIn(BaseModel):
    """A new unit."""

    model_config = ConfigDict(extra="forbid")
    code: Text = Field(max_length=32, description="A letter, then letters, digits, _ or -.")
    name: Text = Field(min_length=1, max_length=MAX_NAME)


class StaffIn(BaseModel):
    """A person lent by the unit."""

    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=MAX_PERSON)
    phone: Text | None = Field(None, max_length=MAX_PERSON)
    title: Text | None = Field(None, max_length=MAX_PERSON)


class StaffPatch(BaseModel):
    """Whether the person still works for the unit (gone staff stay named in past assignments)."""

    model_config = ConfigDict(extra="forbid")
    active: bool


class AssignmentIn(BaseModel):
    """Parcels given to the unit (and one of its staff) from a day on; a parcel with another unit or staff
    member is reassigned."""

    model_config = ConfigDict(extra="forbid")
    parcels: list[BigId | Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]] = Field(
        min_length=1, max_length=MAX_PARCELS_PER_REQUEST, description="Parcel ids or codes.")
    staff_id: IntId | None = None
    on: Day | None = Field(None, description="The day the assignment starts (default today; not after today).")
    note: Text | None = Field(None, max_length=units.MAX_NOTE_TEXT)


@router.get("")
def get_units(_principal: Viewer, conn: Conn) -> dict[str, Any]:
    """The units by code, with their staff and open assignments counted."""
    rows = units.list_units(conn)
    return {"count": len(rows), "units": rows}


@router.post("", status_code=201)
def post_unit(principal: Admin, engine: EngineDep, body: Annotated[UnitIn, Body()]) -> dict[str, Any]:
    """Add an assisting unit."""
    with transaction(engine) as conn:
        return units.add_unit(conn, body.code, body.name, principal.name)


@router.get("/ranking")
def get_ranking(_principal: Viewer, conn: Conn, settings: AppSettings, today: Today, as_of: AsOf = None
                ) -> dict[str, Any]:
    """The units ranked (晒一晒、比一比): households assigned, signed, cleared, holdouts resolved, replayed for
    the end of the day; the rule in words."""
    answer = unit_ranking(conn, as_of=as_of or today, tz=settings.city_timezone)
    return answer | {"units": [as_json(u) for u in answer["units"]]}


@router.get("/assignments")
def get_assignments(
    principal: Viewer, conn: Conn,
    parcel_id: Annotated[BigId | None, Query(description="Only this parcel's assignments.")] = None,
    unit: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$",
                                      description="Only this unit's (code or id).")] = None,
) -> dict[str, Any]:
    """Assignments with their periods, ended ones too (the history of who helped with a household)."""
    rows = units.assignments(conn, parcel_id=parcel_id, unit=unit, reveal_personal=principal.reveal_personal)
    return {"count": len(rows), "assignments": [as_json(r) for r in rows]}


@router.patch("/staff/{staff_id}")
def patch_staff(_principal: Admin, engine: EngineDep, staff_id: Annotated[IntId, Path()],
                body: Annotated[StaffPatch, Body()]) -> dict[str, Any]:
    """Mark a staff member as still with the unit or gone."""
    with transaction(engine) as conn:
        units.set_staff_active(conn, staff_id, body.active)
    return {"id": staff_id, "active": body.active}


@router.get("/{unit}")
def get_unit(principal: Viewer, conn: Conn, settings: AppSettings, today: Today, unit: UnitRef,
             as_of: AsOf = None) -> dict[str, Any]:
    """One unit: its staff (names and phones masked unless the role may see them) and its progress."""
    u = units.resolve_unit(conn, unit)
    [progress] = unit_progress(conn, as_of=as_of or today, tz=settings.city_timezone, unit_id=u["id"])
    return u | {"as_of": (as_of or today).isoformat(), "progress": as_json(progress),
                "staff": units.unit_staff(conn, u["id"], reveal_personal=principal.reveal_personal)}


@router.post("/{unit}/staff", status_code=201)
def post_staff(_principal: Admin, engine: EngineDep, unit: UnitRef, body: Annotated[StaffIn, Body()]) -> dict[str, Any]:
    """Add a person to the unit's staff."""
    with transaction(engine) as conn:
        return units.add_staff(conn, unit, body.name, phone=body.phone, title=body.title)


@router.post("/{unit}/assignments")
def post_assignments(principal: Assigner, engine: EngineDep, today: Today, unit: UnitRef,
                     body: Annotated[AssignmentIn, Body()]) -> dict[str, Any]:
    """Assign parcels to the unit: new ones, reassigned ones (their open assignment ends that day) and those
    already with this unit and staff member counted; district editors only in their districts (403)."""
    with transaction(engine) as conn:
        return units.assign(conn, body.parcels, unit, principal, staff_id=body.staff_id, on=body.on or today,
                            today=today, note=body.note)


@router.get("/{unit}/page", response_class=HTMLResponse, dependencies=[Depends(render_slot)])
def unit_page(request: Request, principal: Viewer, conn: Conn, settings: AppSettings, today: Today, unit: UnitRef,
              as_of: AsOf = None) -> HTMLResponse:
    """The unit's page: its households on a map by stage, its figures and its rank (Chinese, offline)."""
    ensure_assets(settings.map_assets_dir)
    ctx = MapContext(lang="zh", basemap=Basemap.from_settings(settings), base_url=root_path(request),
                     header=page_header(request))
    html = unit_page_html(conn, unit, ctx=ctx, as_of=as_of or today, tz=settings.city_timezone,
                          reveal_personal=principal.reveal_personal)
    return HTMLResponse(html, headers={"Cache-Control": "private, max-age=60"})
