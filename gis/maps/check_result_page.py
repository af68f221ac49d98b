"""One inspection check's page (``GET /checks/<name>?format=html``): its rule, the flagged parcels in a table with
Chinese headers and values, the same parcels on a map (Leaflet from the service's own assets, offline), and the
list to download in every format.

The map draws what the table lists: the findings' geometries, transformed from the working CRS to WGS 84 here and
embedded in the page as a GeoJSON data block (a check lists tens to a few thousand parcels, not the city), over the
districts' boundaries for orientation, with a legend.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urlencode

import numpy as np
import shapely

from gis.checks import CheckResult, format_value
from gis.domain.geometry import transformer
from gis.maps.assets import FOLIUM_ASSETS, SYSTEM_FONTS, VENDOR_PATH
from gis.maps.checks_page import CHECK_DOWNLOADS
from gis.maps.page import DISTRICT_COLOUR, PRECISION

FINDING_COLOUR = "#d62728"

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · {title}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{leaflet_css}">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 80rem; margin: 0 auto; padding: 1.2rem; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }} .sub {{ color: #555; margin: .2rem 0; }}
#map {{ height: 420px; background: #fff; border: 1px solid #ccc; margin: .8rem 0; }}
.legend {{ background: rgba(255,255,255,.92); padding: 4px 8px; border-radius: 4px; font-size: 13px; }}
.legend i {{ display: inline-block; width: 14px; height: 10px; margin: 0 4px 0 8px; border: 2px solid; }}
.downloads a {{ margin-right: .8rem; }}
.wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .85rem; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .3rem .45rem; text-align: left; white-space: nowrap; }}
td.n {{ text-align: right; }}
</style></head>
<body data-ready="false">{header}<main>
<p><a href="{base}/checks?{overview_query}">← 全部核查项</a></p>
<h1>{title}</h1>
<p class="sub">规则：{rule}</p>
<p class="sub">截至 {as_of} 日终；参数：{params}；问题地块 <strong data-count>{count}</strong> 宗{without_place}。</p>
<p class="downloads">下载清单：{downloads}</p>
<div id="map" role="img" aria-label="问题地块位置图"></div>
<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>
{empty}
</main>
<script type="application/json" id="findings">{features}</script>
<script type="application/json" id="districts">{districts}</script>
<script src="{leaflet_js}"></script>
<script>
"use strict";
(() => {{
  const data = JSON.parse(document.getElementById("findings").textContent);
  const districts = JSON.parse(document.getElementById("districts").textContent);
  const map = L.map("map", {{attributionControl: false}});
  L.control.scale({{imperial: false}}).addTo(map);
  const outline = L.geoJSON(districts, {{
    style: () => ({{color: "{district_colour}", weight: 1.5, dashArray: "4 4", fill: false}}),
    onEachFeature: (f, l) => l.bindTooltip(f.properties.name),
  }}).addTo(map);
  const legend = L.control({{position: "bottomleft"}});
  legend.onAdd = () => {{
    const box = L.DomUtil.create("div", "legend");
    box.innerHTML = '<i style="border-color:{colour};background:{colour}55"></i>问题地块'
      + '<i style="border-color:{district_colour};border-style:dashed"></i>片区界线';
    return box;
  }};
  legend.addTo(map);
  const layer = L.geoJSON(data, {{
    style: () => ({{color: "{colour}", weight: 2, fillColor: "{colour}", fillOpacity: 0.35}}),
    onEachFeature: (f, l) => l.bindTooltip(f.properties.label),
  }}).addTo(map);
  if (layer.getLayers().length) map.fitBounds(layer.getBounds(), {{padding: [20, 20], maxZoom: 18}});
  else if (outline.getLayers().length) map.fitBounds(outline.getBounds());
  else map.setView([0, 0], 2);
  window.checkMap = {{map, layer, count: layer.getLayers().length}};
  document.body.dataset.ready = "true";
}})();
</script>
</body></html>
"""


def findings_geojson(result: CheckResult, srid: int) -> dict[str, Any]:
    """The findings with a geometry as a WGS 84 FeatureCollection: each feature's ``code`` and a Chinese label."""
    to_wgs84 = transformer(srid, 4326)
    placed = [f for f in result.findings if f.get("geom") is not None]
    geoms = shapely.transform(shapely.from_wkb([bytes(f["geom"]) for f in placed]),
                              lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))
    features = []
    for f, geom in zip(placed, shapely.set_precision(geoms, 10 ** -PRECISION), strict=True):
        label = "、".join(str(v) for v in (f.get("code"), f.get("district_name"), f.get("owner_name")) if v)
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(geom),
                         "properties": {"code": f.get("code"), "label": label}})
    return {"type": "FeatureCollection", "features": features}


def check_result_html(result: CheckResult, *, path: str, srid: int, districts: list[dict[str, Any]],
                      header: str = "", base_url: str = "") -> str:
    """The page of ``result`` (run ``with_geometry``), reached at ``path`` (``/checks/<slug>``), under the site's
    ``header``; ``districts`` (``gis.maps.page.district_shapes``) drawn under the findings."""
    base = escape(base_url.rstrip("/"), quote=True)
    query = {**result.params, "as_of": result.as_of.isoformat()}
    downloads = "".join(
        f'<a href="{base}{escape(path, quote=True)}?{escape(urlencode({**query, "format": f}))}" data-format="{f}">'
        f"{label}</a>" for f, label in CHECK_DOWNLOADS.items())
    head = "".join(f"<th>{escape(c.label)}</th>" for c in result.columns)
    numeric = {"int", "float", "m2", "mu", "share"}
    rows = "".join(
        f'<tr data-code="{escape(str(f.get("code", "")), quote=True)}">'
        + "".join(f'<td{" class=n" if c.type in numeric else ""}>{escape(format_value(c, f.get(c.key)))}</td>'
                  for c in result.columns) + "</tr>"
        for f in result.findings)
    collection = findings_geojson(result, srid)
    unplaced = result.count - len(collection["features"])
    vendor = f"{base}{VENDOR_PATH}"
    return _PAGE.format(
        title=escape(result.title), rule=escape(result.rule), as_of=escape(result.as_of.isoformat()),
        params=escape("，".join(f"{k}={v}" for k, v in result.params.items()) or "无"), count=result.count,
        without_place=f"（其中 {unplaced} 宗无图形，不在图上）" if unplaced else "",
        downloads=downloads, head=head, rows=rows, header=header, base=base, fonts=SYSTEM_FONTS,
        overview_query=escape(urlencode({"as_of": result.as_of.isoformat(), "format": "html"})),
        empty="" if result.count else "<p>没有问题地块。</p>",
        features=json.dumps(collection, ensure_ascii=False).replace("</", "<\\/"), colour=FINDING_COLOUR,
        districts=json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": d["geometry"], "properties": {"name": d["name"]}} for d in districts]},
            ensure_ascii=False).replace("</", "<\\/"),
        district_colour=DISTRICT_COLOUR,
        leaflet_css=f"{vendor}/{FOLIUM_ASSETS['leaflet_css']}", leaflet_js=f"{vendor}/{FOLIUM_ASSETS['leaflet']}",
    )
