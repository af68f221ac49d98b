"""Daily report, three-day summary and weekly dispatch (一天一汇报、三天一总结、每周一调度).

A report for day D covers the projects and districts as of the end of D in the city's time zone,
and the progress since the previous report of its kind (D − 1, 3 or 7 days): per project, parcels in
the footprint, cleared, changed stage, blocking (by stage), holdouts and days to the deadline; the
district ranking (比拼, ``gis.analysis.progress.district_progress`` replayed); blockers per project with the
longest-stuck ones; open holdout and legacy cases; every inspection check's count and top findings;
a progress-over-time chart per project and the static blocker maps.

Everything is computed from the history, never from the parcels' current stage: stages replayed to
the end of the day (``gis.domain.stages.STAGE_AT_SQL``), payments, documents and events recorded by then.
Nothing reads the clock, and the files carry no generation time (the XLSX's document dates are the
end of D), so the same data gives the same report, byte for byte; the static blocker maps too are
drawn as of D.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import Connection, text

from gis import checks
from gis.analysis.blockers import BlockerFilter, find_blockers
from gis.analysis.progress import district_progress
from gis.domain.stages import ALL_STAGES, KIND_LABELS_ZH, STAGE_AT_SQL, STAGE_LABELS_ZH, end_of_day
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import InvalidInput
from gis.records.footprints import overlaps_in_force_sql
from gis.records.targets import TARGET_STATUS_ZH, district_targets, measure_text, period_label
from gis.report_sections import (
    SECTION_HEADINGS,
    SectionContext,
    SectionTable,
    build_sections,
    project_names,
    with_project_names,
)

TOP = 10
FINDINGS_HIDDEN_ZH = "核查明细仅向纪检监察和管理员显示；此处只列各项问题数。"
SERIES_MAX_DAYS = 730
SERIES_DEFAULT_DAYS = 90


@dataclass(frozen=True)
class ReportKind:
    name: str
    days: int  # since the previous report of this kind
    title: str
    motto: str


KINDS: dict[str, ReportKind] = {k.name: k for k in (
    ReportKind("daily", 1, "征收征迁工作日报", "一天一汇报"),
    ReportKind("three-day", 3, "征收征迁三日总结", "三天一总结"),
    ReportKind("weekly", 7, "征收征迁每周调度", "每周一调度"),
)}


def get_kind(name: str) -> ReportKind:
    """The report kind named ``name`` (daily, three-day, weekly); InvalidInput otherwise."""
    if name not in KINDS:
        raise InvalidInput(f"unknown report {name!r}; reports are {', '.join(KINDS)}", "kind")
    return KINDS[name]


@dataclass
class Report:
    kind: ReportKind
    day: date
    tz: str
    tolerance: Tolerance
    projects: list[dict[str, Any]]
    districts: list[dict[str, Any]]
    blockers: list[dict[str, Any]]
    holdouts: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    series: dict[str, list[dict[str, Any]]]
    charts: dict[str, bytes] = field(default_factory=dict)  # project code → PNG
    maps: dict[str, bytes] = field(default_factory=dict)  # project code → PNG
    # The daily report's own (一天一汇报, what happened today): every stage change of the day, and per district
    # the parcels signed and demolished that day with their areas. None in the other kinds.
    moves: list[dict[str, Any]] | None = None
    today_by_district: list[dict[str, Any]] | None = None
    # Each district's targets of the day's year and quarter with progress at the end of the day (年度任务).
    targets: list[dict[str, Any]] = field(default_factory=list)
    # What the kind is for (gis.report_sections): the daily's extra news, the three-day trend and stalled cases,
    # the weekly dispatch agenda.
    sections: list[SectionTable] = field(default_factory=list)

    @property
    def previous(self) -> date:
        return self.day - timedelta(days=self.kind.days)

    @property
    def heading(self) -> str:
        return f"{self.kind.title}（{self.day.isoformat()}）"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the pictures."""
        return _json({
            "kind": self.kind.name, "title": self.kind.title, "date": self.day, "previous": self.previous,
            "period_days": self.kind.days, "timezone": self.tz, "tolerance": self.tolerance.as_dict(),
            "projects": self.projects, "districts": self.districts, "blockers": self.blockers,
            "holdouts": self.holdouts, "checks": self.checks, "series": self.series, "targets": self.targets,
            "sections": [t.as_dict() for t in self.sections],
        } | ({"moves": self.moves, "today_by_district": self.today_by_district} if self.moves is not None else {}))


def _json(value: Any) -> Any:
    if isinstance(value, Column):
        return {"key": value.key, "label": value.label}
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if k != "geom"}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return checks.jsonable(value)


