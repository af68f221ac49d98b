"""The inspection checks' page (纪检监察核查): each check with its rule, its count as of a day, and its list to
open or download in every format (plain HTML, no script)."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from gis.maps.assets import SYSTEM_FONTS

# The downloads offered per check, in the order inspectors ask for them.
CHECK_DOWNLOADS = {"xlsx": "Excel", "csv": "CSV", "geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "Shapefile",
                   "kml": "KML", "json": "JSON"}

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 纪检监察核查</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 64rem; margin: 0 auto; padding: 1.2rem; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }} .sub {{ color: #555; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .35rem .5rem; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-weight: bold; }} td a {{ margin-right: .6rem; white-space: nowrap; }}
</style></head>
<body>{header}<main>
<h1>纪检监察核查</h1>
<p class="sub">截至 {as_of} 日终；点击下载问题清单（含地块位置，可在 GIS 中打开）。</p>
<table><thead><tr><th>核查项</th><th>问题数</th><th>规则</th><th>清单</th></tr></thead>
<tbody>{rows}</tbody></table>
</main></body></html>
"""


def checks_overview_html(overview: dict[str, Any], *, header: str = "", base_url: str = "") -> str:
    """The page for ``overview`` (the ``GET /checks`` answer: ``as_of`` and each check's path, title, rule and
    count), under the site's ``header``."""
    base = escape(base_url.rstrip("/"), quote=True)
    as_of = overview["as_of"]
    rows = []
    for c in overview["checks"]:
        links = "".join(
            f'<a href="{base}{escape(c["path"], quote=True)}?{escape(urlencode({"as_of": as_of, "format": f}))}">'
            f"{label}</a>" for f, label in CHECK_DOWNLOADS.items())
        page = f'{base}{escape(c["path"], quote=True)}?{escape(urlencode({"as_of": as_of, "format": "html"}))}'
        rows.append(f'<tr data-check="{escape(c["check"], quote=True)}"><td><a href="{page}" data-page>'
                    f'{escape(c["title"])}</a></td>'
                    f'<td class="n">{int(c["count"])}</td><td>{escape(c["rule"])}</td><td>{links}</td></tr>')
    return _PAGE.format(fonts=SYSTEM_FONTS, header=header, as_of=escape(as_of), rows="".join(rows))
