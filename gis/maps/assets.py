"""The maps' scripts, stylesheets and fonts, served by the service itself so the maps work offline.

folium links Leaflet, jQuery, Bootstrap, Font Awesome and its plugins from CDNs. Every resource it
names is mapped here, by folium's own resource name, to a file of an npm package pinned in the
repository's ``package.json``/``package-lock.json`` (installed into ``node_modules/`` by
``scripts/bootstrap.sh``) and served under ``/static/vendor/``. Relative references inside the
stylesheets (Leaflet's images, Font Awesome's web fonts) resolve to the same package.

A resource folium adds in a later version and that is missing here makes rendering fail (a test
renders every page) rather than silently load from the internet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html import escape
from pathlib import Path

from branca.element import Element

from gis.platform.errors import GisError

VENDOR_PATH = "/static/vendor"

# folium resource name → file under node_modules/, or None for a resource no page of this service uses.
FOLIUM_ASSETS: dict[str, str | None] = {
    "leaflet": "leaflet/dist/leaflet.js",
    "leaflet_css": "leaflet/dist/leaflet.css",
    "jquery": "jquery/dist/jquery.min.js",
    "bootstrap": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "bootstrap_css": "bootstrap/dist/css/bootstrap.min.css",
    "glyphicons_css": "@neos21/bootstrap3-glyphicons/dist/css/bootstrap3-glyphicons.min.css",
    "awesome_markers": "leaflet.awesome-markers/dist/leaflet.awesome-markers.min.js",
    "awesome_markers_css": "leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    "awesome_markers_font_css": "@fortawesome/fontawesome-free/css/all.min.css",
    # folium's own small stylesheet for rotated marker icons: on no registry, and no page here rotates icons.
    "awesome_rotate_css": None,
    "vectorGrid": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
}


# The API's own documentation page (Swagger UI), served like the maps' assets.
DOCS_ASSETS = {
    "swagger_js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger_css": "swagger-ui-dist/swagger-ui.css",
}


# The workbench's drawing tools (Leaflet-Geoman, the free edition: draw, edit and remove lines and polygons).
DRAW_ASSETS = {
    "geoman_js": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js",
    "geoman_css": "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css",
}
# Every file a page of the service loads from node_modules, by what loads it.
_PAGE_FILES = (*FOLIUM_ASSETS.values(), *DOCS_ASSETS.values(), *DRAW_ASSETS.values())


def _package(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:2] if parts[0].startswith("@") else parts[:1])


# Only these packages are served (node_modules holds their dependencies too, which no page loads).
VENDOR_PACKAGES: tuple[str, ...] = tuple(sorted({_package(p) for p in _PAGE_FILES if p}))

# The page font: the system's own, CJK faces included; no web font is downloaded.
SYSTEM_FONTS = ('system-ui, -apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", '
                '"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif')



def sign_out_form(base_url: str = "") -> str:
    """The pages' 退出登录 button: a form POSTing to /logout (signing out by a plain link is not possible)."""
    base = escape(base_url.rstrip("/"), quote=True)
    return f'<form method="post" action="{base}/logout" class="sign-out"><button type="submit">退出登录</button></form>'


class AssetsMissing(GisError):
    """The npm packages the maps load are not installed."""

    status_code = 503


class ExternalResource(GisError):
    """A page would load something from outside the service."""

    status_code = 500


def missing_assets(assets_dir: Path) -> list[str]:
    """The files the pages load (folium's, the docs', the drawing tools') not present under ``assets_dir``
    (node_modules)."""
    return [p for p in _PAGE_FILES if p and not (assets_dir / p).is_file()]


def ensure_assets(assets_dir: Path) -> None:
    """Refuse (AssetsMissing, with the fix) to serve a map page whose scripts are not installed under ``assets_dir``:
    the pages are offline and would show nothing."""
    missing = missing_assets(assets_dir)
    if missing:
        raise AssetsMissing(f"the map scripts are not installed ({missing[0]} and {len(missing) - 1} more missing "
                            f"under {assets_dir}): run scripts/bootstrap.sh, or 'npm ci' in the repository")


def _elements(root: Element) -> Iterator[Element]:
    yield root
    for child in list(root._children.values()):
        yield from _elements(child)


def _local(pairs: Iterable[tuple[str, str]], base: str) -> list[tuple[str, str]]:
    out = []
    for name, url in pairs:
        if name not in FOLIUM_ASSETS:
            raise ExternalResource(f"folium wants {name!r} from {url}, which has no local copy: add it to "
                                   "package.json and gis/maps/assets.py")
        path = FOLIUM_ASSETS[name]
        if path:
            out.append((name, f"{base}/{path}"))
    return out


def localize(root: Element, base: str = VENDOR_PATH) -> None:
    """Point every script and stylesheet of a folium page (its Figure) at the local copies under ``base``.

    folium collects each element's ``default_js``/``default_css`` while rendering; overriding them per
    instance keeps the classes untouched (other pages of the same process may render at the same time).
    """
    for element in _elements(root):
        for attr in ("default_js", "default_css"):
            pairs = getattr(element, attr, None)
            if pairs:
                setattr(element, attr, _local(pairs, base))


_ATTRIBUTE_OR_CSS = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^\s"'<>]+)|url\(\s*["']?((?:https?:)?//[^)"']+)""", re.I)


def external_urls(html: str, allowed: Iterable[str] = ()) -> list[str]:
    """Every absolute (``http://``, ``https://``) URL in ``html``, plus protocol-relative ones in ``src``/``href``/
    ``url()``, other than the ``allowed`` ones (a configured basemap)."""
    allowed = [a for a in allowed if a]
    found = set(re.findall(r"""https?://[^\s"'<>()\\]+""", html, re.I))
    for a, b in _ATTRIBUTE_OR_CSS.findall(html):
        found.add(a or b)
    # JSON in the page escapes '&' as \u0026, so a configured URL with a query string shows up cut short.
    return sorted(u for u in found if not any(u.startswith(a) or a.startswith(u) for a in allowed))


def check_offline(html: str, allowed: Iterable[str] = ()) -> str:
    """``html`` unchanged, or ExternalResource if it references anything outside the service."""
    urls = external_urls(html, allowed)
    if urls:
        raise ExternalResource(f"the page would load {urls[0]} from outside the service")
    return html