# ---------------------------------------------------------------------------------------------
# Figures

_PROJECTS_SQL = "SELECT id, code, name, kind, freeze_date, deadline FROM projects WHERE archived_at IS NULL ORDER BY id"
_STAGES_SQL = f"""
SELECT o.project_id, s.stage, s.stage_before, count(*) AS parcels
FROM {overlaps_in_force_sql()} o
CROSS JOIN LATERAL (SELECT {STAGE_AT_SQL.format(parcel="o.parcel_id", end=":end")} AS stage,
                           {STAGE_AT_SQL.format(parcel="o.parcel_id", end=":previous_end")} AS stage_before) s
WHERE {tolerance_sql()}
GROUP BY 1, 2, 3
"""
# Each stage event holds from its local day to the day before the next one's: +1 on the first, -1 on the last.
_SERIES_SQL = f"""
WITH members AS (
    SELECT project_id, parcel_id FROM {overlaps_in_force_sql()} o WHERE {tolerance_sql()}
),
ev AS (
    SELECT e.parcel_id, e.stage_to AS stage, CAST(timezone(:tz, e.at) AS date) AS from_day,
           CAST(timezone(:tz, lead(e.at) OVER (PARTITION BY e.parcel_id ORDER BY e.at, e.id)) AS date) AS to_day
    FROM parcel_events e
    WHERE e.stage_to IS NOT NULL AND e.at < :end AND e.parcel_id IN (SELECT parcel_id FROM members)
),
deltas AS (
    SELECT parcel_id, from_day AS day, 1 AS sign, stage FROM ev
    UNION ALL
    SELECT parcel_id, to_day, -1, stage FROM ev WHERE to_day IS NOT NULL
)
SELECT m.project_id, d.day, sum(d.sign) AS recorded,
       sum(d.sign) FILTER (WHERE d.stage = ANY(:acquired)) AS acquired,
       sum(d.sign) FILTER (WHERE d.stage = 'cleared') AS cleared
FROM deltas d JOIN members m ON m.parcel_id = d.parcel_id
GROUP BY 1, 2
ORDER BY 1, 2
"""


# The day's stage changes, from the history: each event that set a stage within (previous end, end]; a parcel
# first recorded that day comes with no stage before. Ordered so that a rebuild lists them the same way.
_MOVES_SQL = """
SELECT pa.code, pa.kind, d.code AS district, d.name AS district_name, e.stage_from, e.stage_to,
       to_char(timezone(:tz, e.at), 'HH24:MI') AS time, pa.floor_area_m2, pa.land_area_mu
FROM parcel_events e JOIN parcels pa ON pa.id = e.parcel_id JOIN districts d ON d.id = pa.district_id
WHERE e.stage_to IS NOT NULL AND e.at >= :previous_end AND e.at < :end
ORDER BY d.code, e.at, pa.code, e.id
"""
# Per district, parcels that reached signed and demolished within the day (each parcel once per stage), with
# their house floor area (m²) and land area (mu).
_TODAY_SQL = """
SELECT d.code AS district, d.name AS district_name, s.stage,
       count(DISTINCT pa.id) AS parcels, coalesce(sum(pa.floor_area_m2), 0) AS house_m2,
       coalesce(sum(pa.land_area_mu), 0) AS land_mu
FROM districts d CROSS JOIN unnest(CAST(:day_stages AS text[])) AS s(stage)
LEFT JOIN parcels pa ON pa.district_id = d.id AND EXISTS (
    SELECT 1 FROM parcel_events e
    WHERE e.parcel_id = pa.id AND e.stage_to = s.stage AND e.at >= :previous_end AND e.at < :end)
GROUP BY 1, 2, 3
ORDER BY 1, 3
"""
DAY_STAGES = ("signed", "demolished")


