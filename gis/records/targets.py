"""Annual targets (年度任务): what each district must clear in a year, or a quarter of it, and how far it has come.

The rules, each stated here once:

- **A target** belongs to a district and a year, optionally to one quarter of that year and to one project;
  it gives houses to clear in m² (``house_m2``), land in mu (``land_mu``) and parcels (宗, ``parcels``), any
  of which may be left out (no target for that measure), but not all three. One target per district, year,
  quarter and project: storing one again replaces its amounts.
- **Limits** (``YEAR_RANGE``, ``QUARTERS``, ``MAX_HOUSE_M2``, ``MAX_LAND_MU``, ``MAX_PARCELS``, and the
  decimals ``HOUSE_DECIMALS`` / ``LAND_DECIMALS``): the file import and the API go through the same
  ``_check_rows``; the table's CHECK constraints (migration 0010) are written from the same constants.
- **Done** (``progress``): counted from the history, never from the parcels' current stage, so a past day
  replays. A parcel counts toward a target when it reached ``cleared`` (a ``parcel_events`` row with
  ``stage_to = 'cleared'``) within the period, up to the end of the as-of day in the city's time zone, and
  is still cleared then (a clearance recorded by mistake and undone does not count). The parcel is in the
  target's district; for a project's target, also in that project's footprint (an overlap above the sliver
  tolerance). Houses count their floor area (m²), land parcels their area in mu.
- **Pace** (``pace_share``): the share of the period elapsed, counting the as-of day itself (0 before the
  period starts, 1 once it has ended). A measure is **on pace** when done ≥ target × that share, otherwise
  **behind**; a target is on pace when every measure it sets is.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.stages import STAGE_AT_SQL, end_of_day, today_in
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.fields import normalise
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import InvalidInput

# The same sheet-reading machinery as the compensation standards: district lookup by code or name, an issue
# per refused cell, all-or-nothing refusal, blank cells and values shown in messages.
from gis.records.standards import (
    Issue,
    StandardsRejected,
    _Districts,
    _shown,
    cell_reader,
    match_header,
    read_sheet,
)

# ---------------------------------------------------------------------------------------------
# The limits (stated once: the migration's CHECK constraints are written from these)

YEAR_RANGE = (2000, 2100)
QUARTERS = (1, 2, 3, 4)
# Above any one district's year of clearance (a whole new town is a few million m²), low enough to catch a
# figure in m² typed where 万㎡ was meant twice over, or mu typed as m².
MAX_HOUSE_M2 = Decimal(10000000)
MAX_LAND_MU = Decimal(1000000)
MAX_PARCELS = 1_000_000
HOUSE_DECIMALS = 2
LAND_DECIMALS = 4
MAX_ROWS = 10_000
SQM_PER_WAN = Decimal(10000)  # 1 万㎡: targets are announced in 万㎡

AMOUNTS = ("house_m2", "land_mu", "parcels")
TARGET_STATUS_ZH = {"on_pace": "按进度", "behind": "滞后"}


@dataclass(frozen=True)
class Column:
    """A field of a target, its header in a planner's sheet and the headers that name it."""

    field: str
    label: str
    names: tuple[str, ...]
    required: bool = False


COLUMNS = (
    Column("district", "片区", ("片区", "片区代码", "片区名称", "所属片区", "乡镇街道", "街道", "乡镇", "district"),
           required=True),
    Column("year", "年度", ("年度", "年份", "年", "任务年度", "year"), required=True),
    Column("quarter", "季度", ("季度", "quarter")),
    Column("project", "项目", ("项目", "项目名称", "项目代码", "项目编号", "project")),
    Column("house_m2", "房屋（㎡）", ("房屋", "房屋面积", "征收房屋", "拆除房屋", "房屋征收", "房屋拆迁", "house_m2")),
    Column("land_mu", "土地（亩）", ("土地", "土地面积", "征收土地", "土地征收", "交地", "land_mu")),
    Column("parcels", "宗数", ("宗数", "地块数", "宗", "地块", "parcels")),
)
LABELS = {c.field: c.label for c in COLUMNS}
FIELDS = tuple(c.field for c in COLUMNS)
REQUIRED = frozenset(c.field for c in COLUMNS if c.required)
_HEADERS = {normalise(n): c.field for c in COLUMNS for n in (c.field, *c.names)}
_PARENTHESIS = re.compile(r"\((.*)\)$")
_QUARTER_NAMES = {normalise(n): q for q, names in {
    1: ("1", "一", "一季度", "第一季度", "q1", "1季度"), 2: ("2", "二", "二季度", "第二季度", "q2", "2季度"),
    3: ("3", "三", "三季度", "第三季度", "q3", "3季度"), 4: ("4", "四", "四季度", "第四季度", "q4", "4季度"),
}.items() for n in names}
_WHOLE_YEAR = {normalise(n) for n in ("全年", "年度", "0", "-")}


