"""Compensation standards (补偿标准) over time: rates by district, parcel kind and payment item (补偿科目),
set by planners from their spreadsheets, and the one rule that says which standard prices a payment or an
estimate.

The rules, each stated here once:

- **Supersession.** A standard applies from its ``valid_from`` until the day before the next ``valid_from``
  of the same district, kind and item: a new standard supersedes the earlier one from its own date. The
  end is derived (``valid_to`` in listings), never stored, so it cannot disagree with the successor. A
  rate is replaced, never withdrawn without a successor.
- **In force on a day D** (``standard_in_force_sql``): the standard of the district, kind and item with
  the latest ``valid_from`` on or before D.
- **The day that prices compensation** (``contract_date_sql``): the parcel's compensation decision
  (补偿决定, the dispute path) if it has one, else its contract (签约). The decision governs when both are
  recorded: an agreement that fell through (signed → no_agreement) leaves its signing date behind. When
  the parcel has neither, or the recorded date is later than the payment (the payment was then made under
  an earlier contract whose date is not kept), the payment's own date. An estimate for a parcel without a
  contract uses today.
- **Limits** (``MAX_RATE_YUAN``, ``VALID_FROM_RANGE``, ``ITEMS_BY_KIND``): a rate above 0, at most the
  maximum for its unit, in yuan and fen; ``valid_from`` within the range; an item of the parcel kind. The
  file import and the API go through the same ``_check_rows``; the table's CHECK constraints (migration
  0007) are written from the same constants.
- **Changing what is stored.** Sending a stored standard again unchanged is a no-op (a planner re-imports
  the whole sheet); a standard not yet in force (``valid_from`` after today) may be corrected; one in force
  today or earlier keeps its rate and unit, since payments have been priced by it: a new standard from a
  later date replaces it. Its note (依据) may still be completed.
"""

from __future__ import annotations

import io
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gis.domain.compensation import NO_GRADE, grade_label, parse_grade
from gis.domain.stages import KIND_LABELS_ZH, today_in
from gis.io.fields import KIND_VALUES, cell_date, normalise
from gis.io.readers import open_source
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import InvalidInput

# ---------------------------------------------------------------------------------------------
# The vocabulary and the limits (stated once: the migration's CHECK constraints are written from these)

KINDS = ("house", "land")
UNITS = ("m2", "mu", "each", "m2_month", "household")
ITEM_LABELS_ZH = {
    "house_value": "房屋价值补偿", "relocation": "搬迁费", "temporary_resettlement": "临时安置费",
    "business_loss": "停产停业损失", "subsidy": "补助", "incentive": "奖励", "land": "土地补偿", "crops": "青苗补偿",
    "deposit": "提存", "decoration": "装修补偿", "attachments": "附属物补偿", "social_security": "社会保障费",
}
# Items a standard may price, by parcel kind (Decree 590 art. 17 for houses; Land Administration Law art. 48
# for land: land compensation, resettlement subsidy, young crops). 'deposit' (提存) is money deposited under
# a decision, not an item with a rate of its own.
# Decoration and attachments are the local rules' additions (DOMAIN.md); social security contributions for the
# farmers whose land is taken are art. 48's fourth item.
ITEMS_BY_KIND = {
    "house": ("house_value", "relocation", "temporary_resettlement", "business_loss", "subsidy", "incentive",
              "decoration", "attachments"),
    "land": ("land", "crops", "subsidy", "incentive", "attachments", "social_security"),
}
# The base rate of each kind: what a house or land parcel's value is priced by, per m² of floor area or per mu
# (the demo city's payments, the overlap estimates, and the rows that existed before items did).
BASE_ITEM = {"house": "house_value", "land": "land"}
BASE_UNIT = {"house": "m2", "land": "mu"}
RATE_UNIT_LABELS_ZH = {"m2": "元/㎡", "mu": "元/亩", "each": "元/项", "m2_month": "元/㎡·月", "household": "元/户"}
# Highest rate per unit: above the dearest city floor space (元/㎡) and land (元/亩) compensated in China, low
# enough to catch a rate per mu typed as a rate per m², or a figure in fen (分) typed as yuan.
MAX_RATE_YUAN = {"m2": Decimal("200000"), "mu": Decimal("10000000"), "each": Decimal("1000000"),
                 "m2_month": Decimal("1000"), "household": Decimal("10000000")}
RATE_CENTS = Decimal("0.01")
# Standards of the past (legacy cases go back decades) and announced ones; nothing outside is a real date.
VALID_FROM_RANGE = (date(1990, 1, 1), date(2099, 12, 31))
MAX_NOTE = 500
MAX_ROWS = 10_000
EXAMPLE_RATE_YUAN = Decimal("3000")  # the template's example row


