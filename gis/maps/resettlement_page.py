"""The resettlement page (安置进度) and the map of cleared land by supply status (交地后供地), offline.

The page is plain HTML without script: households resettled and waiting per project and per district, months
of transition owed and paid, the stock by estate and status, and links to the status workbook and the map. The
map draws each cleared parcel coloured by its supply status (``gis.analysis.resettlement.cleared_land``), land
awaiting supply for more than the idle days in red (长期无法净地开发). No owner names on either.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from html import escape
from typing import Any

import folium
from sqlalchemy import Connection, text

from gis.analysis.resettlement import cleared_land, flats, totals
from gis.maps.assets import SYSTEM_FONTS
from gis.maps.page import (
    DISTRICT_COLOUR,
    MapContext,
    add_legend,
    add_title,
    district_shapes,
    fill_swatch,
    fit_clear_of_controls,
    leaflet_bounds,
    new_map,
    render,
)
from gis.records.resettlement import FLAT_STATUS_LABELS_ZH, SUPPLY_LABELS_ZH

SUPPLY_COLOURS = {"awaiting": "#f59e0b", "transfer": "#2563eb", "allocation": "#16a34a", "idle": "#dc2626"}
IDLE_LABEL = "待供地超期（长期无法净地开发）"
_GEOMETRY_SQL = "SELECT id, ST_AsGeoJSON(ST_Transform(geom, 4326), 6) FROM parcels WHERE id = ANY(:ids)"


def cleared_land_map_html(conn: Connection, *, as_of: date, tz: str, idle_days: int, ctx: MapContext) -> str:
    """The map of cleared land as of the end of ``as_of``, coloured by supply status."""
    rows = cleared_land(conn, as_of=as_of, tz=tz)
    shapes = dict(conn.execute(text(_GEOMETRY_SQL), {"ids": [r["parcel_id"] for r in rows]}).all())
    m = new_map(ctx, "交地后土地供应")
    districts = [{"type": "Feature", "geometry": ctx.display(d["geometry"]), "properties": {}}
                 for d in district_shapes(conn)]
    folium.GeoJson({"type": "FeatureCollection", "features": districts}, name="片区界线",
                   style_function=lambda _f: {"color": DISTRICT_COLOUR, "weight": 1, "fill": False}).add_to(m)
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k in SUPPLY_COLOURS}
    for r in rows:
        idle = r["supply_status"] == "awaiting" and (r["days_cleared"] or 0) > idle_days
        groups["idle" if idle else r["supply_status"]].append(r)
    names = {**SUPPLY_LABELS_ZH, "idle": IDLE_LABEL}
    geometries = []
    for key, items in groups.items():
        if not items:
            continue
        features = []
        for r in items:
            geometry = ctx.display(json.loads(shapes[r["parcel_id"]]))
            geometries.append(geometry)
            # folium's tooltip inserts values as HTML: they are escaped here.
            features.append({"type": "Feature", "geometry": geometry, "properties": {
                "code": escape(r["code"]), "status": names[key], "cleared_on": str(r["cleared_on"] or ""),
                "days": r["days_cleared"], "receiver": escape(r["receiving_project"] or "")}})
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features}, name=f"{names[key]}（{len(items)}宗）",
            style_function=lambda _f, c=SUPPLY_COLOURS[key]: {"color": c, "weight": 1, "fillColor": c,
                                                              "fillOpacity": 0.6},
            tooltip=folium.GeoJsonTooltip(fields=["code", "status", "cleared_on", "days", "receiver"],
                                          aliases=["地块编号", "供地状态", "交地日期", "交地后天数", "受让项目"]),
        ).add_to(m)
    counts = {k: len(v) for k, v in groups.items()}
    summary = "，".join(f"{names[k]} {n} 宗" for k, n in counts.items())
    add_title(m, f"<b>交地后土地供应</b>（截至{as_of}）<br>{summary}")
    add_legend(m, "供地状态", [(fill_swatch(SUPPLY_COLOURS[k]), names[k]) for k in SUPPLY_COLOURS])
    bounds = leaflet_bounds(geometries)
    if bounds:
        fit_clear_of_controls(m, bounds)
    folium.LayerControl(collapsed=False).add_to(m)
    return render(m, ctx)


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 安置进度</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 64rem; margin: 0 auto; padding: 1.2rem; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }} h2 {{ font-size: 1.1rem; margin: 1.2rem 0 .4rem; }}
.sub {{ color: #555; }} .sub a {{ margin-right: 1rem; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .35rem .5rem; text-align: left; }}
td.n {{ text-align: right; }}
</style></head>
<body>{header}<main>
<h1>安置进度</h1>
<p class="sub">截至 {as_of} 日终。<a href="{base}/resettlement/status.xlsx?as_of={as_of}">下载安置进度（Excel）</a>
<a href="{base}/cleared-land/map?as_of={as_of}">交地后土地供应地图</a></p>
<h2>按项目</h2>{by_project}
<h2>按片区</h2>{by_district}
<h2>安置房源</h2>{stock}
</main></body></html>
"""
_TOTAL_FIELDS = (("households", "安置户数"), ("resettled", "已安置"), ("waiting", "待安置"), ("money", "货币补偿"),
                 ("flat", "产权调换"), ("months_due", "应发过渡月数"), ("months_paid", "已发过渡月数"),
                 ("overdue", "过渡期超期"))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f'<td class="n">{v}</td>' if isinstance(v, int) else f"<td>{escape(str(v))}</td>"
                                     for v in row) + "</tr>" for row in rows)
    return "<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr></thead><tbody>{cells}" \
        "</tbody></table>"


def resettlement_page_html(conn: Connection, *, as_of: date, tz: str, header: str = "", base_url: str = "") -> str:
    """The resettlement page as of the end of ``as_of``."""
    def groups(by: str) -> str:
        rows = [[g["name"] or g["code"] or "—", *(g[k] for k, _ in _TOTAL_FIELDS)]
                for g in totals(conn, as_of=as_of, tz=tz, by=by)]
        return _table(["项目" if by == "project" else "片区", *(label for _, label in _TOTAL_FIELDS)], rows)

    stock = Counter((f["estate_name"], f["status"]) for f in flats(conn, as_of=as_of))
    estates = sorted({e for e, _ in stock})
    stock_rows = [[e, *(stock[(e, s)] for s in FLAT_STATUS_LABELS_ZH)] for e in estates]
    return _PAGE.format(fonts=SYSTEM_FONTS, header=header, as_of=as_of.isoformat(),
                        base=escape(base_url.rstrip("/"), quote=True), by_project=groups("project"),
                        by_district=groups("district"),
                        stock=_table(["安置小区", *FLAT_STATUS_LABELS_ZH.values()], stock_rows))
