"""The planner's workbench (规划工作台): a static page whose script (``gis/maps/workbench.js``) calls the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse

from api.auth import Principal, Role, require
from api.deps import get_settings
from api.pages import page_header, root_path
from gis.maps.assets import ensure_assets
from gis.maps.workbench import WORKBENCH_SCRIPT, workbench_html
from gis.platform.config import Settings

router = APIRouter(prefix="/workbench", tags=["workbench"])


@router.get("", response_class=HTMLResponse)
def workbench_page(request: Request, principal: Annotated[Principal, Depends(require(Role.viewer))],
                   settings: Annotated[Settings, Depends(get_settings)]) -> HTMLResponse:
    """The workbench (Chinese, offline): parcel search and card, draw a line or polygon and see what it hits,
    compare candidates, distance bands, the project red lines a line crosses."""
    ensure_assets(settings.map_assets_dir)
    html = workbench_html(base_url=root_path(request), header=page_header(request, current="workbench"),
                          reveal_personal=principal.reveal_personal)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/workbench.js", include_in_schema=False, dependencies=[Depends(require(Role.viewer))])
def workbench_script() -> FileResponse:
    """The workbench page's script, served from the service itself (the pages' Content-Security-Policy allows
    no other origin)."""
    return FileResponse(WORKBENCH_SCRIPT, media_type="text/javascript")
