"""Front-line dispatch (指挥分部): the command posts, their front-line visits and on-site duty. Read by everyone
signed in (names masked as owners' are), posts set up by admins, visits and duty logged by admins and by the
district editors of the post's district. The check of weeks and days missed is ``/checks/dispatch-gaps``.

Writes answer only after their transaction has committed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from api.auth import Principal, Role, require, require_any
from api.deps import Conn, Day, Text, get_engine, get_settings, get_today
from gis.platform.config import Settings
from gis.platform.db import transaction
from gis.records import dispatch
from gis.records.targets import as_json  # dates as ISO text, decimals as numbers
from gis.records.units import MAX_NAME, MAX_NOTE_TEXT, MAX_PERSON

router = APIRouter(prefix="/command-posts", tags=["front-line dispatch"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Recorder = Annotated[Principal, Depends(require_any(Role.district_editor, Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]
AppSettings = Annotated[Settings, Depends(get_settings)]
PostRef = Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$",
                              description="The post's id, or its district's code or name.")]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="WGS 84 longitude.")]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="WGS 84 latitude.")]
Note = Annotated[str, Field(max_length=MAX_NOTE_TEXT, pattern=r"^[^\x00]*$")]
Person = Annotated[str, Field(min_length=1, max_length=MAX_PERSON, pattern=r"^[^\x00]*$")]


class PostIn(BaseModel):
    """A district's command post."""

    model_config = ConfigDict(extra="forbid")
    district: Text = Field(max_length=64, description="District code, name or id.")
    name: Text = Field(min_length=1, max_length=MAX_NAME)
    commander: Person
    deputies: list[Person] = Field(default_factory=list, max_length=dispatch.MAX_DEPUTIES)
    established_on: Day
    lon: Lon
    lat: Lat


class VisitIn(BaseModel):
    """A front-line visit (一线调度)."""

    model_config = ConfigDict(extra="forbid")
    visited_on: Day
    leader: Person
    leader_role: Literal[dispatch.LEADER_ROLES]  # type: ignore[valid-type]
    lon: Lon
    lat: Lat
    attendees: Note | None = None
    place: Note | None = None
    problems: Note | None = None
    decisions: Note | None = None
    follow_up: Note | None = None


class DutyIn(BaseModel):
    """A day of on-site duty (现场办公)."""

    model_config = ConfigDict(extra="forbid")
    duty_on: Day
    person: Person
    note: Note | None = None


Since = Annotated[Day | None, Query(description="From this day on.")]
Until = Annotated[Day | None, Query(description="Up to this day.")]


@router.get("")
def get_posts(principal: Viewer, conn: Conn) -> dict[str, Any]:
    """The command posts by district, with commander and deputies."""
    rows = dispatch.list_posts(conn, reveal_personal=principal.reveal_personal)
    return {"count": len(rows), "posts": [as_json(r) for r in rows]}


@router.post("", status_code=201)
def post_post(_principal: Admin, engine: EngineDep, today: Today, settings: AppSettings,
              body: Annotated[PostIn, Body()]) -> dict[str, Any]:
    """Set up a district's command post (one per district)."""
    with transaction(engine) as conn:
        return dispatch.add_post(conn, body.district, body.name, body.commander, body.deputies,
                                 established_on=body.established_on, today=today, lon=body.lon, lat=body.lat,
                                 srid=settings.srid)


@router.get("/{post}/visits")
def get_visits(principal: Viewer, conn: Conn, post: PostRef, since: Since = None, until: Until = None
               ) -> dict[str, Any]:
    """The post's front-line visits, newest first."""
    rows = dispatch.visits(conn, post, since=since, until=until, reveal_personal=principal.reveal_personal)
    return {"count": len(rows), "visits": [as_json(r) for r in rows]}


@router.post("/{post}/visits", status_code=201)
def post_visit(principal: Recorder, engine: EngineDep, today: Today, settings: AppSettings, post: PostRef,
               body: Annotated[VisitIn, Body()]) -> dict[str, Any]:
    """Log a front-line visit; district editors for their districts' posts only (403)."""
    values = body.model_dump()
    with transaction(engine) as conn:
        return dispatch.record_visit(conn, post, principal, today=today, srid=settings.srid, **values)


@router.get("/{post}/duty")
def get_duty(principal: Viewer, conn: Conn, post: PostRef, since: Since = None, until: Until = None) -> dict[str, Any]:
    """The post's on-site duty days, newest first."""
    rows = dispatch.duty_log(conn, post, since=since, until=until, reveal_personal=principal.reveal_personal)
    return {"count": len(rows), "duty": [as_json(r) for r in rows]}


@router.post("/{post}/duty", status_code=201)
def post_duty(principal: Recorder, engine: EngineDep, today: Today, post: PostRef,
              body: Annotated[DutyIn, Body()]) -> dict[str, Any]:
    """Log a day of on-site duty; district editors for their districts' posts only (403)."""
    with transaction(engine) as conn:
        return dispatch.record_duty(conn, post, principal, duty_on=body.duty_on, today=today, person=body.person,
                                    note=body.note)
