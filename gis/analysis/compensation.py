"""Itemised compensation (逐项补偿): every item of a household's compensation from the standards in force on its
agreement's date, each with its rate, quantity, the standard's article (依据) and amount, and the total.

One engine for a parcel's calculation, a hypothetical household's estimate (the service's and the public
calculator's) alike. The formulas, by item (rates from ``compensation_standards``; the standard is the one of the
district, kind, item and grade in force on the agreement's date, ``gis.records.standards``):

- 房屋价值补偿 house_value: floor area × the rate of the house's structure class (or the rate for all classes);
- 装修补偿 decoration: floor area × the rate of its decoration grade; none for an undecorated house;
- 附属物 attachments and 青苗 crops: Σ quantity × the rate of each counted kind (or the item's rate for all kinds);
- 搬迁费 relocation, 补助 subsidy, 签约奖励 incentive: per m² of floor area (houses), per mu (land) or per household;
- 临时安置费 temporary_resettlement: floor area × months of transition × the rate per m² and month;
- 停产停业损失 business_loss: the area used for business × the rate per m²; none without business use;
- 土地补偿 land, 安置补助费 subsidy, 社会保障费 social_security: land area (mu) × the rate per mu;
- the incentive only for an agreement signed on or before its standard's deadline (``sign_by``); after it, 0.

Each amount is rounded to the fen (half up), and the total is the sum of the rounded amounts, as a contract lists
them. An item whose standard exists but whose survey fact is missing (a structure not recorded) has no amount and
says what is missing; the calculation is then incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.compensation import (
    COUNTED,
    GRADED,
    NO_GRADE,
    Count,
    SurveyFacts,
    grade_label,
    number,
    parse_survey,
)
from gis.domain.limits import Limit
from gis.domain.stages import KIND_LABELS_ZH
from gis.io.export import Column, Sheet, write_xlsx_sheets
from gis.platform.config import SQM_PER_MU
from gis.platform.errors import InvalidInput, NotFound
from gis.records.standards import ITEM_LABELS_ZH, ITEMS_BY_KIND, RATE_UNIT_LABELS_ZH, contract_date_sql

CENT = Decimal("0.01")
_MU = Decimal(str(SQM_PER_MU))
QUANTITY_UNITS_ZH = {"m2": "㎡", "mu": "亩", "each": "项", "m2_month": "㎡·月", "household": "户"}


@dataclass(frozen=True)
class Household:
    """What the items are computed from: the parcel (or a hypothetical household) and its survey facts."""

    kind: str  # house | land
    district_id: int
    agreed_on: date  # the agreement's (or decision's) date: it chooses the standards and the incentive
    floor_area_m2: Decimal | None = None
    land_area_mu: Decimal | None = None
    households: int = 1
    structure: str | None = None
    decoration: str | None = None
    business_area_m2: Decimal | None = None
    transition_months: int | None = None
    counts: tuple[Count, ...] = ()


@dataclass(frozen=True)
class Rate:
    """A standard in force: what the engine needs of it."""

    id: int
    item: str
    grade: str
    unit: str
    rate_yuan: Decimal
    valid_from: date
    sign_by: date | None
    note: str | None


@dataclass
class Item:
    """One line of the calculation."""

    item: str
    grade: str
    quantity: Decimal | None
    unit: str
    rate_yuan: Decimal
    amount_yuan: Decimal | None
    standard_id: int
    valid_from: date
    article: str | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON's types: numbers as floats, dates as ISO text, with the Chinese labels."""
        return {
            "item": self.item, "item_label": ITEM_LABELS_ZH[self.item], "grade": self.grade,
            "grade_label": grade_label(self.item, self.grade),
            "quantity": None if self.quantity is None else float(self.quantity), "unit": self.unit,
            "quantity_unit_label": QUANTITY_UNITS_ZH[self.unit], "rate_yuan": float(self.rate_yuan),
            "rate_unit_label": RATE_UNIT_LABELS_ZH[self.unit],
            "amount_yuan": None if self.amount_yuan is None else float(self.amount_yuan),
            "standard_id": self.standard_id, "valid_from": self.valid_from.isoformat(), "article": self.article,
            "note": self.note,
        }


