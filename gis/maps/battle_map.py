"""A project's battle map (作战图) for the weekly dispatch meeting: one A3 landscape PDF page.

On the left the map of ``gis.maps.static`` (blockers by stage, holdouts outlined, the project's red line,
district lines, scale bar, north arrow, the legend clear of the line); on the right the blockers by
district and stage (counts, and the area inside the red line in m² and mu) and the holdouts by name (钉子户:
code, district, owner masked unless the caller may see personal data, stage, days in stage, what holds them
up). The header gives the project, the totals and the date.

matplotlib's own PDF backend draws it (text stays text: ``pdftotext`` reads it back). The file carries no
creation time, so the same data on the same day gives the same bytes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy import Connection

from gis.domain.stages import ALL_STAGES, today_in
from gis.domain.tolerance import Tolerance
from gis.maps.page import LABELS, Lang, stage_label
from gis.maps.static import (
    FOOTPRINT_WIDTH,
    RenderedMap,
    draw_map,
    load_map_data,
    map_language,
    map_layout,
    project_line,
)
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU

A3_LANDSCAPE = (420 / 25.4, 297 / 25.4)  # inches
LAYOUT_DPI = 100  # the figure's pixels while it is laid out (``MapLayout`` is in these)
MAP_RECT = (0.012, 0.035, 0.575, 0.875)  # the map on the page: left, bottom, width, height (page fractions)
PANEL_LEFT, PANEL_RIGHT = 0.605, 0.988  # the tables' column
PANEL_TOP, PANEL_BOTTOM = 0.895, 0.035
ROW = 0.021  # a table row's height (page fraction): 6.2 mm
TABLE_FONT = 8.5
MAX_DISTRICT_ROWS = 14
NOTE_CHARS = 14

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{name} 作战图", "as_of": "截至 {day}",
        "summary": "阻碍地块 {n} 宗（其中钉子户 {h} 户）　红线内面积 {m2} m²（{mu} 亩）",
        "by_district": "阻碍地块分布（片区 × 阶段，宗）", "holdouts": "钉子户（{n} 户，按本阶段天数）",
        "district": "片区", "total": "合计", "m2": "面积\n（m²）", "mu": "面积\n（亩）", "others": "其他片区",
        "code": "编号", "owner": "权利人", "area": "面积（m²）", "note": "主要问题",
        "legacy": "（历史遗留）", "more": "另有 {n} 户，见阻碍地块清单", "none": "无",
        "footer": "面积为地块在项目红线内的部分（1 亩 = 666.67 m²）。坐标系 {crs}。权利人姓名{masked}。",
        "masked": "已按查看权限脱敏", "shown": "为实名，仅限内部使用",
    },
    "en": {
        "title": "{name} battle map", "as_of": "as of {day}",
        "summary": "{n} blocking parcels ({h} holdouts), {m2} m² ({mu} mu) inside the red line",
        "by_district": "Blocking parcels by district and stage", "holdouts": "Holdouts ({n}, longest in stage first)",
        "district": "District", "total": "Total", "m2": "Area (m²)", "mu": "Area (mu)", "others": "other districts",
        "code": "Code", "owner": "Owner", "area": "Area (m²)", "note": "Issue",
        "legacy": " (legacy)", "more": "{n} more: see the blocker list", "none": "none",
        "footer": "Areas are the parts inside the project's red line (1 mu = 666.67 m²). CRS {crs}. Owner names "
                  "{masked}.",
        "masked": "masked by role", "shown": "in full, internal use only",
    },
}


def battle_map_filename(project_name: str, day: date) -> str:
    """``新安路_作战图_2026-12-04.pdf``: what and when (a project's name carries no personal data)."""
    return f"{project_name}_作战图_{day.isoformat()}.pdf"


@dataclass(frozen=True)
class BattleMap(RenderedMap):
    """The PDF, its layout and the file name it goes by."""

    filename: str


@dataclass(frozen=True)
class DistrictStageTable:
    """Blockers counted by district (most first) and stage (workflow order, only the stages that occur)."""

    stages: list[str]
    rows: list[dict[str, Any]]  # name, counts (stage → n), count, overlap_m2
    total: dict[str, Any]


def district_stage_table(items: list[dict[str, Any]]) -> DistrictStageTable:
    """The blockers (``find_blockers`` items) counted by district and stage, with the area inside the red line."""
    stages = [s for s in ALL_STAGES if any(i["stage"] == s for i in items)]
    by_district: dict[str, dict[str, Any]] = {}
    for item in items:
        row = by_district.setdefault(item["district_name"], {"name": item["district_name"], "counts":
                                                             defaultdict(int), "count": 0, "overlap_m2": 0.0})
        row["counts"][item["stage"]] += 1
        row["count"] += 1
        row["overlap_m2"] += item["overlap_m2"]
    rows = sorted(by_district.values(), key=lambda r: (-r["count"], r["name"]))
    total = {"counts": {s: sum(r["counts"][s] for r in rows) for s in stages}, "count": len(items),
             "overlap_m2": sum(r["overlap_m2"] for r in rows)}
    return DistrictStageTable(stages, rows, total)


def _text_width(value: str) -> float:
    """A string's width in ems: CJK characters are full width, the rest about half."""
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.55 for ch in value)


