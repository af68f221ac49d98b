"""The assisting units' progress laid out and compared (协保进度晒一晒、比一比), and which unit helps with a parcel.

The rules, each stated here once, all as of the end of a day (stages replayed from the history, so a past day
gives the answer it gave then):

- **A unit's households** are those of the parcels assigned to it at the end of the day (an assignment that
  started on or before the day and had not ended by then; a reassignment on that day counts for the new unit).
  Progress goes with the household: a unit taking over a household counts what it reaches.
- **Signed**: households whose parcel is at ``signed`` or beyond on the main path (signed, paid, demolished,
  cleared) at the end of the day; **cleared**: at ``cleared``.
- **Holdouts**: the unit's parcels that are holdouts (钉子户) — flagged on the record, or flagged by a 'flags'
  event up to the end of the day; **resolved**: those of them that are signed (as above).
- **The ranking**: by signed share of households (highest first), then cleared share, then holdouts resolved,
  then the unit's code; units with no households come last. Units equal on the three measures share a rank
  (1, 2, 2, 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.privacy import mask_name
from gis.domain.stages import STAGE_AT_SQL, STAGES, end_of_day, today_in
from gis.platform.config import DEFAULT_TIMEZONE

SIGNED_OR_LATER = STAGES[STAGES.index("signed"):]
RANKING_RULE_ZH = ("按签约户数占比从高到低排名，其次为交地户数占比、已化解钉子户数；"
                   "协保户数按截至当日分配给该单位的地块计算，阶段按当日日终的历史记录回放")

# A parcel held by a unit at the end of :as_of (assignments are by day: one ending on :as_of has passed on).
HELD_SQL = """
SELECT a.parcel_id, a.unit_id, a.staff_id, a.assigned_on FROM unit_assignments a
WHERE a.assigned_on <= :as_of AND (a.ended_on IS NULL OR a.ended_on > :as_of)
"""

_RANKING_SQL = f"""
WITH held AS ({HELD_SQL}),
st AS (
    SELECT h.unit_id, pa.id, pa.households, {STAGE_AT_SQL.format(parcel="pa.id", end=":end")} AS stage,
           (pa.holdout OR EXISTS (SELECT 1 FROM parcel_events e WHERE e.parcel_id = pa.id AND e.kind = 'flags'
                                  AND e.at < :end AND e.changes -> 'holdout' ->> 'to' = 'true')) AS holdout
    FROM held h JOIN parcels pa ON pa.id = h.parcel_id
)
SELECT u.id, u.code, u.name,
       (SELECT count(*) FROM unit_staff s WHERE s.unit_id = u.id AND s.active) AS staff,
       count(st.id) AS parcels,
       coalesce(sum(st.households), 0) AS households,
       coalesce(sum(st.households) FILTER (WHERE st.stage = ANY(:signed)), 0) AS signed,
       coalesce(sum(st.households) FILTER (WHERE st.stage = 'cleared'), 0) AS cleared,
       count(st.id) FILTER (WHERE st.holdout) AS holdouts,
       count(st.id) FILTER (WHERE st.holdout AND st.stage = ANY(:signed)) AS holdouts_resolved