@dataclass
class Calculation:
    """Every item and the total (of the items with an amount); complete when every item has one."""

    household: Household
    items: list[Item] = field(default_factory=list)

    @property
    def total_yuan(self) -> Decimal:
        return sum((i.amount_yuan for i in self.items if i.amount_yuan is not None), Decimal("0.00"))

    @property
    def complete(self) -> bool:
        return all(i.amount_yuan is not None for i in self.items)

    def by_item(self) -> dict[str, Decimal]:
        """The amount of each item (counted kinds summed)."""
        out: dict[str, Decimal] = {}
        for i in self.items:
            if i.amount_yuan is not None:
                out[i.item] = out.get(i.item, Decimal(0)) + i.amount_yuan
        return out

    def as_dict(self) -> dict[str, Any]:
        """The calculation as JSON: the items, the total, and the date whose standards priced it."""
        h = self.household
        return {"kind": h.kind, "kind_label": KIND_LABELS_ZH[h.kind], "agreed_on": h.agreed_on.isoformat(),
                "items": [i.as_dict() for i in self.items], "total_yuan": float(self.total_yuan),
                "complete": self.complete}


def _yuan(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _area_in(unit: str, h: Household) -> tuple[Decimal | None, str | None]:
    """The parcel's own area in ``unit`` (m² of floor for a house, mu of land), or why there is none."""
    if h.kind == "house":
        area, missing = h.floor_area_m2, "缺少房屋建筑面积"
        if area is not None and unit == "mu":
            area = area / _MU
    else:
        area, missing = h.land_area_mu, "缺少土地面积"
        if area is not None and unit == "m2":
            area = area * _MU
    return (area, None) if area is not None else (None, missing)


def _quantity(rate: Rate, h: Household) -> tuple[Decimal | None, str | None]:
    """The quantity an item's rate multiplies, or (None, why not) — by the item and its standard's unit."""
    item, unit = rate.item, rate.unit
    if unit == "household":
        if item == "temporary_resettlement":
            if h.transition_months is None:
                return None, "缺少过渡期（月）"
            return Decimal(h.households) * h.transition_months, None
        return Decimal(h.households), None
    if item == "temporary_resettlement":
        if unit != "m2_month":
            return None, "临时安置费标准应按元/㎡·月或元/户计"
        if h.transition_months is None:
            return None, "缺少过渡期（月）"
        area, missing = _area_in("m2", h)
        return (area * h.transition_months, None) if area is not None else (None, missing)
    if unit not in ("m2", "mu"):
        return None, f"{ITEM_LABELS_ZH[item]}标准的单位（{RATE_UNIT_LABELS_ZH[unit]}）不适用"
    if item == "business_loss":
        area = h.business_area_m2 or Decimal(0)
        return (area if unit == "m2" else area / _MU), None
    return _area_in(unit, h)


class _Rates:
    """The standards in force by (item, grade); a class without its own rate takes the item's rate for all."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self.by_key = {(r.item, r.grade): r for r in rates}
        self.items = {item for item, _grade in self.by_key}

    def get(self, item: str, grade: str | None) -> Rate | None:
        return self.by_key.get((item, grade or NO_GRADE)) or self.by_key.get((item, NO_GRADE))

    def has(self, item: str) -> bool:
        return item in self.items


def _line(rate: Rate, quantity: Decimal | None, note: str | None, grade: str | None = None) -> Item:
    amount = None if quantity is None else _yuan(quantity * rate.rate_yuan)
    return Item(rate.item, grade if grade is not None else rate.grade, quantity, rate.unit, rate.rate_yuan, amount,
                rate.id, rate.valid_from, rate.note, note)


def itemise(rates: Iterable[Rate], h: Household) -> Calculation:
    """Every item of ``h``'s compensation priced by ``rates`` (the standards in force on ``h.agreed_on`` for its
    district and kind), in the order of the kind's items."""
    table = _Rates(rates)
    calc = Calculation(h)
    facts = {"house_value": h.structure, "decoration": h.decoration}
    for item in ITEMS_BY_KIND[h.kind]:
        if not table.has(item):
            continue
        if item in COUNTED:
            for c in (c for c in h.counts if c.item == item):
                rate = table.get(item, c.grade)
                if rate is not None:
                    calc.items.append(_line(rate, c.quantity, None, c.grade))
            continue
        if item in GRADED:
            grade = facts[item]
            if item == "decoration" and grade in (None, "none") and table.get(item, "none") is None:
                continue  # no decoration, nothing to compensate
            rate = table.get(item, grade)
            if rate is None:  # only rates of other classes: the survey must say which class
                some = next(r for (i, _g), r in table.by_key.items() if i == item)
                label = "房屋结构" if item == "house_value" else "装修等级"
                reason = f"缺少{label}" if grade is None else f"无{grade_label(item, grade)}的标准"
                calc.items.append(Item(item, grade or NO_GRADE, None, some.unit, some.rate_yuan, None, some.id,
                                       some.valid_from, some.note, reason))
                continue
            quantity, note = _quantity(rate, h)
            calc.items.append(_line(rate, quantity, note, grade))
            continue
        rate = table.get(item, NO_GRADE)
        if rate is None:
            continue
        if item == "business_loss" and not h.business_area_m2:
            continue  # no business use
        quantity, note = _quantity(rate, h)
        line = _line(rate, quantity, note)
        if item == "incentive" and rate.sign_by is not None and h.agreed_on > rate.sign_by:
            line.amount_yuan, line.note = Decimal("0.00"), f"签约日期晚于签约期限{rate.sign_by.isoformat()}，不计奖励"
        calc.items.append(line)
    return calc


