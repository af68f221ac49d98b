"""The admin page (管理): districts, projects, alignments, dates and standards from the planners' files, with a
map preview before anything is saved. The page is static; its script calls the same API routes a script would."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Role, require
from api.deps import get_settings
from api.pages import page_header, root_path
from api.uploads import saved_upload
from gis.io.features import file_layers
from gis.maps.admin_page import ADMIN_SCRIPT, admin_page_html
from gis.maps.assets import ensure_assets
from gis.platform.config import Settings

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require(Role.admin))])


@router.get("", response_class=HTMLResponse)
def admin_page(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> HTMLResponse:
    """The admin page (Chinese, offline): upload districts and project lines, preview, save, set dates and
    standards."""
    ensure_assets(settings.map_assets_dir)
    return HTMLResponse(admin_page_html(base_url=root_path(request), header=page_header(request, current="admin")),
                        headers={"Cache-Control": "no-store"})


@router.get("/admin.js", include_in_schema=False)
def admin_script() -> FileResponse:
    """The admin page's script (admins only, like the page); not in the API document."""
    return FileResponse(ADMIN_SCRIPT, media_type="text/javascript")


@router.post("/files/layers")
async def layers(file: Annotated[UploadFile, File(description="GeoPackage, zipped Shapefile, GeoJSON, KML, "
                                                                "FlatGeobuf or DXF")]) -> dict[str, Any]:
    """The layers of a file (in a DXF drawing, its CAD layers), each with how many lines and polygons it holds:
    what to choose from before importing districts or a project line."""
    async with saved_upload(file) as path:
        return {"layers": await run_in_threadpool(file_layers, path)}
