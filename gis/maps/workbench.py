"""The planner's workbench (规划工作台): find a parcel and read its card, draw a line or polygon and see what it
hits, compare candidates (比选), distance bands, and the project red lines a drawn line crosses.

A static page: its script (``workbench.js`` beside this module, served by the app) calls the same API routes a
script would (``/parcels/search``, ``/parcels/{id}``, ``/overlaps`` and its ``/compare``, ``/bands`` and
``/crossings``), so every answer on the page is the API's answer. Leaflet and the drawing tools
(Leaflet-Geoman) come from the vendored npm packages; no basemap unless configured, so it works offline.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from gis.checks import DOCUMENT_LABELS_ZH
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.maps.assets import DRAW_ASSETS, FOLIUM_ASSETS, SYSTEM_FONTS, VENDOR_PATH
from gis.maps.page import FOOTPRINT_COLOUR, STAGE_COLOURS
from gis.records.standards import ITEM_LABELS_ZH

WORKBENCH_SCRIPT = Path(__file__).with_name("workbench.js")
# The downloads of an overlap answer, in the order planners ask for them.
EXPORT_FORMATS = {"xlsx": "Excel", "csv": "CSV", "shp": "Shapefile", "gpkg": "GeoPackage", "kml": "KML",
                  "geojson": "GeoJSON"}
EVENT_LABELS_ZH = {"created": "建档", "stage": "阶段变更", "attributes": "信息修改", "geometry": "图形修改",
                   "flags": "标记", "payment": "补偿款", "document": "档案", "assignment": "协保分配"}

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 规划工作台</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{leaflet_css}"><link rel="stylesheet" href="{geoman_css}">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; height: 100vh;
        display: flex; flex-direction: column; }}
.layout {{ display: grid; grid-template-columns: 36rem 1fr; flex: 1 1 0; min-height: 0; }}
#totals {{ overflow-x: auto; }} #totals th {{ white-space: nowrap; }}
.panels {{ overflow-y: auto; padding: .6rem .8rem; }}
details {{ background: #fff; border-radius: 6px; margin-bottom: .7rem; padding: .5rem .8rem;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
summary {{ font-weight: bold; cursor: pointer; }}
label {{ display: inline-block; margin: .3rem .6rem .3rem 0; font-size: .9rem; }}
input, select {{ padding: .2rem; }} input[type=number] {{ width: 5.5rem; }}
button {{ margin: .3rem .4rem 0 0; padding: .25rem .7rem; }}
.result {{ margin: .4rem 0; font-size: .9rem; white-space: pre-line; }}
.result.error {{ color: #b00020; }}
table {{ border-collapse: collapse; width: 100%; font-size: .82rem; margin: .4rem 0; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .2rem .3rem; text-align: left; vertical-align: top; }}
td.n, th.n {{ text-align: right; white-space: nowrap; }}
tr.total td {{ font-weight: bold; border-top: 2px solid #999; }}
tbody tr[data-id] {{ cursor: pointer; }} tbody tr[data-id]:hover {{ background: #eef4ff; }}
.candidate {{ border-left: 6px solid; padding: .2rem .5rem; margin: .3rem 0; }}
.candidate.active {{ background: #f0f6ff; }}
.card h3 {{ margin: .5rem 0 .2rem; font-size: 1rem; }} .card h4 {{ margin: .6rem 0 .2rem; font-size: .92rem; }}
.hint {{ color: #555; font-size: .85rem; margin: .3rem 0; }}
#map {{ height: 100%; background: #fafafa; }}
.pb-error-marker {{ color: #b00020; font-weight: bold; }}
</style></head>
<body data-base="{base}" data-reveal="{reveal}">
{header}
<div class="layout">
<div class="panels">

<details open id="panel-search"><summary>地块查询</summary>
<form id="search-form">
<label>地块编号<input name="code" maxlength="100" placeholder="编号的一部分"></label>
<label>片区<select name="district"><option value="">（全部）</option></select></label>
{owner_field}
<button type="submit">查询</button>
</form>
<div class="result" id="search-result" role="status"></div>
<table><thead><tr><th>编号</th><th>片区</th><th>类型</th><th>阶段</th><th>权利人</th></tr></thead>
<tbody id="search-table"></tbody></table>
<div class="card" id="parcel-card"></div>
</details>

<details open id="panel-draw"><summary>画线分析（占压）</summary>
<p class="hint">用地图左上角的工具画线（道路、铁路中线）或画面（红线范围），线须填宽度。画好后点“分析”。
最多三个方案，可比选。</p>
<div id="candidates"></div>
<button type="button" data-action="add-candidate">添加比选方案</button>
<button type="button" data-action="analyse">分析</button>
<div class="result" id="draw-result" role="status"></div>
<div id="crossings"></div>
<div id="totals"></div>
<div id="exports" hidden>导出：{export_buttons}</div>
<table><thead><tr><th>编号</th><th>片区</th><th>类型</th><th>阶段</th><th class="n">占压（㎡）</th>
<th class="n">占比</th><th class="n">估算补偿（元）</th><th>权利人</th></tr></thead><tbody id="hits-table"></tbody>
</table>
</details>

<details open id="panel-compare"><summary>方案比选</summary>
<p class="hint">两个或三个方案画好后点“比选”。</p>
<button type="button" data-action="compare">比选</button>
<div class="result" id="compare-result" role="status"></div>
<table id="compare-table"></table>
</details>

<details open id="panel-bands"><summary>距离带</summary>
<label>距中线（米，逗号分隔）<input name="bands" id="bands-input" value="0,30,60,120,300" size="22"></label>
<button type="button" data-action="bands">计算</button>
<div class="result" id="bands-result" role="status"></div>
<table><thead><tr><th>距离带（米）</th><th class="n">地块</th><th class="n">户数</th><th class="n">房屋（㎡）</th>
<th class="n">土地（亩）</th><th class="n">钉子户</th></tr></thead><tbody id="bands-table"></tbody></table>
</details>

</div>
<div id="map" aria-label="地图"></div>
</div>
<script type="application/json" id="workbench-labels">{labels}</script>
<script src="{leaflet_js}"></script>
<script src="{geoman_js}"></script>
<script src="{base}/workbench/workbench.js"></script>
</body></html>
"""

