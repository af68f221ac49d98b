"""What makes each report kind its own (一天一汇报、三天一总结、每周一调度): sections, one list per kind.

A section is a function ``(conn, ctx) -> SectionTable | None`` over the report being built (``SectionContext``:
the day, the previous report's day, the checks already run, the targets at the end of the day); it answers a
titled table whose columns say how each value reads (``gis.io.export.Column``: m² with 2 decimals, mu with 4,
dates as dates), and ``gis.reports`` renders every section the same way in the HTML and as a sheet of the XLSX.
None leaves the section out.

- Daily: what happened today. The day's moved parcels and signed/demolished figures are the report's own
  (``gis.reports._today``); ``DAILY_SECTIONS`` is the hook for what else happened today (new findings).
- Three-day: the trend against the targets (done now, done three days ago, the gain, the gain needed per three
  days to finish on time) and the stalled cases ranked by priority.
- Weekly: the dispatch agenda, one section per item of the meeting, in ``WEEKLY_AGENDA`` order: holdouts and
  stalled key parcels, districts behind target; the merger adds overdue findings and command posts missing their
  front-line visits with a line each. ``KEY_PARCEL_ANNOTATORS`` adds columns to the key parcels (their assisting
  unit, say): each is ``(conn, rows) -> tuple[Column, ...]``, writing its keys into the rows.

Everything is read as of the end of the day, so a rebuild for a past day is the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.analysis.dispatch import posts_missing_visits
from gis.analysis.units import assisting_units_of
from gis.checks import CheckResult
from gis.domain.stages import KIND_LABELS_ZH, STAGE_LABELS_ZH
from gis.domain.tolerance import Tolerance
from gis.io.export import Column
from gis.records.findings import STATUS_LABELS_ZH, new_items, overdue_items
from gis.records.targets import TARGET_STATUS_ZH, district_targets, period, period_label

KEY_PARCELS_TOP = 20


@dataclass(frozen=True)
class SectionContext:
    """The report being built: its kind, day and previous day, the checks' results as of the day, the targets."""

    kind: str
    day: date
    previous: date
    tz: str
    tolerance: Tolerance
    results: dict[str, CheckResult]
    targets: list[dict[str, Any]]
    project_names: dict[str, str]
    reveal_personal: bool = False


@dataclass
class SectionTable:
    """One section of a report: a title, a sentence saying what it lists, and its rows."""

    key: str
    title: str
    note: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "note": self.note,
                "columns": [{"key": c.key, "label": c.label} for c in self.columns], "rows": self.rows}


Section = Callable[[Connection, SectionContext], SectionTable | None]


def _names(codes: str | None, names: dict[str, str]) -> str:
    """``Z1,Z2`` as the projects' names, 、-joined."""
    return "、".join(names.get(c, c) for c in (codes or "").split(",") if c)


