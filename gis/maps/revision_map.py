"""The map of an alignment change (改线): both footprints and the parcels that enter or leave, offline.

Drawn from ``gis.analysis.alignments.revision_diff``: the earlier footprint dashed grey, the later one red, parcels
entering the footprint red, leaving green; the totals in the title box. Owner names follow the caller's role.
"""

from __future__ import annotations

import json
from datetime import date
from html import escape
from typing import Any

import folium
from sqlalchemy import Connection, text

from gis.analysis.alignments import revision_diff
from gis.domain.tolerance import Tolerance
from gis.maps.page import (
    DISTRICT_COLOUR,
    MapContext,
    add_legend,
    add_title,
    district_shapes,
    fill_swatch,
    fit_clear_of_controls,
    leaflet_bounds,
    line_swatch,
    new_map,
    render,
)

ENTERING, LEAVING, BEFORE, AFTER = "#d7301f", "#1a9850", "#6b7280", "#b00020"
_FOOTPRINT_SQL = """
SELECT ST_AsGeoJSON(ST_Transform(footprint, 4326), 6) FROM project_revisions
WHERE project_id = :id AND revision = :revision
"""


def _footprint(conn: Connection, project_id: int, revision: int) -> dict[str, Any]:
    return json.loads(conn.execute(text(_FOOTPRINT_SQL), {"id": project_id, "revision": revision}).scalar_one())


def _parcels(hits: list[dict[str, Any]], colour: str, name: str, ctx: MapContext) -> folium.GeoJson:
    # folium's tooltip inserts values as HTML: they are escaped here.
    features = [{"type": "Feature", "geometry": ctx.display(h["geometry"]),
                 "properties": {"code": escape(h["code"]), "owner": escape(h["owner_name"] or ""),
                                "overlap": h["overlap_m2"], "holdout": "钉子户" if h["holdout"] else ""}}
                for h in hits]
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": features}, name=name,
        style_function=lambda _f, c=colour: {"color": c, "weight": 1.5, "fillColor": c, "fillOpacity": 0.55},
        # folium refuses a tooltip over no features: a revision that only removes parcels has none entering.
        tooltip=folium.GeoJsonTooltip(fields=["code", "owner", "overlap", "holdout"],
                                      aliases=["地块编号", "权利人", "占用面积(㎡)", ""]) if features else None,
    )


def revision_diff_map_html(conn: Connection, project_id: int, a: int, b: int, *, tolerance: Tolerance, today: date,
                           ctx: MapContext, reveal_personal: bool = False) -> str:
    """The page comparing revisions ``a`` and ``b`` of a project."""
    diff = revision_diff(conn, project_id, a, b, tolerance, today, reveal_personal=reveal_personal)
    name = conn.execute(text("SELECT name FROM projects WHERE id = :id"), {"id": project_id}).scalar_one()
    before, after = _footprint(conn, project_id, a), _footprint(conn, project_id, b)
    m = new_map(ctx, f"{name} · 改线对比 第{a}版→第{b}版")
    districts = [{"type": "Feature", "geometry": ctx.display(d["geometry"]), "properties": {}}
                 for d in district_shapes(conn)]
    folium.GeoJson({"type": "FeatureCollection", "features": districts}, name="片区界线",
                   style_function=lambda _f: {"color": DISTRICT_COLOUR, "weight": 1, "fill": False}).add_to(m)
    for geometry, label, colour, dash in ((before, f"第{a}版红线", BEFORE, "6 4"),
                                          (after, f"第{b}版红线", AFTER, None)):
        folium.GeoJson(ctx.display(geometry), name=label,
                       style_function=lambda _f, c=colour, d=dash: {"color": c, "weight": 2, "dashArray": d,
                                                                     "fillOpacity": 0.08}).add_to(m)
    _parcels(diff["entering"], ENTERING, "新进入红线的地块", ctx).add_to(m)
    _parcels(diff["leaving"], LEAVING, "移出红线的地块", ctx).add_to(m)
    add_title(m, (f"<b>{escape(name)}</b> 改线对比：第{a}版 → 第{b}版<br>"
                  f"新进入 {len(diff['entering'])} 宗（{diff['households_entering']} 户），"
                  f"移出 {len(diff['leaving'])} 宗（{diff['households_leaving']} 户）<br>"
                  f"占地增加 {diff['overlap_gained_m2']:,.0f} ㎡（{diff['overlap_gained_mu']:,.2f} 亩），"
                  f"减少 {diff['overlap_lost_m2']:,.0f} ㎡（{diff['overlap_lost_mu']:,.2f} 亩）<br>"
                  f"涉及钉子户 {len(diff['holdouts_entering'])} 户"))
    add_legend(m, "图例", [(line_swatch(BEFORE, dashed=True), f"第{a}版红线"), (line_swatch(AFTER), f"第{b}版红线"),
                         (fill_swatch(ENTERING), "新进入红线"), (fill_swatch(LEAVING), "移出红线")])
    bounds = leaflet_bounds([before, after])
    if bounds:
        fit_clear_of_controls(m, bounds)
    folium.LayerControl(collapsed=False).add_to(m)
    return render(m, ctx)
