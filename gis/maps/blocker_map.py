"""A project's blocker map: the footprint, the blockers by stage, the holdouts, every parcel as vector tiles.

The blockers are embedded as GeoJSON (6 decimals) so the page is complete on its own; the city's
other parcels come as vector tiles from ``/tiles/parcels/...``, so the page stays small whatever the
city's size. Popups show the owner masked unless the caller may see personal data.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

import folium
from branca.element import MacroElement
from folium.map import CustomPane
from folium.template import Template
from folium.plugins import VectorGridProtobuf
from shapely.geometry import shape
from sqlalchemy import Connection

from gis.blockers import MAX_LIMIT, BlockerFilter, Tolerance, find_blockers
from gis.config import SQM_PER_MU
from gis.maps.page import (
    DISTRICT_COLOUR, FOOTPRINT_COLOUR, HOLDOUT_COLOUR, STAGE_COLOURS, MapContext, add_legend, add_title,
    district_shapes, fill_swatch, kind_label, leaflet_bounds, line_swatch, new_map, render, stage_label,
)
from gis.projects import get_project
from gis.stages import STAGES, today_in
from gis.tiles import TILE_LAYERS

# Panes, bottom to top: every parcel (tiles), district lines, the footprint, the blockers, holdout markers.
PANES = {"footprint": 420, "blockers": 450, "holdouts": 460}
POPUP_FIELDS = ("code", "kind", "stage", "days", "overlap_m2", "overlap_mu", "district", "owner", "holdout", "note")


def project_blockers(
    conn: Connection, project_id: int, tolerance: Tolerance, *, tz: str, today: date, reveal_personal: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The project (with its footprint and progress) and every blocker with its geometry (WGS 84)."""
    project = get_project(conn, project_id, tolerance, today)
    items: list[dict[str, Any]] = []
    while True:
        page = find_blockers(conn, project_id, BlockerFilter(sort="code", limit=MAX_LIMIT, offset=len(items),
                                                             with_geometry=True),
                             tolerance, tz=tz, today=today, reveal_personal=reveal_personal)
        items += page.items
        if not page.items or len(items) >= page.total:
            return project, items


def _properties(item: dict[str, Any], ctx: MapContext) -> dict[str, Any]:
    """What a popup shows, escaped: the popup writes it as HTML."""
    lab = ctx.labels
    text_values = {
        "code": item["code"],
        "kind": kind_label(item["kind"], ctx.lang),
        "stage": stage_label(item["stage"], ctx.lang),
        "district": item["district_name"],
        "owner": item["owner_name"] or "",
        "holdout": lab["yes"] if item["holdout"] else lab["no"],
        "note": item["holdout_note"] or "",
    }
    return {k: escape(str(v)) for k, v in text_values.items()} | {
        "days": item["days_in_stage"],
        "overlap_m2": round(item["overlap_m2"], 1),
        "overlap_mu": round(item["overlap_m2"] / SQM_PER_MU, 3),
    }


class _HoldoutRings(MacroElement):
    """A ring around each holdout, in the pane above the blockers (folium's CircleMarker drops ``pane``)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this.points|tojson }}.forEach(function(p) {
            L.circleMarker([p[0], p[1]], {pane: "holdouts", radius: 9, color: {{ this.colour|tojson }}, weight: 3,
                                          fill: false}).bindTooltip(p[2]).addTo({{ this._parent.get_name() }});
        });
        {% endmacro %}
    """)

    def __init__(self, points: list[list[Any]]) -> None:
        super().__init__()
        self._name = "HoldoutRings"
        self.points = points
        self.colour = HOLDOUT_COLOUR


def blocker_style(stage: str, holdout: bool) -> dict[str, Any]:
    """Fill by stage; a holdout gets a thick dark outline."""
    return {
        "fillColor": STAGE_COLOURS[stage], "fillOpacity": 0.8,
        "color": HOLDOUT_COLOUR if holdout else "#333333", "weight": 4 if holdout else 1, "opacity": 1,
    }


def _parcels_style(ctx: MapContext) -> str:
    """VectorGrid options: each parcel of the tiles filled lightly in its stage's colour, drawn on canvas."""
    colours = {s: c for s, c in STAGE_COLOURS.items()}
    return f"""{{
        "rendererFactory": L.canvas.tile,
        "interactive": false,
        "minZoom": {TILE_LAYERS["parcels"].min_zoom},
        "maxZoom": 22,
        "vectorTileLayerStyles": {{
            "parcels": function(p) {{
                var colours = {colours};
                return {{fill: true, fillColor: colours[p.stage] || "#999999", fillOpacity: 0.3,
                         color: "#777777", weight: 0.5, opacity: 0.8}};
            }}
        }}
    }}"""


