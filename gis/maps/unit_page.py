"""An assisting unit's page (协保单位): its households on a map, coloured by stage, with its figures and rank."""

from __future__ import annotations

import json
from datetime import date
from html import escape
from typing import Any

import folium
from sqlalchemy import Connection

from gis.analysis.units import unit_parcels, unit_ranking
from gis.domain.stages import ALL_STAGES, STAGE_LABELS_ZH, today_in
from gis.maps.page import (
    DISTRICT_COLOUR,
    HOLDOUT_COLOUR,
    STAGE_COLOURS,
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
from gis.platform.config import DEFAULT_TIMEZONE
from gis.records.units import resolve_unit, unit_staff

MAX_NAMED_STAFF = 12  # the title box lists this many staff members, then a count


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def unit_map(conn: Connection, unit: str | int, *, ctx: MapContext = MapContext(), as_of: date | None = None,
             tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False) -> folium.Map:
    """The unit's parcels at the end of ``as_of`` (default today) by stage, holdouts outlined, over the districts;
    its households assigned, signed and cleared, holdouts resolved and rank among the units in the title box."""
    as_of = as_of or today_in(tz)
    u = resolve_unit(conn, unit)
    ranking = unit_ranking(conn, as_of=as_of, tz=tz)
    [figures] = [r for r in ranking["units"] if r["id"] == u["id"]]
    parcels = unit_parcels(conn, u["id"], as_of=as_of, tz=tz, reveal_personal=reveal_personal)
    staff = [s for s in unit_staff(conn, u["id"], reveal_personal=reveal_personal) if s["active"]]
    m = new_map(ctx, f"协保单位 · {u['name']}")

    edges = folium.FeatureGroup(name="片区界线")
    for d in district_shapes(conn):
        folium.GeoJson({"type": "Feature", "properties": {}, "geometry": ctx.display(d["geometry"])},
                       style_function=lambda _f: {"color": DISTRICT_COLOUR, "weight": 1.5, "fill": False,
                                                  "dashArray": "4 4", "interactive": False}).add_to(edges)
    edges.add_to(m)

    group = folium.FeatureGroup(name="协保地块")
    shown = []
    for p in parcels:
        geometry = ctx.display(json.loads(p["geometry"]))
        shown.append(geometry)
        stage = p["stage"] or "surveyed"
        rows = (("地块编号", p["code"]), ("片区", p["district_name"]), ("阶段", STAGE_LABELS_ZH.get(stage, stage)),
                ("户数", p["households"]), ("钉子户", "是" if p["holdout"] else "否"),
                ("协保人员", p["staff_name"] or "—"), ("分配日期", p["assigned_on"].isoformat()))
        popup = "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": geometry},
            style_function=lambda _f, s=stage, h=p["holdout"]: {
                "fillColor": STAGE_COLOURS.get(s, "#999999"), "fillOpacity": 0.8,
                "color": HOLDOUT_COLOUR if h else "#333333", "weight": 4 if h else 1},
            popup=folium.Popup(popup + "</table>", max_width=360), tooltip=escape(p["code"]),
        ).add_to(group)
    group.add_to(m)

    present = [s for s in ALL_STAGES if any((p["stage"] or "surveyed") == s for p in parcels)]
    legend = [(fill_swatch(STAGE_COLOURS[s]), STAGE_LABELS_ZH[s]) for s in present]
    legend += [(fill_swatch("#ffffff", HOLDOUT_COLOUR, 3), "钉子户（粗框）"),
               (line_swatch(DISTRICT_COLOUR, True), "片区界线")]
    add_legend(m, "征迁阶段", legend)
    names = "、".join(escape(s["name"]) for s in staff[:MAX_NAMED_STAFF])
    if len(staff) > MAX_NAMED_STAFF:
        names += f" 等{len(staff)}人"
    add_title(m, (
        f"<h1>{escape(u['name'])}</h1>协保单位 {escape(u['code'])}，截至 {as_of.isoformat()}<br>"
        f"排名 第{figures['rank']}名（共{len(ranking['units'])}个单位）<br>"
        f"协保地块 {figures['parcels']} 宗、{figures['households']} 户；已签约 {figures['signed']} 户"
        f"（{_share(figures['signed_share'])}）；"
        f"已交地 {figures['cleared']} 户（{_share(figures['cleared_share'])}）<br>"
        f"钉子户 {figures['holdouts']} 户，已化解 {figures['holdouts_resolved']} 户<br>"
        f"协保人员：{names or '—'}"))
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = leaflet_bounds(shown) or leaflet_bounds([ctx.display(d["geometry"]) for d in district_shapes(conn)])
    if bounds:
        fit_clear_of_controls(m, bounds)
    return m


def unit_page_html(conn: Connection, unit: str | int, **kwargs: Any) -> str:
    """The unit's page (HTML, offline: scripts and styles from the service); arguments as ``unit_map``."""
    return render(unit_map(conn, unit, **kwargs), kwargs.get("ctx", MapContext()))