# ---------------------------------------------------------------------------------------------
# The standards in force, from the database

# For each (district, kind, day) key, per item and grade, the latest standard from on or before the day (the
# supersession rule of gis.records.standards); by key, then item and grade.
_IN_FORCE_SQL = """
SELECT k.district_id, k.kind, k.day, r.*
FROM unnest(CAST(:districts AS integer[]), CAST(:kinds AS text[]), CAST(:days AS date[])) AS k(district_id, kind, day)
CROSS JOIN LATERAL (
    SELECT DISTINCT ON (s.item, s.grade) s.id, s.item, s.grade, s.unit, s.rate_yuan, s.valid_from, s.sign_by, s.note
    FROM compensation_standards s
    WHERE s.district_id = k.district_id AND s.kind = k.kind AND s.valid_from <= k.day
    ORDER BY s.item, s.grade, s.valid_from DESC
) r
ORDER BY k.district_id, k.kind, k.day, r.item, r.grade
"""


def rates_in_force(conn: Connection, district_id: int, kind: str, on: date) -> list[Rate]:
    """The standards of a district and kind in force on ``on``: per item and grade, the latest from on or before it
    (the supersession rule of ``gis.records.standards``)."""
    return rates_in_force_for(conn, [(district_id, kind, on)])[(district_id, kind, on)]


def rates_in_force_for(conn: Connection,
                       keys: Iterable[tuple[int, str, date]]) -> dict[tuple[int, str, date], list[Rate]]:
    """``rates_in_force`` for many (district id, kind, day) keys in one statement; a key with none maps to []."""
    wanted = sorted(set(keys))
    out: dict[tuple[int, str, date], list[Rate]] = {key: [] for key in wanted}
    rows = conn.execute(text(_IN_FORCE_SQL), {"districts": [k[0] for k in wanted], "kinds": [k[1] for k in wanted],
                                              "days": [k[2] for k in wanted]})
    for r in rows:
        out[(r.district_id, r.kind, r.day)].append(
            Rate(r.id, r.item, r.grade, r.unit, r.rate_yuan, r.valid_from, r.sign_by, r.note))
    return out


def calculate(conn: Connection, h: Household) -> Calculation:
    """``h``'s itemised compensation by the standards in force on its agreement's date."""
    return itemise(rates_in_force(conn, h.district_id, h.kind, h.agreed_on), h)