@dataclass(frozen=True)
class Column:
    """A field of a standard, its header in the template and the headers that name it in a planner's sheet."""

    field: str
    label: str
    names: tuple[str, ...]
    required: bool = True


COLUMNS = (
    Column("district", "片区", ("片区", "片区代码", "片区编码", "片区名称", "所属片区", "乡镇街道", "街道", "乡镇",
                               "district", "district_code", "district_name")),
    Column("kind", "类型", ("类型", "类别", "地块类型", "征收类型", "kind", "type")),
    Column("item", "补偿科目", ("补偿科目", "科目", "补偿项目", "补偿类别", "补偿内容", "item")),
    Column("rate_yuan", "单价", ("单价", "补偿单价", "补偿标准", "标准", "rate", "rate_yuan")),
    Column("unit", "单位", ("单位", "计价单位", "计量单位", "unit"), required=False),
    Column("valid_from", "生效日期", ("生效日期", "执行日期", "实施日期", "施行日期", "起始日期", "valid_from",
                                      "effective_from")),
    Column("note", "依据", ("依据", "文件依据", "政策依据", "备注", "说明", "note"), required=False),
    # The class the rate is set for (gis.domain.compensation): structure, decoration grade, kind of tree or crop.
    Column("grade", "等级/种类", ("等级/种类", "等级", "种类", "结构", "结构类型", "装修等级", "品种", "grade"),
           required=False),
    # The signing incentive's deadline: contracts signed on or before it earn it.
    Column("sign_by", "签约期限", ("签约期限", "签约截止日期", "奖励期限", "sign_by"), required=False),
)
LABELS = {c.field: c.label for c in COLUMNS}
FIELDS = tuple(c.field for c in COLUMNS)
REQUIRED = frozenset(c.field for c in COLUMNS if c.required)
_ITEM_NAMES = {
    "house_value": ("房屋价值", "房屋补偿", "房屋补偿费", "被征收房屋价值补偿", "房屋"),
    "relocation": ("搬迁补助费", "搬迁补偿", "搬家费"),
    "temporary_resettlement": ("临时安置补助费", "过渡费", "过渡安置费"),
    "business_loss": ("停产停业损失补偿", "停产停业损失补偿费"),
    "subsidy": ("补助费", "安置补助费"),
    "incentive": ("奖励费", "签约奖励", "按期签约奖励"),
    "land": ("土地补偿费", "土地"),
    "crops": ("青苗补偿费", "青苗费", "青苗"),
    "decoration": ("装修", "装饰装修补偿", "装修补偿费"),
    "attachments": ("附属物", "附属物补偿费", "附属设施补偿", "地上附着物补偿"),
    "social_security": ("社保费", "社会保障费用", "被征地农民社会保障费"),
}
_ITEMS = {normalise(n): item for item, names in _ITEM_NAMES.items() for n in (item, ITEM_LABELS_ZH[item], *names)}
_KINDS = {normalise(k): v for k, v in KIND_VALUES.items()}
_UNITS = {normalise(n): unit for unit, names in {
    "m2": ("m2", "㎡", "平方米", "平米", "元/㎡", "元/平方米", "元每平方米"),
    "mu": ("mu", "亩", "元/亩", "元每亩"),
    "each": ("each", "项", "个", "株", "棵", "处", "元/项", "元/个", "元/株", "元/棵", "元/处"),
    "m2_month": ("m2_month", "元/㎡·月", "元/m2·月", "元/平方米·月", "元/㎡/月", "元/平方米/月"),
    "household": ("household", "户", "元/户"),
}.items() for n in names}
_HEADERS = {normalise(n): c.field for c in COLUMNS for n in (c.field, *c.names)}
_PARENTHESIS = re.compile(r"\((.*)\)$")
_RATE_SUFFIX = re.compile(r"元(/(m2|平方米|亩))?$")


# ---------------------------------------------------------------------------------------------
# The rule in SQL: every consumer (the above-standard check, the overlap estimates, the listing) builds its
# join from these two. Arguments are SQL expressions of the caller's own query (column references and bound
# parameters), never values from a request.


def contract_date_sql(parcel: str, fallback: str) -> str:
    """The day whose standard prices a parcel's compensation: its decision, else its contract, but never later
    than ``fallback`` (the payment's date; today for an estimate), which also stands in when it has neither."""
    return f"least(coalesce({parcel}.compensation_decision_on, {parcel}.signed_on), {fallback})"


def standard_in_force_sql(*, district: str, kind: str, item: str, on: str, alias: str, grade: str = "''") -> str:
    """A LEFT JOIN LATERAL giving ``alias`` (id, rate_yuan, unit, valid_from, sign_by, note): the standard in force on
    ``on`` for the district, kind, item and grade (none by default), a class without a rate of its own taking the
    item's rate for all classes (grade ''); NULLs when none is. The unique key's index serves it."""
    return f"""
LEFT JOIN LATERAL (
    SELECT s.id, s.rate_yuan, s.unit, s.valid_from, s.sign_by, s.note FROM compensation_standards s
    WHERE s.district_id = {district} AND s.kind = {kind} AND s.item = {item} AND s.grade IN ({grade}, '')
      AND s.valid_from <= {on}
    ORDER BY s.grade = '', s.valid_from DESC LIMIT 1
) {alias} ON true"""


