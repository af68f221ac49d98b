"""The API's documentation page (Swagger UI) from the pinned npm package, so it renders on an intranet too.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and is blank without the internet; ReDoc is not offered
(its npm package brings a React application's dependencies for a second view of the same document).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from api.deps import get_settings
from api.pages import optional_principal, page_header
from gis.maps.assets import DOCS_ASSETS, VENDOR_PATH, ensure_assets
from gis.platform.config import Settings
from gis.records.users import Principal

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request, settings: Annotated[Settings, Depends(get_settings)],
               _principal: Annotated[Principal | None, Depends(optional_principal)]) -> HTMLResponse:
    """Swagger UI over this service's OpenAPI document, under the site's header (the signed-in variant when the
    caller is signed in: the page itself is open to anyone)."""
    ensure_assets(settings.map_assets_dir)
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · 接口文档",
        swagger_js_url=f"{root}{VENDOR_PATH}/{DOCS_ASSETS['swagger_js']}",
        swagger_css_url=f"{root}{VENDOR_PATH}/{DOCS_ASSETS['swagger_css']}",
        swagger_favicon_url="data:,", oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
    )
    html = bytes(page.body).decode().replace("<body>", "<body>" + page_header(request, current="docs"), 1)
    return HTMLResponse(html.replace("<html>", '<html lang="zh-CN">', 1))


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 return page."""
    return get_swagger_ui_oauth2_redirect_html()
