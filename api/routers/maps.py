"""Map pages: the landing page, each project's blocker map (HTML, PNG and the PDF battle map), the district progress
map; and ``vendor_files``, the Leaflet/folium scripts and stylesheets under ``/static/vendor/`` that make them work
offline.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from api.auth import Principal, Role, require
from api.capacity import render_slot
from api.deps import AnyProjectId, Conn, IntId, ProjectId, get_settings, get_today, get_tolerance
from api.pages import page_header, root_path
from gis.domain.tolerance import Tolerance
from gis.imagery.layers import imagery_basemaps
from gis.io.export import content_disposition
from gis.maps.assets import VENDOR_PACKAGES, ensure_assets
from gis.maps.battle_map import render_battle_map
from gis.maps.blocker_map import blocker_geojson, blocker_map_html
from gis.maps.district_map import district_map_html
from gis.maps.landing import landing_html
from gis.maps.page import Basemap, MapContext
from gis.maps.revision_map import revision_diff_map_html
from gis.maps.static import render_blocker_png
from gis.platform.config import Settings
from gis.records.projects import list_projects
from gis.records.targets import district_targets

# Pages and images are CPU-bound in this process: a few at a time (api.capacity), the rest wait or get 503.
router = APIRouter(tags=["maps"], dependencies=[Depends(render_slot)])

Tol = Annotated[Tolerance, Depends(get_tolerance)]
Today = Annotated[date, Depends(get_today)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Lang = Annotated[Literal["zh", "en"], Query(description="Labels: zh (default) or en.")]
# The pages show live progress: a browser may keep them only briefly.
PAGE_CACHE = {"Cache-Control": "private, max-age=60"}


def _context(request: Request, settings: Settings, lang: str) -> MapContext:
    ensure_assets(settings.map_assets_dir)
    return MapContext(lang=lang, basemap=Basemap.from_settings(settings), base_url=root_path(request),
                      header=page_header(request, current="maps"))


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, conn: Conn, tolerance: Tol, today: Today, settings: AppSettings,
            principal: Viewer) -> HTMLResponse:
    """The projects with their progress, linking to their maps; the districts' targets of the year and quarter;
    the district map, the reports, the checks (for the roles that read them); the API docs."""
    projects = list_projects(conn, tolerance, today)
    targets = district_targets(conn, tolerance, today, tz=settings.city_timezone)
    return HTMLResponse(landing_html(projects, today=today, base_url=root_path(request), targets=targets,
                                     header=page_header(request, current="projects"),
                                     checks=principal.may_read_checks), headers=PAGE_CACHE)


@router.get("/projects/{project_id}/map", response_class=HTMLResponse)
def project_map(_principal: Viewer, project_id: ProjectId, request: Request, conn: Conn, tolerance: Tol,
                today: Today, settings: AppSettings, lang: Lang = "zh") -> HTMLResponse:
    """The blocker map: footprint, blockers by stage, holdouts, every parcel as vector tiles. Works offline."""
    ctx = _context(request, settings, lang)
    html = blocker_map_html(conn, project_id, tolerance=tolerance, ctx=ctx, tz=settings.city_timezone, today=today,
                            imagery=imagery_basemaps(conn))
    return HTMLResponse(html, headers=PAGE_CACHE)


@router.get("/projects/{project_id}/revisions/{a}/diff/{b}/map", response_class=HTMLResponse)
def revision_map(principal: Viewer, project_id: AnyProjectId, a: Annotated[IntId, Path()],
                 b: Annotated[IntId, Path()], request: Request, conn: Conn, tolerance: Tol, today: Today,
                 settings: AppSettings) -> HTMLResponse:
    """An alignment change on the map: both footprints, the parcels entering (red) and leaving (green)."""
    html = revision_diff_map_html(conn, project_id, a, b, tolerance=tolerance, today=today,
                                  ctx=_context(request, settings, "zh"), reveal_personal=principal.reveal_personal)
    return HTMLResponse(html, headers=PAGE_CACHE)


@router.get("/projects/{project_id}/map/blockers.geojson", response_class=Response,
            responses={200: {"content": {"application/geo+json": {}}}})
def project_map_blockers(
    principal: Viewer, project_id: ProjectId, conn: Conn, tolerance: Tol, today: Today,
    shift: Annotated[Literal["gcj02"] | None, Query(description="gcj02: drawn for a GCJ-02 basemap.")] = None,
) -> Response:
    """The blockers as the map draws them (GeoJSON, 6 decimals); owners masked unless the caller may see them."""
    body = blocker_geojson(conn, project_id, tolerance=tolerance, today=today,
                           reveal_personal=principal.reveal_personal, gcj02=shift == "gcj02")
    return Response(body, media_type="application/geo+json", headers=PAGE_CACHE)


@router.get("/projects/{project_id}/map.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def project_map_png(
    _principal: Viewer, project_id: ProjectId, conn: Conn, tolerance: Tol, today: Today, settings: AppSettings,
    lang: Lang = "zh",
    width: Annotated[int, Query(ge=200, le=6000, description="Pixels.")] = 1600,
    height: Annotated[int, Query(ge=200, le=6000, description="Pixels.")] = 1200,
) -> Response:
    """A static map of the project's blockers (PNG) for reports."""
    png = render_blocker_png(conn, project_id, tolerance=tolerance, today=today, tz=settings.city_timezone,
                             lang=lang, width=width, height=height)
    return Response(png, media_type="image/png", headers=PAGE_CACHE)


@router.get("/projects/{project_id}/map.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def project_map_pdf(principal: Viewer, project_id: ProjectId, conn: Conn, tolerance: Tol, today: Today,
                    settings: AppSettings, lang: Lang = "zh") -> Response:
    """The project's battle map (作战图) for the weekly dispatch meeting: an A3 landscape PDF with the map, the
    blockers by district and stage, the holdouts (owners masked unless the caller may see them) and the date."""
    pdf = render_battle_map(conn, project_id, tolerance=tolerance, today=today, tz=settings.city_timezone,
                            reveal_personal=principal.reveal_personal, lang=lang)
    return Response(pdf.data, media_type="application/pdf",
                    headers=PAGE_CACHE | {"Content-Disposition": content_disposition(pdf.filename)})


@router.get("/districts/map", response_class=HTMLResponse)
def districts_map(request: Request, conn: Conn, tolerance: Tol, today: Today, settings: AppSettings,
                  _principal: Viewer, lang: Lang = "zh",
                  project_id: Annotated[IntId | None, Query(description="Only this project.")] = None) -> HTMLResponse:
    """Districts coloured by the share of their parcels cleared (per project, or over all)."""
    ctx = _context(request, settings, lang)
    html = district_map_html(conn, tolerance=tolerance, ctx=ctx, tz=settings.city_timezone, today=today,
                             project_id=project_id)
    return HTMLResponse(html, headers=PAGE_CACHE)


class VendorFiles(StaticFiles):
    """node_modules, but only the packages the pages load (not their build-time dependencies)."""

    def __init__(self, directory: str, packages: tuple[str, ...]) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.prefixes = tuple(p + "/" for p in packages)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not path.startswith(self.prefixes):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def vendor_files(settings: Settings) -> StaticFiles:
    """The app mounts this at /static/vendor (public: scripts and stylesheets only)."""
    return VendorFiles(str(settings.map_assets_dir), VENDOR_PACKAGES)