def base_item_sql(kind: str) -> str:
    """The base item of the parcel kind ``kind`` (an SQL expression), from BASE_ITEM."""
    cases = " ".join(f"WHEN '{k}' THEN '{i}'" for k, i in BASE_ITEM.items())  # constants of this module
    return f"(CASE {kind} {cases} END)"


# ---------------------------------------------------------------------------------------------
# Reading one value: each raises ValueError with a message that names the field, never the column as a sheet
# calls it (the issue's ``where`` does that), so the import and the API refuse a value in the same words.


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return not isinstance(value, str) and bool(pd.isna(value))


def parse_kind(value: Any) -> str:
    """house or land from a cell (房屋, 土地 or the English); ValueError otherwise."""
    kind = _KINDS.get(normalise(value))
    if kind is None:
        raise ValueError(f"unknown kind {_shown(value)}; kinds are 房屋 (house) and 土地 (land)")
    return kind


def _items_text(kind: str | None) -> str:
    items = ITEMS_BY_KIND[kind] if kind else tuple(dict.fromkeys(i for k in KINDS for i in ITEMS_BY_KIND[k]))
    return ", ".join(f"{ITEM_LABELS_ZH[i]} ({i})" for i in items)


def parse_item(value: Any, kind: str | None = None) -> str:
    """A compensation item from a cell, Chinese or English; ValueError if unknown or, given ``kind``, not an item of
    that kind."""
    item = _ITEMS.get(normalise(value))
    if item is None:
        raise ValueError(f"unknown item {_shown(value)}; items are {_items_text(kind)}")
    if kind is not None and item not in ITEMS_BY_KIND[kind]:
        raise ValueError(f"{ITEM_LABELS_ZH[item]} ({item}) is no item of {KIND_LABELS_ZH[kind]} ({kind}); its items "
                         f"are {_items_text(kind)}")
    return item


def parse_unit(value: Any) -> str:
    """m2 or mu from a cell (元/㎡, 亩, ...); ValueError otherwise."""
    unit = _UNITS.get(normalise(value))
    if unit is None:
        listed = ", ".join(f"{label} ({unit})" for unit, label in RATE_UNIT_LABELS_ZH.items())
        raise ValueError(f"unknown unit {_shown(value)}; units are {listed}")
    return unit


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("rate must be a number")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, numbers.Integral):
            number = Decimal(int(value))
        elif isinstance(value, numbers.Real):
            number = Decimal(repr(float(value)))  # the number as typed (4200.1), not its binary expansion
        else:
            number = Decimal(_RATE_SUFFIX.sub("", normalise(value).replace(",", "")))
    except (InvalidOperation, ValueError):
        raise ValueError(f"rate must be a number of yuan, such as 4200 or 4200.50, not {_shown(value)}") from None
    if not number.is_finite():
        raise ValueError("rate must be a finite number")
    return number


def check_rate(rate: Decimal, unit: str) -> Decimal:
    """The rate if it keeps the limits of its unit (above 0, at most MAX_RATE_YUAN, in yuan and fen)."""
    top = MAX_RATE_YUAN[unit]
    if not Decimal(0) < rate <= top:
        raise ValueError(f"rate must be more than 0 and at most {top} yuan per {unit} ({RATE_UNIT_LABELS_ZH[unit]})")
    if rate != rate.quantize(RATE_CENTS):
        raise ValueError("rate has more than two decimals: standards are in yuan and fen (分)")
    return rate


def parse_rate(value: Any, unit: str | None) -> Decimal:
    """A rate from a cell, as typed; checked against its unit's limits when the unit is known."""
    rate = _decimal(value)
    return check_rate(rate, unit) if unit else rate


def check_valid_from(day: date) -> date:
    """``day`` if it lies in VALID_FROM_RANGE (1990 to 2099): a mistyped year is refused, ValueError."""
    low, high = VALID_FROM_RANGE
    if not low <= day <= high:
        raise ValueError(f"valid_from must be between {low.isoformat()} and {high.isoformat()}")
    return day


def parse_valid_from(value: Any) -> date:
    """The valid-from date of a cell (a date cell, 2025-03-18, 2025/3/18, 2025年3月18日), in VALID_FROM_RANGE;
    ValueError otherwise."""
    try:
        day = cell_date(value)
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"valid_from must be a date such as 2025-03-18 (or 2025/3/18, 2025年3月18日), "
                         f"not {_shown(value)}")
    return check_valid_from(day)


