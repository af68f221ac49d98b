"""Sunshine expropriation (阳光征迁): the published record of a project, no token needed.

Only what gis.disclosure publishes: per parcel code, kind, area, stage, compensation paid and the
owner's masked name. Nothing else in the service is public.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import Conn, ProjectId, get_settings
from api.pages import page_header, root_path
from gis import disclosure
from gis.domain.tolerance import Tolerance
from gis.platform.config import Settings

router = APIRouter(prefix="/public", tags=["public"])
AppSettings = Annotated[Settings, Depends(get_settings)]


def _tolerance(settings: AppSettings) -> Tolerance:
    """The configured tolerance only: the public cannot widen what is published."""
    return Tolerance.from_settings(settings)


Tol = Annotated[Tolerance, Depends(_tolerance)]


@router.get("/", response_class=HTMLResponse)
def public_index(request: Request, conn: Conn) -> HTMLResponse:
    """The public pages: every project with its published map and record."""
    return HTMLResponse(disclosure.public_index_html(conn, header=page_header(request, current="public"),
                                                     base_url=root_path(request)))


@router.get("/projects/{project_id}")
def public_project(project_id: ProjectId, conn: Conn, tolerance: Tol) -> dict[str, Any]:
    """No token needed. The published record of a project: per parcel its code, kind, area, stage, compensation paid
    and the owner's masked name, at the configured tolerance. 404 if archived."""
    return disclosure.public_project(conn, project_id, tolerance)


@router.get("/projects/{project_id}/map", response_class=HTMLResponse)
def public_project_map(project_id: ProjectId, request: Request, conn: Conn, tolerance: Tol,
                       settings: AppSettings) -> HTMLResponse:
    """The same record as an offline map page: parcels by stage, their public fields on hover."""
    return HTMLResponse(disclosure.public_map_html(conn, project_id, tolerance, settings, base_url=root_path(request),
                                                   header=page_header(request, current="public")))
