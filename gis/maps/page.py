"""What the map pages share: the basemap, labels in two languages, colours, and offline rendering.

A page has no basemap unless one is configured (planners on an intranet have none): the survey
polygons on a plain background are the map. A GCJ-02 basemap (Gaode/AMap, Tencent) gets every
overlay drawn in GCJ-02 (``MapContext.display``); what is stored never changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

import folium
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.template import Template
from shapely.geometry import mapping, shape
from sqlalchemy import Connection, text

from gis.domain.stages import ALL_STAGES, KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.maps.assets import SYSTEM_FONTS, VENDOR_PATH, check_offline, localize
from gis.maps.gcj02 import shift_geometry
from gis.platform.config import Settings

Lang = Literal["zh", "en"]
PRECISION = 6  # decimal degrees: about 0.1 m, finer than any survey the maps show

# Stage colours, from "nothing done" (red) to "cleared" (green); the legend, the vector tiles and the PNG share them.
STAGE_COLOURS = {
    "surveyed": "#d73027",
    "appraised": "#fc8d59",
    "signed": "#fee08b",
    "paid": "#91bfdb",
    "demolished": "#4575b4",
    "cleared": "#1a9850",
    # The dispute path in purples: set apart from the main path's red-to-green.
    "no_agreement": "#c2a5cf",
    "compensation_decision": "#9970ab",
    "court_enforcement": "#762a83",
}
HOLDOUT_COLOUR = "#67001f"
FOOTPRINT_COLOUR = "#e7298a"
DISTRICT_COLOUR = "#525252"

STAGE_LABELS_EN = {s: s.replace("_", " ").capitalize() for s in ALL_STAGES}
KIND_LABELS_EN = {"house": "house", "land": "land"}

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "blockers": "阻碍地块", "holdouts": "钉子户", "holdout_outline": "钉子户（粗框）", "parcels": "全部地块",
        "districts": "片区界线", "footprint": "项目红线", "basemap": "底图", "legend_stage": "征迁阶段",
        "code": "编号", "kind": "类型", "stage": "阶段", "days": "本阶段天数", "overlap_m2": "重叠面积（m²）",
        "overlap_mu": "重叠面积（亩）", "district": "片区", "owner": "权利人", "holdout": "钉子户",
        "note": "备注", "yes": "是", "no": "否", "as_of": "截至", "blocking": "阻碍地块", "unit": "宗",
        "of_which_holdouts": "其中钉子户", "cleared_pct": "已交地", "progress_map": "各片区征迁进度",
        "percent_cleared": "已交地比例", "no_data": "无数据", "rank": "排名", "total": "地块总数",
        "cleared": "已交地", "remaining": "未交地", "change_7d": "近7日新交地", "project": "项目",
        "all_projects": "全部项目", "projects": "项目红线", "zoom_in": "放大后显示",
        "lp": "（", "rp": "）", "comma": "，", "semi": "；",
    },
    "en": {
        "blockers": "Blocking parcels", "holdouts": "Holdouts", "holdout_outline": "Holdout (thick outline)",
        "parcels": "All parcels", "districts": "District boundaries", "footprint": "Project footprint",
        "basemap": "Basemap", "legend_stage": "Stage", "code": "Code", "kind": "Kind", "stage": "Stage",
        "days": "Days in stage", "overlap_m2": "Overlap (m²)", "overlap_mu": "Overlap (mu)", "district": "District",
        "owner": "Owner", "holdout": "Holdout", "note": "Note", "yes": "yes", "no": "no", "as_of": "as of",
        "blocking": "Blocking parcels", "unit": "", "of_which_holdouts": "holdouts", "cleared_pct": "cleared",
        "progress_map": "District progress", "percent_cleared": "Share cleared", "no_data": "no data",
        "rank": "Rank", "total": "Parcels", "cleared": "Cleared", "remaining": "Remaining",
        "change_7d": "Cleared in 7 days", "project": "Project", "all_projects": "all projects",
        "projects": "Project footprints", "zoom_in": "shown when zoomed in",
        "lp": " (", "rp": ")", "comma": ", ", "semi": "; ",
    },
}


def labels(lang: Lang) -> dict[str, str]:
    """The map pages' interface labels in ``lang``."""
    return LABELS[lang]


def paren(lab: dict[str, str], inner: object) -> str:
    """``inner`` in brackets of the label language: （…） in Chinese, (…) in English."""
    return f"{lab['lp']}{inner}{lab['rp']}"


def stage_label(stage: str, lang: Lang) -> str:
    """A stage's name in ``lang``; the stage itself if it has none."""
    return (STAGE_LABELS_ZH if lang == "zh" else STAGE_LABELS_EN).get(stage, stage)


def kind_label(kind: str, lang: Lang) -> str:
    """A parcel kind's name (house, land) in ``lang``; the kind itself if it has none."""
    return (KIND_LABELS_ZH if lang == "zh" else KIND_LABELS_EN).get(kind, kind)


