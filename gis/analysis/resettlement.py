"""Questions over resettlement (安置) and cleared land: months of transition, the price difference, each
household's state and timeline, totals per project and district, cleared land by supply status.

The rules, each stated here once:

- **Months** of a transition: month 1 starts on ``transition_from``, month k on the same day k-1 months later
  (the 31st falls back to a shorter month's last day). A month is owed once it has started before the
  transition ends: before the keys day (交房) when the keys were handed over by the as-of day, else up to and
  including the as-of day (``months_started``). The promised period of P months ends on the day month P+1
  would start (``promised_end``); a household without keys on that day has run past it.
- **The price difference** (差价结算) of a flat in exchange: the flat's value (area × settlement unit price,
  to the cent) minus the old house's value. Positive: the household pays it; negative: it is paid to the
  household. The old house's value is a parameter: the stored one (the agreement amount) unless given.
- **A household's state** at the end of a day: money chosen and paid (``money_paid``: a compensation payment
  recorded on the parcel) or not yet (``money_pending``); a flat chosen and none selected
  (``awaiting_selection``), selected (``selected``), keys handed over (``delivered``). ``money_paid`` and
  ``delivered`` are resettled (已安置); the rest are waiting (待安置).
- **Cleared land's supply status** at the end of a day: a parcel at stage cleared (replayed from the history)
  is ``transfer`` or ``allocation`` when its supply was recorded on or before that day, else ``awaiting``.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.privacy import mask_name
from gis.domain.stages import STAGE_AT_SQL, end_of_day
from gis.io.export import Column, Sheet, write_xlsx_sheets
from gis.platform.errors import InvalidInput, NotFound
from gis.records.resettlement import (
    ACTIVE_ALLOCATION_SQL,
    CHOICE_LABELS_ZH,
    SUPPLY_LABELS_ZH,
    flat_status_sql,
    get_household,
)

STATE_LABELS_ZH = {
    "money_pending": "货币补偿待发放",
    "money_paid": "货币补偿已发放",
    "awaiting_selection": "待选房",
    "selected": "已选房待交房",
    "delivered": "已交房",
}
RESETTLED_STATES = ("money_paid", "delivered")
CENT = Decimal("0.01")


def add_months(day: date, months: int) -> date:
    """``day`` moved ``months`` months on, the day of month kept or clamped to the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_started(start: date, before: date) -> int:
    """How many transition months (month 1 starting on ``start``) have started before the day ``before``."""
    if before <= start:
        return 0
    months = (before.year - start.year) * 12 + before.month - start.month
    # add_months is monotonic: step back while month `months + 1` has not started yet.
    while months > 0 and add_months(start, months) >= before:
        months -= 1
    return months + 1


def transition_months(start: date, keys_on: date | None, as_of: date) -> int:
    """Months owed of a transition starting on ``start``, as of the end of ``as_of``: up to the keys day when
    the keys were handed over by then, else up to and including ``as_of``."""
    if keys_on is not None and keys_on <= as_of:
        return months_started(start, keys_on)
    return months_started(start, as_of + timedelta(days=1))


def promised_end(start: date, promised_months: int) -> date:
    """The day the promised transition has run out: the day month ``promised_months + 1`` starts."""
    return add_months(start, promised_months)


def price_difference(old_value_yuan: Decimal, area_m2: Decimal, unit_price_yuan: Decimal) -> dict[str, Any]:
    """The flat's value and the difference to settle (positive: the household pays)."""
    new_value = (Decimal(area_m2) * Decimal(unit_price_yuan)).quantize(CENT, ROUND_HALF_UP)
    difference = new_value - Decimal(old_value_yuan)
    return {"old_value_yuan": Decimal(old_value_yuan), "flat_value_yuan": new_value, "difference_yuan": difference,
            "payer": "household" if difference > 0 else "government" if difference < 0 else "none"}


