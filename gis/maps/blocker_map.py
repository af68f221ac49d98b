"""A project's blocker map: the footprint, the blockers by stage, the holdouts, every parcel as vector tiles.

The page is small and fixed: the blockers come from ``/projects/{id}/map/blockers.geojson``
(``blocker_geojson``: 6 decimals, owners masked unless the caller may see them), fetched by the page
and drawn by Leaflet; the city's other parcels come as vector tiles from ``/tiles/parcels/...``. So
the page stays light whatever the city's size, and 10,000 blockers draw in well under 3 s
(bench/map_size.py). Popups are built from text nodes in the browser: no value is ever parsed as HTML.
"""

from __future__ import annotations

import json
from datetime import date
from html import escape
from typing import Any

import folium
from branca.element import Element
from folium.map import CustomPane, Layer
from folium.plugins import VectorGridProtobuf
from folium.template import Template
from sqlalchemy import Connection, text

from gis.analysis.blockers import MAX_LIMIT, BlockerFilter, blocker_from_sql, find_blockers
from gis.domain.privacy import mask_name
from gis.domain.stages import ALL_STAGES, today_in
from gis.domain.tolerance import Tolerance
from gis.maps.gcj02 import wgs84_to_gcj02
from gis.maps.page import (
    DISTRICT_COLOUR,
    FOOTPRINT_COLOUR,
    HOLDOUT_COLOUR,
    PRECISION,
    STAGE_COLOURS,
    Basemap,
    MapContext,
    add_legend,
    add_title,
    district_shapes,
    fill_swatch,
    fit_clear_of_controls,
    kind_label,
    leaflet_bounds,
    line_swatch,
    new_map,
    paren,
    render,
    stage_label,
)
from gis.maps.tiles import TILE_LAYERS
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU
from gis.platform.errors import ProjectNotFound
from gis.records.projects import get_project

_GCJ02 = MapContext(basemap=Basemap("", crs="gcj02"))  # how geometries are drawn over a GCJ-02 basemap

# Panes, bottom to top: every parcel (tiles), district lines, the footprint, the blockers, holdout rings.
PANES = {"footprint": 420, "blockers": 450, "holdouts": 460}
POPUP_FIELDS = ("code", "kind", "stage", "days", "overlap_m2", "overlap_mu", "district", "owner", "holdout", "note")

_RING = f"ST_Transform(ST_PointOnSurface(pa.geom), 4326), {PRECISION})"
_FEATURES_SQL = f"""
SELECT o.parcel_id, pa.code, pa.kind, st.stage, (CAST(:today AS date) - st.stage_since) AS days, pa.holdout,
       pa.holdout_note, d.name AS district, o.overlap_m2, pa.owner_name,
       ST_AsGeoJSON(ST_Transform(pa.geom, 4326), {PRECISION}) AS geometry,
       CASE WHEN pa.holdout THEN ST_AsGeoJSON({_RING} END AS ring
{blocker_from_sql(None)}
ORDER BY pa.code
"""