@dataclass(frozen=True)
class Basemap:
    """A configured XYZ basemap; ``crs`` gcj02 for Gaode/AMap or Tencent tiles."""

    url: str
    crs: Literal["wgs84", "gcj02"] = "wgs84"
    attribution: str = "底图"
    max_zoom: int = 18

    @classmethod
    def from_settings(cls, settings: Settings) -> Basemap | None:
        if not settings.basemap_url:
            return None
        return cls(settings.basemap_url, settings.basemap_crs, settings.basemap_attribution or "底图",
                   settings.basemap_max_zoom)


@dataclass(frozen=True)
class MapContext:
    """How a page reaches the service (``base_url``: its root path, "" at the root), what it draws on, and the
    site's header above the map (``gis.maps.nav.site_header``; "" for none)."""

    lang: Lang = "zh"
    basemap: Basemap | None = None
    base_url: str = ""
    header: str = ""

    @property
    def gcj02(self) -> bool:
        return self.basemap is not None and self.basemap.crs == "gcj02"

    @property
    def labels(self) -> dict[str, str]:
        return LABELS[self.lang]

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def display(self, geometry: dict[str, Any]) -> dict[str, Any]:
        """A GeoJSON geometry (WGS 84) as drawn: shifted to GCJ-02 when the basemap is, rounded to 6 decimals."""
        if self.gcj02:
            geometry = shift_geometry(geometry)
        rounded = shapely.transform(shape(geometry), lambda xy: np.round(xy, PRECISION))
        return mapping(rounded)


def leaflet_bounds(geometries: list[dict[str, Any]]) -> list[list[float]] | None:
    """[[south, west], [north, east]] around GeoJSON geometries, or None when there are none."""
    shapes = [shape(g) for g in geometries if g]
    if not shapes:
        return None
    west, south, east, north = shapely.total_bounds(shapes)
    return [[float(south), float(west)], [float(north), float(east)]]


def district_shapes(conn: Connection) -> list[dict[str, Any]]:
    """Every district with its boundary (GeoJSON, WGS 84)."""
    rows = conn.execute(text(
        "SELECT id, code, name, ST_AsGeoJSON(ST_Transform(geom, 4326), 7) AS geometry FROM districts ORDER BY id"
    )).mappings().all()
    return [{"id": r["id"], "code": r["code"], "name": r["name"], "geometry": json.loads(r["geometry"])}
            for r in rows]


_CSS = """
<style>
html, body, .leaflet-container {{ font-family: {fonts}; }}
.pb-box {{ background: rgba(255,255,255,0.92); padding: 6px 10px; border-radius: 4px;
          box-shadow: 0 1px 4px rgba(0,0,0,0.3); font-size: 13px; line-height: 1.5; }}
.pb-box h1 {{ font-size: 16px; margin: 0 0 2px 0; }}
.pb-legend i {{ display: inline-block; width: 16px; height: 12px; margin-right: 6px; vertical-align: -1px;
               border: 1px solid #333; }}
.pb-legend b {{ display: block; margin-bottom: 2px; }}
.foliumpopup th, .pb-popup th {{ padding-right: 8px; white-space: nowrap; }}
/* The site's header above the map: the map takes the rest of the window. */
body {{ display: flex; flex-direction: column; }}
body > .folium-map {{ flex: 1 1 0; height: auto !important; min-height: 0; }}
</style>
"""


