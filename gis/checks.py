"""Inspection checks (纪检监察): the rules discipline inspectors apply to the records, one function each.

Each check is ``check(conn, params, *, as_of, tz, reveal_personal) -> CheckResult``. Its parameters
are a frozen dataclass with defaults (thresholds and tolerances), and the result states them and the
rule in words. Everything is answered as of the end of ``as_of`` in the city's time zone: stages are
replayed from the history (``gis.domain.stages.STAGE_AT_SQL``), and only payments paid, documents uploaded
and events recorded by then count. A check for a past day thus gives the answer the data gave on
that day, which is what makes the reports built on them reproducible.

The rules, precisely:
- paid_not_demolished (拿钱没拆): the parcel's last payment (any item) was more than ``days`` days
  before ``as_of`` and its stage is still one from which demolition lies ahead (not demolished,
  not cleared). ``days_overdue`` counts past the deadline; the rule is demolition within a month.
- double_compensation (二次补偿), three rules:
  - same_item_twice: one parcel paid the same item more than once under the same project (or none);
  - overlapping_parcels: two parcels both paid whose geometries overlap by more than
    ``min_overlap_m2`` *and* ``min_overlap_share`` (of the smaller parcel): the common area was
    paid for twice. Each of the two parcels is listed, naming the other;
  - earlier_project: a payment under project B on a parcel already acquired for another purpose
    before it, i.e. (a) an earlier payment on the parcel under a different project A (earlier
    paid_on, or the same day and recorded first), or (b) the parcel had been handed over (reached
    cleared) before project B's freeze date (its scope was not even announced, so the land was
    acquired for something else) and on or before the payment's day.
- above_standard (突破政策底线): a payment whose amount exceeds the standard amount, rate × basis area
  rounded to the cent, by more than ``tolerance_yuan``. The rate is the district's standard for the
  parcel's kind and the payment's item in force on the parcel's contract date (its compensation decision,
  else its contract; the payment's date when it has neither or the recorded one is later than the payment:
  ``gis.records.standards``, where the rule is written once); the basis area is the payment's own (converted to the
  standard's unit), else the parcel's floor area (houses) or land area (land). Payments of an item with no
  standard in force then are counted as unchecked. Where the standards set a rate per structure or decoration
  grade, the parcel's surveyed class chooses it. Items not priced by a rate per area (attachments, crops, the
  transitional fee, the signing incentive, rates per item or household) are checked item by item against the
  itemised engine (``gis.compensation_check``): the item's total paid against its amount.
- incomplete_archives (档案不全): document kinds required (document_requirements) by a stage the
  parcel reached on its way to its current stage, with no document of that kind uploaded by the end
  of ``as_of``. Stages undone by a move back do not count. With ``grace_days``, a stage reached
  within the last N days does not yet count.
- incidental_area (随征面积): an acquired parcel (stage paid, demolished, cleared or court
  enforcement) whose area outside every project footprint exceeds ``min_outside_m2`` *and*
  ``min_outside_share`` of the parcel. The demo's and the common rule acquire a parcel whole when
  most of it lies inside a footprint, so the default share is one half.
- stalled (久拖未决): parcels in a project footprint (beyond the blocker tolerance) not cleared whose
  stage has not changed for more than ``days`` days, and every open (not cleared) holdout and legacy
  case with its age: days since the flag was set (a flag that came with the record dates from the
  first event carrying its note, else the parcel's first event) and, for legacy cases, days since
  the parcel was surveyed.

Four more live in ``gis.inspections`` and join the registry below: 有没有阳光征迁 (sunshine), 拆除不到位
(demolition_incomplete), 抢栽抢种/偷建私建 (post_freeze) and 久拖未决 ranked by priority (stalled_priority).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import Connection, text

from gis.analysis.dispatch import GAP_LABELS_ZH, dispatch_gaps
from gis.compensation_check import AREA_UNITS, ENGINE_ITEMS, item_excesses_sql
from gis.domain.limits import MAX_AREA_THRESHOLD_M2
from gis.domain.privacy import mask_name
from gis.domain.stages import KIND_LABELS_ZH, STAGE_AT_SQL, STAGE_LABELS_ZH, STAGE_SINCE_AT_SQL, end_of_day, today_in
from gis.domain.tolerance import tolerance_sql
from gis.domain.workflow import ALL_STAGES, descendants
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE, SQM_PER_MU, Settings
from gis.platform.errors import InvalidInput
from gis.records.standards import ITEM_LABELS_ZH, contract_date_sql, standard_in_force_sql

DOCUMENT_LABELS_ZH = {
    "survey_record": "调查登记表",
    "appraisal_report": "评估报告",
    "contract": "补偿协议",
    "payment_receipt": "补偿款发放凭证",
    "demolition_acceptance": "拆除验收单",
}
# Stages with demolition still ahead of them (paid but not demolished is any of these).
BEFORE_DEMOLITION = tuple(s for s in ALL_STAGES if "demolished" in descendants(s))
# Stages at which the land counts as acquired: compensated (or enforced) and not given back.
ACQUIRED_STAGES = ("paid", "demolished", "cleared", "court_enforcement")
DOUBLE_RULES_ZH = {
    "same_item_twice": "同一项目中同一地块同一补偿科目重复发放",
    "overlapping_parcels": "地块图形重叠、重叠部分重复补偿",
    "earlier_project": "已征收地块在后续项目中再次补偿",
}
_SETTINGS_DEFAULTS = Settings.model_fields


def _stage_at(parcel: str) -> str:
    return STAGE_AT_SQL.format(parcel=parcel, end=":end")


MAX_DAYS = 36_500  # a day count beyond a century is no deadline
MAX_AREA_M2 = MAX_AREA_THRESHOLD_M2
MAX_YUAN = 1_000_000_000


def _param(default: Any, label: str, help: str, *, ge: float = 0, le: float) -> Any:
    """A check parameter: its default, a Chinese label for the output and the bounds it must keep (both stated,
    so the API's parameters show a range and a number the database cannot hold never reaches it)."""
    return field(default=default, metadata={"label": label, "help": help, "ge": ge, "le": le})


class CheckParams:
    """Base of the parameter dataclasses: validation from the fields' bounds, and the stated parameters."""

    def validated(self) -> Self:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata["ge"] <= value <= f.metadata["le"]:  # NaN fails both
                raise InvalidInput(f"{f.name} must be at least {f.metadata['ge']} and at most {f.metadata['le']}",
                                   f.name)
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def stated_zh(self) -> str:
        """``付款后拆除期限(天)=30``: the parameters as the output states them."""
        return "，".join(f"{f.metadata['label']}={getattr(self, f.name)}" for f in dataclasses.fields(self))


@dataclass(frozen=True)
class PaidNotDemolished(CheckParams):
    days: int = _param(30, "付款后拆除期限(天)", "Demolition is due this many days after the last payment.",
                         le=MAX_DAYS)


@dataclass(frozen=True)
class DoubleCompensation(CheckParams):
    min_overlap_m2: float = _param(1.0, "重叠面积容差(㎡)", "Overlaps of paid parcels up to this area are survey "
                                   "slivers.", le=MAX_AREA_M2)
    min_overlap_share: float = _param(0.005, "重叠比例容差", "Overlaps up to this share of the smaller parcel are "
                                      "survey slivers.", le=1)


@dataclass(frozen=True)
class AboveStandard(CheckParams):
    tolerance_yuan: float = _param(0.0, "超标容差(元)", "Payments above the standard amount by at most this many "
                                   "yuan pass.", le=MAX_YUAN)


@dataclass(frozen=True)
class IncompleteArchives(CheckParams):
    grace_days: int = _param(0, "补档宽限期(天)", "Documents of a stage reached within this many days are not due "
                             "yet.", le=MAX_DAYS)


@dataclass(frozen=True)
class IncidentalArea(CheckParams):
    min_outside_m2: float = _param(1.0, "红线外面积容差(㎡)", "Area outside every footprint up to this is "
                                   "tolerated.", le=MAX_AREA_M2)
    min_outside_share: float = _param(0.5, "红线外比例容差", "Area outside every footprint up to this share of the "
                                      "parcel is tolerated.", le=1)


@dataclass(frozen=True)
class Stalled(CheckParams):
    days: int = _param(90, "停滞天数", "A parcel in a footprint whose stage has not changed for more than this "
                       "many days is stalled.", le=MAX_DAYS)
    min_overlap_m2: float = _param(_SETTINGS_DEFAULTS["blocker_min_m2"].default, "占用面积容差(㎡)",
                                   "In a footprint: overlapping it by at least this area (and min_share).",
                                   le=MAX_AREA_M2)
    min_share: float = _param(_SETTINGS_DEFAULTS["blocker_min_share"].default, "占用比例容差",
                              "In a footprint: overlapping it by at least this share of the parcel (and "
                              "min_overlap_m2).", le=1)


@dataclass
class CheckResult:
    """One check's findings as of the end of a day, with the rule and parameters that produced them."""

    check: str
    title: str
    rule: str
    as_of: date
    params: dict[str, Any]
    findings: list[dict[str, Any]]
    columns: tuple[Column, ...]
    summary: dict[str, int] = field(default_factory=dict)
    geometry_type: str = "MultiPolygon"  # of the findings' ``geom`` in the GIS downloads: a parcel's, or a post's

    @property
    def count(self) -> int:
        return len(self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "title": self.title, "rule": self.rule, "as_of": self.as_of.isoformat(),
            "params": self.params, "count": self.count, "summary": self.summary,
            "findings": [{k: jsonable(v) for k, v in f.items() if k != "geom"} for f in self.findings],
        }

    def export_rows(self) -> list[dict[str, Any]]:
        """Findings as export rows: lists joined (、), geometry kept as WKB for the GIS formats."""
        return [{k: "、".join(map(str, v)) if isinstance(v, list) else v for k, v in f.items()} for f in self.findings]


NUMBER_FORMATS = {"int": "{:,}", "float": "{:,.2f}", "m2": "{:,.2f}", "mu": "{:,.4f}", "share": "{:.1%}"}


def label_value(col: Column, value: Any) -> Any:
    """A finding's value as people read it: codes by their labels (stages, kinds, rules), 是/否, lists
    joined; numbers and dates stay what they are."""
    if value is None:
        return None
    if isinstance(value, list):
        return "、".join(str(label_value(col, v)) for v in value)
    if col.values is not None:
        return col.values.get(value, value)
    if col.type == "bool":
        return "是" if value else "否"
    return value


def format_value(col: Column, value: Any) -> str:
    """A finding's value as text for a table: labelled, numbers formatted by the column's type."""
    shown = label_value(col, value)
    if shown is None:
        return ""
    if col.type in NUMBER_FORMATS and isinstance(shown, (int, float)) and not isinstance(shown, bool):
        return NUMBER_FORMATS[col.type].format(shown)
    return str(shown)


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, decimals as floats; everything else as it is."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


# ---------------------------------------------------------------------------------------------
# Running a check's SQL: the parcel header every finding carries, the day's bounds.

_FINDINGS_SQL = """
SELECT f.*, pa.code, pa.kind, d.code AS district, d.name AS district_name, pa.owner_name,
       {stage} AS stage {geom}
FROM ({inner}) f
JOIN parcels pa ON pa.id = f.parcel_id
JOIN districts d ON d.id = pa.district_id
ORDER BY {order}
"""
HEADER_KEYS = ("parcel_id", "code", "kind", "district", "district_name", "stage", "owner_name")
HEADER_COLUMNS = (
    Column("code", "地块编号", width=14),
    Column("kind", "类型", values=KIND_LABELS_ZH, width=6),
    Column("district_name", "片区", width=8, shp="dist_name"),
    Column("stage", "阶段", values=STAGE_LABELS_ZH, width=12),
    Column("owner_name", "权利人", width=10),
)


@dataclass(frozen=True)
class _Day:
    as_of: date
    tz: str

    @property
    def params(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "end": end_of_day(self.as_of, self.tz), "tz": self.tz}


def _day(as_of: date | None, tz: str) -> _Day:
    return _Day(as_of or today_in(tz), tz)


def _findings(conn: Connection, inner: str, params: dict[str, Any], order: str, *, reveal_personal: bool,
              with_geometry: bool) -> list[dict[str, Any]]:
    sql = _FINDINGS_SQL.format(inner=inner, order=order, stage=_stage_at("f.parcel_id"),
                               geom=", ST_AsBinary(pa.geom) AS geom" if with_geometry else "")
    out = []
    for row in conn.execute(text(sql), params).mappings():
        item = {k: row[k] for k in HEADER_KEYS}
        if not reveal_personal:
            item["owner_name"] = mask_name(item["owner_name"])
        item |= {k: _plain(v) for k, v in row.items() if k not in item}
        out.append(item)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


# ---------------------------------------------------------------------------------------------
# 拿钱没拆

_PAID_NOT_DEMOLISHED = f"""
SELECT lp.parcel_id, lp.last_paid_on, lp.payments, lp.paid_yuan,
       CAST(:as_of AS date) - lp.last_paid_on AS days_since_payment,
       CAST(:as_of AS date) - lp.last_paid_on - :days AS days_overdue
FROM (SELECT parcel_id, max(paid_on) AS last_paid_on, count(*) AS payments, sum(amount_yuan) AS paid_yuan
      FROM payments WHERE paid_on <= :as_of GROUP BY parcel_id) lp
WHERE CAST(:as_of AS date) - lp.last_paid_on > :days
  AND {_stage_at("lp.parcel_id")} = ANY(:before)
"""
PAID_NOT_DEMOLISHED_COLUMNS = (
    Column("last_paid_on", "最后付款日期", "date", shp="last_paid"),
    Column("days_since_payment", "付款后天数", "int", shp="days_since"),
    Column("days_overdue", "逾期天数", "int", shp="overdue"),
    Column("payments", "付款笔数", "int"),
    Column("paid_yuan", "已付金额(元)", "float", total=True),
)


def paid_not_demolished(conn: Connection, params: PaidNotDemolished = PaidNotDemolished(), *,
                        as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                        with_geometry: bool = False) -> CheckResult:
    """拿钱没拆: paid more than ``params.days`` days ago and not demolished, with days overdue."""
    params, day = params.validated(), _day(as_of, tz)
    findings = _findings(conn, _PAID_NOT_DEMOLISHED, day.params | {"days": params.days,
                                                                    "before": list(BEFORE_DEMOLITION)},
                         "f.days_overdue DESC, pa.code", reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "paid_not_demolished", "拿钱没拆",
        f"最后一笔补偿款发放已超过{params.days}天，截至{day.as_of}日终仍未腾空/拆除的地块",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + PAID_NOT_DEMOLISHED_COLUMNS,
    )


# ---------------------------------------------------------------------------------------------
# 二次补偿

_SAME_ITEM_TWICE = """
SELECT pm.parcel_id, 'same_item_twice' AS rule, pm.item, count(*) AS payments, sum(pm.amount_yuan) AS amount_yuan,
       min(pm.paid_on) AS paid_on, max(pm.paid_on) AS again_on,
       NULL AS other_code, CAST(NULL AS double precision) AS overlap_m2,
       CAST(NULL AS double precision) AS overlap_share,
       (SELECT code FROM projects WHERE id = pm.project_id) AS project_code, NULL AS earlier_project,
       CAST(NULL AS date) AS acquired_on
FROM payments pm
WHERE pm.paid_on <= :as_of
GROUP BY pm.parcel_id, pm.item, pm.project_id
HAVING count(*) > 1
"""
# Paid parcels whose interiors intersect (ST_Relate '2********': a shared edge is not an overlap), each pair
# measured once and listed from both sides.
_OVERLAPPING_PARCELS = """
WITH paid AS (
    SELECT parcel_id, count(*) AS payments, sum(amount_yuan) AS amount_yuan, min(paid_on) AS paid_on,
           CASE WHEN count(*) > 1 THEN max(paid_on) END AS again_on
    FROM payments WHERE paid_on <= :as_of GROUP BY parcel_id
),
pairs AS (
    SELECT a.id AS a_id, b.id AS b_id, ST_Area(ST_Intersection(a.geom, b.geom)) AS overlap_m2,
           least(ST_Area(a.geom), ST_Area(b.geom)) AS smaller_m2
    FROM paid pa_ JOIN parcels a ON a.id = pa_.parcel_id
    JOIN parcels b ON b.geom && a.geom AND b.id > a.id
    JOIN paid pb_ ON pb_.parcel_id = b.id
    WHERE ST_Relate(a.geom, b.geom, '2********')
),
flagged AS (
    SELECT a_id, b_id, overlap_m2, overlap_m2 / smaller_m2 AS overlap_share FROM pairs
    WHERE overlap_m2 > :min_m2 AND overlap_m2 / smaller_m2 > :min_share
),
sides AS (
    SELECT a_id AS parcel_id, b_id AS other_id, overlap_m2, overlap_share FROM flagged
    UNION ALL
    SELECT b_id, a_id, overlap_m2, overlap_share FROM flagged
)
SELECT s.parcel_id, 'overlapping_parcels' AS rule, NULL AS item, p.payments, p.amount_yuan, p.paid_on, p.again_on,
       o.code AS other_code, s.overlap_m2, s.overlap_share,
       NULL AS project_code, NULL AS earlier_project, CAST(NULL AS date) AS acquired_on
FROM sides s JOIN paid p ON p.parcel_id = s.parcel_id JOIN parcels o ON o.id = s.other_id
"""
_EARLIER_PROJECT = """
SELECT pm.parcel_id, 'earlier_project' AS rule, pm.item, 1 AS payments, pm.amount_yuan, pm.paid_on,
       CAST(NULL AS date) AS again_on, NULL AS other_code, CAST(NULL AS double precision) AS overlap_m2,
       CAST(NULL AS double precision) AS overlap_share,
       pl.code AS project_code, prior.earlier_project, prior.acquired_on
FROM payments pm
JOIN projects pl ON pl.id = pm.project_id
CROSS JOIN LATERAL (
    SELECT * FROM (
        (SELECT 1 AS pref, pe.code AS earlier_project, q.paid_on AS acquired_on
         FROM payments q JOIN projects pe ON pe.id = q.project_id
         WHERE q.parcel_id = pm.parcel_id AND q.project_id <> pm.project_id AND q.paid_on <= :as_of
           AND (q.paid_on < pm.paid_on OR (q.paid_on = pm.paid_on AND q.id < pm.id))
         ORDER BY q.paid_on, q.id LIMIT 1)
        UNION ALL
        (SELECT 2, NULL, CAST(timezone(:tz, e.at) AS date)
         FROM parcel_events e
         WHERE e.parcel_id = pm.parcel_id AND e.stage_to = 'cleared' AND e.at < :end
           AND CAST(timezone(:tz, e.at) AS date) < pl.freeze_date
           AND CAST(timezone(:tz, e.at) AS date) <= pm.paid_on
         ORDER BY e.at, e.id LIMIT 1)
    ) found ORDER BY pref LIMIT 1
) prior
WHERE pm.paid_on <= :as_of
"""
DOUBLE_COMPENSATION_COLUMNS = (
    Column("rule", "问题类型", values=DOUBLE_RULES_ZH, width=26),
    Column("item", "补偿科目", values=ITEM_LABELS_ZH, width=12),
    Column("payments", "付款笔数", "int"),
    Column("amount_yuan", "涉及金额(元)", "float", total=True, shp="amount"),
    Column("paid_on", "付款日期", "date"),
    Column("again_on", "再次付款日期", "date"),
    Column("other_code", "重叠地块", width=14),
    Column("overlap_m2", "重叠面积(㎡)", "m2"),
    Column("overlap_share", "重叠比例", "share", shp="ovl_share"),
    Column("project_code", "付款项目", width=12, shp="project"),
    Column("earlier_project", "先前征收项目", width=12, shp="earlier"),
    Column("acquired_on", "先前征收日期", "date", shp="acquired"),
)


def double_compensation(conn: Connection, params: DoubleCompensation = DoubleCompensation(), *,
                        as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                        with_geometry: bool = False) -> CheckResult:
    """二次补偿: the same item paid twice, paid parcels overlapping, land paid again for a later project."""
    params, day = params.validated(), _day(as_of, tz)
    inner = " UNION ALL ".join(f"({sql})" for sql in (_SAME_ITEM_TWICE, _OVERLAPPING_PARCELS, _EARLIER_PROJECT))
    findings = _findings(
        conn, inner, day.params | {"min_m2": params.min_overlap_m2, "min_share": params.min_overlap_share},
        "f.rule, pa.code, f.paid_on", reveal_personal=reveal_personal, with_geometry=with_geometry,
    )
    return CheckResult(
        "double_compensation", "二次补偿",
        f"截至{day.as_of}：同一项目中同一地块同一补偿科目发放两次以上；已付款地块图形重叠超过{params.min_overlap_m2}㎡且超过较小"
        f"地块的{params.min_overlap_share:.1%}；地块已在先前项目中付款或在本项目冻结公告前已交地，又在本项目中付款",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + DOUBLE_COMPENSATION_COLUMNS,
        summary={rule: sum(f["rule"] == rule for f in findings) for rule in DOUBLE_RULES_ZH},
    )


# ---------------------------------------------------------------------------------------------
# 突破政策底线

# The rate's class from the parcel's survey: its structure for the house's value, its grade for the decoration.
SURVEY_GRADE_SQL = ("coalesce(CASE pm.item WHEN 'house_value' THEN ps.structure "
                    "WHEN 'decoration' THEN ps.decoration END, '')")
_STANDARD_IN_FORCE = f"""
JOIN parcels pa ON pa.id = pm.parcel_id
CROSS JOIN LATERAL (SELECT {contract_date_sql("pa", "pm.paid_on")} AS day) priced
LEFT JOIN parcel_surveys ps ON ps.parcel_id = pa.id  -- the structure or decoration grade a rate may be set for
{standard_in_force_sql(district="pa.district_id", kind="pa.kind", item="pm.item", on="priced.day", alias="s",
                       grade=SURVEY_GRADE_SQL)}
CROSS JOIN LATERAL (
    SELECT coalesce(CAST(pm.basis_area AS numeric),
                    CAST(CASE pa.kind WHEN 'house' THEN pa.floor_area_m2 ELSE pa.land_area_mu END AS numeric)) AS area,
           CASE WHEN pm.basis_area IS NOT NULL THEN coalesce(pm.basis_unit, s.unit)
                WHEN pa.kind = 'house' THEN 'm2' ELSE 'mu' END AS unit
) src
CROSS JOIN LATERAL (
    SELECT CASE WHEN src.unit = s.unit THEN src.area
                WHEN src.unit = 'mu' THEN src.area * 10000 / 15
                ELSE src.area * 15 / 10000 END AS basis
) b
WHERE pm.paid_on <= :as_of
"""
_ABOVE_STANDARD = f"""
SELECT pm.parcel_id, pm.id AS payment_id, pm.paid_on, pm.item, priced.day AS priced_on,
       s.valid_from AS standard_from, pm.amount_yuan, b.basis AS basis_area,
       s.unit AS basis_unit, s.rate_yuan AS standard_rate, round(pm.amount_yuan / b.basis, 2) AS paid_rate,
       round(s.rate_yuan * b.basis, 2) AS standard_amount,
       pm.amount_yuan - round(s.rate_yuan * b.basis, 2) AS excess_yuan,
       (pm.amount_yuan - round(s.rate_yuan * b.basis, 2)) / round(s.rate_yuan * b.basis, 2) AS excess_share
FROM payments pm
{_STANDARD_IN_FORCE}
  AND s.rate_yuan IS NOT NULL AND b.basis > 0
  AND s.unit = ANY(:area_units) AND pm.item <> ALL(:engine_items)  -- the others, item by item: compensation_check
  AND pm.amount_yuan - round(s.rate_yuan * b.basis, 2) > :tolerance
"""
_UNCHECKED = f"""
SELECT count(*) FILTER (WHERE s.rate_yuan IS NOT NULL AND b.basis > 0) AS checked,
       count(*) FILTER (WHERE s.rate_yuan IS NULL OR b.basis IS NULL OR b.basis <= 0) AS unchecked
FROM payments pm
{_STANDARD_IN_FORCE}
"""
UNIT_LABELS_ZH = {"m2": "㎡", "mu": "亩", "each": "项", "m2_month": "㎡·月", "household": "户"}
ABOVE_STANDARD_COLUMNS = (
    Column("paid_on", "付款日期", "date"),
    Column("item", "补偿科目", values=ITEM_LABELS_ZH, width=12),
    Column("priced_on", "标准适用日期", "date", shp="priced_on"),
    Column("standard_from", "标准生效日期", "date", shp="std_from"),
    Column("basis_area", "计价面积", "float"),
    Column("basis_unit", "单位", values=UNIT_LABELS_ZH, width=6),
    Column("standard_rate", "标准单价(元)", "float", shp="std_rate"),
    Column("paid_rate", "实付单价(元)", "float"),
    Column("standard_amount", "按标准金额(元)", "float", total=True, shp="std_amount"),
    Column("amount_yuan", "实付金额(元)", "float", total=True, shp="amount"),
    Column("excess_yuan", "超标金额(元)", "float", total=True, shp="excess"),
    Column("excess_share", "超标比例", "share", shp="excess_shr"),
)


def above_standard(conn: Connection, params: AboveStandard = AboveStandard(), *, as_of: date | None = None,
                   tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                   with_geometry: bool = False) -> CheckResult:
    """突破政策底线: payments above the district's standard for the parcel's kind and the payment's item, in force
    on the parcel's contract date, with the excess."""
    params, day = params.validated(), _day(as_of, tz)
    values = day.params | {"tolerance": Decimal(str(params.tolerance_yuan)), "area_units": list(AREA_UNITS),
                           "engine_items": list(ENGINE_ITEMS)}
    by_item, by_item_params = item_excesses_sql(conn, day.params["as_of"], values["tolerance"])
    findings = _findings(conn, f"{_ABOVE_STANDARD} UNION ALL {by_item}", values | by_item_params,
                         "f.excess_yuan DESC, pa.code, f.payment_id", reveal_personal=reveal_personal,
                         with_geometry=with_geometry)
    counts = conn.execute(text(_UNCHECKED), values).mappings().one()
    return CheckResult(
        "above_standard", "突破政策底线",
        f"截至{day.as_of}，补偿款超过签约（或补偿决定）之日有效的片区同类型、同补偿科目补偿标准（单价×面积，精确到分）"
        f"{params.tolerance_yuan}元以上；无签约、补偿决定日期或其晚于付款日的，按付款日有效的标准",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + ABOVE_STANDARD_COLUMNS,
        summary={"payments_checked": counts["checked"], "payments_without_standard": counts["unchecked"]},
    )


# ---------------------------------------------------------------------------------------------
# 档案不全

# (stage, a stage on the way to it): the stage itself and every stage it can be reached from.
_PATH = sorted({(s, s) for s in ALL_STAGES} | {(s, a) for a in ALL_STAGES for s in descendants(a)})
_INCOMPLETE_ARCHIVES = f"""
WITH path(stage, reached) AS (
    SELECT * FROM unnest(CAST(:path_stage AS text[]), CAST(:path_reached AS text[]))
),
now_at AS (
    SELECT pa.id AS parcel_id, {_stage_at("pa.id")} AS stage FROM parcels pa
),
reached AS (
    SELECT n.parcel_id, e.stage_to AS reached, max(e.at) AS reached_at
    FROM now_at n
    JOIN path p ON p.stage = n.stage
    JOIN parcel_events e ON e.parcel_id = n.parcel_id AND e.stage_to = p.reached AND e.at < :end
    GROUP BY n.parcel_id, e.stage_to
),
missing AS (
    SELECT r.parcel_id, rq.kind, min(array_position(CAST(:stage_order AS text[]), r.reached)) AS position,
           min(r.reached_at) AS due_since
    FROM reached r JOIN document_requirements rq ON rq.stage = r.reached
    WHERE r.reached_at < :due_end
      AND NOT EXISTS (SELECT 1 FROM documents d
                      WHERE d.parcel_id = r.parcel_id AND d.kind = rq.kind AND d.uploaded_at < :end)
    GROUP BY r.parcel_id, rq.kind
)
SELECT parcel_id, array_agg(kind ORDER BY position, kind) AS missing_kinds, count(*) AS missing_count,
       CAST(timezone(:tz, min(due_since)) AS date) AS due_since
FROM missing GROUP BY parcel_id
"""
INCOMPLETE_ARCHIVES_COLUMNS = (
    Column("missing_labels", "缺少的档案", width=30, shp="missing"),
    Column("missing_count", "缺少件数", "int", total=True, shp="n_missing"),
    Column("due_since", "应归档日期", "date"),
)


def incomplete_archives(conn: Connection, params: IncompleteArchives = IncompleteArchives(), *,
                        as_of: date | None = None, tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                        with_geometry: bool = False) -> CheckResult:
    """档案不全: documents each stage reached requires, missing."""
    params, day = params.validated(), _day(as_of, tz)
    values = day.params | {
        "path_stage": [s for s, _ in _PATH], "path_reached": [a for _, a in _PATH], "stage_order": list(ALL_STAGES),
        "due_end": end_of_day(day.as_of - timedelta(days=params.grace_days), tz),
    }
    findings = _findings(conn, _INCOMPLETE_ARCHIVES, values, "pa.code", reveal_personal=reveal_personal,
                         with_geometry=with_geometry)
    for f in findings:
        f["missing_labels"] = [DOCUMENT_LABELS_ZH.get(k, k) for k in f["missing_kinds"]]
    grace = f"（{params.grace_days}天内到达的阶段暂不计）" if params.grace_days else ""
    return CheckResult(
        "incomplete_archives", "档案不全",
        f"截至{day.as_of}日终，地块已到达的各阶段所要求的档案（document_requirements）尚未上传{grace}",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + INCOMPLETE_ARCHIVES_COLUMNS,
    )


# ---------------------------------------------------------------------------------------------
# 随征面积

_INCIDENTAL_AREA = f"""
WITH acquired AS (
    SELECT pa.id AS parcel_id, pa.geom, ST_Area(pa.geom) AS area_m2
    FROM parcels pa
    WHERE {_stage_at("pa.id")} = ANY(:acquired)
),
measured AS (
    SELECT a.parcel_id, a.area_m2, o.projects,
           -- One footprint: the kept overlap is exact. Several may overlap each other: measure against their union.
           CASE WHEN o.n <= 1 THEN a.area_m2 - coalesce(o.sum_m2, 0)
                ELSE ST_Area(ST_Difference(a.geom, (SELECT ST_Union(ST_Intersection(p.footprint, a.geom))
                                                    FROM projects p WHERE p.id = ANY(o.ids))))
           END AS outside_m2
    FROM acquired a
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, sum(ov.overlap_m2) AS sum_m2, array_agg(ov.project_id) AS ids,
               string_agg(pr.code, ',' ORDER BY pr.id) AS projects
        FROM project_parcel_overlaps ov JOIN projects pr ON pr.id = ov.project_id
        WHERE ov.parcel_id = a.parcel_id
    ) o
)
SELECT parcel_id, area_m2, area_m2 - outside_m2 AS inside_m2, outside_m2, outside_m2 / :sqm_per_mu AS outside_mu,
       outside_m2 / area_m2 AS outside_share, projects
FROM measured
WHERE area_m2 > 0 AND outside_m2 > :min_m2 AND outside_m2 / area_m2 > :min_share
"""
INCIDENTAL_AREA_COLUMNS = (
    Column("area_m2", "地块面积(㎡)", "m2", total=True),
    Column("inside_m2", "红线内面积(㎡)", "m2", total=True),
    Column("outside_m2", "红线外面积(㎡)", "m2", total=True),
    Column("outside_mu", "红线外面积(亩)", "mu", total=True),
    Column("outside_share", "红线外比例", "share", shp="out_share"),
    Column("projects", "涉及项目", width=14),
)


def incidental_area(conn: Connection, params: IncidentalArea = IncidentalArea(), *, as_of: date | None = None,
                    tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                    with_geometry: bool = False) -> CheckResult:
    """随征面积: acquired parcels whose area outside every project footprint exceeds the tolerance."""
    params, day = params.validated(), _day(as_of, tz)
    values = day.params | {"acquired": list(ACQUIRED_STAGES), "sqm_per_mu": SQM_PER_MU,
                           "min_m2": params.min_outside_m2, "min_share": params.min_outside_share}
    findings = _findings(conn, _INCIDENTAL_AREA, values, "f.outside_m2 DESC, pa.code",
                         reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "incidental_area", "随征面积",
        f"截至{day.as_of}已征收（已付款及以后）的地块，位于所有项目红线外的面积超过{params.min_outside_m2}㎡且超过"
        f"地块面积的{params.min_outside_share:.0%}",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + INCIDENTAL_AREA_COLUMNS,
    )


# ---------------------------------------------------------------------------------------------
# 久拖未决: stalled cases, holdouts and legacy cases


def _flag_sql(flag: str) -> str:
    """A flag (holdout, legacy: constants) at the end of the day, and since when, replayed from 'flags' events.

    Without a 'flags' event before the day's end the flag is the one the record carries (the value
    before the first later 'flags' event, else the current one), dated by the first event carrying
    the parcel's note, else by its first event: it did not hold before then.
    """
    changed = f"e.parcel_id = pa.id AND e.kind = 'flags' AND e.changes -> '{flag}' IS NOT NULL"
    return f"""
    LEFT JOIN LATERAL (SELECT CAST(e.changes -> '{flag}' ->> 'to' AS boolean) AS value, e.at FROM parcel_events e
                       WHERE {changed} AND e.at < :end ORDER BY e.at DESC, e.id DESC LIMIT 1) {flag}_set ON true
    LEFT JOIN LATERAL (SELECT CAST(e.changes -> '{flag}' ->> 'from' AS boolean) AS value FROM parcel_events e
                       WHERE {changed} AND e.at >= :end ORDER BY e.at, e.id LIMIT 1) {flag}_later ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN {flag}_set.value IS NOT NULL THEN {flag}_set.value
                    ELSE coalesce({flag}_later.value, pa.{flag}) AND rec.since < :end END AS value,
               CASE WHEN {flag}_set.value THEN {flag}_set.at ELSE rec.since END AS since
    ) {flag}_then"""


_STALLED = f"""
WITH in_projects AS (
    SELECT o.parcel_id, string_agg(p.code, ',' ORDER BY p.id) AS projects
    FROM project_parcel_overlaps o JOIN projects p ON p.id = o.project_id
    WHERE {tolerance_sql()}
    GROUP BY o.parcel_id
),
candidates AS (
    SELECT parcel_id FROM in_projects
    UNION SELECT id FROM parcels WHERE holdout OR legacy
    UNION SELECT parcel_id FROM parcel_events WHERE kind = 'flags'
),
state AS (
    SELECT pa.id AS parcel_id, ip.projects, st.stage, CAST(timezone(:tz, st.since) AS date) AS stage_since,
           holdout_then.value AS holdout, CAST(timezone(:tz, holdout_then.since) AS date) AS holdout_since,
           legacy_then.value AS legacy, pa.holdout_note,
           coalesce(CAST(timezone(:tz, rec.surveyed) AS date), pa.surveyed_on) AS surveyed_on
    FROM candidates c
    JOIN parcels pa ON pa.id = c.parcel_id
    LEFT JOIN in_projects ip ON ip.parcel_id = pa.id
    CROSS JOIN LATERAL (SELECT {_stage_at("pa.id")} AS stage,
                               {STAGE_SINCE_AT_SQL.format(parcel="pa.id", end=":end")} AS since) st
    CROSS JOIN LATERAL (
        SELECT coalesce((SELECT min(e.at) FROM parcel_events e
                         WHERE e.parcel_id = pa.id AND e.note = pa.holdout_note),
                        (SELECT min(e.at) FROM parcel_events e WHERE e.parcel_id = pa.id)) AS since,
               (SELECT min(e.at) FROM parcel_events e
                WHERE e.parcel_id = pa.id AND e.stage_to = 'surveyed' AND e.at < :end) AS surveyed
    ) rec
    {_flag_sql("holdout")}
    {_flag_sql("legacy")}
    WHERE st.stage IS NOT NULL AND st.stage <> 'cleared'
)
SELECT parcel_id, projects, stage_since, CAST(:as_of AS date) - stage_since AS days_in_stage,
       projects IS NOT NULL AND CAST(:as_of AS date) - stage_since > :days AS stalled,
       holdout, CASE WHEN holdout THEN holdout_since END AS holdout_since,
       CASE WHEN holdout THEN CAST(:as_of AS date) - holdout_since END AS holdout_days,
       legacy, surveyed_on, CASE WHEN legacy THEN CAST(:as_of AS date) - surveyed_on END AS legacy_days,
       CASE WHEN holdout OR legacy THEN holdout_note END AS holdout_note
FROM state
WHERE (projects IS NOT NULL AND CAST(:as_of AS date) - stage_since > :days) OR holdout OR legacy
"""
STALLED_COLUMNS = (
    Column("projects", "涉及项目", width=14),
    Column("stage_since", "本阶段起始", "date", shp="stage_date"),
    Column("days_in_stage", "停滞天数", "int", shp="days"),
    Column("stalled", "停滞", "bool"),
    Column("holdout", "钉子户", "bool"),
    Column("holdout_since", "标记日期", "date", shp="hold_since"),
    Column("holdout_days", "钉子户天数", "int", shp="hold_days"),
    Column("legacy", "历史遗留", "bool"),
    Column("surveyed_on", "调查登记日期", "date", shp="surveyed"),
    Column("legacy_days", "遗留天数", "int", shp="legacy_day"),
    Column("holdout_note", "难点说明", width=30, shp="hold_note"),
)


def stalled(conn: Connection, params: Stalled = Stalled(), *, as_of: date | None = None, tz: str = DEFAULT_TIMEZONE,
            reveal_personal: bool = False, with_geometry: bool = False) -> CheckResult:
    """久拖未决: parcels in footprints with no stage change for N days; open holdout and legacy cases, with age."""
    params, day = params.validated(), _day(as_of, tz)
    values = day.params | {"days": params.days, "min_m2": params.min_overlap_m2, "min_share": params.min_share}
    findings = _findings(conn, _STALLED, values, "f.legacy DESC, f.holdout DESC, f.days_in_stage DESC, pa.code",
                         reveal_personal=reveal_personal, with_geometry=with_geometry)
    return CheckResult(
        "stalled", "久拖未决",
        f"截至{day.as_of}：项目红线内未交地、阶段超过{params.days}天未推进的地块；未结案的钉子户与历史遗留问题及其时长",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + STALLED_COLUMNS,
        summary={k: sum(bool(f[k]) for f in findings) for k in ("stalled", "holdout", "legacy")},
    )


# ---------------------------------------------------------------------------------------------
# 指挥一线缺位: the rule is gis.analysis.dispatch's


@dataclass(frozen=True)
class DispatchGaps(CheckParams):
    weeks: int = _param(4, "回看周数", "Complete weeks (Monday to Sunday) looked back on for a leader's front-line "
                        "visit.", le=520)
    days: int = _param(14, "回看天数", "Days (up to the as-of day) looked back on for someone on site.", le=3650)


DISPATCH_GAPS_COLUMNS = (
    Column("district_name", "片区", width=8, shp="dist_name"),
    Column("post_name", "指挥分部", width=16),
    Column("commander", "指挥长", width=10),
    Column("gap", "缺位情形", values=GAP_LABELS_ZH, width=28),
    Column("from_day", "起始日", "date"),
    Column("to_day", "截止日", "date"),
    Column("days_long", "天数", "int"),
    Column("last_visit_on", "此前最近一线调度", "date", shp="last_visit"),
)


def dispatch_gaps_check(conn: Connection, params: DispatchGaps = DispatchGaps(), *, as_of: date | None = None,
                        tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False,
                        with_geometry: bool = False) -> CheckResult:
    """指挥一线缺位: per command post, complete weeks without a leader's front-line visit and days without anyone
    on site."""
    params, day = params.validated(), _day(as_of, tz)
    findings = dispatch_gaps(conn, day.as_of, weeks=params.weeks, days=params.days, reveal_personal=reveal_personal,
                             with_geometry=with_geometry)
    return CheckResult(
        "dispatch_gaps", "指挥一线缺位",
        f"截至{day.as_of}：近{params.weeks}个完整周（周一至周日）内指挥长、副指挥长未到一线调度的周；"
        f"近{params.days}天内无指挥分部人员现场办公的日期（自指挥分部成立起计）",
        day.as_of, params.as_dict(), findings, DISPATCH_GAPS_COLUMNS,
        summary={k: sum(f["gap"] == k for f in findings) for k in GAP_LABELS_ZH}, geometry_type="Point",
    )


# ---------------------------------------------------------------------------------------------
# The registry: API routes, CLI commands and reports iterate over it.


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    params: type[CheckParams]
    run: Callable[..., CheckResult]

    @property
    def slug(self) -> str:
        """The name in URLs and on the command line: paid-not-demolished."""
        return self.name.replace("_", "-")


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("paid_not_demolished", "拿钱没拆", PaidNotDemolished, paid_not_demolished),
    Check("double_compensation", "二次补偿", DoubleCompensation, double_compensation),
    Check("above_standard", "突破政策底线", AboveStandard, above_standard),
    Check("incomplete_archives", "档案不全", IncompleteArchives, incomplete_archives),
    Check("incidental_area", "随征面积", IncidentalArea, incidental_area),
    Check("stalled", "久拖未决", Stalled, stalled),
    Check("dispatch_gaps", "指挥一线缺位", DispatchGaps, dispatch_gaps_check),
)}
# The checks in modules of their own (gis.inspections), built on the pieces above, join the registry here.
from gis.inspections.registered import MORE_CHECKS  # noqa: E402 - they import this module's pieces

CHECKS |= {c.name: c for c in MORE_CHECKS}


def get_check(name: str) -> Check:
    """The check named ``name`` (``-`` and ``_`` alike); InvalidInput listing the checks otherwise."""
    check = CHECKS.get(name.replace("-", "_"))
    if check is None:
        raise InvalidInput(f"unknown check {name!r}; checks are {', '.join(c.slug for c in CHECKS.values())}", "name")
    return check


# The checks of resettlement and cleared land, in their own module, register themselves with CHECKS on import.
import gis.resettlement_checks  # noqa: E402, F401