# ---------------------------------------------------------------------------------------------
# Reading one value: ValueError with a message naming the field, so the import and the API refuse alike


def check_year(year: int) -> int:
    """The year if within YEAR_RANGE."""
    low, high = YEAR_RANGE
    if not low <= year <= high:
        raise ValueError(f"year must be between {low} and {high}, not {year}")
    return year


def check_quarter(quarter: int | None) -> int | None:
    """The quarter (1–4), or None for the whole year."""
    if quarter is not None and quarter not in QUARTERS:
        raise ValueError(f"quarter must be 1, 2, 3 or 4 (or empty for the whole year), not {quarter}")
    return quarter


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    text_value = normalise(value).removesuffix("年")
    if re.fullmatch(r"-?\d+", text_value):
        return int(text_value)
    raise ValueError(f"{name} must be a whole number, not {_shown(value)}")


def parse_year(value: Any) -> int:
    """A sheet's or a request's year, as a whole number within the targets' years."""
    return check_year(_integer(value, "year"))


def parse_quarter(value: Any) -> int | None:
    """A quarter 1-4, or None for a whole year's target (an empty cell)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_quarter(_integer(value, "quarter"))
    key = normalise(value)
    if key in _WHOLE_YEAR:
        return None
    if key in _QUARTER_NAMES:
        return _QUARTER_NAMES[key]
    if re.fullmatch(r"-?\d+", key):
        return check_quarter(int(key))
    raise ValueError(f"quarter must be 1, 2, 3 or 4 (一季度 … 四季度; empty for the whole year), not {_shown(value)}")


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, numbers.Integral):
            number = Decimal(int(value))
        elif isinstance(value, numbers.Real):
            number = Decimal(repr(float(value)))  # the number as typed, not its binary expansion
        else:
            number = Decimal(normalise(value).replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} must be a number, not {_shown(value)}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number")
    return number


def check_house_m2(value: Decimal) -> Decimal:
    """House m² if 0 ≤ value ≤ MAX_HOUSE_M2, with at most HOUSE_DECIMALS decimals."""
    return _check_amount(value, "house_m2", MAX_HOUSE_M2, HOUSE_DECIMALS)


def check_land_mu(value: Decimal) -> Decimal:
    """Land mu if 0 ≤ value ≤ MAX_LAND_MU, with at most LAND_DECIMALS decimals."""
    return _check_amount(value, "land_mu", MAX_LAND_MU, LAND_DECIMALS)


def _check_amount(value: Decimal, name: str, top: Decimal, decimals: int) -> Decimal:
    if not Decimal(0) <= value <= top:
        raise ValueError(f"{name} must be between 0 and {top}, not {value}")
    if value != value.quantize(Decimal(1).scaleb(-decimals)):
        raise ValueError(f"{name} has more than {decimals} decimals")
    return value


def check_parcels(value: int) -> int:
    """Parcels if 0 ≤ value ≤ MAX_PARCELS."""
    if not 0 <= value <= MAX_PARCELS:
        raise ValueError(f"parcels must be between 0 and {MAX_PARCELS}, not {value}")
    return value


def parse_house_m2(value: Any, scale: Decimal = Decimal(1)) -> Decimal:
    """Houses to clear in m², within the stated bounds; ``scale`` converts a sheet's 万㎡ column."""
    return check_house_m2(_decimal(value, "house_m2") * scale)


def parse_land_mu(value: Any) -> Decimal:
    """Land to clear in mu, within the stated bounds."""
    return check_land_mu(_decimal(value, "land_mu"))


def parse_parcels(value: Any) -> int:
    """Parcels to clear, a whole number within the stated bounds."""
    return check_parcels(_integer(value, "parcels"))