class _Box(MacroElement):
    """A fixed box (title or legend): plain HTML in the page, moved into a Leaflet control."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="{{ this.css_class }}">{{ this.html }}</div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function() {
            var box = L.control({position: {{ this.position|tojson }}});
            box.onAdd = function() {
                var div = document.getElementById({{ this.get_name()|tojson }});
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            box.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(self, html: str, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "Box"
        self.html = html
        self.position = position
        self.css_class = css_class


class _MetricScale(MacroElement):
    """Leaflet's scale bar in metres only (folium's also shows feet)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class _FitClearOfControls(MacroElement):
    """The map fitted to ``bounds`` with none of the controls (title, layers, legend, zoom, scale) over them: the
    bounds are kept clear of the controls at the sides or at the top and bottom, whichever allows the closer
    zoom. Measured in the browser once every control is on the map (their sizes depend on fonts and labels)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function() {
            var map = {{ this._parent.get_name() }}, bounds = L.latLngBounds({{ this.bounds|tojson }});
            var air = {{ this.air }};
            function reach(selector, side) {
                var corner = map.getContainer().querySelector(selector);
                var box = map.getContainer().getBoundingClientRect();
                var most = 0;
                if (corner) Array.prototype.forEach.call(corner.children, function(c) {
                    var r = c.getBoundingClientRect();
                    var depth = {left: r.right - box.left, right: box.right - r.left,
                                 top: r.bottom - box.top, bottom: box.bottom - r.top}[side];
                    most = Math.max(most, depth + air);
                });
                return most;
            }
            function fit() {
                map.invalidateSize(false);  // the page's header may have moved the container since the map was made
                var left = Math.max(reach(".leaflet-top.leaflet-left", "left"),
                                    reach(".leaflet-bottom.leaflet-left", "left"));
                var right = Math.max(reach(".leaflet-top.leaflet-right", "right"),
                                     reach(".leaflet-bottom.leaflet-right", "right"));
                var top = Math.max(reach(".leaflet-top.leaflet-left", "top"),
                                   reach(".leaflet-top.leaflet-right", "top"));
                var bottom = Math.max(reach(".leaflet-bottom.leaflet-left", "bottom"),
                                      reach(".leaflet-bottom.leaflet-right", "bottom"));
                var sides = {paddingTopLeft: [left, air], paddingBottomRight: [right, air]};
                var ends = {paddingTopLeft: [air, top], paddingBottomRight: [air, bottom]};
                var zoom = function(o) {  // -Infinity when the controls leave no room that way
                    var padding = L.point(o.paddingTopLeft).add(L.point(o.paddingBottomRight));
                    var room = map.getSize().subtract(padding);
                    return room.x > 0 && room.y > 0 ? map.getBoundsZoom(bounds, false, padding) : -Infinity;
                };
                var best = zoom(sides) >= zoom(ends) ? sides : ends;
                if (zoom(best) > -Infinity) map.fitBounds(bounds, best); else map.fitBounds(bounds);
            }
            map.fitBounds(bounds);
            setTimeout(fit, 0);  // after the page's other scripts have added every control
        })();
        {% endmacro %}
    """)

    def __init__(self, bounds: list[list[float]], air: int = 12) -> None:
        super().__init__()
        self._name = "FitClearOfControls"
        self.bounds = bounds
        self.air = air


def fit_clear_of_controls(m: folium.Map, bounds: list[list[float]]) -> None:
    """Fit ``m`` to ``bounds`` (``leaflet_bounds``) so that no control covers them: a project line is never
    hidden under the legend or the layer list."""
    _FitClearOfControls(bounds).add_to(m)


def new_map(ctx: MapContext, title: str) -> folium.Map:
    """An empty page: no basemap unless configured, a scale bar, the system fonts."""
    m = folium.Map(location=[0, 0], zoom_start=2, tiles=None, max_zoom=22)
    root = m.get_root()
    root.header.add_child(Element(f"<title>{escape(title)}</title>"), name="title")
    root.header.add_child(Element('<link rel="icon" href="data:,">'), name="no_favicon")  # no request for one
    _MetricScale().add_to(m)
    root.header.add_child(Element(_CSS.format(fonts=SYSTEM_FONTS)), name="pb_css")
    if ctx.header:
        root.html.add_child(Element(ctx.header), name="pb_site_header", index=0)
    if ctx.basemap:
        folium.TileLayer(ctx.basemap.url, attr=escape(ctx.basemap.attribution), name=ctx.labels["basemap"],
                         max_zoom=ctx.basemap.max_zoom, max_native_zoom=ctx.basemap.max_zoom, overlay=False,
                         control=True).add_to(m)
    return m


def add_title(m: folium.Map, html: str) -> None:
    """The map's title box, top right; ``html`` goes in as is, so escape what it quotes."""
    _Box(html, "topright", "pb-box pb-title").add_to(m)


def add_legend(m: folium.Map, title: str, rows: list[tuple[str, str]], raw: bool = False) -> None:
    """``rows``: (the swatch's inline CSS, label) pairs; labels are escaped here unless ``raw`` (HTML
    the caller made safe)."""
    body = "".join(f'<div><i style="{style}"></i>{label if raw else escape(label)}</div>' for style, label in rows)
    _Box(f"<b>{escape(title)}</b>{body}", "bottomright", "pb-box pb-legend").add_to(m)


def fill_swatch(colour: str, outline: str = "#333", width: int = 1) -> str:
    """The CSS of a legend swatch for an area."""
    return f"background:{colour};border-color:{outline};border-width:{width}px"


def line_swatch(colour: str, dashed: bool = False) -> str:
    """The CSS of a legend swatch for a line, solid or dashed."""
    return (f"height:0;background:none;border-width:3px 0 0 0;border-color:{colour};"
            f"border-style:{'dashed' if dashed else 'solid'}")


def render(m: folium.Map, ctx: MapContext) -> str:
    """The page's HTML, loading scripts and stylesheets from the service only."""
    root = m.get_root()
    localize(root, ctx.url(VENDOR_PATH))
    html = root.render()
    html = html.replace("<html>", f'<html lang="{"zh-CN" if ctx.lang == "zh" else "en"}">', 1)
    return check_offline(html, allowed=[ctx.basemap.url] if ctx.basemap else [])
