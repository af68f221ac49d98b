"""亮底征收 (disclosed bottom line): the compensation standards published item by item, and the public calculator.

"One ruler measures all" (一把尺子量到底): a project's public record lists the standards in force today in the
districts its footprint touches, every item and class with its rate and article; the calculator page lets a
resident enter their house's area, structure and decoration (or their land's area and crops) and see each item and
the total, computed by the service's own engine (``gis.analysis.compensation``) through the public estimate. No
personal data is asked for or shown; the page loads nothing from outside the service.
"""

from __future__ import annotations

import json
from datetime import date
from html import escape
from typing import Any

from sqlalchemy import Connection, text

from gis.analysis.compensation import standards_for_districts
from gis.domain.compensation import DECORATIONS, STRUCTURES
from gis.platform.errors import ProjectNotFound

_PROJECT_DISTRICTS_SQL = """
SELECT d.id FROM districts d JOIN projects p ON ST_Intersects(d.geom, p.footprint)
WHERE p.id = :id AND p.archived_at IS NULL ORDER BY d.code
"""


def project_standards(conn: Connection, project_id: int, on: date) -> list[dict[str, Any]]:
    """The standards in force on ``on`` in the districts a project's footprint touches, item by item."""
    ids = conn.execute(text(_PROJECT_DISTRICTS_SQL), {"id": project_id}).scalars().all()
    return standards_for_districts(conn, ids, on)


