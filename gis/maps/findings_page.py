"""The pages of the command centre's supervision: the findings followed to the end (督查整改台账) and the quarterly
contest (四季竞赛、五大比拼). Plain HTML and inline SVG under the site's header, no script, nothing fetched: they
work offline and under the reports' strict Content-Security-Policy."""

from __future__ import annotations

from html import escape
from typing import Any

from gis.maps.assets import SYSTEM_FONTS
from gis.records.findings import STATUS_LABELS_ZH

_STYLE = """<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 72rem; margin: 0 auto; padding: 1.2rem; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }} h2 {{ font-size: 1.1rem; }} .sub {{ color: #555; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }}
td, th {{ border-bottom: 1px solid #e5e7eb; padding: .35rem .5rem; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; }} tr.overdue td {{ background: #fdecea; }} form {{ margin: .6rem 0; }}
.up {{ color: #15803d; }} .down {{ color: #b91c1c; }}
</style>"""


def _page(title: str, header: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>征收征迁 · {escape(title)}'
            f'</title><link rel="icon" href="data:,">{_STYLE.format(fonts=SYSTEM_FONTS)}</head>'
            f"<body>{header}<main>{body}</main></body></html>\n")


def _options(values: dict[str, str], chosen: str | None) -> str:
    return '<option value="">全部</option>' + "".join(
        f'<option value="{escape(k, quote=True)}"{" selected" if k == chosen else ""}>{escape(v)}</option>'
        for k, v in values.items())


def findings_html(items: list[dict[str, Any]], *, today: str, districts: dict[str, str], checks: dict[str, str],
                  status: str | None, district: str | None, overdue: bool | None, header: str = "",
                  base_url: str = "") -> str:
    """The findings list (督查整改台账): filters by status, district and overdue, one row per item."""
    base = escape(base_url.rstrip("/"), quote=True)
    overdue_options = {"true": "仅逾期", "false": "未逾期"}
    chosen_overdue = None if overdue is None else ("true" if overdue else "false")
    form = (f'<form id="filters" method="get" action="{base}/findings"><input type="hidden" name="format" value="html">'
            f'状态 <select name="status">{_options(STATUS_LABELS_ZH, status)}</select> '
            f'片区 <select name="district">{_options(districts, district)}</select> '
            f'逾期 <select name="overdue">{_options(overdue_options, chosen_overdue)}</select> '
            f'<button type="submit">筛选</button></form>')
    rows = []
    for i in items:
        days = f"{i['days_overdue']}天" if i.get("days_overdue") else ""
        rows.append(
            f'<tr data-id="{int(i["id"])}" data-status="{escape(i["status"], quote=True)}"'
            f'{" class=overdue" if i["overdue"] else ""}><td>{int(i["id"])}</td>'
            f'<td>{escape(checks.get(i["check_name"], i["check_name"]))}</td><td>{escape(i["parcel_code"])}</td>'
            f'<td>{escape(i["district_name"])}</td><td>{escape(i["unit_code"] or "")}</td>'
            f'<td>{escape(i["summary"] or "")}</td><td>{escape(str(i["deadline"]))}</td>'
            f'<td>{escape(STATUS_LABELS_ZH[i["status"]])}</td><td class="n">{days}</td></tr>')
    overdue_count = sum(1 for i in items if i["overdue"])
    body = (f"<h1>督查整改台账</h1><p class=\"sub\">截至 {escape(today)}：共 {len(items)} 项，其中逾期 "
            f"{overdue_count} 项。整改流程：待整改 → 整改中 → 已整改待核验 → 已核验销号（回头看未通过则重新整改）。</p>"
            f"{form}<table><thead><tr><th>编号</th><th>核查项</th><th>地块</th><th>责任片区</th><th>责任单位</th>"
            f"<th>问题</th><th>整改期限</th><th>状态</th><th>逾期</th></tr></thead>"
            f"<tbody>{''.join(rows) or '<tr><td colspan=9>无符合条件的事项</td></tr>'}</tbody></table>")
    return _page("督查整改台账", header, body)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _bars(rows: list[dict[str, Any]]) -> str:
    """A horizontal bar per district: this quarter's score (dark) over last quarter's (light), 0–100."""
    height, width, left = 26 * len(rows) + 30, 560, 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 60}" height="{height}" role="img" '
             f'aria-label="各片区得分">']
    for k, r in enumerate(rows):
        y = 10 + 26 * k
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" font-size="13">'
                     f'{escape(r["district_name"])}</text>')
        if r.get("previous_score") is not None:
            parts.append(f'<rect x="{left}" y="{y + 12}" width="{width * r["previous_score"] / 100:.1f}" height="6" '
                         f'fill="#c7d2fe"/>')
        if r.get("score") is not None:
            parts.append(f'<rect class="score" x="{left}" y="{y}" width="{width * r["score"] / 100:.1f}" '
                         f'height="12" fill="#1f3a5f"/><text x="{left + width * r["score"] / 100 + 4:.1f}" '
                         f'y="{y + 11}" font-size="12">{r["score"]:.2f}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="11" fill="#555">'
                 "深色：本季度得分；浅色：上季度得分（满分100）</text></svg>")
    return "".join(parts)


def contest_html(answer: dict[str, Any], *, header: str = "", base_url: str = "") -> str:
    """The quarter's contest: the comparisons and weights, the ranking table with the change against last quarter,
    and a bar chart of the scores."""
    base = escape(base_url.rstrip("/"), quote=True)
    comps = answer["comparisons"]
    weights = "".join(f"<tr><td>{escape(c['label'])}</td><td class=\"n\">{c['weight']:.0%}</td>"
                      f"<td>{escape(c['rule'])}</td></tr>" for c in comps)
    rows = []
    for r in answer["districts"]:
        change = r["rank_change"]
        arrow = ("" if change is None else f'<span class="up">↑{change}</span>' if change > 0
                 else f'<span class="down">↓{-change}</span>' if change < 0 else "—")
        cells = "".join(f'<td class="n">{_pct((r["rates"][c["key"]] or {}).get("rate"))}</td>' for c in comps)
        score = "—" if r["score"] is None else f"{r['score']:.2f}"
        prev = "—" if r["previous_score"] is None else f"{r['previous_score']:.2f}"
        rows.append(f'<tr data-district="{escape(r["district"], quote=True)}"><td class="n">{r["rank"] or "—"}</td>'
                    f'<td>{escape(r["district_name"])}</td>{cells}<td class="n"><b>{score}</b></td>'
                    f'<td class="n">{r["previous_rank"] or "—"}</td><td class="n">{prev}</td><td>{arrow}</td></tr>')
    heads = "".join(f"<th>{escape(c['label'])}</th>" for c in comps)
    q = f"year={answer['year']}&amp;quarter={answer['quarter']}"
    body = (f"<h1>四季竞赛、五大比拼 · {escape(answer['label'])}</h1>"
            f"<p class=\"sub\">统计至 {escape(answer['as_of'])} 日终，与{escape(answer['previous']['label'])}比较。"
            f" <a href=\"{base}/contest?{q}&amp;format=xlsx\">下载 Excel</a></p>"
            f"<h2>比拼项目与权重</h2><table><thead><tr><th>比拼项目</th><th>权重</th><th>口径</th></tr></thead>"
            f"<tbody>{weights}</tbody></table>"
            f"<h2>排名</h2><table id=\"ranking\"><thead><tr><th>名次</th><th>片区</th>{heads}<th>得分</th>"
            f"<th>上季度名次</th><th>上季度得分</th><th>名次变化</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<h2>得分对比</h2>{_bars(answer['districts'])}")
    return _page("四季竞赛", header, body)