# ---------------------------------------------------------------------------------------------
# A parcel: its survey, its agreement's date, and what was paid on each item

_FIRST_PAID = "coalesce((SELECT min(paid_on) FROM payments WHERE parcel_id = pa.id), :today)"
_PARCEL_SQL = """
SELECT pa.id, pa.kind, pa.district_id, pa.households, pa.floor_area_m2, pa.land_area_mu,
       """ + contract_date_sql("pa", _FIRST_PAID) + """ AS agreed_on,
       ps.structure, ps.decoration, ps.business_area_m2, ps.transition_months
FROM parcels pa LEFT JOIN parcel_surveys ps ON ps.parcel_id = pa.id
WHERE pa.id = :id
"""
_COUNTS_SQL = "SELECT item, grade, quantity FROM parcel_survey_counts WHERE parcel_id = :id ORDER BY item, grade"
_PAID_SQL = "SELECT item, sum(amount_yuan) AS paid FROM payments WHERE parcel_id = :id GROUP BY item"


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def parcel_household(conn: Connection, parcel_id: int, *, today: date) -> Household:
    """A parcel as the engine reads it: its areas, survey facts, and the day that prices it (its decision, else its
    contract, never later than its first payment; today for a parcel with neither)."""
    row = conn.execute(text(_PARCEL_SQL), {"id": parcel_id, "today": today}).first()
    if row is None:
        raise NotFound(f"no parcel with id {parcel_id}", "parcel")
    counts = tuple(Count(r.item, r.grade, r.quantity) for r in conn.execute(text(_COUNTS_SQL), {"id": parcel_id}))
    return Household(kind=row.kind, district_id=row.district_id, agreed_on=row.agreed_on,
                     floor_area_m2=_decimal(row.floor_area_m2), land_area_mu=_decimal(row.land_area_mu),
                     households=row.households or 1, structure=row.structure, decoration=row.decoration,
                     business_area_m2=_decimal(row.business_area_m2), transition_months=row.transition_months,
                     counts=counts)


def parcel_calculation(conn: Connection, parcel_id: int, *, today: date) -> dict[str, Any]:
    """A parcel's itemised compensation, and beside each item what was paid on it and the difference (paid above
    the standard is positive): the agreement's amounts compared with the standards, item by item."""
    calc = calculate(conn, parcel_household(conn, parcel_id, today=today))
    paid = {r.item: r.paid for r in conn.execute(text(_PAID_SQL), {"id": parcel_id})}
    due = calc.by_item()
    out = calc.as_dict()
    out["parcel_id"] = parcel_id
    out["comparison"] = [
        {"item": item, "item_label": ITEM_LABELS_ZH[item], "standard_yuan": float(due.get(item, 0)),
         "paid_yuan": float(paid.get(item, 0)), "difference_yuan": float(paid.get(item, 0) - due.get(item, 0))}
        for item in dict.fromkeys([*due, *paid])
    ]
    out["paid_yuan"] = float(sum(paid.values(), Decimal(0)))
    return out


# ---------------------------------------------------------------------------------------------
# A hypothetical household (POST /compensation/estimate, the public calculator)

FLOOR_AREA_M2 = Limit(gt=0, le=1_000_000)
LAND_AREA_MU = Limit(gt=0, le=100_000)
HOUSEHOLDS = Limit(ge=1, le=10_000)
ESTIMATE_FIELDS = ("district", "kind", "agreed_on", "floor_area_m2", "land_area_mu", "households", "structure",
                   "decoration", "business_area_m2", "transition_months", "counts")


def household(kind: str, district_id: int, on: date, *, floor_area_m2: Decimal | None = None,
              land_area_mu: Decimal | None = None, households: int = 1,
              survey: SurveyFacts = SurveyFacts()) -> Household:
    """A household of the engine from its areas and survey facts."""
    return Household(kind=kind, district_id=district_id, agreed_on=on, floor_area_m2=floor_area_m2,
                     land_area_mu=land_area_mu, households=households, structure=survey.structure,
                     decoration=survey.decoration, business_area_m2=survey.business_area_m2,
                     transition_months=survey.transition_months, counts=survey.counts)


