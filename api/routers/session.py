"""Browser sign-in: the login page (Chinese labels) sets an HttpOnly, SameSite=Lax session cookie.

The cookie holds a random session token; the database keeps only its SHA-256 and expiry. Pages
and maps then work as with a bearer token. ``/me`` says who the caller is.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from api.auth import SESSION_COOKIE, Principal, Role, principal_cache, require
from api.deps import Conn, get_settings
from api.pages import root_path
from api.proxy import client_address
from gis.maps.nav import site_header
from gis.platform.config import Settings
from gis.records import users as auth

router = APIRouter(tags=["sign-in"])

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · 征收征迁</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; background: #f4f5f7; margin: 0; }}
form {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 6px;
       box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.3rem; margin: 0 0 1.2rem; }}
label {{ display: block; margin: .8rem 0 .3rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; }}
.error {{ color: #b00020; }}
</style></head>
<body style="margin:0">{header}<form method="post" action="{base}/login">
<h1>征收征迁信息系统 · 登录</h1>
{error}
<label for="username">用户名</label><input id="username" name="username" type="text" autocomplete="username" required>
<label for="password">密码</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">登录</button>
</form></body></html>
"""


def _safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no protocol-relative //."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(request: Request, next_path: str, error: str = "") -> str:
    """The login page under the site's public header (nobody is signed in on it)."""
    base = root_path(request)
    return _PAGE.format(next=escape(_safe_next(next_path), quote=True), base=escape(base, quote=True),
                        header=site_header(None, base_url=base, current="login"),
                        error=f'<p class="error">{escape(error)}</p>' if error else "")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002 - the conventional parameter name
    """The login page (Chinese); ``next`` is where to go after signing in, a path on this site only."""
    return HTMLResponse(_page(request, next))


@router.post("/login", response_class=HTMLResponse, responses={
    401: {"description": "Wrong user name or password (the login page again, with the error)."},
    429: {"description": "Too many failed sign-ins for this user name or address: wait ``Retry-After`` seconds. "
                         "JSON, or the login page for a browser (Accept: text/html)."}})
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Any:
    """Sign in; every attempt is recorded, and repeated failures lock the user name and the client address for a
    while (doubling, capped: ``Settings.login_*``), during which even the right password is refused with 429."""
    result = auth.login(conn, username.strip(), password, settings.session_hours, address=client_address(request),
                        throttle=auth.LoginThrottle.from_settings(settings))
    if result.token is None:
        if result.retry_after is None:
            return HTMLResponse(_page(request, next, "用户名或密码错误"), status_code=401)
        headers = {"Retry-After": str(result.retry_after)}
        message = f"登录失败次数过多，请 {result.retry_after} 秒后再试"
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_page(request, next, message), status_code=429, headers=headers)
        return JSONResponse({"detail": message, "retry_after": result.retry_after}, status_code=429, headers=headers)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, result.token, max_age=int(settings.session_hours * 3600), httponly=True, samesite="lax",
        secure=settings.session_cookie_secure, path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, conn: Conn) -> RedirectResponse:
    """End the browser session (the token is deleted server-side) and go back to the login page. POST only (the
    pages' 退出登录 button is a form): a link or an image on another page cannot sign anyone out, and the
    SameSite=Lax cookie is not sent with another site's POST."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth.logout(conn, token)
        principal_cache(request).clear()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me")
def me(principal: Annotated[Principal, Depends(require(Role.viewer))]) -> dict[str, Any]:
    """Who the caller is: name, role and its Chinese label, district ids, and whether personal data is shown to them.
    Any signed-in user."""
    return {
        "name": principal.name,
        "role": principal.role.value,
        "role_label": auth.ROLE_LABELS_ZH[principal.role],
        "district_ids": sorted(principal.district_ids),
        "reveal_personal": principal.reveal_personal,
    }
