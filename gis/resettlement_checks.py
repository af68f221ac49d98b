"""The inspectors' checks of resettlement (安不好) and of cleared land (长期无法净地开发, 再次占用), registered with
the other checks in ``gis.checks.CHECKS`` (the API's routes, the CLI's commands and the reports iterate it).

The rules, precisely (the months, states and supply status are those of ``gis.analysis.resettlement``):
- transition_overdue (过渡期超期): a household that chose a flat whose promised transition ran out more than
  ``grace_days`` days before the as-of day without keys, or whose keys came more than ``grace_days`` after it.
- unresettled (拆而未安): a household demolished (stage demolished or cleared, reached more than ``grace_days``
  days before the as-of day) left with nothing: it chose money and no compensation payment is recorded, or it
  chose a flat, has none allocated and has been paid no transitional fee. A household awaiting its flat while
  its fee is paid is being resettled, not left out.
- flat_allocated_twice (一房多配): two allocations of one flat held at the same time (each from its selection
  day until its cancellation, if cancelled by the as-of day). The database refuses two allocations in force
  at once; this finds what it cannot: a cancellation recorded after the flat went to someone else, from
  legacy or imported records. Each household is listed, naming the other.
- idle_cleared_land (长期无法净地开发): land cleared more than ``days`` days before the as-of day and not supplied
  (出让 or 划拨) by then; the summary counts them per project.
- reoccupied (再次占用): cleared land where a structure or planting appears again between the first imagery
  epoch after its clearance and the latest (``gis.imagery.reoccupation``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection

from gis.analysis.resettlement import STATE_LABELS_ZH, cleared_land, households
from gis.checks import (
    _SETTINGS_DEFAULTS,
    CHECKS,
    HEADER_COLUMNS,
    MAX_AREA_M2,
    MAX_DAYS,
    Check,
    CheckParams,
    CheckResult,
    _day,
    _findings,
    _param,
    jsonable,
)
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE
from gis.records.resettlement import CHOICE_LABELS_ZH


def _default(name: str) -> Any:
    return _SETTINGS_DEFAULTS[name].default


@dataclass(frozen=True)
class TransitionOverdue(CheckParams):
    grace_days: int = _param(0, "超期宽限(天)", "Days past the promised transition tolerated.", le=MAX_DAYS)


@dataclass(frozen=True)
class Unresettled(CheckParams):
    grace_days: int = _param(30, "拆除后落实期限(天)", "Days after demolition to settle money, a flat or the "
                             "transitional fee.", le=MAX_DAYS)


@dataclass(frozen=True)
class FlatAllocatedTwice(CheckParams):
    pass


@dataclass(frozen=True)
class IdleClearedLand(CheckParams):
    days: int = _param(_default("idle_land_days"), "交地后未供地天数", "Cleared land not supplied for more than this "
                       "many days is idle.", ge=1, le=MAX_DAYS)


@dataclass(frozen=True)
class Reoccupied(CheckParams):
    threshold_m: float = _param(_default("imagery_change_threshold_m"), "增高阈值(m)", "A height gain above this "
                                "counts as a new structure or planting.", ge=0.1, le=1000)
    min_area_m2: float = _param(_default("imagery_flag_min_m2"), "变化面积下限(㎡)", "Changed area a parcel needs "
                                "to be flagged.", le=MAX_AREA_M2)
    min_share: float = _param(_default("imagery_flag_min_share"), "变化比例下限", "Changed share a parcel needs to "
                              "be flagged.", le=1)


# Findings computed in Python (the months and states are ``gis.analysis.resettlement``'s rules) reach the
# parcel header of every check through one bound JSON parameter.
def _python_findings(conn: Connection, rows: list[dict[str, Any]], types: dict[str, str], day: Any, order: str, *,
                     reveal_personal: bool, with_geometry: bool) -> list[dict[str, Any]]:
    definition = ", ".join(f"{k} {t}" for k, t in {"parcel_id": "bigint", **types}.items())
    inner = f"SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f({definition})"
    payload = json.dumps([{k: jsonable(r[k]) for k in ("parcel_id", *types)} for r in rows])
    return _findings(conn, inner, day.params | {"rows": payload}, order, reveal_personal=reveal_personal,
                     with_geometry=with_geometry)


# ---------------------------------------------------------------------------------------------
# 过渡期超期

TRANSITION_OVERDUE_COLUMNS = (
    Column("project_code", "征收项目", width=12, shp="project"),
    Column("transition_from", "过渡起始日", "date", shp="trans_from"),
    Column("promised_months", "约定过渡期(月)", "int", shp="promised"),
    Column("promised_end", "约定交房日", "date", shp="prom_end"),
    Column("keys_on", "实际交房日", "date"),
    Column("days_over", "超期天数", "int", shp="days_over"),
    Column("months_due", "应发过渡月数", "int", total=True, shp="months_due"),
    Column("months_paid", "已发过渡月数", "int", total=True, shp="months_pd"),
    Column("ongoing", "仍在过渡", "bool"),
)


def transition_overdue(conn: Connection, params: TransitionOverdue = TransitionOverdue(), *,
                       as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                       with_geometry: bool = False) -> CheckResult:
    """过渡期超期: households past their promised transition, still waiting or handed their keys late."""
    params, day = params.validated(), _day(as_of, tz)
    rows = []
    for h in households(conn, as_of=day.as_of, tz=tz):
        end = h["promised_end"]
        if end is None:
            continue
        finished = h["keys_on"] or day.as_of
        over = (finished - end).days if h["keys_on"] else (day.as_of - end).days + 1
        if over > params.grace_days:
            rows.append({**h, "days_over": over, "ongoing": h["keys_on"] is None})
    types = {"project_code": "text", "transition_from": "date", "promised_months": "integer", "promised_end": "date",
             "keys_on": "date", "days_over": "integer", "months_due": "integer", "months_paid": "integer",
             "ongoing": "boolean"}
    findings = _python_findings(conn, rows, types, day, "f.ongoing DESC, f.days_over DESC, pa.code",
                                reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "transition_overdue", "过渡期超期",
        f"截至{day.as_of}，选择产权调换的安置户约定过渡期届满超过{params.grace_days}天仍未交房，或交房晚于约定过渡期",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + TRANSITION_OVERDUE_COLUMNS,
        summary={"ongoing": sum(f["ongoing"] for f in findings), "late_keys": sum(not f["ongoing"] for f in findings)},
    )


# ---------------------------------------------------------------------------------------------
# 拆而未安

UNRESETTLED_COLUMNS = (
    Column("project_code", "征收项目", width=12, shp="project"),
    Column("choice", "安置方式", values=CHOICE_LABELS_ZH, width=10),
    Column("state", "安置状态", values=STATE_LABELS_ZH, width=14),
    Column("demolished_on", "拆除日期", "date", shp="demolished"),
    Column("days_since", "拆除后天数", "int", shp="days_since"),
)


def unresettled(conn: Connection, params: Unresettled = Unresettled(), *, as_of: date | None = None,
                tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False, with_geometry: bool = False) -> CheckResult:
    """拆而未安: demolished households with neither money paid, nor a flat allocated, nor a transitional fee."""
    params, day = params.validated(), _day(as_of, tz)
    due = day.as_of - timedelta(days=params.grace_days)
    rows = [
        {**h, "days_since": (day.as_of - h["demolished_on"]).days}
        for h in households(conn, as_of=day.as_of, tz=tz)
        if h["stage"] in ("demolished", "cleared") and h["demolished_on"] is not None and h["demolished_on"] < due
        and (h["state"] == "money_pending" or (h["state"] == "awaiting_selection" and h["months_paid"] == 0))
    ]
    types = {"project_code": "text", "choice": "text", "state": "text", "demolished_on": "date",
             "days_since": "integer"}
    findings = _python_findings(conn, rows, types, day, "f.days_since DESC, pa.code", reveal_personal=reveal_personal,
                                with_geometry=with_geometry)
    return CheckResult(
        "unresettled", "拆而未安",
        f"截至{day.as_of}已腾空/拆除超过{params.grace_days}天的安置户：选择货币补偿而未发放补偿款，或选择产权调换而既未选房"
        f"也未发放临时安置费",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + UNRESETTLED_COLUMNS,
        summary=dict(Counter(f["choice"] for f in findings)),
    )


# ---------------------------------------------------------------------------------------------
# 一房多配

_FLAT_TWICE = """
WITH held AS (
    SELECT a.id, a.parcel_id, a.flat_id, a.selected_on,
           CASE WHEN a.cancelled_on <= :as_of THEN a.cancelled_on END AS until
    FROM resettlement_allocations a WHERE a.selected_on <= :as_of
),
pairs AS (
    SELECT x.parcel_id, y.parcel_id AS other_id, x.flat_id, x.selected_on, x.until
    FROM held x JOIN held y ON y.flat_id = x.flat_id AND y.id <> x.id AND y.parcel_id <> x.parcel_id
    WHERE x.selected_on < coalesce(y.until, 'infinity') AND y.selected_on < coalesce(x.until, 'infinity')
)
SELECT p.parcel_id, e.name AS estate_name, b.name AS building, f.number AS flat_number, p.flat_id,
       p.selected_on, p.until AS cancelled_on, o.code AS other_code
