"""有没有阳光征迁 (sunshine expropriation): compensation paid before it was published, or never published.

Each payment paid by the day counts under its project or, booked to none, under every active
project whose footprint holds the parcel (the blockers' membership and sliver tolerance). A project's
compensation counts as published from its first publication day (``gis.records.disclosures``) on or before the
day; both are dated by the day they happened, as the other checks date payments. Per parcel and project, two rules:
- ``paid_before_disclosure``: payments made before that day (the same day is in time), with how many days early;
- ``no_disclosure``: payments under a project with no publication recorded at all.
The summary counts too the active projects whose scope was announced (freeze date) by the day and that have
published nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from gis.checks import HEADER_COLUMNS, CheckParams, CheckResult, _day, _findings
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE
from gis.records.disclosures import FIRST_DISCLOSED_SQL

RULES_ZH = {"paid_before_disclosure": "补偿款先于补偿公示发放", "no_disclosure": "项目未公示补偿"}
_PAID = f"""
WITH disclosed AS ({FIRST_DISCLOSED_SQL}),
paid AS (
    SELECT pm.parcel_id, pr.id AS project_id, pm.paid_on, pm.amount_yuan
    FROM payments pm
    JOIN projects pr ON pr.archived_at IS NULL AND (pr.id = pm.project_id OR (pm.project_id IS NULL AND EXISTS (
        SELECT 1 FROM project_parcel_overlaps o
        WHERE o.parcel_id = pm.parcel_id AND o.project_id = pr.id AND {tolerance_sql()})))
    WHERE pm.paid_on <= :as_of
)
SELECT p.parcel_id, pr.code AS project, pr.name AS project_name,
       CASE WHEN d.disclosed_on IS NULL THEN 'no_disclosure' ELSE 'paid_before_disclosure' END AS rule,
       min(p.paid_on) AS first_paid_on, count(*) AS payments, sum(p.amount_yuan) AS paid_yuan, d.disclosed_on,
       d.disclosed_on - min(p.paid_on) AS days_early
FROM paid p
JOIN projects pr ON pr.id = p.project_id
LEFT JOIN disclosed d ON d.project_id = p.project_id
WHERE d.disclosed_on IS NULL OR p.paid_on < d.disclosed_on
GROUP BY p.parcel_id, pr.code, pr.name, d.disclosed_on
"""
_UNPUBLISHED_PROJECTS = f"""
WITH disclosed AS ({FIRST_DISCLOSED_SQL})
SELECT count(*) FROM projects pr
WHERE pr.archived_at IS NULL AND pr.freeze_date <= :as_of
  AND NOT EXISTS (SELECT 1 FROM disclosed d WHERE d.project_id = pr.id)
"""
SUNSHINE_COLUMNS = (
    Column("rule", "问题", values=RULES_ZH, width=18),
    Column("project_name", "项目", width=16, shp="project"),
    Column("first_paid_on", "首次付款日期", "date", shp="first_paid"),
    Column("disclosed_on", "补偿公示日期", "date", shp="disclosed"),
    Column("days_early", "提前天数", "int", shp="days_early"),
    Column("payments", "公示前付款笔数", "int"),
    Column("paid_yuan", "公示前付款金额(元)", "float", total=True, shp="paid_yuan"),
)


@dataclass(frozen=True)
class Sunshine(CheckParams):
    """No parameters: the rule has no threshold (paid before the day it was published, or never published)."""


def sunshine(conn: Connection, params: Sunshine = Sunshine(), *, as_of: date | None = None,
             tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False, with_geometry: bool = False) -> CheckResult:
    """有没有阳光征迁: compensation paid before the project's compensation was published, or never published."""
    params, day = params.validated(), _day(as_of, tz)
    tolerance = Tolerance.defaults()
    values = day.params | tolerance.params
    findings = _findings(conn, _PAID, values, "f.rule DESC, f.project, pa.code", reveal_personal=reveal_personal,
                         with_geometry=with_geometry)
    unpublished = conn.execute(text(_UNPUBLISHED_PROJECTS), values).scalar_one()
    return CheckResult(
        "sunshine", "有没有阳光征迁",
        f"截至{day.as_of}日终：补偿款发放日早于所属项目首次补偿公示日（同日视为及时），或所属项目尚无补偿公示；"
        f"未注明项目的付款计入红线包含该地块的各项目",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + SUNSHINE_COLUMNS,
        summary={rule: sum(f["rule"] == rule for f in findings) for rule in RULES_ZH}
        | {"projects_without_disclosure": unpublished},
    )