def household_difference(conn: Connection, parcel_id: int, old_value_yuan: Decimal | None = None) -> dict[str, Any]:
    """The price difference of the household's allocated flat; ``old_value_yuan`` overrides the stored value
    (the compensation engine may supply it)."""
    household = get_household(conn, parcel_id)
    flat = conn.execute(text(
        "SELECT f.area_m2, f.unit_price_yuan FROM resettlement_allocations a "
        "JOIN resettlement_flats f ON f.id = a.flat_id WHERE a.parcel_id = :p AND a.cancelled_on IS NULL"
    ), {"p": parcel_id}).first()
    if flat is None:
        raise InvalidInput("the household has no allocated flat", "parcel_id")
    old = old_value_yuan if old_value_yuan is not None else household["old_value_yuan"]
    if old is None:
        raise InvalidInput("the old house's value is not stored: give old_value_yuan", "old_value_yuan")
    return {"parcel_id": parcel_id, **price_difference(old, flat.area_m2, flat.unit_price_yuan)}


# ---------------------------------------------------------------------------------------------
# Each household's state, one query for all


HOUSEHOLDS_SQL = f"""
SELECT h.parcel_id, pa.code, pa.owner_name, d.code AS district, d.name AS district_name,
       h.project_id, pr.code AS project_code, pr.name AS project_name, h.choice, h.agreement_on,
       h.old_value_yuan, h.transition_from, h.promised_months, h.monthly_fee_yuan,
       CASE WHEN h.keys_on <= :as_of THEN h.keys_on END AS keys_on,
       {STAGE_AT_SQL.format(parcel="h.parcel_id", end=":end")} AS stage,
       (SELECT CAST(timezone(:tz, max(e.at)) AS date) FROM parcel_events e
        WHERE e.parcel_id = h.parcel_id AND e.stage_to = 'demolished' AND e.at < :end) AS demolished_on,
       al.flat_id, al.selection_order, al.selected_on, al.settled_on, al.difference_yuan,
       f.number AS flat_number, f.floor AS flat_floor, f.area_m2 AS flat_area_m2, f.unit_price_yuan,
       b.name AS building, e.code AS estate_code, e.name AS estate_name,
       EXISTS (SELECT 1 FROM payments pm WHERE pm.parcel_id = h.parcel_id AND pm.paid_on <= :as_of) AS money_paid,
       (SELECT count(*) FROM transition_payments t WHERE t.parcel_id = h.parcel_id AND t.paid_on <= :as_of)
           AS months_paid,
       (SELECT coalesce(sum(t.amount_yuan), 0) FROM transition_payments t
        WHERE t.parcel_id = h.parcel_id AND t.paid_on <= :as_of) AS fees_paid_yuan
FROM resettlement_households h
JOIN parcels pa ON pa.id = h.parcel_id
JOIN districts d ON d.id = pa.district_id
LEFT JOIN projects pr ON pr.id = h.project_id
LEFT JOIN LATERAL (SELECT a.* FROM resettlement_allocations a WHERE a.parcel_id = h.parcel_id
                   AND {ACTIVE_ALLOCATION_SQL} ORDER BY a.selected_on DESC, a.id DESC LIMIT 1) al ON true
LEFT JOIN resettlement_flats f ON f.id = al.flat_id
LEFT JOIN resettlement_buildings b ON b.id = f.building_id
LEFT JOIN resettlement_estates e ON e.id = b.estate_id
WHERE h.agreement_on <= :as_of
  AND (CAST(:project AS integer) IS NULL OR h.project_id = :project)
  AND (CAST(:parcel AS bigint) IS NULL OR h.parcel_id = :parcel)
ORDER BY pr.code NULLS LAST, h.agreement_on, pa.code
"""


def state_of(row: Any) -> str:
    """A household's state (see the module's rules) from a HOUSEHOLDS_SQL row."""
    if row["choice"] == "money":
        return "money_paid" if row["money_paid"] else "money_pending"
    if row["flat_id"] is None:
        return "awaiting_selection"
    return "delivered" if row["keys_on"] is not None else "selected"


