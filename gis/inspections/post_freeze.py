"""抢栽抢种、偷建私建 as a registered check: every project with imagery, in /checks, the CLI and the reports.

The comparison is ``gis.imagery.change`` (an epoch on or before the project's freeze date against the latest
after it, parcel by parcel over the footprint); this check runs it for every active project frozen by the day
whose footprint two epochs of one kind cover, among the layers acquired by the day, and lists the flagged
parcels. Projects without such imagery are counted in the summary, not refused: the per-project route
(``/projects/{id}/checks/post-freeze``) still answers 422 for them, with what is missing, and pins epochs or
kinds, which this check does not. The built and vegetation classes and the sliver tolerance are the settings'
defaults (``gis.platform.config.Settings``); the thresholds are this check's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from gis.checks import (
    HEADER_COLUMNS,
    MAX_AREA_M2,
    CheckParams,
    CheckResult,
    _day,
    _findings,
    _param,
)
from gis.domain.tolerance import Tolerance
from gis.imagery.labels import SUSPECTED_ZH
from gis.inspections.rows import rows_params, rows_sql
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE, Settings
from gis.platform.errors import InvalidInput

if TYPE_CHECKING:
    from gis.imagery.change import ChangeRule

_DEFAULTS = Settings.model_fields
_PROJECTS_SQL = """
SELECT id, code, name, freeze_date FROM projects
WHERE archived_at IS NULL AND freeze_date IS NOT NULL AND freeze_date <= :as_of ORDER BY id
"""
# The flagged parcels, handed to the findings' header query as rows (rank: the order they are listed in).
_FLAGGED = (("parcel_id", "bigint"), ("project", "text"), ("project_name", "text"), ("before_on", "date"),
            ("after_on", "date"), ("changed_m2", "float8"), ("changed_share", "float8"), ("suspected", "text"),
            ("rank", "int"))
POST_FREEZE_COLUMNS = (
    Column("project_name", "项目", width=16, shp="project"),
    Column("before_on", "冻结前影像日期", "date", shp="before_on"),
    Column("after_on", "冻结后影像日期", "date", shp="after_on"),
    Column("changed_m2", "变化面积(㎡)", "m2", total=True, shp="chg_m2"),
    Column("changed_share", "变化占比", "share", shp="chg_share"),
    Column("suspected", "疑似情形", values=SUSPECTED_ZH, width=14),
)


@dataclass(frozen=True)
class PostFreeze(CheckParams):
    threshold_m: float = _param(_DEFAULTS["imagery_change_threshold_m"].default, "增高阈值(m)",
                                "A cell rose by more than this (height layers) to count as changed.", ge=0.01, le=1000)
    min_area_m2: float = _param(_DEFAULTS["imagery_flag_min_m2"].default, "变化面积下限(㎡)",
                                "A parcel is flagged when its changed area reaches this (and min_share).",
                                le=MAX_AREA_M2)
    min_share: float = _param(_DEFAULTS["imagery_flag_min_share"].default, "变化比例下限",
                              "A parcel is flagged when its changed share reaches this (and min_area_m2).", le=1)


def _rule(params: PostFreeze, kind: str) -> ChangeRule:
    from gis.imagery.change import ChangeRule  # imagery loads rasterio: only when the check runs

    return ChangeRule(kind=kind, threshold_m=params.threshold_m, min_area_m2=params.min_area_m2,
                      min_share=params.min_share, built_classes=tuple(_DEFAULTS["imagery_built_classes"].default),
                      vegetation_classes=tuple(_DEFAULTS["imagery_vegetation_classes"].default))


def post_freeze(conn: Connection, params: PostFreeze = PostFreeze(), *, as_of: date | None = None,
                tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False, with_geometry: bool = False) -> CheckResult:
    """抢栽抢种、偷建私建: parcels built on or planted after their project's freeze, for every project with imagery."""
    from gis.imagery.change import compare_epochs, select_epochs

    params, day = params.validated(), _day(as_of, tz)
    tolerance = Tolerance.defaults()
    rows: list[tuple] = []
    checked, without = [], []
    for project in conn.execute(text(_PROJECTS_SQL), {"as_of": day.as_of}).all():
        try:
            before, after = select_epochs(conn, project.id, as_of=day.as_of)
        except InvalidInput:
            without.append(project.code)
            continue
        checked.append(project.code)
        result = compare_epochs(conn, project, before, after, _rule(params, after.kind), tolerance)
        rows += [(p.parcel_id, project.code, project.name, before.acquired_on, after.acquired_on, p.changed_m2,
                  p.changed_share, p.suspected) for p in result.flagged]
    # One row per parcel and project, in the order the findings are listed.
    rows.sort(key=lambda r: (-r[5], r[1], r[0]))
    ranked = [(*row, rank) for rank, row in enumerate(rows)]
    findings = _findings(conn, rows_sql(_FLAGGED), day.params | rows_params(_FLAGGED, ranked), "f.rank",
                         reveal_personal=reveal_personal, with_geometry=with_geometry)
    for f in findings:
        f.pop("rank")
    return CheckResult(
        "post_freeze", "抢栽抢种、偷建私建",
        f"截至{day.as_of}已发布冻结公告、且有冻结日前后两期同类影像（截至当日获取）覆盖红线的项目：红线内地块在冻结后"
        f"增高超过{params.threshold_m}m或新增建筑/植被，变化面积不少于{params.min_area_m2}㎡且占地块面积不少于"
        f"{params.min_share:.1%}",
        day.as_of, params.as_dict(), findings, HEADER_COLUMNS + POST_FREEZE_COLUMNS,
        summary={"projects_checked": len(checked), "projects_without_imagery": len(without)},
    )
