"""The landing page: every project with its progress bar and links to its maps (plain HTML, no script)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from gis.maps.assets import SYSTEM_FONTS
from gis.records.targets import TARGET_STATUS_ZH, measure_text, period_label

KIND_LABELS = {"rail": "铁路", "road": "道路", "zone": "片区开发"}

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 项目进度</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 60rem; margin: 0 auto; padding: 1.5rem; }}
h1 {{ font-size: 1.5rem; margin: 0 0 .3rem; }}
.sub {{ color: #555; margin: 0 0 .5rem; }}
main > nav {{ margin: 0 0 1.2rem; }}
.project {{ background: #fff; border-radius: 6px; padding: 1rem 1.2rem; margin-bottom: 1rem;
           box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
.project h2 {{ font-size: 1.15rem; margin: 0 0 .4rem; }}
.bar {{ background: #e5e7eb; border-radius: 4px; height: 1.1rem; overflow: hidden; }}
.bar div {{ background: #1a9850; height: 100%; }}
.figures {{ margin: .4rem 0; color: #333; font-size: .95rem; }}
.late {{ color: #b00020; font-weight: bold; }}
main > nav a, .links a {{ margin-right: 1rem; }}
table.targets {{ border-collapse: collapse; background: #fff; margin-bottom: 1.2rem; font-size: .9rem; }}
table.targets th, table.targets td {{ border: 1px solid #ddd; padding: .25rem .6rem; }}
table.targets th {{ background: #e3f2fd; }} table.targets td.n {{ text-align: right; }}
.behind {{ color: #b00020; font-weight: bold; }} .on-pace {{ color: #1a9850; }}
</style></head>
<body>{header}<main>
<h1>征收征迁 · 重点项目进度</h1>
<p class="sub">截至 {today}</p>
<nav><a href="{base}/districts/map">各片区征迁进度图</a><a href="{base}/workbench">规划工作台</a>
<a href="{base}/reports/daily">日报</a><a href="{base}/reports/three-day">三天小结</a>
<a href="{base}/reports/weekly">周调度</a>{checks}
<a href="{base}/public/">公示页面</a><a href="{base}/docs">接口文档（API）</a></nav>
{targets}{projects}
</main></body></html>
"""

_PROJECT = """<section class="project" data-project-id="{id}">
<h2>{name} <small>（{kind}）</small></h2>
<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{pct_value}"
     aria-label="已交地比例"><div style="width:{pct_value}%"></div></div>
<p class="figures">
已交地 {cleared}/{parcels} 宗（{pct}）；阻碍地块 {blocking} 宗，其中钉子户 {holdouts} 户{deadline}</p>
<p class="links"><a href="{base}/projects/{id}/map">阻碍地块地图</a>
<a href="{base}/projects/{id}/map.png">静态图（PNG）</a><a href="{base}/projects/{id}/map.pdf">作战图（PDF）</a>
<a href="{base}/districts/map?project_id={id}">片区进度图</a><a href="{base}/public/projects/{id}/map">公示地图</a>
<a href="{base}/projects/{id}/map?lang=en">English map</a></p>
</section>"""


def _deadline(p: dict[str, Any]) -> str:
    if not p["deadline"]:
        return ""
    days = p["days_to_deadline"]
    when = f"剩余 {days} 天" if days >= 0 else f'<span class="late">已逾期 {-days} 天</span>'
    return f"；节点 {escape(p['deadline'])}，{when}"


def _measure(m: dict[str, Any] | None, unit: str, decimals: int) -> str:
    return f'<td class="n">{escape(measure_text(m, decimals, " " + unit))}</td>'


def _targets_table(targets: dict[str, dict[str, Any]]) -> str:
    """Each district's targets of the year and quarter (``gis.records.targets.district_targets``): done / target."""
    rows = []
    for _code, block in sorted(targets.items()):
        for t in (block["year"], block["quarter"]):
            if t is None:
                continue
            period = period_label(t["year"], t["quarter"])
            state = f'<td class="{t["status"].replace("_", "-")}">{TARGET_STATUS_ZH[t["status"]]}</td>'
            rows.append(f"<tr><td>{escape(t['district_name'])}</td><td>{period}</td>"
                        f"{_measure(t['house_m2'], '㎡', 2)}{_measure(t['land_mu'], '亩', 4)}"
                        f"{_measure(t['parcels'], '宗', 0)}<td class=\"n\">{t['elapsed'] * 100:.1f}%</td>{state}</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("片区", "任务期", "房屋（完成/任务）", "土地（完成/任务）",
                                             "宗数（完成/任务）", "时间进度", "状态"))
    return f'<h2>年度任务完成情况</h2>\n<table class="targets"><tr>{head}</tr>{"".join(rows)}</table>\n'


def landing_html(projects: list[dict[str, Any]], *, today: date, base_url: str = "", header: str = "",
                 targets: dict[str, dict[str, Any]] | None = None, checks: bool = False) -> str:
    """The page for ``projects`` (``gis.records.projects.list_projects`` rows) under the site's ``header``, with the
    districts' targets of the year and quarter (``gis.records.targets.district_targets``) when given; ``checks``:
    link the inspection checks' page (for the roles that may read it)."""
    base = escape(base_url.rstrip("/"), quote=True)
    sections = [
        _PROJECT.format(
            id=int(p["id"]), name=escape(p["name"]), kind=KIND_LABELS.get(p["kind"], escape(p["kind"])),
            pct_value=f"{p['percent_cleared'] or 0:.1f}",
            pct=f"{p['percent_cleared']:.1f}%" if p["percent_cleared"] is not None else "无地块",
            cleared=p["cleared"], parcels=p["parcels"], blocking=p["blocking"], holdouts=p["holdouts"],
            deadline=_deadline(p), base=base,
        )
        for p in projects
    ]
    body = "\n".join(sections) or "<p>尚无项目。</p>"
    return _PAGE.format(fonts=SYSTEM_FONTS, today=today.isoformat(), base=base, projects=body, header=header,
                        targets=_targets_table(targets or {}),
                        checks=f'<a href="{base}/checks?format=html">纪检监察核查</a>' if checks else "")