class _Projects:
    """Project ids by code or name, as a sheet may give them (compared normalised)."""

    def __init__(self, conn: Connection) -> None:
        rows = conn.execute(text("SELECT id, code, name FROM projects ORDER BY id")).all()
        self.ids = {normalise(key): int(pid) for pid, code, name in rows for key in (code, name) if key}
        self.listed = ", ".join(f"{name} ({code})" for _pid, code, name in rows[:20]) or "none yet"

    def parse(self, value: Any) -> int:
        pid = self.ids.get(normalise(value))
        if pid is None:
            raise ValueError(f"unknown project {_shown(value)}; projects are {self.listed}")
        return pid


# ---------------------------------------------------------------------------------------------
# Checking rows: the file import and the API both come here


@dataclass(frozen=True)
class Target:
    row: int  # as a person counts: the sheet's row, or 1 for the API's one target
    district_id: int
    year: int
    quarter: int | None
    project_id: int | None
    house_m2: Decimal | None
    land_mu: Decimal | None
    parcels: int | None

    @property
    def key(self) -> tuple[int, int, int | None, int | None]:
        return self.district_id, self.year, self.quarter, self.project_id

    def params(self) -> dict[str, Any]:
        return {"district_id": self.district_id, "year": self.year, "quarter": self.quarter,
                "project_id": self.project_id, "house_m2": self.house_m2, "land_mu": self.land_mu,
                "parcels": self.parcels}


class TargetsRejected(StandardsRejected):
    """Rows refused, nothing stored; ``issues`` lists every one (``where`` names the first)."""


@dataclass
class TargetsReport:
    """What an import or a PUT did (or, dry run, would do), and the targets as stored."""

    source: str
    rows: int
    stored: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "stored": self.stored, "dry_run": self.dry_run,
                "notes": self.notes, "targets": [as_json(t) for t in self.targets]}


def _read_row(row: int, values: Mapping[str, Any], columns: Mapping[str, str], districts: _Districts,
              projects: _Projects, house_scale: Decimal, issues: list[Issue]) -> Target | None:
    """One row as a Target, or its problems added to ``issues`` (every one, not only the first)."""
    before = len(issues)

    read = cell_reader(row, values, columns, REQUIRED, LABELS, issues)
    district_id = read("district", districts.parse)
    year = read("year", parse_year)
    quarter = read("quarter", parse_quarter)
    project_id = read("project", projects.parse)
    house_m2 = read("house_m2", parse_house_m2, house_scale)
    land_mu = read("land_mu", parse_land_mu)
    parcels = read("parcels", parse_parcels)
    if len(issues) > before:
        return None
    if house_m2 is None and land_mu is None and parcels is None:
        issues.append(Issue(row, columns.get("house_m2", "house_m2"),
                            "no amount given: a target sets house_m2 (房屋㎡), land_mu (土地亩) or parcels (宗数)"))
        return None
    return Target(row, district_id, year, quarter, project_id, house_m2, land_mu, parcels)


def _check_rows(conn: Connection, rows: Sequence[tuple[int, Mapping[str, Any]]], columns: Mapping[str, str], *,
                house_scale: Decimal = Decimal(1)) -> list[Target]:
    """Every row checked, then duplicates; TargetsRejected if any fails."""
    if not rows:
        raise InvalidInput("no targets given", "rows")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} targets at a time; {len(rows)} given", "rows")
    districts, projects = _Districts(conn), _Projects(conn)
    issues: list[Issue] = []
    targets = [t for row, values in rows
               if (t := _read_row(row, values, columns, districts, projects, house_scale, issues)) is not None]
    first: dict[tuple, int] = {}
    for t in targets:
        if t.key in first:
            issues.append(Issue(t.row, columns.get("year", "year"),
                                f"row {first[t.key]} already gives this district, year, quarter and project"))
        first.setdefault(t.key, t.row)
    if issues:
        raise TargetsRejected(sorted(issues, key=lambda i: i.row))
    return targets


_UPSERT_SQL = """
INSERT INTO targets (district_id, year, quarter, project_id, house_m2, land_mu, parcels, recorded_by)
VALUES (:district_id, :year, :quarter, :project_id, :house_m2, :land_mu, :parcels, :actor)
ON CONFLICT ON CONSTRAINT targets_key DO UPDATE
SET house_m2 = EXCLUDED.house_m2, land_mu = EXCLUDED.land_mu, parcels = EXCLUDED.parcels,
    recorded_by = EXCLUDED.recorded_by, recorded_at = now()
"""