def households(conn: Connection, *, as_of: date, tz: str, project_id: int | None = None,
               parcel_id: int | None = None, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """Every household recorded by the end of ``as_of`` with its state, flat, months owed and paid, and the
    transition's promised end (names masked unless ``reveal_personal``)."""
    rows = conn.execute(text(HOUSEHOLDS_SQL), {"as_of": as_of, "end": end_of_day(as_of, tz), "tz": tz,
                                              "project": project_id,
                                              "parcel": parcel_id}).mappings()
    out = []
    for row in rows:
        item = dict(row)
        item["state"] = state_of(row)
        item["resettled"] = item["state"] in RESETTLED_STATES
        start = item["transition_from"]
        if start is not None and start <= as_of:
            item["months_due"] = transition_months(start, item["keys_on"], as_of)
            item["promised_end"] = promised_end(start, item["promised_months"])
        else:
            item["months_due"], item["promised_end"] = 0, None
        if not reveal_personal:
            item["owner_name"] = mask_name(item["owner_name"])
        out.append(item)
    return out


def timeline(conn: Connection, parcel_id: int, *, as_of: date, tz: str) -> list[dict[str, Any]]:
    """A household's way from agreement to keys, as of the end of ``as_of``, in date order: the agreement, the
    parcel's stages (from the history), the transition's start and each month's fee, the selection, the price
    settlement, the keys."""
    get_household(conn, parcel_id)
    found = households(conn, as_of=as_of, tz=tz, parcel_id=parcel_id)
    if not found:
        raise NotFound(f"the household on parcel {parcel_id} has no agreement by {as_of}")
    h = found[0]
    steps: list[dict[str, Any]] = [{"on": h["agreement_on"], "step": "agreement",
                                    "label": f"签订协议（{CHOICE_LABELS_ZH[h['choice']]}）"}]
    stages = conn.execute(text("""
        SELECT e.stage_to, CAST(timezone(:tz, e.at) AS date) AS on_day FROM parcel_events e
        WHERE e.parcel_id = :p AND e.stage_to IN ('paid', 'demolished', 'cleared') AND e.at < :end ORDER BY e.at, e.id
    """), {"p": parcel_id, "tz": tz, "end": end_of_day(as_of, tz)}).all()
    labels = {"paid": "补偿款发放", "demolished": "腾空/拆除", "cleared": "交地"}
    steps += [{"on": s.on_day, "step": s.stage_to, "label": labels[s.stage_to]} for s in stages]
    if h["transition_from"] is not None and h["transition_from"] <= as_of:
        steps.append({"on": h["transition_from"], "step": "transition",
                      "label": f"开始过渡（约定{h['promised_months']}个月）"})
    fees = conn.execute(text(
        "SELECT month_no, paid_on, amount_yuan FROM transition_payments WHERE parcel_id = :p AND paid_on <= :d "
        "ORDER BY paid_on, month_no"), {"p": parcel_id, "d": as_of}).all()
    steps += [{"on": f.paid_on, "step": "transition_fee", "label": f"发放第{f.month_no}个月临时安置费",
               "amount_yuan": f.amount_yuan} for f in fees]
    if h["selected_on"] is not None:
        flat = f"{h['estate_name']}{h['building']}{h['flat_number']}"
        steps.append({"on": h["selected_on"], "step": "selection",
                      "label": f"第{h['selection_order']}顺位选房：{flat}"})
    if h["settled_on"] is not None and h["settled_on"] <= as_of:
        steps.append({"on": h["settled_on"], "step": "settlement", "label": "差价结算",
                      "amount_yuan": h["difference_yuan"]})
    if h["keys_on"] is not None:
        steps.append({"on": h["keys_on"], "step": "keys", "label": "交房"})
    order = {s: i for i, s in enumerate(("agreement", "paid", "demolished", "transition", "transition_fee",
                                         "cleared", "selection", "settlement", "keys"))}
    return sorted(steps, key=lambda s: (s["on"], order[s["step"]]))


def totals(conn: Connection, *, as_of: date, tz: str, by: str = "project") -> list[dict[str, Any]]:
    """Per project (``by="project"``) or district: households, resettled, waiting, money/flat, transition
    months owed and paid, fees paid, and households past their promised transition."""
    if by not in ("project", "district"):
        raise InvalidInput("by is project or district", "by")
    groups: dict[Any, dict[str, Any]] = {}
    for h in households(conn, as_of=as_of, tz=tz):
        key = ((h["project_code"], h["project_name"] or "无项目") if by == "project"
               else (h["district"], h["district_name"]))
        g = groups.setdefault(key, {"code": key[0], "name": key[1], "households": 0, "resettled": 0, "waiting": 0,
                                    "money": 0, "flat": 0, "months_due": 0, "months_paid": 0,
                                    "fees_paid_yuan": Decimal(0), "overdue": 0})
        g["households"] += 1
        g["resettled" if h["resettled"] else "waiting"] += 1
        g[h["choice"]] += 1
        g["months_due"] += h["months_due"]
        g["months_paid"] += h["months_paid"]
        g["fees_paid_yuan"] += h["fees_paid_yuan"]
        g["overdue"] += int(h["promised_end"] is not None and h["keys_on"] is None and as_of >= h["promised_end"])
    return sorted(groups.values(), key=lambda g: (g["code"] is None, g["code"] or ""))


def flats(conn: Connection, *, as_of: date, estate_id: int | None = None) -> list[dict[str, Any]]:
    """The stock with each flat's status at the end of ``as_of`` (no household names: the parcel code only)."""
    rows = conn.execute(text(f"""
        SELECT e.code AS estate_code, e.name AS estate_name, b.name AS building, f.id AS flat_id, f.number, f.floor,
               f.area_m2, f.unit_price_yuan, {flat_status_sql()} AS status, pa.code AS parcel_code,
               a.selection_order
        FROM resettlement_flats f
        JOIN resettlement_buildings b ON b.id = f.building_id
        JOIN resettlement_estates e ON e.id = b.estate_id
        LEFT JOIN LATERAL (SELECT a.* FROM resettlement_allocations a WHERE a.flat_id = f.id AND {ACTIVE_ALLOCATION_SQL}
                           ORDER BY a.selected_on DESC, a.id DESC LIMIT 1) a ON true
        LEFT JOIN resettlement_households h ON h.parcel_id = a.parcel_id
        LEFT JOIN parcels pa ON pa.id = a.parcel_id
        WHERE CAST(:estate AS integer) IS NULL OR e.id = :estate
        ORDER BY e.code, b.name, f.floor, f.number
    """), {"as_of": as_of, "estate": estate_id}).mappings()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Cleared land


CLEARED_LAND_SQL = f"""
WITH cleared AS (
    SELECT pa.id AS parcel_id,
           (SELECT CAST(timezone(:tz, max(e.at)) AS date) FROM parcel_events e
            WHERE e.parcel_id = pa.id AND e.stage_to = 'cleared' AND e.at < :end) AS cleared_on
    FROM parcels pa
    WHERE {STAGE_AT_SQL.format(parcel="pa.id", end=":end")} = 'cleared'
)
SELECT c.parcel_id, pa.code, pa.kind, d.code AS district, d.name AS district_name, c.cleared_on,
       CAST(:as_of AS date) - c.cleared_on AS days_cleared,
       CASE WHEN s.supplied_on <= :as_of THEN s.method ELSE 'awaiting' END AS supply_status,
       CASE WHEN s.supplied_on <= :as_of THEN s.supplied_on END AS supplied_on,
       CASE WHEN s.supplied_on <= :as_of THEN s.receiving_project END AS receiving_project,
       ST_Area(pa.geom) AS area_m2,
       (SELECT string_agg(p.code, ',' ORDER BY p.id) FROM project_parcel_overlaps o JOIN projects p
        ON p.id = o.project_id WHERE o.parcel_id = pa.id) AS projects
       {{geom}}
FROM cleared c
JOIN parcels pa ON pa.id = c.parcel_id
JOIN districts d ON d.id = pa.district_id
LEFT JOIN land_supply s ON s.parcel_id = c.parcel_id
ORDER BY pa.code
"""


CLEARED_LAND_COLUMNS = (
    Column("code", "地块编号", width=14),
    Column("district_name", "片区", width=8),
    Column("projects", "涉及项目", width=14),
    Column("cleared_on", "交地日期", "date"),
    Column("days_cleared", "交地后天数", "int"),
    Column("supply_status", "供地状态", values=SUPPLY_LABELS_ZH, width=10),
    Column("supplied_on", "供地日期", "date"),
    Column("receiving_project", "受让项目", width=18),
    Column("area_m2", "面积(㎡)", "m2", total=True),
)


def cleared_land(conn: Connection, *, as_of: date, tz: str, with_geometry: bool = False) -> list[dict[str, Any]]:
    """Every parcel cleared (交地) at the end of ``as_of`` with its supply status, day and receiving project."""
    sql = CLEARED_LAND_SQL.replace("{geom}", ", ST_AsBinary(pa.geom) AS geom" if with_geometry else "")
    rows = conn.execute(text(sql), {"as_of": as_of, "end": end_of_day(as_of, tz), "tz": tz}).mappings()
    return [{k: (bytes(v) if isinstance(v, memoryview) else v) for k, v in r.items()} for r in rows]


# ---------------------------------------------------------------------------------------------
# The workbook of resettlement status by project

TOTALS_COLUMNS = (
    Column("code", "项目编号", width=12),
    Column("name", "项目", width=18),
    Column("households", "安置户数", "int", total=True),
    Column("resettled", "已安置", "int", total=True),
    Column("waiting", "待安置", "int", total=True),
    Column("money", "货币补偿", "int", total=True),
    Column("flat", "产权调换", "int", total=True),
    Column("months_due", "应发过渡月数", "int", total=True),
    Column("months_paid", "已发过渡月数", "int", total=True),
    Column("fees_paid_yuan", "已发临时安置费(元)", "float", total=True),
    Column("overdue", "过渡期超期户数", "int", total=True),
)
HOUSEHOLD_COLUMNS = (
    Column("code", "地块编号", width=14),
    Column("district_name", "片区", width=8),
    Column("owner_name", "权利人", width=10),
    Column("choice", "安置方式", values=CHOICE_LABELS_ZH, width=10),
    Column("state", "安置状态", values=STATE_LABELS_ZH, width=14),
    Column("agreement_on", "协议日期", "date"),
    Column("selection_order", "选房顺序号", "int"),
    Column("estate_name", "安置小区", width=14),
    Column("building", "楼栋", width=8),
    Column("flat_number", "房号", width=8),
    Column("flat_area_m2", "安置房面积(㎡)", "m2", total=True),
    Column("transition_from", "过渡起始日", "date"),
    Column("promised_end", "约定交房日", "date"),
    Column("months_due", "应发过渡月数", "int", total=True),
    Column("months_paid", "已发过渡月数", "int", total=True),
    Column("keys_on", "交房日期", "date"),
    Column("difference_yuan", "结算差价(元)", "float", total=True),
)


def status_workbook(conn: Connection, path: Path, *, as_of: date, tz: str, reveal_personal: bool = False) -> list[int]:
    """Resettlement status by project as XLSX at ``path``: a sheet of totals per project, then one sheet per
    project listing its households (names masked unless ``reveal_personal``); each sheet's row count."""
    rows = households(conn, as_of=as_of, tz=tz, reveal_personal=reveal_personal)
    by_project: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_project.setdefault(r["project_name"] or "无项目", []).append(r)
    sheets = [Sheet("按项目汇总", totals(conn, as_of=as_of, tz=tz), TOTALS_COLUMNS, unit="个项目")]
    sheets += [Sheet(name, items, HOUSEHOLD_COLUMNS, unit="户") for name, items in by_project.items()]
    return write_xlsx_sheets(sheets, path, reveal_personal=reveal_personal, tz=tz, on=as_of)
