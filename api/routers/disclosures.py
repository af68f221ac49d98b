"""The days a project's compensation was published (亮底征收): read by everyone signed in, recorded by admins.

The sunshine check (``/checks/sunshine``) holds each payment against the first of them. A write answers only
after its transaction has committed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from api.auth import Principal, Role, require
from api.deps import Conn, ProjectId, get_engine, get_today
from api.params import Day, Text
from gis.domain.limits import MAX_NOTE
from gis.platform.db import transaction
from gis.records.disclosures import list_disclosures, record_disclosure

router = APIRouter(prefix="/projects", tags=["projects"])

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
EngineDep = Annotated[Engine, Depends(get_engine)]
Today = Annotated[date, Depends(get_today)]


class DisclosureIn(BaseModel):
    """One day of publication."""

    model_config = ConfigDict(extra="forbid")
    published_on: Day = Field(description="The day the compensation was published (YYYY-MM-DD, not after today).")
    note: Annotated[Text, Field(max_length=MAX_NOTE)] | None = Field(None, description="Where and how: 公示地点、方式.")


@router.get("/{project_id}/disclosures")
def get_disclosures(_principal: Viewer, conn: Conn, project_id: ProjectId) -> dict[str, Any]:
    """The project's recorded days of publication of its compensation, earliest first."""
    rows = list_disclosures(conn, project_id)
    return {"project_id": project_id, "count": len(rows), "disclosures": rows}


@router.post("/{project_id}/disclosures", status_code=201)
def post_disclosure(principal: Admin, engine: EngineDep, today: Today, project_id: ProjectId,
                    body: Annotated[DisclosureIn, Body()]) -> dict[str, Any]:
    """Record a day the project's compensation was published; 409 when that day is already recorded."""
    with transaction(engine) as conn:
        return record_disclosure(conn, project_id, body.published_on, principal.name, today=today, note=body.note)