def _store(conn: Connection, rows: Sequence[tuple[int, Mapping[str, Any]]], columns: Mapping[str, str], actor: str,
           *, source: str, dry_run: bool, house_scale: Decimal = Decimal(1),
           notes: list[str] | None = None) -> TargetsReport:
    targets = _check_rows(conn, rows, columns, house_scale=house_scale)
    if not dry_run:
        conn.execute(text(_UPSERT_SQL), [t.params() | {"actor": actor} for t in targets])
    return TargetsReport(source=source, rows=len(rows), stored=0 if dry_run else len(targets), dry_run=dry_run,
                         notes=notes or [], targets=[] if dry_run else _listing(conn, keys=targets))


def _map_header(header: Sequence[str]) -> tuple[dict[str, str], Decimal, list[str]]:
    """field → the sheet's column, the scale of the house column (10000 when its header says 万㎡), notes."""
    columns, unused = match_header(header, _HEADERS)
    missing = [c for c in COLUMNS if c.field in REQUIRED and c.field not in columns]
    if missing:
        wanted = "; ".join(f"{c.label} ({c.field}; or {', '.join(c.names[1:4])})" for c in missing)
        raise InvalidInput(f"the sheet has no column for {wanted}", "header")
    if not any(f in columns for f in AMOUNTS):
        raise InvalidInput("the sheet has no amount column: 房屋（㎡ or 万㎡）, 土地（亩） or 宗数", "header")
    unit = _PARENTHESIS.search(normalise(columns.get("house_m2", "")))
    scale = SQM_PER_WAN if unit and "万" in unit.group(1) else Decimal(1)
    return columns, scale, [f"columns not used: {', '.join(unused)}"] if unused else []


def import_targets(conn: Connection, path: Path | str, actor: str, *, dry_run: bool = False,
                   source: str | None = None) -> TargetsReport:
    """Import the targets of a planner's XLSX or CSV sheet: every row checked, all stored or none.

    Headers in Chinese as planners write them (片区, 年度, 季度, 项目, 房屋（㎡）or 房屋（万㎡）, 土地（亩）, 宗数) or
    the API's field names. Rows are numbered as the sheet shows them (the header is row 1). Raises
    TargetsRejected naming each refused row and column, and stores nothing.
    """
    path = Path(path)
    header, records = read_sheet(path, "targets")
    columns, scale, notes = _map_header(header)
    rows = [(n, {f: rec[c] for f, c in columns.items()}) for n, rec in records]
    return _store(conn, rows, columns, actor, source=source or path.name, dry_run=dry_run, house_scale=scale,
                  notes=notes)


def put_target(conn: Connection, values: Mapping[str, Any], actor: str) -> TargetsReport:
    """Store one target given as field → value (district, year, quarter, project, house_m2, land_mu, parcels):
    the same checks as an import; an existing target of the same district, year, quarter and project gets
    these amounts."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS)}", unknown[0])
    return _store(conn, [(1, values)], {f: f for f in FIELDS}, actor, source="api", dry_run=False)


# ---------------------------------------------------------------------------------------------
# Reading


_LIST_SQL = """
SELECT t.id, t.district_id, d.code AS district, d.name AS district_name, t.year, t.quarter, t.project_id,
       p.code AS project_code, p.name AS project_name, t.house_m2, t.land_mu, t.parcels, t.recorded_by,
       t.recorded_at
FROM targets t JOIN districts d ON d.id = t.district_id LEFT JOIN projects p ON p.id = t.project_id
WHERE (CAST(:year AS integer) IS NULL OR t.year = :year)
  AND (CAST(:quarter AS integer) IS NULL OR t.quarter = :quarter)
  AND (CAST(:ids AS integer[]) IS NULL OR t.id = ANY(:ids))
  AND (CAST(:whole AS boolean) IS NULL OR (t.quarter IS NULL) = :whole)
  AND (CAST(:district_level AS boolean) IS NULL OR (t.project_id IS NULL) = :district_level)
