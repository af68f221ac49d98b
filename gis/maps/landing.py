"""The landing page: every project with its progress bar and links to its maps (plain HTML, no script)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from gis.maps.assets import SYSTEM_FONTS, sign_out_form

KIND_LABELS = {"rail": "铁路", "road": "道路", "zone": "片区开发"}

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>征收征迁 · 项目进度</title><link rel="icon" href="data:,">
<style>
body {{ font-family: {fonts}; margin: 0; background: #f4f5f7; color: #222; }}
main {{ max-width: 60rem; margin: 0 auto; padding: 1.5rem; }}
h1 {{ font-size: 1.5rem; margin: 0 0 .3rem; }}
.sub {{ color: #555; margin: 0 0 .5rem; }}
nav {{ margin: 0 0 1.2rem; }}
.project {{ background: #fff; border-radius: 6px; padding: 1rem 1.2rem; margin-bottom: 1rem;
           box-shadow: 0 1px 3px rgba(0,0,0,.12); }}
.project h2 {{ font-size: 1.15rem; margin: 0 0 .4rem; }}
.bar {{ background: #e5e7eb; border-radius: 4px; height: 1.1rem; overflow: hidden; }}
.bar div {{ background: #1a9850; height: 100%; }}
.figures {{ margin: .4rem 0; color: #333; font-size: .95rem; }}
.late {{ color: #b00020; font-weight: bold; }}
nav a, .links a {{ margin-right: 1rem; }}
nav form {{ display: inline; }}
</style></head>
<body><main>
<h1>征收征迁 · 重点项目进度</h1>
<p class="sub">截至 {today}</p>
<nav><a href="{base}/districts/map">各片区征迁进度图</a><a href="{base}/docs">接口文档（API）</a>{sign_out}</nav>
{projects}
</main></body></html>
"""

_PROJECT = """<section class="project" data-project-id="{id}">
<h2>{name} <small>（{kind}）</small></h2>
<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{pct_value}"
     aria-label="已交地比例"><div style="width:{pct_value}%"></div></div>
<p class="figures">已交地 {cleared}/{parcels} 宗（{pct}）；阻碍地块 {blocking} 宗，其中钉子户 {holdouts} 户{deadline}</p>
<p class="links"><a href="{base}/projects/{id}/map">阻碍地块地图</a><a href="{base}/projects/{id}/map.png">静态图（PNG）</a>
<a href="{base}/districts/map?project_id={id}">片区进度图</a><a href="{base}/projects/{id}/map?lang=en">English map</a></p>
</section>"""


def _deadline(p: dict[str, Any]) -> str:
    if not p["deadline"]:
        return ""
    days = p["days_to_deadline"]
    when = f"剩余 {days} 天" if days >= 0 else f'<span class="late">已逾期 {-days} 天</span>'
    return f"；节点 {escape(p['deadline'])}，{when}"


def landing_html(projects: list[dict[str, Any]], *, today: date, base_url: str = "") -> str:
    """The page for ``projects`` (``gis.projects.list_projects`` rows)."""
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
    return _PAGE.format(fonts=SYSTEM_FONTS, today=today.isoformat(), base=base, projects=body,
                        sign_out=sign_out_form(base_url))