FROM assisting_units u LEFT JOIN st ON st.unit_id = u.id
WHERE CAST(:unit AS integer) IS NULL OR u.id = :unit
GROUP BY u.id ORDER BY u.code
"""


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def unit_progress(conn: Connection, *, as_of: date | None = None, tz: str = DEFAULT_TIMEZONE,
                  unit_id: int | None = None) -> list[dict[str, Any]]:
    """Each unit (or one) with its households assigned, signed and cleared, holdouts and holdouts resolved, and
    the signed and cleared shares, at the end of ``as_of`` (default today in the city); by code."""
    as_of = as_of or today_in(tz)
    rows = conn.execute(text(_RANKING_SQL), {"as_of": as_of, "end": end_of_day(as_of, tz),
                                             "signed": list(SIGNED_OR_LATER), "unit": unit_id}).mappings()
    return [dict(r) | {"signed_share": _share(r["signed"], r["households"]),
                       "cleared_share": _share(r["cleared"], r["households"])} for r in rows]


def _key(u: dict[str, Any]) -> tuple[Any, ...]:
    return (u["households"] == 0, -(u["signed_share"] or 0), -(u["cleared_share"] or 0), -u["holdouts_resolved"])


def unit_ranking(conn: Connection, *, as_of: date | None = None, tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """The units ranked by the rule of this module's docstring (``rank``, equal measures sharing one), with
    the rule in words and the day."""
    as_of = as_of or today_in(tz)
    units = sorted(unit_progress(conn, as_of=as_of, tz=tz), key=lambda u: (_key(u), u["code"]))
    for i, u in enumerate(units):
        u["rank"] = units[i - 1]["rank"] if i and _key(units[i - 1]) == _key(u) else i + 1
    return {"as_of": as_of.isoformat(), "rule": RANKING_RULE_ZH, "units": units}


_PARCEL_UNITS_SQL = f"""
WITH held AS ({HELD_SQL})
SELECT h.parcel_id, u.code AS unit, u.name AS unit_name, s.name AS staff_name, h.assigned_on
FROM held h JOIN assisting_units u ON u.id = h.unit_id LEFT JOIN unit_staff s ON s.id = h.staff_id
WHERE h.parcel_id = ANY(:ids)
"""


def assisting_units_of(conn: Connection, parcel_ids: Sequence[int], *, as_of: date | None = None,
                       tz: str = DEFAULT_TIMEZONE, reveal_personal: bool = False) -> dict[int, dict[str, Any]]:
    """Parcel id → the unit helping with it at the end of ``as_of`` (code, name, since when) and the staff
    member (masked unless ``reveal_personal``); parcels with no unit then are left out. For the weekly
    dispatch agenda's holdouts and stalled key parcels (每周一调度)."""
    as_of = as_of or today_in(tz)
    rows = conn.execute(text(_PARCEL_UNITS_SQL), {"as_of": as_of, "ids": list(parcel_ids)}).mappings()
    return {r["parcel_id"]: {"unit": r["unit"], "unit_name": r["unit_name"], "assigned_on": r["assigned_on"],
                             "staff_name": r["staff_name"] if reveal_personal else mask_name(r["staff_name"])}
            for r in rows}


_UNIT_PARCELS_SQL = f"""
WITH held AS ({HELD_SQL})
SELECT pa.id AS parcel_id, pa.code, pa.kind, d.name AS district_name, pa.households, pa.holdout,
       {STAGE_AT_SQL.format(parcel="pa.id", end=":end")} AS stage, s.name AS staff_name, h.assigned_on,
       ST_AsGeoJSON(ST_Transform(pa.geom, 4326), 7) AS geometry
FROM held h JOIN parcels pa ON pa.id = h.parcel_id JOIN districts d ON d.id = pa.district_id
LEFT JOIN unit_staff s ON s.id = h.staff_id
WHERE h.unit_id = :unit
ORDER BY pa.code
"""


def unit_parcels(conn: Connection, unit_id: int, *, as_of: date | None = None, tz: str = DEFAULT_TIMEZONE,
                 reveal_personal: bool = False) -> list[dict[str, Any]]:
    """The parcels a unit helps with at the end of ``as_of``: code, district, households, holdout, stage then,
    staff member (masked unless ``reveal_personal``), since when, and the outline as WGS 84 GeoJSON text."""
    as_of = as_of or today_in(tz)
    rows = conn.execute(text(_UNIT_PARCELS_SQL), {"as_of": as_of, "end": end_of_day(as_of, tz),
                                                  "unit": unit_id}).mappings()
    return [dict(r) | {"staff_name": r["staff_name"] if reveal_personal else mask_name(r["staff_name"])}
            for r in rows]
