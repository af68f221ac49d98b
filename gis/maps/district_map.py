"""District against district: a choropleth of the share of parcels cleared, per project or over all."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

import folium
from sqlalchemy import Connection

from gis.analysis.progress import district_progress
from gis.domain.stages import today_in
from gis.domain.tolerance import Tolerance
from gis.maps.page import (
    FOOTPRINT_COLOUR,
    MapContext,
    add_legend,
    add_title,
    district_shapes,
    fill_swatch,
    leaflet_bounds,
    line_swatch,
    new_map,
    render,
)
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import ProjectNotFound
from gis.records.projects import list_projects

# Five classes of percent cleared, red to green; a district with no parcel in any project is grey.
CLASS_BREAKS = (20.0, 40.0, 60.0, 80.0)
CLASS_COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
NO_DATA_COLOUR = "#bdbdbd"


def class_colour(percent: float | None) -> str:
    """A district's fill by percent cleared: five classes broken at 20/40/60/80 %, red to green; grey without data."""
    if percent is None:
        return NO_DATA_COLOUR
    return CLASS_COLOURS[sum(percent >= b for b in CLASS_BREAKS)]


def _popup(name: str, figures: dict[str, Any] | None, ctx: MapContext, per_project: bool) -> str:
    lab = ctx.labels
    if figures is None:
        return f"<b>{escape(name)}</b><br>{lab['no_data']}"
    rows = [
        (lab["rank"], figures["rank"]), (lab["total"], figures["total"]), (lab["cleared"], figures["cleared"]),
        (lab["remaining"], figures["remaining"]), (lab["percent_cleared"], f"{figures['percent_cleared']:.1f}%"),
        (lab["change_7d"], figures["change"]["7d"]),
    ]
    html = f"<b>{escape(name)}</b><table>" + "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows) + "</table>"
    if per_project and figures["projects"]:
        html += (f"<table><tr><th>{lab['project']}</th><th>{lab['cleared']}/{lab['total']}</th>"
                 f"<th>{lab['percent_cleared']}</th></tr>")
        html += "".join(
            f"<tr><td>{escape(p['project_name'])}</td><td>{p['cleared']}/{p['total']}</td>"
            f"<td>{p['percent_cleared']:.1f}%</td></tr>" for p in figures["projects"])
        html += "</table>"
    return html


def district_map(
    conn: Connection,
    *,
    tolerance: Tolerance,
    ctx: MapContext = MapContext(),
    tz: str = DEFAULT_TIMEZONE,
    today: date | None = None,
    project_id: int | None = None,
) -> folium.Map:
    """The districts coloured by percent cleared of the parcels in project footprints, with the figures in popups."""
    today = today or today_in(tz)
    lab = ctx.labels
    projects = list_projects(conn, tolerance, today, with_geometry=True, project_id=project_id)
    if project_id is not None and not projects:
        raise ProjectNotFound(project_id)
    progress = {d["district"]: d for d in district_progress(conn, tolerance, today, tz=tz, project_id=project_id)[
        "districts"]}
    scope = projects[0]["name"] if project_id is not None else lab["all_projects"]
    m = new_map(ctx, f"{lab['progress_map']} · {scope}")

    districts = district_shapes(conn)
    shown = []
    group = folium.FeatureGroup(name=lab["percent_cleared"])
    for d in districts:
        figures = progress.get(d["code"])
        percent = figures["percent_cleared"] if figures else None
        geometry = ctx.display(d["geometry"])
        shown.append(geometry)
        label = f"{d['name']} {percent:.1f}%" if percent is not None else f"{d['name']} {lab['no_data']}"
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": geometry},
            style_function=lambda _f, c=class_colour(percent): {"fillColor": c, "fillOpacity": 0.75,
                                                                "color": "#333333", "weight": 1.5},
            popup=folium.Popup(_popup(d["name"], figures, ctx, project_id is None), max_width=420),
            tooltip=escape(label),
        ).add_to(group)
    group.add_to(m)

    footprints = folium.FeatureGroup(name=lab["projects"])
    for p in projects:
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": ctx.display(p["footprint"])},
            style_function=lambda _f: {"color": FOOTPRINT_COLOUR, "weight": 2, "fill": False, "interactive": False},
        ).add_to(footprints)
    footprints.add_to(m)

    edges = (0.0, *CLASS_BREAKS, 100.0)
    rows = [(fill_swatch(c), f"{edges[i]:.0f}–{edges[i + 1]:.0f}%") for i, c in enumerate(CLASS_COLOURS)]
    rows += [(fill_swatch(NO_DATA_COLOUR), lab["no_data"]), (line_swatch(FOOTPRINT_COLOUR), lab["projects"])]
    add_legend(m, lab["percent_cleared"], rows)
    ranked = sorted(progress.values(), key=lambda d: d["rank"])
    add_title(m, f"<h1>{lab['progress_map']}</h1>{escape(scope)}{lab['comma']}{lab['as_of']} {today.isoformat()}<br>"
                 + "<br>".join(f"{d['rank']}. {escape(d['district_name'])} {d['percent_cleared']:.1f}%"
                               for d in ranked if d["percent_cleared"] is not None))
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = leaflet_bounds(shown)
    if bounds:
        m.fit_bounds(bounds)
    return m


def district_map_html(conn: Connection, **kwargs: Any) -> str:
    """The district progress map page (HTML), offline; arguments as ``district_map``."""
    return render(district_map(conn, **kwargs), kwargs.get("ctx", MapContext()))