ORDER BY d.code, t.year, t.quarter NULLS FIRST, p.code NULLS FIRST
"""
_IDS_SQL = """
SELECT t.id FROM targets t
JOIN unnest(CAST(:district_ids AS integer[]), CAST(:years AS integer[]), CAST(:quarters AS integer[]),
            CAST(:project_ids AS integer[])) AS k(district_id, year, quarter, project_id)
  ON (t.district_id, t.year) = (k.district_id, k.year) AND t.quarter IS NOT DISTINCT FROM k.quarter
 AND t.project_id IS NOT DISTINCT FROM k.project_id
"""


def _listing(conn: Connection, *, year: int | None = None, quarter: int | None = None,
             keys: Sequence[Target] | None = None, whole_year: bool | None = None,
             district_level: bool | None = None) -> list[dict[str, Any]]:
    ids = None
    if keys is not None:
        ids = list(conn.execute(text(_IDS_SQL), {
            "district_ids": [t.district_id for t in keys], "years": [t.year for t in keys],
            "quarters": [t.quarter for t in keys], "project_ids": [t.project_id for t in keys]}).scalars())
    params = {"year": year, "quarter": quarter, "ids": ids, "whole": whole_year, "district_level": district_level}
    return [dict(r) for r in conn.execute(text(_LIST_SQL), params).mappings()]


def _filter_value(parse: Callable[[Any], Any], value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), where) from None


def list_targets(conn: Connection, *, year: int | None = None, quarter: int | None = None) -> list[dict[str, Any]]:
    """The targets, by district, year, quarter (the whole year first) and project; with ``year`` and
    ``quarter``, only those."""
    return _listing(conn, year=_filter_value(check_year, year, "year"),
                    quarter=_filter_value(check_quarter, quarter, "quarter"))


def as_json(target: Mapping[str, Any]) -> dict[str, Any]:
    """A listed target (or one with its progress) with JSON's types: numbers as numbers, times as ISO text."""
    out = {}
    for key, value in target.items():
        if isinstance(value, Decimal):
            value = float(value)
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, dict):
            value = as_json(value)
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Progress: done from the history, percent, on pace or behind


def period(year: int, quarter: int | None) -> tuple[date, date]:
    """The first and the last day of the year, or of its quarter."""
    if quarter is None:
        return date(year, 1, 1), date(year, 12, 31)
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return first, after - timedelta(days=1)


def period_label(year: int, quarter: int | None) -> str:
    """The period as people write it: 2026年全年, 2026年第4季度."""
    return f"{year}年" + (f"第{quarter}季度" if quarter else "全年")


def measure_text(measure: Mapping[str, Any] | None, decimals: int, unit: str = "") -> str:
    """A measure's progress as people read it: done / target unit (percent); — when the target sets none."""
    if measure is None:
        return "—"
    percent = f"（{measure['percent']:.1f}%）" if measure["percent"] is not None else ""
    return f"{measure['done']:,.{decimals}f} / {measure['target']:,.{decimals}f}{unit}{percent}"


def quarter_of(day: date) -> int:
    """The quarter (1–4) a day falls in."""
    return (day.month - 1) // 3 + 1


def pace_share(year: int, quarter: int | None, as_of: date) -> float:
    """The share of the period elapsed by the end of ``as_of`` (the day itself counted): 0 before the period,
    1 from its last day on. The pace rule of this module's docstring compares done with target × this."""
    first, last = period(year, quarter)
    total = (last - first).days + 1
    return min(max((as_of - first).days + 1, 0), total) / total


_DONE_SQL = f"""
WITH w AS (
    SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
        AS w(target_id, start_at, end_at)
)
SELECT w.target_id, count(pa.id) AS parcels, coalesce(sum(pa.floor_area_m2), 0) AS house_m2,
       coalesce(sum(pa.land_area_mu), 0) AS land_mu
FROM w JOIN targets t ON t.id = w.target_id
LEFT JOIN parcels pa ON pa.district_id = t.district_id
    AND w.end_at > w.start_at
    AND (t.project_id IS NULL OR EXISTS (
        SELECT 1 FROM project_parcel_overlaps o
        WHERE o.parcel_id = pa.id AND o.project_id = t.project_id AND {tolerance_sql()}))
    AND EXISTS (
        SELECT 1 FROM parcel_events e
        WHERE e.parcel_id = pa.id AND e.stage_to = 'cleared' AND e.at >= w.start_at AND e.at < w.end_at)
    AND {STAGE_AT_SQL.format(parcel="pa.id", end="w.end_at")} = 'cleared'
GROUP BY w.target_id
"""