def household_from(values: Mapping[str, Any], *, district_id: int, on: date) -> Household:
    """A hypothetical household from plain values (kind; floor_area_m2, structure, decoration, business_area_m2,
    transition_months, households for a house; land_area_mu for land; counts [{item, grade, quantity}]), each
    checked against its bounds; InvalidInput names the field."""
    kind = values.get("kind")
    if kind not in ITEMS_BY_KIND:
        raise InvalidInput("kind must be house or land", "kind")
    unknown = sorted(set(values) - set(ESTIMATE_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; fields are {', '.join(ESTIMATE_FIELDS)}", unknown[0])
    house = kind == "house"
    survey = parse_survey(values, tuple(i for i in COUNTED if i in ITEMS_BY_KIND[kind]))
    households = number(values, "households", HOUSEHOLDS)
    if households is not None and households != households.to_integral_value():
        raise InvalidInput("households must be a whole number", "households")
    return household(
        kind, district_id, on, survey=survey, households=int(households) if households is not None else 1,
        floor_area_m2=number(values, "floor_area_m2", FLOOR_AREA_M2, required=True) if house else None,
        land_area_mu=None if house else number(values, "land_area_mu", LAND_AREA_MU, required=True),
    )


def district_id_of(conn: Connection, district: Any) -> int:
    """A district's id by its code or name; InvalidInput naming ``district`` otherwise."""
    given = str(district)[:100].replace("\x00", "")  # no district's code or name is longer or holds a NUL
    row = conn.execute(text("SELECT id FROM districts WHERE code = :d OR name = :d OR CAST(id AS text) = :d "
                            "ORDER BY id LIMIT 1"), {"d": given}).first() if given == str(district) else None
    if row is None:  # the value is not echoed: the public sends it, and it may be anything
        listed = ", ".join(f"{r.name} ({r.code})" for r in conn.execute(text("SELECT code, name FROM districts "
                                                                             "ORDER BY code")))
        raise InvalidInput(f"unknown district; districts are {listed}", "district")
    return int(row.id)


def estimate(conn: Connection, values: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """The itemised compensation of a hypothetical household (``values``: district, kind, its areas and survey
    facts, optionally agreed_on — today when not given) by the standards in force on that day."""
    if values.get("district") is None:
        raise InvalidInput("district is required", "district")
    district_id = district_id_of(conn, values["district"])
    on = values.get("agreed_on") or today
    if isinstance(on, str):
        try:
            on = date.fromisoformat(on)
        except ValueError:
            raise InvalidInput("agreed_on must be a date such as 2025-06-30", "agreed_on") from None
    h = household_from(values, district_id=district_id, on=on)
    return calculate(conn, h).as_dict()


def standards_for_districts(conn: Connection, district_ids: Sequence[int], on: date) -> list[dict[str, Any]]:
    """The standards in force on ``on`` of each district, item by item, for publication (亮底征收)."""
    rows = conn.execute(text("SELECT id, code, name FROM districts WHERE id = ANY(:ids) ORDER BY code"),
                        {"ids": list(district_ids)}).all()
    rates = rates_in_force_for(conn, [(d.id, kind, on) for d in rows for kind in ITEMS_BY_KIND])
    out = []
    for d in rows:
        for kind in ITEMS_BY_KIND:
            for r in rates[(d.id, kind, on)]:
                out.append({"district": d.code, "district_name": d.name, "kind": kind,
                            "kind_label": KIND_LABELS_ZH[kind], "item": r.item, "item_label": ITEM_LABELS_ZH[r.item],
                            "grade": r.grade, "grade_label": grade_label(r.item, r.grade),
                            "rate_yuan": float(r.rate_yuan), "unit": r.unit,
                            "unit_label": RATE_UNIT_LABELS_ZH[r.unit], "valid_from": r.valid_from.isoformat(),
                            "sign_by": r.sign_by.isoformat() if r.sign_by else None, "article": r.note})
    return out


# ---------------------------------------------------------------------------------------------
# A household's calculation as a workbook (逐项补偿计算表)

ITEM_COLUMNS = (
    Column("item_label", "补偿科目", width=14),
    Column("grade_label", "等级/种类", width=10),
    Column("quantity", "数量", "float"),
    Column("quantity_unit_label", "计量单位", width=8),
    Column("rate_yuan", "标准单价(元)", "float"),
    Column("rate_unit_label", "单价单位", width=10),
    Column("amount_yuan", "金额(元)", "float", total=True),
    Column("valid_from", "标准生效日期", width=12),
    Column("article", "标准依据", width=28),
    Column("note", "说明", width=28),
)
COMPARISON_COLUMNS = (
    Column("item_label", "补偿科目", width=14),
    Column("standard_yuan", "按标准(元)", "float", total=True),
    Column("paid_yuan", "已发放(元)", "float", total=True),
    Column("difference_yuan", "差额(元，超标为正)", "float", total=True),
)


def write_calculation_xlsx(calculation: Mapping[str, Any], path: Path, *, on: date) -> None:
    """The itemised calculation (as ``as_dict`` or ``parcel_calculation`` give it) as a workbook: a sheet of the
    items with their total, and for a parcel a sheet comparing each item with what was paid."""
    sheets = [Sheet("逐项补偿计算", calculation["items"], ITEM_COLUMNS, unit="项")]
    if "comparison" in calculation:
        sheets.append(Sheet("与发放金额对比", calculation["comparison"], COMPARISON_COLUMNS, unit="项"))
    write_xlsx_sheets(sheets, path, on=on)


# ---------------------------------------------------------------------------------------------
# Many parcels at once (the overlap queries' estimates)

_SURVEYS_SQL = """
SELECT parcel_id, structure, decoration, business_area_m2, transition_months FROM parcel_surveys
WHERE parcel_id = ANY(:ids)
"""
_MANY_COUNTS_SQL = """
SELECT parcel_id, item, grade, quantity FROM parcel_survey_counts WHERE parcel_id = ANY(:ids)
ORDER BY parcel_id, item, grade
"""


def _surveys_of(conn: Connection, ids: Sequence[int]) -> dict[int, SurveyFacts]:
    counts: dict[int, list[Count]] = {}
    for r in conn.execute(text(_MANY_COUNTS_SQL), {"ids": list(ids)}):
        counts.setdefault(r.parcel_id, []).append(Count(r.item, r.grade, r.quantity))
    out = {r.parcel_id: SurveyFacts(r.structure, r.decoration, _decimal(r.business_area_m2), r.transition_months,
                                    tuple(counts.pop(r.parcel_id, ())))
           for r in conn.execute(text(_SURVEYS_SQL), {"ids": list(ids)})}
    return out | {pid: SurveyFacts(counts=tuple(c)) for pid, c in counts.items()}


def estimate_hits(conn: Connection, hits: Sequence[Mapping[str, Any]]) -> dict[int, Decimal | None]:
    """The itemised total of each parcel an overlap query hits (``parcel_id``, ``kind``, ``district_id``,
    ``priced_on``, ``floor_area_m2``, ``households``, ``overlap_m2``): a house whole, land for its area inside the
    footprint; None where no standard prices it. Standards and surveys are read once for all."""
    surveys = _surveys_of(conn, [h["parcel_id"] for h in hits])
    rates = rates_in_force_for(conn, ((h["district_id"], h["kind"], h["priced_on"]) for h in hits))
    out: dict[int, Decimal | None] = {}
    for hit in hits:
        key = (hit["district_id"], hit["kind"], hit["priced_on"])
        house = hit["kind"] == "house"
        h = household(hit["kind"], hit["district_id"], hit["priced_on"], households=hit["households"] or 1,
                      floor_area_m2=_decimal(hit["floor_area_m2"]) if house else None,
                      land_area_mu=None if house else Decimal(repr(hit["overlap_m2"])) / _MU,
                      survey=surveys.get(hit["parcel_id"], SurveyFacts()))
        calc = itemise(rates[key], h)
        out[hit["parcel_id"]] = calc.total_yuan if calc.items else None
    return out