def with_project_names(finding: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A check's finding as a report shows it: its ``projects`` (codes, as the checks keep them) by name."""
    return finding | {"projects": _names(finding["projects"], names)} if finding.get("projects") else finding


# ---------------------------------------------------------------------------------------------
# Three-day: the trend against the targets, the stalled cases

_MEASURES = (("house_m2", "房屋", "㎡", "m2", 2), ("land_mu", "土地", "亩", "mu", 4),
             ("parcels", "宗数", "宗", "int", 0))
TREND_COLUMNS = (
    Column("district_name", "片区"),
    Column("period", "任务期"),
    *(Column(f"{key}_{part}", f"{label}{what}({unit})", type_)
      for key, label, unit, type_, _ in _MEASURES
      for part, what in (("target", "任务"), ("done", "已完成"), ("gain", "本期完成"), ("needed", "每期需完成"))),
    Column("status", "状态", values=TARGET_STATUS_ZH),
)


def target_trend(conn: Connection, ctx: SectionContext) -> SectionTable | None:
    """Each district target of the day: done at the end of the day, the gain since the previous report's day, and
    what every period as long as this one (three days) must add from now on to finish by the period's end."""
    if not ctx.targets:
        return None
    before = {(t["district"], t["quarter"]): t for block in district_targets(
        conn, ctx.tolerance, ctx.previous, tz=ctx.tz).values() for t in (block["year"], block["quarter"]) if t}
    span = (ctx.day - ctx.previous).days
    rows = []
    for t in ctx.targets:
        periods_left = max((period(t["year"], t["quarter"])[1] - ctx.day).days, 0) / span
        # A period that began after the previous report's day had nothing done by then.
        earlier = before.get((t["district"], t["quarter"])) if period(t["year"], t["quarter"])[0] <= ctx.previous \
            else None
        row: dict[str, Any] = {"district_name": t["district_name"], "period": period_label(t["year"], t["quarter"]),
                               "status": t["status"]}
        for key, _label, _unit, _type, decimals in _MEASURES:
            m = t[key]
            if m is None:
                continue
            done = float(m["done"])
            was = float(((earlier or {}).get(key) or {}).get("done", 0.0))
            remaining = max(float(m["target"]) - done, 0.0)
            needed = remaining / periods_left if periods_left >= 1 else remaining
            row |= {f"{key}_{part}": round(value, decimals) if decimals else round(value) for part, value in (
                ("target", float(m["target"])), ("done", done), ("gain", done - was), ("needed", needed))}
        rows.append(row)
    return SectionTable("target_trend", "任务完成趋势",
                        f"截至{ctx.day}日终，本期自{ctx.previous}日终起；“每期需完成”为剩余任务按任务期剩余天数、"
                        f"每{span}天平摊。", TREND_COLUMNS, rows)


KEY_PARCEL_COLUMNS = (
    Column("rank", "序号", "int"),
    Column("code", "地块编号"),
    Column("kind", "类型", values=KIND_LABELS_ZH),
    Column("district_name", "片区"),
    Column("project_names", "涉及项目"),
    Column("stage", "阶段", values=STAGE_LABELS_ZH),
    Column("days_in_stage", "停滞天数", "int"),
    Column("holdout", "钉子户", "bool"),
    Column("legacy", "历史遗留", "bool"),
    Column("area_m2", "地块面积(㎡)", "m2"),
    Column("days_to_deadline", "距节点天数", "int"),
    Column("priority", "优先分", "float"),
    Column("owner_name", "权利人"),
    Column("holdout_note", "难点说明"),
)
# Who works each key parcel: the meeting assigns the follow-up to its assisting unit (包保到人).
UNIT_COLUMNS = (Column("unit_name", "协保单位"), Column("staff_name", "协保人员"))


def _key_parcels(conn: Connection, ctx: SectionContext, key: str, title: str, note: str) -> SectionTable:
    ranked = ctx.results["stalled_priority"].findings[:KEY_PARCELS_TOP]
    units = assisting_units_of(conn, [f["parcel_id"] for f in ranked], as_of=ctx.day, tz=ctx.tz,
                               reveal_personal=ctx.reveal_personal)
    rows = [{c.key: f.get(c.key) for c in KEY_PARCEL_COLUMNS}
            | {"project_names": _names(f.get("projects"), ctx.project_names)}
            | {c.key: units.get(f["parcel_id"], {}).get(c.key) for c in UNIT_COLUMNS} for f in ranked]
    return SectionTable(key, title, note + ctx.results["stalled_priority"].rule, KEY_PARCEL_COLUMNS + UNIT_COLUMNS,
                        rows)


def stalled_cases(conn: Connection, ctx: SectionContext) -> SectionTable:
    """The stalled cases, highest priority first (久拖未决按优先)."""
    return _key_parcels(conn, ctx, "stalled_cases", "久拖未决案件（按优先）", "")


# ---------------------------------------------------------------------------------------------
# Weekly: the dispatch agenda


def holdouts_and_key_parcels(conn: Connection, ctx: SectionContext) -> SectionTable:
    """Agenda item: the holdouts and stalled key parcels, highest priority first, for a decision on each."""
    return _key_parcels(conn, ctx, "key_parcels", "议题一：钉子户和久拖重点地块", "逐户研究化解措施。")


BEHIND_COLUMNS = (
    Column("district_name", "片区"),
    Column("period", "任务期"),
    Column("elapsed", "时间进度", "share"),
    Column("house", "房屋(㎡，完成/任务)"),
    Column("land", "土地(亩，完成/任务)"),
    Column("parcels", "宗数(完成/任务)"),
)


def districts_behind_target(conn: Connection, ctx: SectionContext) -> SectionTable:
    """Agenda item: the districts whose targets of the year or quarter are behind pace at the end of the day."""
    def text_of(m: dict[str, Any] | None, decimals: int) -> str:
        return "—" if m is None else f"{float(m['done']):,.{decimals}f} / {float(m['target']):,.{decimals}f}"

    rows = [{"district_name": t["district_name"], "period": period_label(t["year"], t["quarter"]),
             "elapsed": t["elapsed"], "house": text_of(t["house_m2"], 2), "land": text_of(t["land_mu"], 4),
             "parcels": text_of(t["parcels"], 0)} for t in ctx.targets if t["status"] == "behind"]
    return SectionTable("behind_target", "议题二：进度滞后片区", "年度、季度任务完成量低于时间进度的片区。",
                        BEHIND_COLUMNS, rows)


MISSED_VISIT_COLUMNS = (
    Column("district_name", "片区"),
    Column("post_name", "指挥分部"),
    Column("commander", "指挥长"),
    Column("missed", "缺位周数", "int"),
    Column("missed_weeks", "缺位周（周一）"),
    Column("last_visit_on", "最近一线调度", "date"),
)
MISSED_VISIT_WEEKS = 4


def posts_missing_visits_section(conn: Connection, ctx: SectionContext) -> SectionTable:
    """Agenda item: the command posts whose commander or deputies missed a week at the front line (一线调度缺位)."""
    posts = posts_missing_visits(conn, ctx.day, weeks=MISSED_VISIT_WEEKS, reveal_personal=ctx.reveal_personal)
    rows = [{c.key: p.get(c.key) for c in MISSED_VISIT_COLUMNS}
            | {"missed_weeks": "、".join(d.isoformat() for d in p["missed_weeks"])} for p in posts]
    return SectionTable("posts_missing_visits", "议题四：指挥分部一线调度缺位",
                        f"近{MISSED_VISIT_WEEKS}个完整周内，指挥长或副指挥长未到一线调度的周。",
                        MISSED_VISIT_COLUMNS, rows)


FINDING_COLUMNS = (
    Column("district_name", "片区"),
    Column("parcel_code", "地块编号"),
    Column("check_title", "核查项"),
    Column("summary", "问题"),
    Column("deadline", "整改期限", "date"),
)


def _finding_rows(items: list[dict[str, Any]], ctx: SectionContext) -> list[dict[str, Any]]:
    titles = {name: result.title for name, result in ctx.results.items()}
    return [i | {"check_title": titles.get(i["check_name"], i["check_name"])} for i in items]


def new_findings(conn: Connection, ctx: SectionContext) -> SectionTable:
    """Today: the findings opened during the day (新增督查问题)."""
    return SectionTable("new_findings", "今日新增督查问题", "当日新立的督查整改事项。", FINDING_COLUMNS,
                        _finding_rows(new_items(conn, ctx.day, tz=ctx.tz), ctx))


OVERDUE_COLUMNS = FINDING_COLUMNS + (Column("status", "状态", values=STATUS_LABELS_ZH),
                                     Column("days_overdue", "逾期天数", "int"))


def overdue_findings(conn: Connection, ctx: SectionContext) -> SectionTable:
    """Agenda item: the findings still not rectified after their deadline, oldest first (逾期未整改)."""
    return SectionTable("overdue_findings", "议题三：逾期未整改问题",
                        "整改期限已过、仍未整改到位的督查事项，按期限先后。", OVERDUE_COLUMNS,
                        _finding_rows(overdue_items(conn, ctx.day, tz=ctx.tz), ctx))


# Daily: what else happened today. Weekly: one line per agenda item, in meeting order.
DAILY_SECTIONS: list[Section] = [new_findings]
THREE_DAY_SECTIONS: list[Section] = [target_trend, stalled_cases]
WEEKLY_AGENDA: list[Section] = [holdouts_and_key_parcels, districts_behind_target, overdue_findings,
                                 posts_missing_visits_section]
SECTIONS: dict[str, list[Section]] = {"daily": DAILY_SECTIONS, "three-day": THREE_DAY_SECTIONS,
                                      "weekly": WEEKLY_AGENDA}
SECTION_HEADINGS = {"daily": "今日其他动态", "three-day": "三日趋势与久拖案件", "weekly": "本周调度议程"}

_PROJECT_NAMES_SQL = "SELECT code, name FROM projects"


def build_sections(conn: Connection, ctx: SectionContext) -> list[SectionTable]:
    """The sections of the report's kind, in order; those answering None left out."""
    return [t for section in SECTIONS[ctx.kind] if (t := section(conn, ctx)) is not None]


def project_names(conn: Connection) -> dict[str, str]:
    """Project code → name, for showing names where the records keep codes."""
    return dict(conn.execute(text(_PROJECT_NAMES_SQL)).all())
