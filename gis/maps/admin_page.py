"""The admin page (系统管理): a static page whose script (``admin.js`` beside this module) calls the API.

Everything it loads is served by the service (Leaflet from the vendored npm package); the map has no
basemap, only the districts, the projects and the preview, so it works on an intranet with no internet.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from gis.maps.assets import FOLIUM_ASSETS, SYSTEM_FONTS, VENDOR_PATH

ADMIN_SCRIPT = Path(__file__).with_name("admin.js")
FILE_TYPES = ".gpkg,.geojson,.json,.zip,.kml,.fgb,.dxf"

_ALIGNMENT_FIELDS = """
<label>线位或红线文件<input type="file" name="file" accept="{files}" required></label>
<label>图层（DXF 为 CAD 图层）<select name="layer"><option value="">（自动）</option></select></label>
<label>中线宽度（米；红线面留空）<input name="width_m" type="number" min="0" step="any"></label>
<label>坐标系 EPSG（DXF 须填）<input name="crs" inputmode="numeric" pattern="\\d{{4,6}}"></label>
<label>属性筛选<input name="where" placeholder="mode IN ('TRAIN','RER')"></label>
"""

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 系统管理</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{leaflet_css}">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; height: 100vh;
        display: flex; flex-direction: column; }}
h1 {{ font-size: 1.25rem; margin: 0 0 .6rem; }}
.layout {{ display: grid; grid-template-columns: 30rem 1fr; flex: 1 1 0; min-height: 0; }}
.panels {{ overflow-y: auto; padding: .8rem; }}
details {{ background: #fff; border-radius: 6px; margin-bottom: .8rem; padding: .6rem .9rem;
          box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
summary {{ font-weight: bold; cursor: pointer; }}
form label {{ display: block; margin: .45rem 0; font-size: .92rem; }}
form label input, form label select, form label textarea {{ display: block; width: 100%; box-sizing: border-box;
                                                           padding: .3rem; }}
button {{ margin: .5rem .5rem 0 0; padding: .35rem .9rem; }}
.result {{ margin-top: .6rem; font-size: .9rem; white-space: pre-line; }}
.result.error {{ color: #b00020; }} .result.ok {{ color: #14532d; }}
table {{ border-collapse: collapse; width: 100%; font-size: .85rem; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .25rem; text-align: left; }}
td input {{ width: 8.5rem; }}
#map {{ height: 100%; background: #fafafa; }}
</style></head>
<body data-base="{base}">
{header}
<div class="layout">
<div class="panels">
<h1>系统管理</h1>

<details open id="panel-project"><summary>新建项目</summary>
<form id="project-form">
<label>项目编号（小写字母、数字、_ -）<input name="code" required pattern="[a-z][a-z0-9_\\-]{{0,39}}"
                                         placeholder="xinan_road"></label>
<label>项目名称<input name="name" required maxlength="100"></label>
<label>类型<select name="kind"><option value="rail">铁路</option><option value="road">道路</option>
<option value="zone">片区开发</option></select></label>
{alignment}
<label>冻结日期<input name="freeze_date" type="date"></label>
<label>完成节点<input name="deadline" type="date"></label>
<button type="button" data-action="preview">预览</button><button type="submit">保存</button>
</form>
<div class="result" id="project-result" role="status"></div>
</details>

<details id="panel-revision"><summary>改线（新版线位）</summary>
<form id="revision-form">
<label>项目<select name="project" required data-projects></select></label>
{alignment}
<label>生效日期<input name="effective_from" type="date"></label>
<label>改线说明<input name="note" maxlength="500" placeholder="避让学校"></label>
<button type="button" data-action="preview">预览</button><button type="submit">保存改线</button>
</form>
<div class="result" id="revision-result" role="status"></div>
</details>

<details id="panel-projects"><summary>项目日期与归档</summary>
<table><thead><tr><th>项目</th><th>冻结日期</th><th>完成节点</th><th></th></tr></thead>
<tbody id="projects-table"></tbody></table>
<div class="result" id="projects-result" role="status"></div>
</details>

<details id="panel-districts"><summary>片区界线</summary>
<form id="districts-form">
<label>片区文件<input type="file" name="file" accept="{files}" required></label>
<label>图层（DXF 为 CAD 图层）<select name="layer"><option value="">（自动）</option></select></label>
<label>字段对应（每行一项，如 XZQDM=code、XZQMC=name；留空自动识别）<textarea name="map" rows="2"></textarea></label>
<label>坐标系 EPSG（DXF 须填）<input name="crs" inputmode="numeric" pattern="\\d{{4,6}}"></label>
<button type="button" data-action="dry-run">试导入</button><button type="submit">导入</button>
</form>
<div class="result" id="districts-result" role="status"></div>
</details>

<details id="panel-standards"><summary>补偿标准</summary>
<p><a href="{base}/standards/template.xlsx">下载标准模板（XLSX）</a></p>
<form id="standards-form">
<label>标准文件（XLSX 或 CSV）<input type="file" name="file" accept=".xlsx,.csv" required></label>
<button type="button" data-action="dry-run">试导入</button><button type="submit">导入</button>
</form>
<div class="result" id="standards-result" role="status"></div>
<table><thead><tr><th>片区</th><th>类型</th><th>项目</th><th>标准</th><th>起始日期</th></tr></thead>
<tbody id="standards-table"></tbody></table>
</details>

</div>
<div id="map" aria-label="地图"></div>
</div>
<script src="{leaflet_js}"></script>
<script src="{base}/admin/admin.js"></script>
</body></html>
"""


def admin_page_html(*, base_url: str = "", header: str = "") -> str:
    """The page, for a service reached at ``base_url`` (its root path; "" at the root), under the site's
    ``header``."""
    base = escape(base_url.rstrip("/"), quote=True)
    vendor = f"{base}{VENDOR_PATH}"
    return _PAGE.format(base=base, fonts=SYSTEM_FONTS, alignment=_ALIGNMENT_FIELDS.format(files=FILE_TYPES),
                        files=FILE_TYPES, leaflet_css=f"{vendor}/{FOLIUM_ASSETS['leaflet_css']}",
                        leaflet_js=f"{vendor}/{FOLIUM_ASSETS['leaflet']}", header=header)