def _standards_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>尚未发布补偿标准。</p>"
    body = "".join(
        f"<tr><td>{escape(r['district_name'])}</td><td>{r['kind_label']}</td><td>{r['item_label']}</td>"
        f"<td>{escape(r['grade_label'] or '—')}</td><td class=n>{r['rate_yuan']:,.2f}</td><td>{r['unit_label']}</td>"
        f"<td>{r['valid_from']}</td><td>{r['sign_by'] or ''}</td><td>{escape(r['article'] or '')}</td></tr>"
        for r in rows)
    return ("<table><thead><tr><th>片区</th><th>类型</th><th>补偿科目</th><th>等级/种类</th><th>单价</th><th>单位</th>"
            "<th>生效日期</th><th>签约期限</th><th>依据</th></tr></thead><tbody>" + body + "</tbody></table>")


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 64rem; margin: 0 auto; padding: 1.5rem; }}
h1 {{ font-size: 1.4rem; }} table {{ border-collapse: collapse; background: #fff; width: 100%; margin: .5rem 0; }}
th, td {{ border: 1px solid #ccd; padding: .3rem .5rem; text-align: left; }} td.n {{ text-align: right; }}
form {{ background: #fff; padding: 1rem; display: grid; grid-template-columns: 10rem 1fr; gap: .5rem; }}
.total {{ font-size: 1.2rem; font-weight: bold; }} .note {{ color: #555; }}
</style></head>
<body>{header}<main>
{body}
</main></body></html>
"""


def standards_page_html(conn: Connection, project_id: int, on: date, *, header: str = "", base_url: str = "") -> str:
    """A project's published standards (亮底征收) as a page: every item of every district it touches."""
    from gis.maps.assets import SYSTEM_FONTS

    name = conn.execute(text("SELECT name FROM projects WHERE id = :id AND archived_at IS NULL"),
                        {"id": project_id}).scalar()
    if name is None:
        raise ProjectNotFound(project_id)
    base = escape(base_url.rstrip("/"), quote=True)
    body = (f"<h1>{escape(name)} · 补偿标准公示（亮底征收）</h1>"
            f"<p class=note>截至{on.isoformat()}有效的补偿标准，一把尺子量到底。"
            f'<a href="{base}/public/calculator">补偿测算</a></p>'
            + _standards_table(project_standards(conn, project_id, on)))
    return _PAGE.format(title=f"{escape(name)} · 补偿标准公示", fonts=SYSTEM_FONTS, header=header, body=body)


_CALCULATOR = """
<h1>征收补偿测算（亮底征收）</h1>
<p class=note>按签约之日有效的补偿标准逐项测算，与征收部门使用同一套计算方法。无需登录，不收集任何个人信息；
测算结果仅供参考，以评估结果和补偿协议为准。</p>
<form id=calc>
<label for=district>片区</label><select id=district name=district>{districts}</select>
<label for=kind>类型</label><select id=kind name=kind><option value=house>房屋（国有土地上房屋）</option>
<option value=land>土地（集体土地）</option></select>
<label for=agreed_on>签约日期</label><input id=agreed_on name=agreed_on type=date value="{today}">
<label for=floor_area_m2 class=house>建筑面积（㎡）</label><input id=floor_area_m2 class=house type=number min=0
 step=0.01>
<label for=structure class=house>房屋结构</label><select id=structure class=house>{structures}</select>
<label for=decoration class=house>装修等级</label><select id=decoration class=house>{decorations}</select>
<label for=business_area_m2 class=house>经营面积（㎡）</label><input id=business_area_m2 class=house type=number
 min=0 step=0.01 value=0>
<label for=transition_months class=house>过渡期（月）</label><input id=transition_months class=house type=number
 min=0 step=1>
<label for=land_area_mu class=land>土地面积（亩）</label><input id=land_area_mu class=land type=number min=0
 step=0.0001>
<label for=counts>附属物、青苗</label><textarea id=counts rows=3 placeholder="每行一项：附属物 围墙 20 或 青苗 果树 30">
</textarea>
<span></span><button id=go type=submit>测算</button>
</form>
<div id=result aria-live=polite></div>
<script>
(function () {{
  var form = document.getElementById("calc"), result = document.getElementById("result");
  var endpoint = {endpoint};
  function show() {{
    var kind = document.getElementById("kind").value;
    document.querySelectorAll(".house").forEach(function (e) {{ e.hidden = kind !== "house"; }});
    document.querySelectorAll(".land").forEach(function (e) {{ e.hidden = kind !== "land"; }});
  }}
  function num(id) {{ var v = document.getElementById(id).value; return v === "" ? null : Number(v); }}
  function esc(s) {{ var d = document.createElement("span"); d.textContent = s == null ? "" : String(s);
    return d.innerHTML; }}
  function money(x) {{ return x == null ? "—" : x.toLocaleString("zh-CN", {{minimumFractionDigits: 2,
    maximumFractionDigits: 2}}); }}
  document.getElementById("kind").addEventListener("change", show);
  form.addEventListener("submit", function (ev) {{
    ev.preventDefault();
    var kind = document.getElementById("kind").value, body = {{district: document.getElementById("district").value,
      kind: kind}};
    var day = document.getElementById("agreed_on").value; if (day) body.agreed_on = day;
    var items = {{"附属物": "attachments", "青苗": "crops"}}, counts = [];
    document.getElementById("counts").value.split("\\n").forEach(function (line) {{
      var p = line.trim().split(/\\s+/); if (p.length === 3 && items[p[0]]) {{
        counts.push({{item: items[p[0]], grade: p[1], quantity: Number(p[2])}}); }} }});
    if (counts.length) body.counts = counts;
    if (kind === "house") {{
      body.floor_area_m2 = num("floor_area_m2");
      ["structure", "decoration"].forEach(function (k) {{ var v = document.getElementById(k).value;
        if (v) body[k] = v; }});
      var b = num("business_area_m2"); if (b) body.business_area_m2 = b;
      var m = num("transition_months"); if (m !== null) body.transition_months = m;
    }} else {{ body.land_area_mu = num("land_area_mu"); }}
    fetch(endpoint, {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(body)}})
      .then(function (r) {{ return r.json().then(function (j) {{ return [r.ok, j]; }}); }})
      .then(function (res) {{
        var ok = res[0], j = res[1];
        if (!ok) {{ var why = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail);
          result.innerHTML = "<p>无法测算：" + esc(why) + "</p>"; return; }}
        var rows = j.items.map(function (i) {{
          return "<tr><td>" + esc(i.item_label) + "</td><td>" + esc(i.grade_label || "—") + "</td><td class=n>" +
            esc(i.quantity) + " " + esc(i.quantity_unit_label) + "</td><td class=n>" + money(i.rate_yuan) + " " +
            esc(i.rate_unit_label) + "</td><td class=n data-amount>" + money(i.amount_yuan) + "</td><td>" +
            esc(i.article) + "</td><td>" + esc(i.note) + "</td></tr>"; }}).join("");
        result.innerHTML = "<table><thead><tr><th>补偿科目</th><th>等级/种类</th><th>数量</th><th>单价</th>" +
          "<th>金额（元）</th><th>依据</th><th>说明</th></tr></thead><tbody>" + rows + "</tbody></table>" +
          "<p class=total>合计：<span id=total data-total=\\"" + j.total_yuan.toFixed(2) + "\\">" +
          money(j.total_yuan) + "</span> 元</p>";
      }});
  }});
  show();
}})();
</script>
"""


def calculator_html(conn: Connection, today: date, *, header: str = "", base_url: str = "") -> str:
    """The public calculator page: the resident's inputs, posted to the public estimate, each item and the total."""
    from gis.maps.assets import SYSTEM_FONTS

    districts = "".join(f'<option value="{escape(r.code, quote=True)}">{escape(r.name)}</option>'
                        for r in conn.execute(text("SELECT code, name FROM districts ORDER BY code")))
    structures = '<option value="">（未知）</option>' + "".join(
        f'<option value="{k}">{v}</option>' for k, v in STRUCTURES.items())
    decorations = "".join(f'<option value="{k}">{v}</option>' for k, v in DECORATIONS.items())
    endpoint = json.dumps(base_url.rstrip("/") + "/public/compensation/estimate")
    body = _CALCULATOR.format(districts=districts, structures=structures, decorations=decorations,
                              today=today.isoformat(), endpoint=endpoint.replace("<", "\\u003c"))
    return _PAGE.format(title="征收补偿测算", fonts=SYSTEM_FONTS, header=header, body=body)