FROM pairs p
JOIN parcels o ON o.id = p.other_id
JOIN resettlement_flats f ON f.id = p.flat_id
JOIN resettlement_buildings b ON b.id = f.building_id
JOIN resettlement_estates e ON e.id = b.estate_id
"""
FLAT_TWICE_COLUMNS = (
    Column("estate_name", "安置小区", width=14, shp="estate"),
    Column("building", "楼栋", width=8),
    Column("flat_number", "房号", width=8, shp="flat"),
    Column("selected_on", "选房日期", "date", shp="selected"),
    Column("cancelled_on", "撤销日期", "date", shp="cancelled"),
    Column("other_code", "同房另一户地块", width=14, shp="other"),
)


def flat_allocated_twice(conn: Connection, params: FlatAllocatedTwice = FlatAllocatedTwice(), *,
                         as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                         with_geometry: bool = False) -> CheckResult:
    """一房多配: one flat held by two households at the same time."""
    params, day = params.validated(), _day(as_of, tz)
    findings = _findings(conn, _FLAT_TWICE, day.params, "f.flat_id, f.selected_on, pa.code",
                         reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "flat_allocated_twice", "一房多配",
        f"截至{day.as_of}，同一套安置房在同一时期分配给两户以上（各自自选房日起至撤销日止）",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + FLAT_TWICE_COLUMNS,
        summary={"flats": len({f["flat_id"] for f in findings})},
    )


# ---------------------------------------------------------------------------------------------
# 长期无法净地开发

IDLE_LAND_COLUMNS = (
    Column("projects", "涉及项目", width=14),
    Column("cleared_on", "交地日期", "date"),
    Column("days_cleared", "交地后天数", "int", shp="days"),
    Column("area_m2", "面积(㎡)", "m2", total=True),
)


def idle_cleared_land(conn: Connection, params: IdleClearedLand = IdleClearedLand(), *, as_of: date | None = None,
                      tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                      with_geometry: bool = False) -> CheckResult:
    """长期无法净地开发: land cleared more than N days ago and not supplied, by project."""
    params, day = params.validated(), _day(as_of, tz)
    rows = [r for r in cleared_land(conn, as_of=day.as_of, tz=tz)
            if r["supply_status"] == "awaiting" and r["days_cleared"] is not None and r["days_cleared"] > params.days]
    types = {"projects": "text", "cleared_on": "date", "days_cleared": "integer", "area_m2": "double precision"}
    findings = _python_findings(conn, rows, types, day, "f.days_cleared DESC, pa.code",
                                reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "idle_cleared_land", "长期无法净地开发",
        f"截至{day.as_of}，交地（净地）超过{params.days}天仍未供地（出让或划拨）的地块",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + IDLE_LAND_COLUMNS,
        summary=dict(Counter(f["projects"] or "（无项目）" for f in findings)),
    )


# ---------------------------------------------------------------------------------------------
# 再次占用

REOCCUPIED_COLUMNS = (
    Column("cleared_on", "交地日期", "date"),
    Column("cleared_epoch", "交地后首期影像", "date", shp="epoch_1"),
    Column("latest_epoch", "最新影像", "date", shp="epoch_2"),
    Column("changed_m2", "新增占用面积(㎡)", "m2", total=True, shp="chg_m2"),
    Column("changed_share", "占用比例", "share", shp="chg_share"),
    Column("max_gain_m", "最大增高(m)", "float", shp="max_gain"),
)


def reoccupied(conn: Connection, params: Reoccupied = Reoccupied(), *, as_of: date | None = None,
               tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False, with_geometry: bool = False) -> CheckResult:
    """再次占用: cleared land with a structure or planting appearing again on later imagery."""
    from gis.imagery.change import ChangeRule  # imagery (rasterio, rio-tiler) loads only for this check
    from gis.imagery.reoccupation import reoccupation

    params, day = params.validated(), _day(as_of, tz)

    def rule_of(kind: str) -> ChangeRule:
        return ChangeRule(kind, params.threshold_m, params.min_area_m2, params.min_share,
                          tuple(_default("imagery_built_classes")), tuple(_default("imagery_vegetation_classes")))

    compared, counts = reoccupation(conn, rule_of, as_of=day.as_of, tz=tz)
    rows = [r for r in compared if r["flagged"]]
    types = {"cleared_on": "date", "cleared_epoch": "date", "latest_epoch": "date", "changed_m2": "double precision",
             "changed_share": "double precision", "max_gain_m": "double precision"}
    findings = _python_findings(conn, rows, types, day, "f.changed_m2 DESC, pa.code", reveal_personal=reveal_personal,
                                with_geometry=with_geometry)
    return CheckResult(
        "reoccupied", "再次占用",
        f"截至{day.as_of}已交地的地块，交地后首期影像与最新影像相比新增建筑或植被（增高超过{params.threshold_m}m），面积不小于"
        f"{params.min_area_m2}㎡且比例不小于{params.min_share:.1%}：二次补偿风险",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + REOCCUPIED_COLUMNS, summary=counts,
    )


RESETTLEMENT_CHECKS = (
    Check("transition_overdue", "过渡期超期", TransitionOverdue, transition_overdue),
    Check("unresettled", "拆而未安", Unresettled, unresettled),
    Check("flat_allocated_twice", "一房多配", FlatAllocatedTwice, flat_allocated_twice),
    Check("idle_cleared_land", "长期无法净地开发", IdleClearedLand, idle_cleared_land),
    Check("reoccupied", "再次占用", Reoccupied, reoccupied),
)
CHECKS.update({c.name: c for c in RESETTLEMENT_CHECKS})
