"""Sunshine expropriation (阳光征迁): what is published about a project, with no token needed.

Decree 590 Art. 29 asks that each household's compensation be published within the expropriation
area. Per parcel in the project footprint (the same membership rule and tolerance as the blockers):
code, kind, area, stage and compensation paid, with the owner's name masked (张*明). ID numbers,
phones, notes, flags, geometry and internal ids are never part of it.

Compensation paid counts the payments booked to this project and those booked to no project.
The map page draws the published parcels (their outlines are the expropriation scope, which is
announced anyway) with the same fields in their tooltips; it reuses gis.maps.page, so it loads its
scripts from the service and works offline.
"""

from __future__ import annotations

import json
from decimal import Decimal
from html import escape
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.privacy import mask_name
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.platform.config import Settings
from gis.platform.errors import ProjectNotFound

PUBLIC_NOTE_ZH = "依法公开：权利人姓名已脱敏，不公开身份证号码和联系电话。"
_PROJECT_SQL = "SELECT id, code, name, kind, freeze_date, deadline FROM projects WHERE id = :id AND archived_at IS NULL"
_PARCELS_SQL = """
SELECT pa.code, pa.kind, pa.stage, pa.floor_area_m2, pa.land_area_mu, pa.owner_name, {geometry}
       coalesce((SELECT sum(pm.amount_yuan) FROM payments pm
                 WHERE pm.parcel_id = pa.id AND (pm.project_id = o.project_id OR pm.project_id IS NULL)), 0) AS paid
FROM project_parcel_overlaps o
JOIN parcels pa ON pa.id = o.parcel_id
WHERE o.project_id = :id AND """ + tolerance_sql() + """
ORDER BY pa.code
"""


_GEOMETRY = "ST_AsGeoJSON(ST_Transform(pa.geom, 4326), 7) AS geometry,"


def public_project(conn: Connection, project_id: int, tolerance: Tolerance, *,
                   with_geometry: bool = False) -> dict[str, Any]:
    """The published record of one project: its parcels and the compensation paid on each (with the parcels'
    and the footprint's outlines in WGS 84 for the map page when ``with_geometry``)."""
    project = conn.execute(text(_PROJECT_SQL), {"id": project_id}).mappings().first()
    if project is None:
        raise ProjectNotFound(project_id)
    rows = conn.execute(
        text(_PARCELS_SQL.format(geometry=_GEOMETRY if with_geometry else "")),
        {"id": project_id, **tolerance.params},
    ).mappings()
    parcels = []
    total = Decimal(0)
    for r in rows:
        house = r["kind"] == "house"
        total += r["paid"]
        parcels.append({
            "code": r["code"],
            "kind": r["kind"],
            "kind_label": KIND_LABELS_ZH[r["kind"]],
            "area": r["floor_area_m2"] if house else r["land_area_mu"],
            "area_unit": "m2" if house else "mu",
            "stage": r["stage"],
            "stage_label": STAGE_LABELS_ZH[r["stage"]],
            "compensation_paid_yuan": float(r["paid"]),
            "owner": mask_name(r["owner_name"]),
        } | ({"geometry": json.loads(r["geometry"])} if with_geometry else {}))
    out = {
        "project": {
            "id": project["id"],
            "code": project["code"],
            "name": project["name"],
            "kind": project["kind"],
            "freeze_date": project["freeze_date"].isoformat() if project["freeze_date"] else None,
            "deadline": project["deadline"].isoformat() if project["deadline"] else None,
        },
        "tolerance": tolerance.as_dict(),
        "parcels": parcels,
        "totals": {"parcels": len(parcels), "compensation_paid_yuan": float(total)},
        "note": PUBLIC_NOTE_ZH,
    }
    if with_geometry:
        out["project"]["footprint"] = json.loads(conn.execute(
            text("SELECT ST_AsGeoJSON(ST_Transform(footprint, 4326), 7) FROM projects WHERE id = :id"),
            {"id": project_id}).scalar_one())
    return out