def blocker_map(
    conn: Connection,
    project_id: int,
    *,
    tolerance: Tolerance,
    ctx: MapContext = MapContext(),
    tz: str = "Asia/Shanghai",
    today: date | None = None,
    reveal_personal: bool = False,
    imagery: list[dict[str, Any]] | None = None,
) -> folium.Map:
    """The blocker map of ``project_id`` as a folium Map (``blocker_map_html`` renders it offline).

    ``imagery``: basemap choices served by this service (``gis.imagery.imagery_basemaps``), added as
    layers one can switch on; left out under a GCJ-02 basemap, which they would not line up with.
    """
    today = today or today_in(tz)
    lab = ctx.labels
    project, items = project_blockers(conn, project_id, tolerance, tz=tz, today=today,
                                      reveal_personal=reveal_personal)
    holdouts = [i for i in items if i["holdout"]]
    m = new_map(ctx, f"{project['name']} · {lab['blockers']}")
    for name, z in PANES.items():
        CustomPane(name, z_index=z, pointer_events=name != "footprint").add_to(m)

    for layer in (imagery or []) if not ctx.gcj02 else []:
        folium.TileLayer(ctx.url(layer["url_template"]), attr=escape(layer["attribution"]), name=escape(layer["name"]),
                         overlay=True, show=False, max_zoom=22, bounds=layer["bounds"]).add_to(m)

    tiles = ctx.url("/tiles/parcels/{z}/{x}/{y}.mvt") + ("?shift=gcj02" if ctx.gcj02 else "")
    VectorGridProtobuf(tiles, f"{lab['parcels']}（{lab['zoom_in']}）", _parcels_style(ctx)).add_to(m)

    districts = folium.FeatureGroup(name=lab["districts"])
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": d["id"], "properties": {"name": escape(d["name"])},
             "geometry": ctx.display(d["geometry"])} for d in district_shapes(conn)]},
        style_function=lambda _f: {"color": DISTRICT_COLOUR, "weight": 2, "fill": False, "dashArray": "6 4"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(districts)
    districts.add_to(m)

    footprint = ctx.display(project["footprint"])
    folium.GeoJson(
        {"type": "Feature", "properties": {}, "geometry": footprint}, name=lab["footprint"],
        style_function=lambda _f: {"color": FOOTPRINT_COLOUR, "weight": 3, "fill": True, "fillOpacity": 0.05,
                                   "interactive": False},
        pane="footprint",
    ).add_to(m)

    if items:
        styles = {i["parcel_id"]: blocker_style(i["stage"], i["holdout"]) for i in items}
        folium.GeoJson(
            {"type": "FeatureCollection", "features": [
                {"type": "Feature", "id": i["parcel_id"], "properties": _properties(i, ctx),
                 "geometry": ctx.display(i["geometry"])} for i in items]},
            name=f"{lab['blockers']}（{len(items)}）",
            style_function=lambda f: styles[f["id"]],
            popup=folium.GeoJsonPopup(fields=list(POPUP_FIELDS), aliases=[lab[f] for f in POPUP_FIELDS]),
            tooltip=folium.GeoJsonTooltip(fields=["code", "stage"], labels=False),
            pane="blockers",
        ).add_to(m)
    if holdouts:
        group = folium.FeatureGroup(name=f"{lab['holdouts']}（{len(holdouts)}）")
        points = []
        for item in holdouts:
            point = shape(ctx.display(item["geometry"])).representative_point()
            points.append([round(point.y, 6), round(point.x, 6), f"{lab['holdout']} {escape(item['code'])}"])
        _HoldoutRings(points).add_to(group)
        group.add_to(m)

    by_stage = {s: sum(1 for i in items if i["stage"] == s) for s in STAGES}
    rows = [(fill_swatch(STAGE_COLOURS[s]), f"{stage_label(s, ctx.lang)}（{by_stage[s]}）")
            for s in STAGES if s != "cleared"]
    rows += [
        (fill_swatch("#ffffff", HOLDOUT_COLOUR, 3), f"{lab['holdout_outline']}（{len(holdouts)}）"),
        (fill_swatch(STAGE_COLOURS["cleared"]) + ";opacity:0.4", f"{stage_label('cleared', ctx.lang)}（{lab['parcels']}）"),
        (line_swatch(FOOTPRINT_COLOUR), lab["footprint"]),
        (line_swatch(DISTRICT_COLOUR, dashed=True), lab["districts"]),
    ]
    add_legend(m, lab["legend_stage"], rows)
    pct = project["percent_cleared"]
    add_title(m, f"<h1>{escape(project['name'])}</h1>"
                 f"{lab['blocking']} {len(items)} {lab['unit']}，{lab['of_which_holdouts']} {len(holdouts)}"
                 + (f"；{lab['cleared_pct']} {pct:.1f}%" if pct is not None else "")
                 + f"<br>{lab['as_of']} {today.isoformat()}")

    folium.LayerControl(collapsed=False).add_to(m)
    bounds = leaflet_bounds([footprint])
    if bounds:
        m.fit_bounds(bounds)
    return m


def blocker_map_html(conn: Connection, project_id: int, **kwargs: Any) -> str:
    """The blocker map page (HTML), loading nothing from outside the service; arguments as ``blocker_map``."""
    return render(blocker_map(conn, project_id, **kwargs), kwargs.get("ctx", MapContext()))
