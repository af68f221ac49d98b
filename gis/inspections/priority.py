"""久拖未决, made actionable: the stalled cases ranked by one stated priority, the top N of them.

The stalled check (``gis.checks.stalled``) lists every parcel in a footprint whose stage has not moved for more
than ``days`` days and every open holdout and legacy case: on the demo city more than half of the blockers.
This check scores each of those findings and keeps the ``top`` highest, so a meeting can start at the top:

    priority = W_DAYS × days in stage / 30
             + W_AREA × parcel area (m²) / 1000
             + W_HOLDOUT × (1 if a holdout or legacy case)
             + W_DEADLINE × max(0, DEADLINE_HORIZON_DAYS − days to the nearest deadline of its projects) / 30

(months in stage, thousands of m², the case, months inside the deadline horizon or past the deadline). The
weights are ``PRIORITY_WEIGHTS``, stated once here and in the rule text; ties go to the parcel code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.checks import (
    HEADER_COLUMNS,
    MAX_DAYS,
    STALLED_COLUMNS,
    CheckParams,
    CheckResult,
    Stalled,
    _param,
    stalled,
)
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE

PRIORITY_WEIGHTS = {"days": 1.0, "area": 1.0, "holdout": 10.0, "deadline": 1.0}
DAYS_PER_POINT = 30  # one point per month in stage, and per month inside the deadline horizon
M2_PER_POINT = 1000.0
DEADLINE_HORIZON_DAYS = 180
MAX_TOP = 1000

_AREAS_SQL = "SELECT id, ST_Area(geom) FROM parcels WHERE id = ANY(:ids)"
_DEADLINES_SQL = "SELECT code, deadline FROM projects WHERE archived_at IS NULL AND deadline IS NOT NULL"


@dataclass(frozen=True)
class StalledPriority(CheckParams):
    top: int = _param(20, "列出前N宗", "How many of the highest-priority stalled cases to list.", ge=1, le=MAX_TOP)
    days: int = _param(Stalled.days, "停滞天数", "A parcel in a footprint whose stage has not changed for more than "
                       "this many days is stalled (as in the stalled check).", le=MAX_DAYS)


def priority_of(days_in_stage: int, area_m2: float, case: bool, days_to_deadline: int | None) -> dict[str, float]:
    """The four parts of a stalled case's priority and their sum (``priority``), by ``PRIORITY_WEIGHTS``."""
    w = PRIORITY_WEIGHTS
    parts = {
        "priority_days": w["days"] * days_in_stage / DAYS_PER_POINT,
        "priority_area": w["area"] * area_m2 / M2_PER_POINT,
        "priority_holdout": w["holdout"] * (1 if case else 0),
        "priority_deadline": 0.0 if days_to_deadline is None
        else w["deadline"] * max(0, DEADLINE_HORIZON_DAYS - days_to_deadline) / DAYS_PER_POINT,
    }
    return {k: round(v, 4) for k, v in parts.items()} | {"priority": round(sum(parts.values()), 4)}


PRIORITY_COLUMNS = (
    Column("rank", "优先序", "int"),
    Column("priority", "优先分", "float", shp="priority"),
    Column("priority_days", "停滞分", "float", shp="p_days"),
    Column("priority_area", "面积分", "float", shp="p_area"),
    Column("priority_holdout", "钉子户分", "float", shp="p_holdout"),
    Column("priority_deadline", "节点分", "float", shp="p_deadline"),
    Column("area_m2", "地块面积(㎡)", "m2", total=True),
    Column("deadline", "最近节点日期", "date", shp="deadline"),
    Column("days_to_deadline", "距节点天数", "int", shp="days_left"),
)


def rule_zh(params: StalledPriority, as_of: date) -> str:
    """The priority formula in words, with the weights."""
    w = PRIORITY_WEIGHTS
    return (f"截至{as_of}久拖未决的地块（项目红线内超过{params.days}天未推进，或未结案的钉子户、历史遗留问题）"
            f"按优先分排序，列出前{params.top}宗。优先分 = {w['days']:g}×停滞月数（每{DAYS_PER_POINT}天1分）"
            f" + {w['area']:g}×地块面积（每{M2_PER_POINT:g}㎡1分） + {w['holdout']:g}×是否钉子户或历史遗留"
            f" + {w['deadline']:g}×距最近项目节点不足{DEADLINE_HORIZON_DAYS}天的月数（已逾期的继续累加）")


def stalled_priority(conn: Connection, params: StalledPriority = StalledPriority(), *, as_of: date | None = None,
                     tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                     with_geometry: bool = False) -> CheckResult:
    """久拖未决（按优先）: the stalled check's findings ranked by the stated priority, the ``top`` first."""
    params = params.validated()
    base = stalled(conn, Stalled(days=params.days), as_of=as_of, tz=tz, reveal_personal=reveal_personal,
                   with_geometry=with_geometry)
    day = base.as_of
    areas = dict(conn.execute(text(_AREAS_SQL), {"ids": [f["parcel_id"] for f in base.findings]}).all())
    deadlines = dict(conn.execute(text(_DEADLINES_SQL)).all())
    ranked: list[dict[str, Any]] = []
    for f in base.findings:
        area = float(areas[f["parcel_id"]])
        deadline = min((deadlines[c] for c in (f["projects"] or "").split(",") if c in deadlines), default=None)
        left = (deadline - day).days if deadline else None
        ranked.append(f | {"area_m2": area, "deadline": deadline, "days_to_deadline": left}
                      | priority_of(f["days_in_stage"], area, bool(f["holdout"] or f["legacy"]), left))
    ranked.sort(key=lambda f: (-f["priority"], f["code"]))
    top = [f | {"rank": i} for i, f in enumerate(ranked[:params.top], start=1)]
    return CheckResult(
        "stalled_priority", "久拖未决（按优先）", rule_zh(params, day), day, params.as_dict(), top,
        HEADER_COLUMNS + PRIORITY_COLUMNS + STALLED_COLUMNS,
        summary={"stalled_cases": len(ranked), "listed": len(top)},
    )