_INDEX_SQL = "SELECT id, name, freeze_date FROM projects WHERE archived_at IS NULL ORDER BY id"
_INDEX_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>阳光征迁 · 征收补偿公示</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 50rem; margin: 0 auto; padding: 1.5rem; }}
h1 {{ font-size: 1.4rem; }} li {{ margin: .5rem 0; }} li a {{ margin-left: 1rem; }}
</style></head>
<body>{header}<main>
<h1>阳光征迁 · 征收补偿公示</h1>
<p>{note}</p>
<p><a href="{base}/public/calculator">征收补偿测算（按公布的标准逐项计算）</a></p>
<ul>{items}</ul>
</main></body></html>
"""


def public_index_html(conn: Connection, *, header: str = "", base_url: str = "") -> str:
    """The public pages' index: every active project with links to its published map and record."""
    from gis.maps.assets import SYSTEM_FONTS

    base = escape(base_url.rstrip("/"), quote=True)
    items = []
    for r in conn.execute(text(_INDEX_SQL)).mappings():
        pid, freeze = int(r["id"]), r["freeze_date"]
        items.append(f'<li data-project-id="{pid}">{escape(r["name"])}'
                     + (f"（范围公告日 {freeze.isoformat()}）" if freeze else "")
                     + f'<a href="{base}/public/projects/{pid}/map">公示地图</a>'
                     f'<a href="{base}/public/projects/{pid}">公示数据（JSON）</a>'
                     f'<a href="{base}/public/projects/{pid}/standards">补偿标准</a></li>')
    return _INDEX_PAGE.format(fonts=SYSTEM_FONTS, header=header, items="".join(items) or "<li>尚无公示项目。</li>",
                              note=escape(PUBLIC_NOTE_ZH), base=base)


def public_map_html(conn: Connection, project_id: int, tolerance: Tolerance, settings: Settings, *,
                    header: str = "", base_url: str = "") -> str:
    """The published record as an offline map page: parcels coloured by stage, their public fields on hover;
    under the site's public ``header``."""
    import folium

    from gis.maps.page import (
        FOOTPRINT_COLOUR,
        STAGE_COLOURS,
        Basemap,
        MapContext,
        add_legend,
        add_title,
        fill_swatch,
        leaflet_bounds,
        line_swatch,
        new_map,
        render,
    )

    ctx = MapContext(lang="zh", basemap=Basemap.from_settings(settings), base_url=base_url, header=header)
    record = public_project(conn, project_id, tolerance, with_geometry=True)
    project = record["project"]
    m = new_map(ctx, f"{project['name']} · 征收补偿公示")
    footprint = ctx.display(project["footprint"])
    folium.GeoJson(footprint, name="项目红线", style_function=lambda _: {
        "color": FOOTPRINT_COLOUR, "weight": 2, "fill": False, "dashArray": "6 4"}).add_to(m)
    fields = {"code": "地块编号", "kind": "类型", "area": "面积", "stage": "进度", "paid": "已发放补偿款",
              "owner": "权利人"}
    features = [{
        "type": "Feature",
        "geometry": ctx.display(p["geometry"]),
        "properties": {
            # GeoJsonTooltip writes values into the page as HTML: escape what came from the database.
            "code": escape(p["code"]), "kind": p["kind_label"], "stage": p["stage_label"],
            "owner": escape(p["owner"] or ""),
            "area": "" if p["area"] is None else f"{p['area']:,.2f} {'平方米' if p['area_unit'] == 'm2' else '亩'}",
            "paid": f"{p['compensation_paid_yuan']:,.2f} 元",
            "colour": STAGE_COLOURS[p["stage"]],
        },
    } for p in record["parcels"]]
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features}, name="地块",
            style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": "#333", "weight": 0.6,
                                      "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(fields=list(fields), aliases=list(fields.values())),
        ).add_to(m)
    bounds = leaflet_bounds([footprint])
    if bounds:
        m.fit_bounds(bounds)
    totals = record["totals"]
    add_title(m, f"<h1>{escape(project['name'])} 征收补偿公示</h1>"
                 f"征收范围公告日：{escape(project['freeze_date'] or '—')}<br>"
                 f"范围内地块 {totals['parcels']} 宗，已发放补偿款 {totals['compensation_paid_yuan']:,.2f} 元<br>"
                 f"<small>{escape(record['note'])}</small>")
    add_legend(m, "征迁进度", [(fill_swatch(c), STAGE_LABELS_ZH[s]) for s, c in STAGE_COLOURS.items()]
               + [(line_swatch(FOOTPRINT_COLOUR, dashed=True), "项目红线")])
    return render(m, ctx)