_OWNER_FIELD = '<label>权利人<input name="owner" maxlength="100" placeholder="姓名的一部分"></label>'


def _labels_json() -> str:
    """The Chinese labels and colours the script shows, as JSON safe inside a <script> data block."""
    data = {"stages": STAGE_LABELS_ZH, "kinds": KIND_LABELS_ZH, "items": ITEM_LABELS_ZH, "events": EVENT_LABELS_ZH,
            "documents": DOCUMENT_LABELS_ZH, "stage_colours": STAGE_COLOURS, "footprint_colour": FOOTPRINT_COLOUR,
            "formats": list(EXPORT_FORMATS)}
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def workbench_html(*, base_url: str = "", header: str = "", reveal_personal: bool = False) -> str:
    """The page for a service at ``base_url`` (its root path), under the site's ``header``; the owner search
    field only for a role that may see personal data (``reveal_personal``)."""
    base = escape(base_url.rstrip("/"), quote=True)
    vendor = f"{base}{VENDOR_PATH}"
    buttons = "".join(f'<button type="button" data-export="{f}">{label}</button>'
                      for f, label in EXPORT_FORMATS.items())
    return _PAGE.format(
        base=base, fonts=SYSTEM_FONTS, header=header, reveal="true" if reveal_personal else "false",
        owner_field=_OWNER_FIELD if reveal_personal else "", export_buttons=buttons, labels=_labels_json(),
        leaflet_css=f"{vendor}/{FOLIUM_ASSETS['leaflet_css']}", leaflet_js=f"{vendor}/{FOLIUM_ASSETS['leaflet']}",
        geoman_css=f"{vendor}/{DRAW_ASSETS['geoman_css']}", geoman_js=f"{vendor}/{DRAW_ASSETS['geoman_js']}",
    )