def project_blockers(
    conn: Connection, project_id: int, tolerance: Tolerance, *, tz: str, today: date, reveal_personal: bool,
    as_of: date | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The project (with its footprint and progress) and every blocker with its geometry (WGS 84),
    as of the end of ``as_of`` (replayed from the history) when given."""
    project = get_project(conn, project_id, tolerance, today)
    items: list[dict[str, Any]] = []
    while True:
        page = find_blockers(conn, project_id, BlockerFilter(sort="code", limit=MAX_LIMIT, offset=len(items),
                                                             with_geometry=True, as_of=as_of),
                             tolerance, tz=tz, today=today, reveal_personal=reveal_personal)
        items += page.items
        if not page.items or len(items) >= page.total:
            return project, items


def blocker_geojson(
    conn: Connection, project_id: int, *, tolerance: Tolerance, today: date, reveal_personal: bool = False,
    gcj02: bool = False,
) -> str:
    """Every blocker of the project as the map draws it: a GeoJSON FeatureCollection (WGS 84, or GCJ-02 for
    display with ``gcj02``), properties with stage and kind as keys, the owner masked unless ``reveal_personal``,
    and for each holdout a point inside it (``ring``: lon, lat). Built as text: 10,000 blockers take a
    fraction of a second."""
    live = conn.execute(text("SELECT 1 FROM projects WHERE id = :id AND archived_at IS NULL"), {"id": project_id})
    if live.first() is None:
        raise ProjectNotFound(project_id)
    rows = conn.execute(text(_FEATURES_SQL), {
        "project_id": project_id, **tolerance.params, "today": today,
    }).mappings().all()
    features = []
    for r in rows:
        props = {
            "code": r["code"], "kind": r["kind"], "stage": r["stage"], "days": r["days"], "holdout": r["holdout"],
            "note": r["holdout_note"], "district": r["district"], "overlap_m2": round(r["overlap_m2"], 1),
            "overlap_mu": round(r["overlap_m2"] / SQM_PER_MU, 3),
            "owner": r["owner_name"] if reveal_personal else mask_name(r["owner_name"]),
        }
        geometry = r["geometry"]
        if r["ring"]:
            lon, lat = json.loads(r["ring"])["coordinates"]
            if gcj02:
                lon, lat = (round(float(v), PRECISION) for v in wgs84_to_gcj02(lon, lat))
            props["ring"] = [lon, lat]
        if gcj02:
            geometry = json.dumps(_GCJ02.display(json.loads(geometry)))
        features.append(f'{{"type":"Feature","id":{int(r["parcel_id"])},"geometry":{geometry},'
                        f'"properties":{json.dumps(props, ensure_ascii=False, separators=(",", ":"))}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"


class _BlockerLayer(Layer):
    """The blockers, fetched from the service and drawn by stage; holdouts get a thick outline and a ring."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function() {
            var styles = {{ this.styles|tojson }}, holdoutStyle = {{ this.holdout_style|tojson }};
            var text = {{ this.text|tojson }};
            function popup(p) {
                var table = document.createElement("table");
                table.className = "pb-popup";
                var values = {code: p.code, kind: text.kinds[p.kind] || p.kind, stage: text.stages[p.stage] || p.stage,
                              days: p.days, overlap_m2: p.overlap_m2, overlap_mu: p.overlap_mu, district: p.district,
                              owner: p.owner, holdout: p.holdout ? text.yes : text.no, note: p.note};
                text.fields.forEach(function(field) {
                    var row = table.insertRow(), th = document.createElement("th");
                    th.textContent = text.labels[field];
                    row.appendChild(th);
                    row.insertCell().textContent = values[field] == null ? "" : String(values[field]);
                });
                return table;
            }
            var layer = L.geoJson(null, {
                pane: "blockers",
                style: function(f) {
                    var s = styles[f.properties.stage];
                    return f.properties.holdout ? Object.assign({}, s, holdoutStyle) : s;
                },
                onEachFeature: function(f, l) { l.bindPopup(function() { return popup(f.properties); }); }
            });
            {{ this.get_name() }}_data.then(function(data) {
                    layer.addData(data);
                    var counts = {};
                    data.features.forEach(function(f) {
                        var p = f.properties;
                        counts[p.stage] = (counts[p.stage] || 0) + 1;
                        if (p.ring) {
                            L.circleMarker([p.ring[1], p.ring[0]], {pane: "holdouts", radius: 9, weight: 3, fill: false,
                                                                     color: holdoutStyle.color})
                                .bindTooltip(text.labels.holdout + " " + p.code)
                                .addTo({{ this.rings.get_name() }});  // declared after this layer
                        }
                    });
                    document.querySelectorAll("[data-stage-count]").forEach(function(el) {
                        el.textContent = counts[el.getAttribute("data-stage-count")] || 0;
                    });
                    document.body.setAttribute("data-blockers", String(data.features.length));
                })
                .catch(function(e) { console.error("the blockers could not be loaded: " + e.message); })
                .then(function() {
                    {%- for name in this.then_show %}
                    {{ this._parent.get_name() }}.addLayer({{ name }});
                    {%- endfor %}
                });
            return layer;
        })();
        {% endmacro %}
    """)

    # Started in the page's head, before the scripts load: the data is on its way while they do.
    _fetch = Template("""<script>
        var {{ this.get_name() }}_data = fetch({{ this.url|tojson }}, {credentials: "same-origin"})
            .then(function(r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
        {{ this.get_name() }}_data.catch(function() {});  // reported once the layer handles it
        </script>""")

    def __init__(self, url: str, name: str, rings: Layer, ctx: MapContext, then_show: list[Layer]) -> None:
        """``then_show``: layers added once the blockers are drawn (the tiles wait, so the blockers come first)."""
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "BlockerLayer"
        self.url = url
        self.rings = rings
        self.then_show = [layer.get_name() for layer in then_show]
        self.styles = {s: blocker_style(s, False) for s in ALL_STAGES}
        self.holdout_style = {k: v for k, v in blocker_style(ALL_STAGES[0], True).items() if k in ("color", "weight")}
        lab = ctx.labels
        self.text = {
            "fields": list(POPUP_FIELDS), "labels": {f: lab[f] for f in POPUP_FIELDS} | {"holdout": lab["holdout"]},
            "stages": {s: stage_label(s, ctx.lang) for s in ALL_STAGES},
            "kinds": {k: kind_label(k, ctx.lang) for k in ("house", "land")}, "yes": lab["yes"], "no": lab["no"],
        }


class _RingLayer(Layer):
    """An empty layer the blocker layer fills with a ring around each holdout (its own entry in the layer control)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup();
        {% endmacro %}
    """)

    def __init__(self, name: str) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "RingLayer"


def blocker_style(stage: str, holdout: bool) -> dict[str, Any]:
    """Fill by stage; a holdout gets a thick dark outline."""
    return {
        "fillColor": STAGE_COLOURS[stage], "fillOpacity": 0.8,
        "color": HOLDOUT_COLOUR if holdout else "#333333", "weight": 4 if holdout else 1, "opacity": 1,
    }


def _parcels_style() -> str:
    """VectorGrid options: each parcel of the tiles filled lightly in its stage's colour, drawn on canvas."""
    colours = json.dumps(STAGE_COLOURS)
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
    tz: str = DEFAULT_TIMEZONE,
    today: date | None = None,
    imagery: list[dict[str, Any]] | None = None,
) -> folium.Map:
    """The blocker map of ``project_id`` as a folium Map (``blocker_map_html`` renders it offline).

    ``imagery``: basemap choices served by this service (``gis.imagery.imagery_basemaps``), added as
    layers one can switch on; left out under a GCJ-02 basemap, which they would not line up with.
    """
    today = today or today_in(tz)
    lab = ctx.labels
    project = get_project(conn, project_id, tolerance, today)
    m = new_map(ctx, f"{project['name']} · {lab['blockers']}")
    for name, z in PANES.items():
        CustomPane(name, z_index=z, pointer_events=name != "footprint").add_to(m)

    for layer in (imagery or []) if not ctx.gcj02 else []:
        folium.TileLayer(ctx.url(layer["url_template"]), attr=escape(layer["attribution"]), name=escape(layer["name"]),
                         overlay=True, show=False, max_zoom=22, bounds=layer["bounds"]).add_to(m)

    shift = "?shift=gcj02" if ctx.gcj02 else ""
    parcels = VectorGridProtobuf(ctx.url("/tiles/parcels/{z}/{x}/{y}.mvt") + shift,
                                 lab["parcels"] + paren(lab, lab["zoom_in"]), _parcels_style(), show=False)
    parcels.add_to(m)

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

    rings = _RingLayer(lab["holdouts"] + paren(lab, project["holdouts"]))
    blockers = _BlockerLayer(ctx.url(f"/projects/{int(project_id)}/map/blockers.geojson") + shift,
                             lab["blockers"] + paren(lab, project["blocking"]), rings, ctx, then_show=[parcels])
    m.get_root().header.add_child(Element(blockers._fetch.render(this=blockers)), name=blockers.get_name() + "_fetch")
    blockers.add_to(m)
    rings.add_to(m)

    count = '<span data-stage-count="{}">…</span>'
    rows = [(fill_swatch(STAGE_COLOURS[s]), stage_label(s, ctx.lang) + paren(lab, count.format(s)))
            for s in ALL_STAGES if s != "cleared"]
    rows += [
        (fill_swatch("#ffffff", HOLDOUT_COLOUR, 3), lab["holdout_outline"] + paren(lab, project["holdouts"])),
        (fill_swatch(STAGE_COLOURS["cleared"]) + ";opacity:0.4",
         stage_label("cleared", ctx.lang) + paren(lab, lab["parcels"])),
        (line_swatch(FOOTPRINT_COLOUR), lab["footprint"]),
        (line_swatch(DISTRICT_COLOUR, dashed=True), lab["districts"]),
    ]
    add_legend(m, lab["legend_stage"], rows, raw=True)
    pct = project["percent_cleared"]
    add_title(m, f"<h1>{escape(project['name'])}</h1>"
                 f"{lab['blocking']} {project['blocking']} {lab['unit']}{lab['comma']}"
                 f"{lab['of_which_holdouts']} {project['holdouts']}"
                 + (f"{lab['semi']}{lab['cleared_pct']} {pct:.1f}%" if pct is not None else "")
                 + f"<br>{lab['as_of']} {today.isoformat()}")

    folium.LayerControl(collapsed=False).add_to(m)
    bounds = leaflet_bounds([footprint])
    if bounds:
        fit_clear_of_controls(m, bounds)
    return m


def blocker_map_html(conn: Connection, project_id: int, **kwargs: Any) -> str:
    """The blocker map page (HTML), loading nothing from outside the service; arguments as ``blocker_map``."""
    return render(blocker_map(conn, project_id, **kwargs), kwargs.get("ctx", MapContext()))