def parse_note(value: Any) -> str:
    """A note, stripped; ValueError beyond MAX_NOTE characters."""
    note = str(value).strip()
    if len(note) > MAX_NOTE:
        raise ValueError(f"note is longer than {MAX_NOTE} characters")
    return note


def _shown(value: Any) -> str:
    shown = str(value)
    return repr(shown if len(shown) <= 40 else shown[:40] + "…")


class _Districts:
    """District ids by code or name, as a sheet may give them (compared normalised)."""

    def __init__(self, conn: Connection) -> None:
        rows = conn.execute(text("SELECT id, code, name FROM districts ORDER BY id")).all()
        self.ids = {normalise(key): int(did) for did, code, name in rows for key in (code, name)}
        self.listed = ", ".join(f"{name} ({code})" for _did, code, name in rows) or "none yet"
        self.first_name = rows[0].name if rows else "西津"

    def parse(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a numeric code that Excel stored as a number
        did = self.ids.get(normalise(value))
        if did is None:
            raise ValueError(f"unknown district {_shown(value)}; districts are {self.listed}")
        return did


# ---------------------------------------------------------------------------------------------
# Checking rows: the file import and the API both come here


@dataclass(frozen=True)
class Standard:
    row: int  # as a person counts: the sheet's row, or the position in the list given (1 = first)
    district_id: int
    kind: str
    item: str
    unit: str
    rate_yuan: Decimal
    valid_from: date
    note: str | None
    grade: str = NO_GRADE
    sign_by: date | None = None

    @property
    def key(self) -> tuple[int, str, str, str, date]:
        return self.district_id, self.kind, self.item, self.grade, self.valid_from

    def params(self) -> dict[str, Any]:
        return {"district_id": self.district_id, "kind": self.kind, "item": self.item, "unit": self.unit,
                "rate_yuan": self.rate_yuan, "valid_from": self.valid_from, "note": self.note, "grade": self.grade,
                "sign_by": self.sign_by}


@dataclass(frozen=True)
class Issue:
    row: int
    column: str  # as the sheet names it (片区), or the API's field name
    message: str

    @property
    def where(self) -> str:
        return f"row {self.row}, {self.column}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "where": self.where, "message": self.message}


class StandardsRejected(InvalidInput):
    """Rows refused, nothing stored; ``issues`` lists every one (``where`` names the first)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        listed = "; ".join(f"{i.where}: {i.message}" for i in issues[:10])
        more = f"; … {len(issues) - 10} more" if len(issues) > 10 else ""
        rows = len({i.row for i in issues})
        super().__init__(f"{rows} row(s) refused, nothing stored: {listed}{more}", issues[0].where)
        self.issues = list(issues)

    def as_dict(self) -> dict[str, Any]:
        return {"detail": str(self), "where": self.where, "issues": [i.as_dict() for i in self.issues]}


@dataclass
class StandardsReport:
    """What an import or a PUT did (or, dry run, would do), and the standards as stored."""

    source: str
    rows: int
    created: int = 0
    corrected: int = 0
    unchanged: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    standards: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "created": self.created, "corrected": self.corrected,
                "unchanged": self.unchanged, "dry_run": self.dry_run, "notes": self.notes,
                "standards": [as_json(s) for s in self.standards]}


def cell_reader(row: int, values: Mapping[str, Any], columns: Mapping[str, str], required: frozenset[str],
                labels: Mapping[str, str], issues: list[Issue]) -> Callable[..., Any]:
    """``read(name, parse, *args)`` for one row of a planner's sheet: the cell parsed, or None with its problem
    added to ``issues`` (an empty cell is one only when ``name`` is ``required``), so every problem of a row is
    reported, not only the first. Standards and targets read their sheets with it."""
    def read(name: str, parse: Callable[..., Any], *args: Any) -> Any:
        value = values.get(name)
        if _blank(value):
            if name in required:
                issues.append(Issue(row, columns.get(name, name), f"{name} ({labels[name]}) is empty"))
            return None
        try:
            return parse(value, *args)
        except ValueError as exc:
            issues.append(Issue(row, columns.get(name, name), str(exc)))
            return None

    return read


def match_header(header: Sequence[str], headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """field → the sheet's column, by ``headers`` (a normalised header → field), and the columns not used; of two
    columns for one field the first one counts."""
    columns: dict[str, str] = {}
    unused = []
    for name in header:
        name = str(name)
        found = headers.get(_header_key(name))
        if found is None or found in columns:
            unused.append(name)
        else:
            columns[found] = name
    return columns, unused


def read_sheet(path: Path, noun: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """A planner's XLSX or CSV sheet: its header, and each row as (its number as the sheet shows it, the header
    row being 1; column → value)."""
    with open_source(path) as sheet:
        if not sheet.is_table:
            raise InvalidInput(f"{noun} come as an XLSX workbook or a CSV file", "file")
        table, row_numbers = sheet.table, sheet.rows
    return [str(c) for c in table.columns], [(int(n), rec) for n, rec in zip(row_numbers, table.to_dict("records"))]


def _read_row(row: int, values: Mapping[str, Any], columns: Mapping[str, str], districts: _Districts,
              default_unit: str | None, issues: list[Issue]) -> Standard | None:
    """One row as a Standard, or its problems added to ``issues`` (every one, not only the first)."""
    before = len(issues)

    read = cell_reader(row, values, columns, REQUIRED, LABELS, issues)
    district_id = read("district", districts.parse)
    kind = read("kind", parse_kind)
    item = read("item", parse_item, kind)
    if _blank(values.get("unit")):  # the unit the rate column's header states, else the kind's own
        unit = default_unit or BASE_UNIT.get(kind or "")
    else:
        unit = read("unit", parse_unit)
    rate = read("rate_yuan", parse_rate, unit)
    valid_from = read("valid_from", parse_valid_from)
    note = read("note", parse_note)
    grade = read("grade", _parse_grade, item) if item else None
    sign_by = read("sign_by", _parse_sign_by, item) if item else None
    if len(issues) > before:
        return None
    return Standard(row, district_id, kind, item, unit, rate, valid_from, note or None, grade or NO_GRADE, sign_by)


def _parse_grade(value: Any, item: str) -> str:
    return parse_grade(item, value)


def _parse_sign_by(value: Any, item: str) -> date:
    """The signing deadline of an incentive (签约奖励), a date in VALID_FROM_RANGE; no other item has one."""
    if item != "incentive":
        raise ValueError(f"only the signing incentive (签约奖励) has a deadline (sign_by), not {item}")
    try:
        day = cell_date(value)
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"sign_by must be a date such as 2025-06-30, not {_shown(value)}")
    low, high = VALID_FROM_RANGE
    if not low <= day <= high:
        raise ValueError(f"sign_by must be between {low.isoformat()} and {high.isoformat()}")
    return day


def _duplicates(standards: Sequence[Standard], columns: Mapping[str, str]) -> list[Issue]:
    first: dict[tuple, int] = {}
    issues = []
    for s in standards:
        if s.key in first:
            issues.append(Issue(s.row, columns.get("valid_from", "valid_from"),
                                f"row {first[s.key]} already gives this district, kind, item and grade from this date: "
                                "one standard per day"))
        first.setdefault(s.key, s.row)
    return issues


_STORED_SQL = """
SELECT s.district_id, s.kind, s.item, s.grade, s.valid_from, s.unit, s.rate_yuan, s.note, s.sign_by
FROM compensation_standards s
JOIN unnest(CAST(:district_ids AS integer[]), CAST(:kinds AS text[]), CAST(:items AS text[]),
            CAST(:grades AS text[]), CAST(:days AS date[])) AS k(district_id, kind, item, grade, valid_from)
  USING (district_id, kind, item, grade, valid_from)
