"""The site's one header (导航栏), on every HTML page: where to go, who is signed in, and 退出登录.

``site_header`` builds it for a signed-in caller (links their role may open, their name and role, the sign-out
form) or, with no caller, the public variant (the published pages and the sign-in link only). Every page of the
service calls it: the landing page, the map pages (``gis.maps.page.MapContext.header``), the admin page, the
workbench, the reports, the OGC API's HTML pages and the API docs.

The header is plain HTML with its own small stylesheet and no script, so it works on a page with a strict
Content-Security-Policy (the reports) and on the folium map pages alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from gis.maps.assets import SYSTEM_FONTS, sign_out_form
from gis.records.users import ROLE_LABELS_ZH, ROLE_RANK, Principal, Role


@dataclass(frozen=True)
class NavLink:
    """One link of the header; ``minimum`` the lowest role that may open it (None: anyone, signed in or not)."""

    key: str
    label: str
    path: str
    minimum: Role | None


# In the order a planner works: the projects, their maps, the workbench, the reports, the checks, what the
# public sees, the API for scripts. The admin page for admins.
NAV_LINKS: tuple[NavLink, ...] = (
    NavLink("projects", "项目", "/", Role.viewer),
    NavLink("maps", "进度地图", "/districts/map", Role.viewer),
    NavLink("workbench", "工作台", "/workbench", Role.viewer),
    NavLink("reports", "报告", "/reports/daily", Role.viewer),
    NavLink("resettlement", "安置", "/resettlement", Role.viewer),
    NavLink("checks", "核查", "/checks?format=html", Role.inspector),
    NavLink("findings", "督查整改", "/findings?format=html", Role.viewer),
    NavLink("contest", "四季竞赛", "/contest?format=html", Role.viewer),
    NavLink("public", "公示", "/public/", None),
    NavLink("docs", "接口文档", "/docs", None),
    NavLink("admin", "系统管理", "/admin", Role.admin),
)
SIGN_IN = NavLink("login", "登录", "/login", None)

_CSS = """<style>
.pb-site-header {{ display: flex; flex-wrap: wrap; align-items: center; gap: .2rem 1.2rem; margin: 0;
  padding: .35rem 1rem; background: #1f3a5f; color: #fff; font: 14px/1.6 {fonts}; flex: 0 0 auto; }}
.pb-site-header .pb-site-name {{ font-weight: bold; color: #fff; text-decoration: none; }}
.pb-site-header nav {{ display: flex; flex-wrap: wrap; gap: 0 1rem; margin: 0; padding: 0; }}
.pb-site-header nav a {{ color: #dbe7ff; text-decoration: none; margin: 0; }}
.pb-site-header nav a:hover {{ text-decoration: underline; }}
.pb-site-header nav a[aria-current="page"] {{ color: #fff; font-weight: bold; }}
.pb-site-header .pb-user {{ margin-left: auto; display: flex; align-items: center; gap: .6rem; }}
.pb-site-header form {{ display: inline; margin: 0; }}
.pb-site-header button {{ font: inherit; padding: 0 .6rem; margin: 0; cursor: pointer; }}
</style>"""


def nav_links(principal: Principal | None) -> list[NavLink]:
    """The links ``principal`` may open (None: the public ones and the sign-in link)."""
    if principal is None:
        return [link for link in NAV_LINKS if link.minimum is None] + [SIGN_IN]
    rank = ROLE_RANK[principal.role]
    return [link for link in NAV_LINKS if link.minimum is None or rank >= ROLE_RANK[link.minimum]]


def site_header(principal: Principal | None, *, base_url: str = "", current: str | None = None) -> str:
    """The header as HTML: the links for ``principal``'s role, then their name and role and the sign-out form;
    ``current`` (a ``NavLink.key``) marks the page being shown. ``base_url``: the service's root path."""
    base = escape(base_url.rstrip("/"), quote=True)
    links = "".join(
        f'<a href="{base}{escape(link.path, quote=True)}" data-nav="{link.key}"'
        f'{" aria-current=page" if link.key == current else ""}>{escape(link.label)}</a>'
        for link in nav_links(principal))
    user = ""
    if principal is not None:
        user = (f'<span class="pb-user"><span data-user>{escape(principal.name)}'
                f'（{escape(ROLE_LABELS_ZH[principal.role])}）</span>{sign_out_form(base_url)}</span>')
    home = f"{base}/" if principal is not None else f"{base}/public/"
    return (_CSS.format(fonts=SYSTEM_FONTS)
            + f'<header class="pb-site-header" data-site-header><a class="pb-site-name" href="{home}">征收征迁</a>'
            + f'<nav aria-label="站点导航">{links}</nav>{user}</header>')