def _measure(target: Decimal | int | None, done: Decimal | int, share: float, decimals: int) -> dict[str, Any] | None:
    if target is None:
        return None
    expected = Decimal(str(target)) * Decimal(str(share))
    return {
        "target": target,
        "done": round(Decimal(str(done)), decimals) if decimals else int(done),
        "percent": round(100.0 * float(done) / float(target), 2) if target else None,
        "expected": round(expected, decimals) if decimals else round(float(expected), 2),
        "on_pace": Decimal(str(done)) >= expected,
    }


def _with_progress(conn: Connection, targets: list[dict[str, Any]], as_of: date, tz: str,
                   tolerance: Tolerance) -> list[dict[str, Any]]:
    """The targets, each with ``period``, ``elapsed`` (the pace share) and per measure target, done, percent,
    expected and on_pace, and ``on_pace`` for the whole target."""
    if not targets:
        return []
    bounds = {}
    for t in targets:
        first, last = period(t["year"], t["quarter"])
        bounds[t["id"]] = (end_of_day(first - timedelta(days=1), tz), end_of_day(min(last, as_of), tz))
    ids = list(bounds)
    params = {"ids": ids, "starts": [bounds[i][0] for i in ids], "ends": [bounds[i][1] for i in ids]}
    done = {r.target_id: r for r in conn.execute(text(_DONE_SQL), params | tolerance.params)}
    out = []
    for t in targets:
        share = pace_share(t["year"], t["quarter"], as_of)
        first, last = period(t["year"], t["quarter"])
        row = done[t["id"]]
        measures = {
            "house_m2": _measure(t["house_m2"], row.house_m2, share, HOUSE_DECIMALS),
            "land_mu": _measure(t["land_mu"], row.land_mu, share, LAND_DECIMALS),
            "parcels": _measure(t["parcels"], row.parcels, share, 0),
        }
        set_ = [m for m in measures.values() if m is not None]
        out.append({k: v for k, v in t.items() if k not in AMOUNTS}
                   | {"period": {"from": first, "to": last}, "as_of": as_of, "elapsed": round(share, 4)}
                   | measures | {"on_pace": all(m["on_pace"] for m in set_),
                                 "status": "on_pace" if all(m["on_pace"] for m in set_) else "behind"})
    return out


def targets_progress(conn: Connection, tolerance: Tolerance, *, year: int | None = None, quarter: int | None = None,
                     as_of: date | None = None, tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """Every target of ``year`` (default: the as-of day's year; with ``quarter``, only that quarter's) with its
    progress at the end of ``as_of`` (default today in the city), replayed from the history."""
    as_of = as_of or today_in(tz)
    year = _filter_value(check_year, year, "year") if year is not None else as_of.year
    quarter = _filter_value(check_quarter, quarter, "quarter")
    listed = _listing(conn, year=year, quarter=quarter)
    return {"year": year, "quarter": quarter, "as_of": as_of.isoformat(),
            "targets": [as_json(t) for t in _with_progress(conn, listed, as_of, tz, tolerance)]}


def district_targets(conn: Connection, tolerance: Tolerance, as_of: date, *,
                     tz: str = DEFAULT_TIMEZONE) -> dict[str, dict[str, Any]]:
    """District code → its district-wide targets for the as-of day's year and quarter, with progress at the end
    of that day: ``{"year": …, "quarter": …}`` (None where none is set). For ``/districts/progress``."""
    q = quarter_of(as_of)
    listed = [t for t in _listing(conn, year=as_of.year, district_level=True) if t["quarter"] in (None, q)]
    blocks: dict[str, dict[str, Any]] = {}
    for t in _with_progress(conn, listed, as_of, tz, tolerance):
        block = blocks.setdefault(t["district"], {"year": None, "quarter": None})
        block["year" if t["quarter"] is None else "quarter"] = as_json(t)
    return blocks


def add_district_targets(conn: Connection, answer: dict[str, Any], tolerance: Tolerance, as_of: date, *,
                         tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """``gis.analysis.progress.district_progress``'s answer with a ``targets`` block per district (``district_targets``:
    the year's and the quarter's targets with progress at the end of ``as_of``; None where none is set)."""
    blocks = district_targets(conn, tolerance, as_of, tz=tz)
    for d in answer["districts"]:
        d["targets"] = blocks.get(d["district"], {"year": None, "quarter": None})
    return answer
