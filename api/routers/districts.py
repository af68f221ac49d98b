"""District against district: progress and ranking."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from api.auth import Role, require
from api.deps import get_conn, get_settings, get_today, get_tolerance
from gis.blockers import Tolerance
from gis.config import Settings
from gis.progress import district_progress

router = APIRouter(prefix="/districts", tags=["districts"], dependencies=[Depends(require(Role.viewer))])


@router.get("/progress")
def progress(
    conn: Annotated[Connection, Depends(get_conn)],
    tolerance: Annotated[Tolerance, Depends(get_tolerance)],
    today: Annotated[date, Depends(get_today)],
    settings: Annotated[Settings, Depends(get_settings)],
    project_id: Annotated[int | None, Query(description="Only this project.")] = None,
) -> dict:
    """Per district and per project: total, cleared, remaining, percent, change over 1/3/7 days, rank."""
    return district_progress(conn, tolerance, today, tz=settings.city_timezone, project_id=project_id)
