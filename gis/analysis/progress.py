"""District against district (比拼): parcels in project footprints cleared, per district and project.

The change over the last 1, 3 and 7 days replays the stage history to the end
of those days, so the ranking is the one a leader would have seen then.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.stages import STAGE_AT_SQL, end_of_day
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.export import Column
from gis.platform.config import DEFAULT_TIMEZONE

CHANGE_DAYS = (1, 3, 7)

_FROM = f"""
FROM project_parcel_overlaps o
JOIN parcels pa ON pa.id = o.parcel_id
JOIN districts d ON d.id = pa.district_id
JOIN projects p ON p.id = o.project_id
WHERE {tolerance_sql()}
"""


def _cleared_then(days: int) -> str:
    return (f"count(DISTINCT pa.id) FILTER (WHERE {STAGE_AT_SQL.format(parcel='pa.id', end=f':end_{days}')}"
            f" = 'cleared') AS cleared_{days}d_ago")


def _sql(columns: tuple[str, ...], only_project: bool, replay: bool = False) -> str:
    then = ",\n       ".join(_cleared_then(n) for n in CHANGE_DAYS)
    positions = ", ".join(str(i) for i in range(1, len(columns) + 1))
    # Replayed (reports): the stage at the end of the day itself, and only parcels recorded by then.
    stage_then = STAGE_AT_SQL.format(parcel="pa.id", end=":end_0")
    total = f"count(DISTINCT pa.id) FILTER (WHERE {stage_then} IS NOT NULL)" if replay else "count(DISTINCT pa.id)"
    cleared = f"{stage_then} = 'cleared'" if replay else "pa.stage = 'cleared'"
    return f"""
SELECT {", ".join(columns)},
       {total} AS total,
       count(DISTINCT pa.id) FILTER (WHERE {cleared}) AS cleared,
       {then}
{_FROM} {"AND p.id = :project_id" if only_project else ""}
GROUP BY {positions}
ORDER BY {positions}
"""


_DISTRICT_COLUMNS = ("d.code AS district", "d.name AS district_name")
_PROJECT_COLUMNS = _DISTRICT_COLUMNS + ("p.id AS project_id", "p.code AS project_code", "p.name AS project_name")


def _figures(row: Any) -> dict[str, Any]:
    total, cleared = row["total"], row["cleared"]
    return {
        "total": total,
        "cleared": cleared,
        "remaining": total - cleared,
        "percent_cleared": round(100.0 * cleared / total, 2) if total else None,
        "change": {f"{n}d": cleared - row[f"cleared_{n}d_ago"] for n in CHANGE_DAYS},
    }


def district_progress(conn: Connection, tolerance: Tolerance, today: date, *, tz: str = DEFAULT_TIMEZONE,
                      project_id: int | None = None, replay: bool = False) -> dict[str, Any]:
    """Per district (overall and per project): total, cleared, remaining, percent, change, and rank.

    ``replay``: ``today``'s own figures are replayed from the history too (parcels recorded by the end
    of that day, their stage then), so a past day's ranking does not move when the data does.
    """
    params: dict[str, Any] = dict(tolerance.params)
    params |= {f"end_{n}": end_of_day(today - timedelta(days=n), tz) for n in (0, *CHANGE_DAYS)}
    one = project_id is not None
    if one:
        params["project_id"] = project_id
    by_project = conn.execute(text(_sql(_PROJECT_COLUMNS, one, replay)), params).mappings().all()
    overall = conn.execute(text(_sql(_DISTRICT_COLUMNS, one, replay)), params).mappings().all()
    districts = []
    for row in overall:
        projects = [
            {k: r[k] for k in ("project_id", "project_code", "project_name")} | _figures(r)
            for r in by_project if r["district"] == row["district"]
        ]
        districts.append({"district": row["district"], "district_name": row["district_name"]} | _figures(row)
                         | {"projects": projects})
    ranked = sorted(districts, key=lambda d: (-(d["percent_cleared"] or 0), -d["cleared"], d["district"]))
    for rank, d in enumerate(ranked, start=1):
        d["rank"] = rank
    return {"date": today.isoformat(), "tolerance": tolerance.as_dict(), "districts": ranked}


# Spreadsheets and GIS files: one row per district, ranked, with its boundary for the GIS formats.
PROGRESS_EXPORT_COLUMNS: tuple[Column, ...] = (
    Column("rank", "名次", "int"),
    Column("district_code", "片区代码", shp="district", width=10),
    Column("district_name", "片区", shp="dist_name", width=10),
    Column("total", "项目内地块(宗)", "int", total=True),
    Column("cleared", "已净地(宗)", "int", total=True),
    Column("remaining", "未净地(宗)", "int", total=True),
    Column("percent_cleared", "净地率(%)", "float", shp="pct_clear"),
    *(Column(f"change_{n}d", f"近{n}日新增净地(宗)", "int", total=True, shp=f"chg_{n}d") for n in CHANGE_DAYS),
)


def progress_export_rows(conn: Connection, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """``district_progress``'s ranking as rows of ``PROGRESS_EXPORT_COLUMNS``, each with its district's boundary
    (``geom``, WKB in the working CRS)."""
    boundaries = dict(conn.execute(text("SELECT code, ST_AsBinary(geom) FROM districts")).all())
    return [d | {"district_code": d["district"], "geom": bytes(boundaries[d["district"]])}
            | {f"change_{n}d": d["change"][f"{n}d"] for n in CHANGE_DAYS}
            for d in answer["districts"]]