"""


def _key_params(standards: Sequence[Standard]) -> dict[str, list[Any]]:
    return {"district_ids": [s.district_id for s in standards], "kinds": [s.kind for s in standards],
            "items": [s.item for s in standards], "grades": [s.grade for s in standards],
            "days": [s.valid_from for s in standards]}


@dataclass
class _Plan:
    create: list[Standard] = field(default_factory=list)
    correct: list[Standard] = field(default_factory=list)
    unchanged: list[Standard] = field(default_factory=list)


def _against_stored(conn: Connection, standards: Sequence[Standard], columns: Mapping[str, str], today: date,
                    issues: list[Issue]) -> _Plan:
    """New, corrected or unchanged; a changed rate or unit of a standard already in force is refused."""
    stored = {(r.district_id, r.kind, r.item, r.grade, r.valid_from): r
              for r in conn.execute(text(_STORED_SQL), _key_params(standards))}
    plan = _Plan()
    for s in standards:
        old = stored.get(s.key)
        if old is None:
            plan.create.append(s)
        elif (old.unit, old.rate_yuan, old.note, old.sign_by) == (s.unit, s.rate_yuan, s.note, s.sign_by):
            plan.unchanged.append(s)
        elif (old.unit, old.rate_yuan, old.sign_by) == (s.unit, s.rate_yuan, s.sign_by) or s.valid_from > today:
            plan.correct.append(s)
        else:
            issues.append(Issue(s.row, columns.get("rate_yuan", "rate_yuan"),
                                f"the standard from {s.valid_from.isoformat()} is stored at {old.rate_yuan} yuan per "
                                f"{old.unit} and has been in force since: its rate is not rewritten (payments were "
                                "priced by it); give the new rate from a later date"))
    return plan


def _check_rows(conn: Connection, rows: Sequence[tuple[int, Mapping[str, Any]]], columns: Mapping[str, str], *,
                today: date, default_unit: str | None = None) -> _Plan:
    """Every row checked: each value, duplicates, then against what is stored; StandardsRejected if any fails."""
    if not rows:
        raise InvalidInput("no standards given", "rows")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} standards at a time; {len(rows)} given", "rows")
    districts = _Districts(conn)
    issues: list[Issue] = []
    standards = [s for row, values in rows
                 if (s := _read_row(row, values, columns, districts, default_unit, issues)) is not None]
    issues += _duplicates(standards, columns)
    if issues:
        raise StandardsRejected(sorted(issues, key=lambda i: i.row))
    plan = _against_stored(conn, standards, columns, today, issues)
    if issues:
        raise StandardsRejected(issues)
    return plan


_INSERT_SQL = """
INSERT INTO compensation_standards (district_id, kind, item, grade, unit, rate_yuan, valid_from, sign_by, note,
                                    recorded_by)