def _today(conn: Connection, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The day's stage changes (code, district, from → to, local time, areas), and per district the parcels
    signed and demolished that day with their areas (m², mu)."""
    moves = [dict(r) for r in conn.execute(text(_MOVES_SQL), params).mappings()]
    by_district: dict[str, dict[str, Any]] = {}
    for r in conn.execute(text(_TODAY_SQL), params | {"day_stages": list(DAY_STAGES)}).mappings():
        row = by_district.setdefault(r["district"], {"district": r["district"], "district_name": r["district_name"]})
        row[r["stage"]] = {"parcels": r["parcels"], "house_m2": round(float(r["house_m2"]), 2),
                           "land_mu": round(float(r["land_mu"]), 4)}
    return moves, list(by_district.values())


def build_report(conn: Connection, kind: str, day: date, *, tolerance: Tolerance, tz: str = DEFAULT_TIMEZONE,
                 reveal_personal: bool = False, pictures: bool = True, top: int = TOP,
                 with_findings: bool = True) -> Report:
    """The report of ``kind`` (daily, three-day, weekly) for ``day``, as of the end of that day.

    ``pictures``: draw the progress charts and blocker maps (the HTML and XLSX show them; JSON does not).
    ``with_findings``: list each inspection check's top findings (which parcel, whose, how much). False for
    callers who may not read the checks themselves (``gis.records.users.Principal.may_read_checks``): they get each
    check's rule, count and summary counts only, and ``findings_shown: false``.
    """
    rk = get_kind(kind)
    previous = day - timedelta(days=rk.days)
    params = {"end": end_of_day(day, tz), "previous_end": end_of_day(previous, tz), "tz": tz, "as_of_day": day,
              **tolerance.params,
              "acquired": list(checks.ACQUIRED_STAGES)}
    meta = conn.execute(text(_PROJECTS_SQL)).mappings().all()
    results = {c.name: c.run(conn, c.params(), as_of=day, tz=tz, reveal_personal=reveal_personal)
               for c in checks.CHECKS.values()}
    open_cases = [f for f in results["stalled"].findings if f["holdout"] or f["legacy"]]
    projects = _projects(conn, meta, params, day, open_cases)
    holdout_codes = {f["code"] for f in open_cases if f["holdout"]}
    blockers = [_blockers(conn, p, day, tolerance, tz, reveal_personal, top, holdout_codes) for p in projects]
    ranking = district_progress(conn, tolerance, day, tz=tz, replay=True)["districts"]
    key = f"{rk.days}d"
    districts = [{k: v for k, v in d.items() if k != "change"} | {"change": d["change"][key],
                 "projects": [{k: v for k, v in p.items() if k != "change"} | {"change": p["change"][key]}
                              for p in d["projects"]]} for d in ranking]
    series = _series(conn, meta, params, day)
    names = project_names(conn)
    report = Report(
        kind=rk, day=day, tz=tz, tolerance=tolerance, projects=projects, districts=districts, blockers=blockers,
        holdouts=[_case(with_project_names(f, names)) for f in open_cases], series=series,
        checks=[{"check": r.check, "title": r.title, "rule": r.rule, "params": r.params, "count": r.count,
                 "summary": r.summary, "columns": r.columns, "findings_shown": with_findings,
                 "top": [with_project_names(f, names) for f in r.findings[:top]] if with_findings else []}
                for r in results.values()],
    )
    blocks = district_targets(conn, tolerance, day, tz=tz)
    report.targets = [t for _code, block in sorted(blocks.items()) for t in (block["year"], block["quarter"]) if t]
    if rk.name == "daily":
        report.moves, report.today_by_district = _today(conn, params)
    report.sections = build_sections(conn, SectionContext(
        rk.name, day, previous, tz, tolerance, results, report.targets, names, reveal_personal))
    if pictures:
        report.charts = {p["code"]: progress_chart(p, series[p["code"]]) for p in projects}
        report.maps = _maps(conn, projects, tolerance, day, tz)
    return report


def _projects(conn: Connection, meta: list[Any], params: dict[str, Any], day: date,
              open_cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(text(_STAGES_SQL), params).mappings():
        counts[row["project_id"]].append(row)
    out = []
    for m in meta:
        rows = counts[m["id"]]
        total = sum(r["parcels"] for r in rows if r["stage"] is not None)
        cleared = sum(r["parcels"] for r in rows if r["stage"] == "cleared")
        before = sum(r["parcels"] for r in rows if r["stage_before"] == "cleared")
        by_stage = {s: 0 for s in ALL_STAGES if s != "cleared"}
        for r in rows:
            if r["stage"] not in (None, "cleared"):
                by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + r["parcels"]
        out.append({
            "id": m["id"], "code": m["code"], "name": m["name"], "kind": m["kind"],
            "freeze_date": m["freeze_date"], "deadline": m["deadline"],
            "days_to_deadline": (m["deadline"] - day).days if m["deadline"] else None,
            "total": total, "cleared": cleared, "cleared_before": before, "change": cleared - before,
            "percent_cleared": round(100.0 * cleared / total, 2) if total else None,
            "blocking": total - cleared, "blocking_by_stage": by_stage,
            "stage_changes": sum(r["parcels"] for r in rows if r["stage"] is not None
                                 and r["stage"] != r["stage_before"]),
            "holdouts": sum(1 for f in open_cases if f["holdout"] and m["code"] in (f["projects"] or "").split(",")),
        })
    return out


def _blockers(conn: Connection, project: dict[str, Any], day: date, tolerance: Tolerance, tz: str,
              reveal_personal: bool, top: int, holdout_codes: set[str]) -> dict[str, Any]:
    """The project's blockers by stage and the ``top`` longest in their stage (holdout as of the day)."""
    page = find_blockers(conn, project["id"], BlockerFilter(as_of=day, sort="-days_in_stage", limit=top), tolerance,
                         tz=tz, today=day, reveal_personal=reveal_personal)
    keep = ("code", "kind", "district_name", "stage", "stage_since", "days_in_stage", "overlap_m2", "owner_name",
            "holdout_note")
    return {"project": project["code"], "name": project["name"], "total": page.total,
            "by_stage": project["blocking_by_stage"], "holdouts": project["holdouts"],
            "longest": [{k: item[k] for k in keep} | {"holdout": item["code"] in holdout_codes}
                        for item in page.items]}


def _case(f: dict[str, Any]) -> dict[str, Any]:
    keep = ("code", "kind", "district_name", "stage", "owner_name", "projects", "holdout", "holdout_since",
            "holdout_days", "legacy", "surveyed_on", "legacy_days", "days_in_stage", "holdout_note")
    return {k: f[k] for k in keep}


def _series(conn: Connection, meta: list[Any], params: dict[str, Any], day: date) -> dict[str, list[dict[str, Any]]]:
    """Per project and day: parcels recorded, acquired (paid or later) and cleared at the end of the day."""
    deltas: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(text(_SERIES_SQL), params).mappings():
        deltas[row["project_id"]].append(row)
    out = {}
    for m in meta:
        start = m["freeze_date"] if m["freeze_date"] and m["freeze_date"] < day else day - timedelta(
            days=SERIES_DEFAULT_DAYS)
        start = max(start, day - timedelta(days=SERIES_MAX_DAYS))
        totals = {"recorded": 0, "acquired": 0, "cleared": 0}
        rows = iter(deltas[m["id"]])
        row = next(rows, None)
        points = []
        current = start
        while current <= day:
            while row is not None and row["day"] <= current:
                for k in totals:
                    totals[k] += row[k] or 0
                row = next(rows, None)
            points.append({"date": current} | totals)
            current += timedelta(days=1)
        out[m["code"]] = points
    return out


def _maps(conn: Connection, projects: list[dict[str, Any]], tolerance: Tolerance, day: date,
          tz: str) -> dict[str, bytes]:
    from gis.maps.static import render_blocker_png

    return {p["code"]: render_blocker_png(conn, p["id"], tolerance=tolerance, today=day, as_of=day, tz=tz,
                                          width=1000, height=750, dpi=100) for p in projects}


# ---------------------------------------------------------------------------------------------
# The progress chart


def progress_chart(project: dict[str, Any], points: list[dict[str, Any]]) -> bytes:
    """A PNG: parcels recorded, acquired and cleared per day, from the history; no timestamps in the file."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gis.maps.fonts import cjk_family

    font = cjk_family()
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    labels = ("已登记地块", "已补偿（含以后）", "已交地") if font else ("recorded", "acquired", "cleared")
    fig = Figure(figsize=(7.2, 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.08, 0.16, 0.68, 0.72))
    days = [p["date"] for p in points]
    for key, label, colour, style in zip(("recorded", "acquired", "cleared"), labels,
                                         ("#9e9e9e", "#f0a030", "#2e7d32"), ("--", "-", "-"), strict=True):
        ax.plot(days, [p[key] for p in points], style, color=colour, linewidth=1.8, label=label)
    if project["total"]:
        ax.axhline(project["total"], color="#455a64", linewidth=0.8, linestyle=":")
    ax.set_ylim(bottom=0)
    ax.grid(True, linewidth=0.3)
    ax.set_title(f"{project['name']} {project['cleared']}/{project['total']}" if font else project["code"],
                 fontfamily=family, fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), prop={"family": family, "size": 9}, frameon=False)
    for tick in ax.get_xticklabels():
        tick.set_fontsize(8)
    fig.autofmt_xdate()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin-bottom:4px}
h2{font-size:18px;border-bottom:2px solid #1565c0;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:16px 0 6px} .sub{color:#666;font-size:13px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px} th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#e3f2fd} td.n{text-align:right}
.bar{display:inline-block;width:160px;height:12px;background:#eee;vertical-align:middle;margin-right:6px}
.bar span{display:block;height:12px;background:#2e7d32}
.up{color:#2e7d32;font-weight:bold} img{max-width:100%;border:1px solid #ddd}
.pb-site-header{margin:-24px -24px 16px}
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _td(value: Any, numeric: bool = False) -> str:
    shown = "" if value is None else f"{value:,.2f}" if isinstance(value, float) else str(value)
    return f'<td class="n">{escape(shown)}</td>' if numeric else f"<td>{escape(shown)}</td>"


def _bar(percent: float | None) -> str:
    p = percent or 0.0
    return f'<td><span class="bar"><span style="width:{p:.1f}%"></span></span>{p:.1f}%</td>'


def _cell(col: Column, value: Any) -> str:
    shown = escape(checks.format_value(col, value))
    return f'<td class="n">{shown}</td>' if col.type in checks.NUMBER_FORMATS else f"<td>{shown}</td>"


def _change(n: int) -> str:
    return f'<td class="n"><span class="up">+{n}</span></td>' if n > 0 else f'<td class="n">{n}</td>'


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _label(key: str, value: Any) -> Any:
    """Stages and kinds in Chinese, flags as 是/否."""
    if key == "stage":
        return STAGE_LABELS_ZH.get(value, value)
    if key == "kind":
        return KIND_LABELS_ZH.get(value, value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def _stage_move(stage_from: str | None, stage_to: str) -> str:
    return f"{STAGE_LABELS_ZH.get(stage_from, stage_from) if stage_from else '新登记'} → {STAGE_LABELS_ZH[stage_to]}"


def _today_html(r: Report) -> list[str]:
    """The daily report's first section: signed and demolished today per district, and every parcel moved."""
    def figures(f: dict[str, Any]) -> str:
        land = f"{f['land_mu']:,.4f}"  # mu to 4 decimals, as the XLSX
        return f"{_td(f['parcels'], True)}{_td(f['house_m2'], True)}{_td(land, True)}"

    return [
        f"<h2>今日动态（{r.day.isoformat()}）</h2>",
        _table(["片区", "今日签约(宗)", "签约房屋(㎡)", "签约土地(亩)", "今日拆除(宗)", "拆除房屋(㎡)", "拆除土地(亩)"],
               [f"<tr>{_td(d['district_name'])}{figures(d['signed'])}{figures(d['demolished'])}</tr>"
                for d in r.today_by_district or []]),
        f"<h3>今日阶段变动地块（{len(r.moves or [])} 宗次）</h3>",
        _table(["片区", "地块编号", "类型", "阶段变动", "时间"],
               [f"<tr>{_td(m['district_name'])}{_td(m['code'])}{_td(_label('kind', m['kind']))}"
                f"{_td(_stage_move(m['stage_from'], m['stage_to']))}{_td(m['time'])}</tr>" for m in r.moves or []]),
    ]


def _targets_html(r: Report) -> list[str]:
    """The districts' targets (年度任务) of the year and quarter: done / target, time elapsed, on pace or behind."""
    if not r.targets:
        return []

    def row(t: dict[str, Any]) -> str:
        elapsed = f"{t['elapsed'] * 100:.1f}%"
        figures = [measure_text(t["house_m2"], 2), measure_text(t["land_mu"], 4), measure_text(t["parcels"], 0)]
        return (f"<tr>{_td(t['district_name'])}{_td(period_label(t['year'], t['quarter']))}"
                f"{''.join(_td(f, True) for f in figures)}{_td(elapsed, True)}"
                f"{_td(TARGET_STATUS_ZH[t['status']])}</tr>")

    return ["<h3>年度任务完成情况</h3>", _table(
        ["片区", "任务期", "房屋㎡（完成/任务）", "土地亩（完成/任务）", "宗数（完成/任务）", "时间进度", "状态"],
        [row(t) for t in r.targets])]


def _sections_html(r: Report) -> list[str]:
    """The kind's own sections (gis.report_sections) under one heading: each a titled table."""
    if not r.sections:
        return []
    parts = [f"<h2>{escape(SECTION_HEADINGS[r.kind.name])}</h2>"]
    for t in r.sections:
        parts += [f"<h3>{escape(t.title)}（{len(t.rows)} 项）</h3>", f'<p class="sub">{escape(t.note)}</p>',
                  _table([c.label for c in t.columns],
                         ["<tr>" + "".join(_cell(c, row.get(c.key)) for c in t.columns) + "</tr>" for row in t.rows])]
    return parts


def render_html(report: Report, header: str = "") -> str:
    """The report as one self-contained Chinese HTML page: inline CSS, pictures as data: URIs, no scripts; under
    the site's ``header`` (``gis.maps.nav.site_header``) when served, none in a file."""
    r, since = report, f"较{report.previous.isoformat()}"
    parts = [
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{escape(r.heading)}</title><style>{_CSS}</style></head><body>{header}",
        f"<h1>{escape(r.heading)}</h1>",
        f'<p class="sub">{escape(r.kind.motto)}：数据截至 {r.day.isoformat()} 日终（{escape(r.tz)}），按历史记录回放；'
        f"本期自 {r.previous.isoformat()} 日终起 {r.kind.days} 天。占用面积容差 {r.tolerance.min_overlap_m2}㎡、"
        f"占用比例容差 {r.tolerance.min_share}。</p>",
        *(_today_html(r) if r.moves is not None else []),
        *_sections_html(r),
        "<h2>一、项目进度</h2>",
        _table(["项目", "红线内地块", "已交地", f"本期新增（{since}）", "完成率", "剩余阻碍", "本期阶段变动", "钉子户",
                "节点日期", "距节点天数"],
               [f"<tr>{_td(p['name'])}{_td(p['total'], True)}{_td(p['cleared'], True)}{_change(p['change'])}"
                f"{_bar(p['percent_cleared'])}{_td(p['blocking'], True)}{_td(p['stage_changes'], True)}"
                f"{_td(p['holdouts'], True)}{_td(p['deadline'])}{_td(p['days_to_deadline'], True)}</tr>"
                for p in r.projects]),
        "<h3>进度曲线</h3>",
        "".join(_img(r.charts[p["code"]], f"{p['name']}进度曲线") for p in r.projects if p["code"] in r.charts),
        "<h2>二、片区比拼</h2>",
        _table(["排名", "片区", "红线内地块", "已交地", f"本期新增（{since}）", "完成率", "剩余"],
               [f"<tr>{_td(d['rank'], True)}{_td(d['district_name'])}{_td(d['total'], True)}"
                f"{_td(d['cleared'], True)}{_change(d['change'])}{_bar(d['percent_cleared'])}"
                f"{_td(d['remaining'], True)}</tr>" for d in r.districts]),
        _table(["片区", "项目", "红线内地块", "已交地", "本期新增", "完成率"],
               [f"<tr>{_td(d['district_name'])}{_td(p['project_name'])}{_td(p['total'], True)}"
                f"{_td(p['cleared'], True)}{_change(p['change'])}{_bar(p['percent_cleared'])}</tr>"
                for d in r.districts for p in d["projects"]]),
        *_targets_html(r),
        "<h2>三、阻碍地块</h2>",
    ]
    for b in r.blockers:
        stages = "，".join(f"{STAGE_LABELS_ZH[s]} {n}" for s, n in b["by_stage"].items() if n)
        parts.append(f"<h3>{escape(b['name'])}：阻碍地块 {b['total']} 宗（{escape(stages) or '无'}），"
                     f"钉子户 {b['holdouts']} 户</h3>")
        if b["project"] in r.maps:
            parts.append(_img(r.maps[b["project"]], f"{b['name']}阻碍地块分布图"))
            parts.append(f'<p class="sub">分布图按 {r.day.isoformat()} 日终的地块阶段（历史记录回放）绘制。</p>')
        parts.append(_table(
            ["地块编号", "类型", "片区", "阶段", "本阶段天数", "钉子户", "占用面积(㎡)", "权利人", "难点说明"],
            [f"<tr>{_td(i['code'])}{_td(_label('kind', i['kind']))}{_td(i['district_name'])}"
             f"{_td(_label('stage', i['stage']))}{_td(i['days_in_stage'], True)}{_td(_label('flag', i['holdout']))}"
             f"{_td(round(i['overlap_m2'], 1), True)}{_td(i['owner_name'])}{_td(i['holdout_note'])}</tr>"
             for i in b["longest"]]))
    parts += [
        "<h2>四、钉子户与历史遗留问题</h2>",
        _table(["地块编号", "片区", "阶段", "权利人", "涉及项目", "钉子户天数", "历史遗留", "遗留天数", "难点说明"],
               [f"<tr>{_td(h['code'])}{_td(h['district_name'])}{_td(_label('stage', h['stage']))}"
                f"{_td(h['owner_name'])}{_td(h['projects'])}{_td(h['holdout_days'], True)}"
                f"{_td(_label('flag', h['legacy']))}{_td(h['legacy_days'], True)}{_td(h['holdout_note'])}</tr>"
                for h in r.holdouts]),
        "<h2>五、纪检监察核查</h2>",
        _table(["核查项", "问题数", "规则"],
               [f"<tr>{_td(c['title'])}{_td(c['count'], True)}{_td(c['rule'])}</tr>" for c in r.checks]),
    ]
    if r.checks and not r.checks[0]["findings_shown"]:
        parts.append(f"<p>{FINDINGS_HIDDEN_ZH}</p>")
    for c in r.checks:
        if not c["top"]:
            continue
        parts.append(f"<h3>{escape(c['title'])}（前 {len(c['top'])} 条，共 {c['count']} 条）</h3>")
        parts.append(_table([col.label for col in c["columns"]],
                            ["<tr>" + "".join(_cell(col, f.get(col.key)) for col in c["columns"]) + "</tr>"
                             for f in c["top"]]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# XLSX


def render_xlsx(report: Report) -> bytes:
    """The report as a workbook with Chinese sheet names and headers; document dates are the end of the day."""
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                     "strings_to_urls": False})
    as_of = datetime.combine(report.day + timedelta(days=1), datetime.min.time())
    book.set_properties({"title": report.heading, "subject": report.kind.motto, "author": "parcel-blocker",
                         "created": as_of})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    percent = book.add_format({"num_format": "0.0%"})
    day_format = book.add_format({"num_format": "yyyy-mm-dd"})
    title = book.add_format({"bold": True, "font_size": 14})
    m2 = book.add_format({"num_format": "#,##0.00"})
    mu = book.add_format({"num_format": "#,##0.0000"})

    def sheet(name: str, headers: list[str], rows: list[list[Any]], widths: dict[int, float] | None = None,
              shares: tuple[int, ...] = (), formats: dict[int, Any] | None = None) -> None:
        """A sheet of rows; the columns in ``shares`` hold fractions shown as percentages, those in ``formats``
        numbers in that format (m² with 2 decimals, mu with 4)."""
        ws = book.add_worksheet(name[:31])
        ws.write_row(0, 0, headers, header)
        ws.freeze_panes(1, 0)
        for i in range(len(headers)):
            ws.set_column(i, i, (widths or {}).get(i, 12))
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, date):
                    ws.write_datetime(r, c, datetime.combine(value, datetime.min.time()), day_format)
                elif isinstance(value, bool):
                    ws.write_string(r, c, "是" if value else "否")
                elif isinstance(value, (int, float)):
                    ws.write_number(r, c, value, percent if c in shares else (formats or {}).get(c))
                else:
                    ws.write_string(r, c, str(value))

    summary = book.add_worksheet("概况")
    summary.set_column(0, 0, 16)
    summary.set_column(1, 1, 90)
    summary.write(0, 0, report.heading, title)
    facts = [("报告类型", f"{report.kind.title}（{report.kind.motto}）"),
             ("数据截至", f"{report.day} 日终（{report.tz}）"),
             ("上期", f"{report.previous} 日终（{report.kind.days} 天前）"),
             ("容差", f"占用面积 {report.tolerance.min_overlap_m2}㎡，占用比例 {report.tolerance.min_share}"),
             ("说明", "全部数字按历史记录回放至当日日终计算，同一数据重新生成结果相同。")]
    for i, (k, v) in enumerate(facts, start=2):
        summary.write_string(i, 0, k, header)
        summary.write_string(i, 1, v)

    if report.moves is not None:
        sheet("今日签约拆除", ["片区代码", "片区", "今日签约(宗)", "签约房屋(㎡)", "签约土地(亩)", "今日拆除(宗)",
                         "拆除房屋(㎡)", "拆除土地(亩)"],
              [[d["district"], d["district_name"], *(d[s][k] for s in DAY_STAGES
                                                     for k in ("parcels", "house_m2", "land_mu"))]
               for d in report.today_by_district or []], formats={3: m2, 4: mu, 6: m2, 7: mu})
        sheet("今日阶段变动", ["片区", "地块编号", "类型", "原阶段", "新阶段", "时间", "房屋面积(㎡)", "土地面积(亩)"],
              [[m["district_name"], m["code"], _label("kind", m["kind"]),
                STAGE_LABELS_ZH.get(m["stage_from"], "新登记") if m["stage_from"] else "新登记",
                STAGE_LABELS_ZH[m["stage_to"]], m["time"], m["floor_area_m2"], m["land_area_mu"]]
               for m in report.moves], formats={6: m2, 7: mu})
    number_formats = {"m2": m2, "mu": mu, "float": m2}

    def columns_sheet(name: str, columns: tuple[Column, ...], rows: list[dict[str, Any]]) -> None:
        """Rows by their columns: labels for codes, numbers in their column's format, shares as percentages."""
        sheet(name, [c.label for c in columns], [[checks.label_value(c, row.get(c.key)) for c in columns]
                                                 for row in rows],
              shares=tuple(i for i, c in enumerate(columns) if c.type == "share"),
              formats={i: number_formats[c.type] for i, c in enumerate(columns) if c.type in number_formats})

    for t in report.sections:
        columns_sheet(t.title.split("：")[-1], t.columns, t.rows)
    sheet("项目进度", ["项目代码", "项目", "红线内地块", "已交地", "上期已交地", "本期新增", "完成率", "剩余阻碍",
                   "本期阶段变动", "钉子户", "节点日期", "距节点天数"],
          [[p["code"], p["name"], p["total"], p["cleared"], p["cleared_before"], p["change"],
            (p["percent_cleared"] or 0) / 100, p["blocking"], p["stage_changes"], p["holdouts"], p["deadline"],
            p["days_to_deadline"]] for p in report.projects], {1: 18}, shares=(6,))
    sheet("片区比拼", ["排名", "片区", "红线内地块", "已交地", "本期新增", "完成率", "剩余"],
          [[d["rank"], d["district_name"], d["total"], d["cleared"], d["change"], (d["percent_cleared"] or 0) / 100,
            d["remaining"]] for d in report.districts], shares=(5,))
    sheet("片区项目", ["片区", "项目", "红线内地块", "已交地", "本期新增", "完成率"],
          [[d["district_name"], p["project_name"], p["total"], p["cleared"], p["change"],
            (p["percent_cleared"] or 0) / 100] for d in report.districts for p in d["projects"]],
          {1: 18}, shares=(5,))
    sheet("年度任务", ["片区", "任务期", "房屋任务(㎡)", "房屋完成(㎡)", "土地任务(亩)", "土地完成(亩)", "宗数任务",
                   "宗数完成", "时间进度", "状态"],
          [[t["district_name"], period_label(t["year"], t["quarter"]),
            *((t[k] or {}).get(v) for k in ("house_m2", "land_mu", "parcels") for v in ("target", "done")),
            t["elapsed"], TARGET_STATUS_ZH[t["status"]]] for t in report.targets],
          shares=(8,), formats={2: m2, 3: m2, 4: mu, 5: mu})
    sheet("阻碍地块", ["项目", "阶段", "地块数"],
          [[b["name"], STAGE_LABELS_ZH[s], n] for b in report.blockers for s, n in b["by_stage"].items()], {0: 18})
    sheet("久滞阻碍地块", ["项目", "地块编号", "类型", "片区", "阶段", "阶段起始", "本阶段天数", "钉子户",
                     "占用面积(㎡)", "权利人", "难点说明"],
          [[b["name"], i["code"], _label("kind", i["kind"]), i["district_name"], _label("stage", i["stage"]),
            i["stage_since"], i["days_in_stage"], i["holdout"], round(i["overlap_m2"], 2), i["owner_name"],
            i["holdout_note"]] for b in report.blockers for i in b["longest"]], {0: 18, 10: 30})
    sheet("钉子户", ["地块编号", "类型", "片区", "阶段", "权利人", "涉及项目", "钉子户", "标记日期", "钉子户天数",
                  "历史遗留", "调查登记日期", "遗留天数", "难点说明"],
          [[h["code"], _label("kind", h["kind"]), h["district_name"], _label("stage", h["stage"]), h["owner_name"],
            h["projects"], h["holdout"], h["holdout_since"], h["holdout_days"], h["legacy"], h["surveyed_on"],
            h["legacy_days"], h["holdout_note"]] for h in report.holdouts], {12: 30})
    sheet("核查汇总", ["核查项", "问题数", "规则", "参数"],
          [[c["title"], c["count"], c["rule"], "，".join(f"{k}={v}" for k, v in c["params"].items())]
           for c in report.checks], {2: 80, 3: 40})
    for c in report.checks:
        if not c["findings_shown"]:
            continue
        columns_sheet(f"核查-{c['title']}", c["columns"], c["top"])
    names = {p["code"]: p["name"] for p in report.projects}
    sheet("进度曲线数据", ["项目", "日期", "已登记地块", "已补偿（含以后）", "已交地"],
          [[names.get(code, code), p["date"], p["recorded"], p["acquired"], p["cleared"]]
           for code, points in report.series.items() for p in points], {0: 18})
    pictures = book.add_worksheet("图表")
    row = 0
    for name, png, rows in ([(f"{c}_progress.png", png, 17) for c, png in report.charts.items()]
                            + [(f"{c}_blockers.png", png, 32) for c, png in report.maps.items()]):
        pictures.insert_image(row, 0, name, {"image_data": io.BytesIO(png), "x_scale": 0.8, "y_scale": 0.8})
        row += rows
    book.close()
    return out.getvalue()