def _wrap(label: str) -> str:
    """A Chinese header longer than four characters on two lines, so the columns stay narrow."""
    if label.isascii() or len(label) <= 4:
        return label
    half = (len(label) + 1) // 2
    return label[:half] + "\n" + label[half:]


def _draw_table(fig: Figure, top: float, headers: list[str], rows: list[list[str]], *, font: str | None,
                numeric: set[int], bold_last: bool = False) -> float:
    """A table across the panel whose top is at ``top`` (page fraction); returns its bottom."""
    header_lines = max(h.count("\n") + 1 for h in headers)
    height = ROW * (len(rows) + header_lines)
    ax = fig.add_axes((PANEL_LEFT, top - height, PANEL_RIGHT - PANEL_LEFT, height))
    ax.set_axis_off()
    widths = [max([_text_width(line) for line in headers[c].split("\n")]
                  + [_text_width(r[c]) for r in rows]) + 1.2 for c in range(len(headers))]
    table = ax.table(cellText=rows or None, colLabels=headers, bbox=(0, 0, 1, 1), cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(TABLE_FONT)
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    unit = 1 / (len(rows) + header_lines)
    for (r, c), cell in table.get_celld().items():
        cell.set_width(widths[c] / sum(widths))
        cell.set_height(unit * (header_lines if r == 0 else 1))
        cell.set_linewidth(0.4)
        cell.get_text().set_fontfamily(family)
        if r == 0:
            cell.set_facecolor("#eeeeee")
            cell.get_text().set_horizontalalignment("center")
        elif c in numeric:
            cell.get_text().set_horizontalalignment("right")
            cell.PAD = 0.05
        if bold_last and r == len(rows):
            cell.set_facecolor("#f6f6f6")
            cell.get_text().set_fontweight("bold")
    return top - height


def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def render_battle_map(
    conn: Connection,
    project_id: int,
    *,
    tolerance: Tolerance,
    today: date | None = None,
    tz: str = DEFAULT_TIMEZONE,
    reveal_personal: bool = False,
    lang: Lang = "zh",
) -> BattleMap:
    """The battle map of ``project_id`` as of ``today``: an A3 landscape PDF, and where its legend and red line
    landed (``MapLayout``, in pixels at ``LAYOUT_DPI`` from the page's top-left corner). Owner names of the
    holdouts are masked unless ``reveal_personal``."""
    today = today or today_in(tz)
    lang, font = map_language(lang)
    words, lab = TEXT[lang], LABELS[lang]
    data = load_map_data(conn, project_id, tolerance=tolerance, today=today, tz=tz, reveal_personal=reveal_personal)
    items = data.items
    family = {"fontfamily": [font, "DejaVu Sans"]} if font else {}

    fig = Figure(figsize=A3_LANDSCAPE, dpi=LAYOUT_DPI)
    FigureCanvasAgg(fig)
    table = district_stage_table(items)
    holdouts = sorted((i for i in items if i["holdout"]), key=lambda i: (-(i["days_in_stage"] or 0), i["code"]))
    fig.text(0.012, 0.975, words["title"].format(name=data.project["name"]), ha="left", va="top", fontsize=24,
             fontweight="bold", **family)
    fig.text(0.988, 0.975, words["as_of"].format(day=today.isoformat()), ha="right", va="top", fontsize=18, **family)
    fig.text(0.012, 0.93, words["summary"].format(
        n=len(items), h=len(holdouts), m2=_number(table.total["overlap_m2"]),
        mu=_number(table.total["overlap_m2"] / SQM_PER_MU, 1)), ha="left", va="top", fontsize=13, **family)

    ax = fig.add_axes(MAP_RECT)
    for spine in ax.spines.values():
        spine.set_linewidth(0.6)
    legend = draw_map(ax, data, lang=lang, font=font, legend_size=10)

    # The blockers by district and stage.
    fig.text(PANEL_LEFT, PANEL_TOP + 0.006, words["by_district"], ha="left", va="bottom", fontsize=12, **family)
    shown = table.rows[:MAX_DISTRICT_ROWS]
    rest = table.rows[MAX_DISTRICT_ROWS:]
    body = [[r["name"], *(str(r["counts"][s]) for s in table.stages), str(r["count"]), _number(r["overlap_m2"]),
             _number(r["overlap_m2"] / SQM_PER_MU, 2)] for r in shown]
    if rest:
        body.append([words["others"], *(str(sum(r["counts"][s] for r in rest)) for s in table.stages),
                     str(sum(r["count"] for r in rest)), _number(sum(r["overlap_m2"] for r in rest)),
                     _number(sum(r["overlap_m2"] for r in rest) / SQM_PER_MU, 2)])
    body.append([words["total"], *(str(table.total["counts"][s]) for s in table.stages), str(table.total["count"]),
                 _number(table.total["overlap_m2"]), _number(table.total["overlap_m2"] / SQM_PER_MU, 2)])
    headers = [words["district"], *(_wrap(stage_label(s, lang)) for s in table.stages), words["total"],
               words["m2"], words["mu"]]
    bottom = _draw_table(fig, PANEL_TOP, headers, body, font=font, numeric=set(range(1, len(headers))),
                         bold_last=True)

    # The holdouts, as many as the page holds.
    top = bottom - 0.045
    fig.text(PANEL_LEFT, top + 0.006, words["holdouts"].format(n=len(holdouts)), ha="left", va="bottom",
             fontsize=12, **family)
    room = int((top - PANEL_BOTTOM - 0.03) / ROW) - 1
    listed = holdouts if len(holdouts) <= room else holdouts[:room - 1]
    rows = [[h["code"], h["district_name"], h["owner_name"] or "", stage_label(h["stage"], lang),
             str(h["days_in_stage"] if h["days_in_stage"] is not None else ""), _number(h["overlap_m2"]),
             _note(h, words)] for h in listed]
    if len(listed) < len(holdouts):
        rows.append([words["more"].format(n=len(holdouts) - len(listed)), "", "", "", "", "", ""])
    if not rows:
        rows.append([words["none"], "", "", "", "", "", ""])
    _draw_table(fig, top, [words["code"], words["district"], words["owner"], lab["stage"], _wrap(lab["days"]),
                           words["area"], words["note"]], rows, font=font, numeric={4, 5})

    fig.text(0.988, 0.012, words["footer"].format(crs=data.crs.to_string(),
                                                  masked=words["shown" if reveal_personal else "masked"]),
             ha="right", va="bottom", fontsize=8, color="#555555", **family)

    out = io.BytesIO()
    # No creation time: the same data on the same day gives the same file.
    fig.savefig(out, format="pdf", metadata={"Title": words["title"].format(name=data.project["name"]),
                                             "CreationDate": None})
    return BattleMap(out.getvalue(), map_layout(ax, legend, project_line(data), FOOTPRINT_WIDTH),
                     battle_map_filename(data.project["name"], today))


def _note(holdout: dict[str, Any], words: dict[str, str]) -> str:
    note = (holdout["holdout_note"] or "") + (words["legacy"] if holdout["legacy"] else "")
    return note if len(note) <= NOTE_CHARS else note[:NOTE_CHARS - 1] + "…"