VALUES (:district_id, :kind, :item, :grade, :unit, :rate_yuan, :valid_from, :sign_by, :note, :actor)
"""
_CORRECT_SQL = """
UPDATE compensation_standards SET unit = :unit, rate_yuan = :rate_yuan, sign_by = :sign_by, note = :note,
       recorded_by = :actor, recorded_at = now()
WHERE district_id = :district_id AND kind = :kind AND item = :item AND grade = :grade AND valid_from = :valid_from
"""


def _store(conn: Connection, rows: Sequence[tuple[int, Mapping[str, Any]]], columns: Mapping[str, str], actor: str,
           *, source: str, today: date | None, dry_run: bool, default_unit: str | None = None,
           notes: list[str] | None = None) -> StandardsReport:
    today = today or today_in(DEFAULT_TIMEZONE)
    if not dry_run:
        # Writers one at a time, so what is checked against the stored standards is what they meet when they
        # write; readers (the checks, the estimates) are not held up.
        conn.execute(text("LOCK TABLE compensation_standards IN SHARE ROW EXCLUSIVE MODE"))
    plan = _check_rows(conn, rows, columns, today=today, default_unit=default_unit)
    if not dry_run:
        if plan.create:
            conn.execute(text(_INSERT_SQL), [s.params() | {"actor": actor} for s in plan.create])
        if plan.correct:
            conn.execute(text(_CORRECT_SQL), [s.params() | {"actor": actor} for s in plan.correct])
    given = plan.create + plan.correct + plan.unchanged
    return StandardsReport(
        source=source, rows=len(rows), created=len(plan.create), corrected=len(plan.correct),
        unchanged=len(plan.unchanged), dry_run=dry_run, notes=notes or [],
        standards=[] if dry_run else _listing(conn, keys=sorted(given, key=lambda s: s.row)),
    )


# ---------------------------------------------------------------------------------------------
# Writing: from a planner's sheet, or from the API


def _header_key(name: str) -> str:
    """A header as compared: normalised, a trailing parenthesis (单价（元/㎡）) left out."""
    return _PARENTHESIS.sub("", normalise(name))


def _header_unit(name: str) -> str | None:
    """The unit a header states in its parenthesis (单价（元/亩）), if it states one."""
    found = _PARENTHESIS.search(normalise(name))
    return _UNITS.get(found.group(1)) if found else None


def _map_header(header: Sequence[str]) -> tuple[dict[str, str], str | None, list[str]]:
    """field → the sheet's column, the unit the rate column's header states, and notes (columns not used)."""
    columns, unused = match_header(header, _HEADERS)
    missing = [c for c in COLUMNS if c.field in REQUIRED and c.field not in columns]
    if missing:
        wanted = "; ".join(f"{c.label} ({c.field}; or {', '.join(c.names[1:4])})" for c in missing)
        raise InvalidInput(f"the sheet has no column for {wanted}; the template (gis standards template) has them "
                           "all", "header")
    default_unit = _header_unit(columns["rate_yuan"]) if "unit" not in columns else None
    return columns, default_unit, [f"columns not used: {', '.join(unused)}"] if unused else []


def import_standards(conn: Connection, path: Path | str, actor: str, *, today: date | None = None,
                     dry_run: bool = False, source: str | None = None) -> StandardsReport:
    """Import the standards of a planner's XLSX or CSV sheet: every row checked, all stored or none.

    Headers in Chinese as planners write them (片区, 类型, 补偿科目, 单价, 单位, 生效日期, 依据) or in English
    (the API's field names). Rows are numbered as the sheet shows them (the header is row 1). Raises
    StandardsRejected, naming each refused row and column, and stores nothing.
    """
    path = Path(path)
    header, records = read_sheet(path, "standards")
    columns, default_unit, notes = _map_header(header)
    rows = [(n, {f: rec[c] for f, c in columns.items()}) for n, rec in records]
    return _store(conn, rows, columns, actor, source=source or path.name, today=today, dry_run=dry_run,
                  default_unit=default_unit, notes=notes)


def put_standards(conn: Connection, rows: Sequence[Mapping[str, Any]], actor: str, *,
                  today: date | None = None) -> StandardsReport:
    """Store standards given as field → value (district, kind, item, rate_yuan, unit, valid_from, note): the
    same checks as an import, row numbers counting from 1; all stored or none."""
    unknown = sorted({k for r in rows for k in r} - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS)}", unknown[0])
    numbered = [(n, r) for n, r in enumerate(rows, start=1)]
    return _store(conn, numbered, {f: f for f in FIELDS}, actor, source="api", today=today, dry_run=False)


# ---------------------------------------------------------------------------------------------
# Reading


_PERIODS_SQL = """
SELECT s.id, s.district_id, d.code AS district, d.name AS district_name, s.kind, s.item, s.grade, s.unit,
       s.rate_yuan, s.valid_from, s.sign_by,
       -- the supersession rule: a standard ends the day before the next one of its district, kind, item and grade
       lead(s.valid_from) OVER (PARTITION BY s.district_id, s.kind, s.item, s.grade ORDER BY s.valid_from) - 1
           AS valid_to,
       s.note, s.recorded_by, s.recorded_at
FROM compensation_standards s JOIN districts d ON d.id = s.district_id
"""
_LIST_SQL = f"""
WITH periods AS ({_PERIODS_SQL}),
given AS (  -- standards just stored, to be listed in the order they were given
    SELECT * FROM unnest(CAST(:district_ids AS integer[]), CAST(:kinds AS text[]), CAST(:items AS text[]),
                         CAST(:grades AS text[]), CAST(:days AS date[]))
        WITH ORDINALITY AS g(district_id, kind, item, grade, valid_from, n)
)
SELECT p.* FROM periods p
LEFT JOIN given g ON (g.district_id, g.kind, g.item, g.grade, g.valid_from)
                   = (p.district_id, p.kind, p.item, p.grade, p.valid_from)
WHERE (CAST(:district_id AS integer) IS NULL OR p.district_id = :district_id)
  AND (CAST(:kind AS text) IS NULL OR p.kind = :kind)
  AND (CAST(:item AS text) IS NULL OR p.item = :item)
  AND (CAST(:on AS date) IS NULL OR p.id IN (
      SELECT std.id FROM (SELECT DISTINCT district_id, kind, item, grade FROM compensation_standards) k
      {standard_in_force_sql(district="k.district_id", kind="k.kind", item="k.item", on="CAST(:on AS date)",
                             alias="std", grade="k.grade")}))
  AND (CAST(:district_ids AS integer[]) IS NULL OR g.n IS NOT NULL)
ORDER BY g.n, p.district, p.kind, p.item, p.grade, p.valid_from
"""


def _listed(row: Any) -> dict[str, Any]:
    return {
        "district": row.district, "district_name": row.district_name, "kind": row.kind,
        "kind_label": KIND_LABELS_ZH[row.kind], "item": row.item, "item_label": ITEM_LABELS_ZH[row.item],
        "grade": row.grade, "grade_label": grade_label(row.item, row.grade), "sign_by": row.sign_by,
        "unit": row.unit, "unit_label": RATE_UNIT_LABELS_ZH[row.unit], "rate_yuan": row.rate_yuan,
        "valid_from": row.valid_from, "valid_to": row.valid_to, "note": row.note, "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at,
    }


def _listing(conn: Connection, *, district_id: int | None = None, kind: str | None = None, item: str | None = None,
             on: date | None = None, keys: Sequence[Standard] | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"district_id": district_id, "kind": kind, "item": item, "on": on,
                              "district_ids": None, "kinds": None, "items": None, "grades": None, "days": None}
    if keys is not None:
        params |= _key_params(keys)
    return [_listed(r) for r in conn.execute(text(_LIST_SQL), params)]


def _filter(parse: Callable[[Any], Any], value: Any, where: str) -> Any:
    """A filter's value read as a sheet's would be, or InvalidInput naming the filter."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), where) from None


def list_standards(conn: Connection, *, district: str | None = None, kind: str | None = None,
                   item: str | None = None, on: date | None = None) -> list[dict[str, Any]]:
    """The standards, each with the day it ends (derived: the day before its successor's), oldest first per
    district, kind and item; with ``on``, only those in force on that day. Filters take codes or Chinese
    labels (房屋, 房屋价值补偿) and districts by code or name."""
    return _listing(
        conn, district_id=_filter(_Districts(conn).parse, district, "district"),
        kind=_filter(parse_kind, kind, "kind"), item=_filter(parse_item, item, "item"), on=on,
    )


def as_json(standard: Mapping[str, Any]) -> dict[str, Any]:
    """A listed standard with JSON's types: dates as ISO text, the rate as a number."""
    out = dict(standard)
    out["rate_yuan"] = float(out["rate_yuan"])
    for key in ("valid_from", "valid_to", "recorded_at", "sign_by"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


# ---------------------------------------------------------------------------------------------
# The template: a sheet with the headers planners fill in and one example row


def standards_template(conn: Connection, *, today: date | None = None) -> bytes:
    """An XLSX with the headers (片区, 类型, 补偿科目, 单价, 单位, 生效日期, 依据), one example row (importable as
    it is) and a sheet 填写说明 with the accepted values and the limits."""
    import xlsxwriter

    today = today or today_in(DEFAULT_TIMEZONE)
    districts = _Districts(conn)
    example = {
        "district": districts.first_name, "kind": KIND_LABELS_ZH["house"], "item": ITEM_LABELS_ZH["house_value"],
        "rate_yuan": float(EXAMPLE_RATE_YUAN), "unit": RATE_UNIT_LABELS_ZH["m2"],
        "valid_from": datetime(today.year + 1, 1, 1), "note": "示例：请改为实际标准及其文件依据",
        "grade": "砖混", "sign_by": "",
    }
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet = book.add_worksheet("补偿标准")
    widths = {"district": 12, "kind": 8, "item": 16, "rate_yuan": 14, "unit": 8, "valid_from": 12, "note": 36,
              "grade": 12, "sign_by": 12}
    for col, c in enumerate(COLUMNS):
        sheet.write(0, col, c.label, head)
        sheet.set_column(col, col, widths[c.field], day if c.field == "valid_from" else
                         money if c.field == "rate_yuan" else None)
        value = example[c.field]
        if isinstance(value, datetime):
            sheet.write_datetime(1, col, value, day)
        else:
            sheet.write(1, col, value)
    lists = {"kind": list(KIND_LABELS_ZH.values()), "unit": list(RATE_UNIT_LABELS_ZH.values()),
             "item": [ITEM_LABELS_ZH[i] for i in dict.fromkeys(i for k in KINDS for i in ITEMS_BY_KIND[k])]}
    for col, c in enumerate(COLUMNS):
        if c.field in lists:
            sheet.data_validation(1, col, MAX_ROWS, col, {"validate": "list", "source": lists[c.field],
                                                          "error_type": "warning"})
    sheet.freeze_panes(1, 0)
    _write_instructions(book.add_worksheet("填写说明"), head, districts)
    book.close()
    return buffer.getvalue()


def _write_instructions(sheet: Any, head: Any, districts: _Districts) -> None:
    low, high = VALID_FROM_RANGE
    lines = [
        ("片区", "片区名称或代码", districts.listed),
        ("类型", "房屋 或 土地（house / land）", "房屋按建筑面积计价，土地按亩计价"),
        ("补偿科目", "房屋：" + "、".join(ITEM_LABELS_ZH[i] for i in ITEMS_BY_KIND["house"]),
         "土地：" + "、".join(ITEM_LABELS_ZH[i] for i in ITEMS_BY_KIND["land"])),
        ("单价", "元，最多两位小数",
         f"大于0，且不超过 {MAX_RATE_YUAN['m2']} 元/㎡ 或 {MAX_RATE_YUAN['mu']} 元/亩"),
        ("单位", "元/㎡ 或 元/亩", "不填时房屋按元/㎡、土地按元/亩"),
        ("生效日期", "标准开始执行的日期", f"{low.isoformat()} 至 {high.isoformat()}"),
        ("依据", "文件依据或备注（可不填）", f"不超过{MAX_NOTE}字"),
        ("等级/种类", "房屋价值补偿填结构（钢混、砖混、砖木、简易），"
         "装修补偿填装修等级（无装修、简易装修、中等装修、精装修），附属物、青苗填种类（围墙、果树……）",
         "其他科目不填；不填的标准适用于未单列的等级"),
        ("签约期限", "签约奖励的截止日期", "在此日期及之前签约的享受签约奖励；其他科目不填"),
        ("规则", "同一片区、类型、补偿科目的新标准自其生效日期起取代旧标准",
         "补偿款按签约（或补偿决定）之日有效的标准核对；已生效的标准不能改单价，请以新的生效日期另行发布"),
        ("导入", "gis standards import 文件.xlsx 或 POST /standards/imports", "逐行检查，有一行不合格则全部不导入"),
    ]
    for col, title in enumerate(("列", "填写内容", "可填的值 / 限制")):
        sheet.write(0, col, title, head)
    for r, line in enumerate(lines, start=1):
        sheet.write_row(r, 0, line)
    sheet.set_column(0, 0, 10)
    sheet.set_column(1, 2, 60)
