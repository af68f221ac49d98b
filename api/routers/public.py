"""Sunshine expropriation (阳光征迁): the published record of a project, no token needed.

Only what gis.disclosure publishes: per parcel code, kind, area, stage, compensation paid and the
owner's masked name. Nothing else in the service is public.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import Conn, ProjectId, get_settings, get_today
from api.pages import page_header, root_path
from api.routers.compensation import EstimateIn, estimate_values
from gis import disclosure, public_compensation
from gis.analysis import compensation
from gis.domain.tolerance import Tolerance
from gis.platform.config import Settings

router = APIRouter(prefix="/public", tags=["public"])
AppSettings = Annotated[Settings, Depends(get_settings)]
Today = Annotated[date, Depends(get_today)]


def _tolerance(settings: AppSettings) -> Tolerance:
    """The configured tolerance only: the public cannot widen what is published."""
    return Tolerance.from_settings(settings)


Tol = Annotated[Tolerance, Depends(_tolerance)]


@router.get("", response_class=HTMLResponse, include_in_schema=False)
@router.get("/", response_class=HTMLResponse)
def public_index(request: Request, conn: Conn) -> HTMLResponse:
    """The public pages: every project with its published map and record."""
    return HTMLResponse(disclosure.public_index_html(conn, header=page_header(request, current="public"),
                                                     base_url=root_path(request)))


@router.get("/projects/{project_id}")
def public_project(project_id: ProjectId, conn: Conn, tolerance: Tol, today: Today) -> dict[str, Any]:
    """No token needed. The published record of a project: per parcel its code, kind, area, stage, compensation paid
    and the owner's masked name, at the configured tolerance; and the compensation standards in force today in its
    districts, item by item (亮底征收). 404 if archived."""
    return disclosure.public_project(conn, project_id, tolerance) | {
        "standards": public_compensation.project_standards(conn, project_id, today)}


@router.get("/projects/{project_id}/standards", response_class=HTMLResponse)
def public_project_standards(project_id: ProjectId, request: Request, conn: Conn, today: Today) -> HTMLResponse:
    """The project's compensation standards in force today, item by item, as a page (亮底征收)."""
    return HTMLResponse(public_compensation.standards_page_html(
        conn, project_id, today, header=page_header(request, current="public"), base_url=root_path(request)))


@router.get("/calculator", response_class=HTMLResponse)
def public_calculator(request: Request, conn: Conn, today: Today) -> HTMLResponse:
    """The public compensation calculator: no login, no personal data; each item and the total, by the service's
    own engine."""
    return HTMLResponse(public_compensation.calculator_html(conn, today, header=page_header(request, current="public"),
                                                            base_url=root_path(request)))


@router.post("/compensation/estimate")
def public_estimate(conn: Conn, today: Today, body: Annotated[EstimateIn, Body()]) -> dict[str, Any]:
    """No token needed. A hypothetical household's compensation, item by item, by the standards of its district in
    force on the agreement's day: the same engine and answer as the service's POST /compensation/estimate."""
    return compensation.estimate(conn, estimate_values(body), today=today)


@router.get("/projects/{project_id}/map", response_class=HTMLResponse)
def public_project_map(project_id: ProjectId, request: Request, conn: Conn, tolerance: Tol,
                       settings: AppSettings) -> HTMLResponse:
    """The same record as an offline map page: parcels by stage, their public fields on hover."""
    return HTMLResponse(disclosure.public_map_html(conn, project_id, tolerance, settings, base_url=root_path(request),
                                                   header=page_header(request, current="public")))
