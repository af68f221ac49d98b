"""Projects with their progress: parcels in the footprint, cleared, still blocking, days to the deadline."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.blockers import Tolerance
from gis.config import SQM_PER_MU
from gis.errors import InvalidInput, NotFound
from gis.geometry_input import corridor
from gis.project_overlaps import refresh_projects

_PROGRESS_SQL = """
SELECT p.id, p.code, p.name, p.kind, p.corridor_width_m, p.freeze_date, p.deadline,
       ST_Area(p.footprint) AS footprint_m2,
       count(o.parcel_id) AS parcels,
       count(o.parcel_id) FILTER (WHERE pa.stage = 'cleared') AS cleared,
       count(o.parcel_id) FILTER (WHERE pa.stage <> 'cleared') AS blocking,
       coalesce(sum(pa.floor_area_m2) FILTER (WHERE pa.stage <> 'cleared' AND pa.kind = 'house'), 0)
           AS blocking_house_m2,
       coalesce(sum(pa.land_area_mu) FILTER (WHERE pa.stage <> 'cleared' AND pa.kind = 'land'), 0)
           AS blocking_land_mu,
       coalesce(sum(o.overlap_m2) FILTER (WHERE pa.stage <> 'cleared'), 0) AS blocking_overlap_m2,
       coalesce(sum(pa.households) FILTER (WHERE pa.stage <> 'cleared'), 0) AS blocking_households,
       count(o.parcel_id) FILTER (WHERE pa.stage <> 'cleared' AND pa.holdout) AS holdouts
       {geometry}
FROM projects p
LEFT JOIN project_parcel_overlaps o
       ON o.project_id = p.id AND o.overlap_m2 >= :min_m2 AND o.share >= :min_share
LEFT JOIN parcels pa ON pa.id = o.parcel_id
WHERE (CAST(:project_id AS integer) IS NULL OR p.id = :project_id)
GROUP BY p.id
ORDER BY p.id
"""
_GEOMETRY = """, ST_AsGeoJSON(ST_Transform(p.footprint, 4326), 7) AS footprint,
       ST_AsGeoJSON(ST_Transform(p.centerline, 4326), 7) AS centerline"""


def _summary(row: Any, today: date) -> dict[str, Any]:
    parcels, cleared = row["parcels"], row["cleared"]
    out = {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "kind": row["kind"],
        "corridor_width_m": row["corridor_width_m"],
        "freeze_date": row["freeze_date"].isoformat() if row["freeze_date"] else None,
        "deadline": row["deadline"].isoformat() if row["deadline"] else None,
        "days_to_deadline": (row["deadline"] - today).days if row["deadline"] else None,
        "footprint_m2": round(row["footprint_m2"], 2),
        "footprint_mu": round(row["footprint_m2"] / SQM_PER_MU, 4),
        "parcels": parcels,
        "cleared": cleared,
        "blocking": row["blocking"],
        "percent_cleared": round(100.0 * cleared / parcels, 2) if parcels else None,
        "blocking_house_m2": round(row["blocking_house_m2"], 2),
        "blocking_land_mu": round(row["blocking_land_mu"], 4),
        "blocking_overlap_m2": round(row["blocking_overlap_m2"], 2),
        "blocking_overlap_mu": round(row["blocking_overlap_m2"] / SQM_PER_MU, 4),
        "blocking_households": row["blocking_households"],
        "holdouts": row["holdouts"],
    }
    if "footprint" in row.keys():
        out["footprint"] = json.loads(row["footprint"])
        out["centerline"] = json.loads(row["centerline"]) if row["centerline"] else None
    return out


def list_projects(conn: Connection, tolerance: Tolerance, today: date, *, with_geometry: bool = False,
                  project_id: int | None = None) -> list[dict[str, Any]]:
    """Every project (or one) with its progress, as of now."""
    sql = _PROGRESS_SQL.format(geometry=_GEOMETRY if with_geometry else "")
    rows = conn.execute(text(sql), {"min_m2": tolerance.min_overlap_m2, "min_share": tolerance.min_share,
                                    "project_id": project_id}).mappings().all()
    return [_summary(r, today) for r in rows]


def get_project(conn: Connection, project_id: int, tolerance: Tolerance, today: date) -> dict[str, Any]:
    found = list_projects(conn, tolerance, today, with_geometry=True, project_id=project_id)
    if not found:
        raise NotFound(f"no project with id {project_id}")
    return found[0] | {"tolerance": tolerance.as_dict()}


def resolve_project(conn: Connection, ref: str) -> int:
    """A project id from its id or its code (the CLI takes either)."""
    row = conn.execute(
        text("SELECT id FROM projects WHERE code = :ref OR CAST(id AS text) = :ref"), {"ref": ref}
    ).first()
    if row is None:
        raise NotFound(f"no project {ref!r}")
    return int(row[0])


def save_project(
    conn: Connection,
    *,
    code: str,
    name: str,
    kind: str,
    srid: int,
    centerline: BaseGeometry | None = None,
    corridor_width_m: float | None = None,
    boundary: BaseGeometry | None = None,
    freeze_date: date | None = None,
    deadline: date | None = None,
) -> int:
    """Create or replace a project (by code) in the working CRS, then recompute its overlaps."""
    if kind not in ("rail", "road", "zone"):
        raise InvalidInput("kind must be rail, road or zone", "kind")
    if (centerline is None) == (boundary is None):
        raise InvalidInput("give either a centre line with a corridor width or a boundary polygon", "geometry")
    if centerline is not None and not (corridor_width_m and corridor_width_m > 0):
        raise InvalidInput("a centre line needs a positive corridor width", "corridor_width_m")
    params = {
        "code": code, "name": name, "kind": kind, "srid": srid, "width": corridor_width_m,
        "line": shapely.to_wkb(_multi_line(centerline)) if centerline is not None else None,
        "boundary": shapely.to_wkb(_multi_polygon(boundary)) if boundary is not None else None,
        "footprint": shapely.to_wkb(_multi_polygon(
            corridor(centerline, corridor_width_m) if centerline is not None else boundary)),
        "freeze_date": freeze_date, "deadline": deadline,
    }
    project_id = conn.execute(text(_UPSERT_PROJECT), params).scalar_one()
    refresh_projects(conn, [project_id])
    return int(project_id)


def _multi_line(geom: BaseGeometry) -> BaseGeometry:
    return shapely.multilinestrings([geom]) if geom.geom_type == "LineString" else geom


def _multi_polygon(geom: BaseGeometry) -> BaseGeometry:
    return shapely.multipolygons([geom]) if geom.geom_type == "Polygon" else geom


_UPSERT_PROJECT = """
INSERT INTO projects (id, code, name, kind, centerline, corridor_width_m, boundary, footprint, freeze_date, deadline)
VALUES (
    (SELECT coalesce(max(id), 0) + 1 FROM projects), :code, :name, :kind,
    ST_GeomFromWKB(:line, :srid), :width, ST_GeomFromWKB(:boundary, :srid),
    ST_GeomFromWKB(:footprint, :srid),
    :freeze_date, :deadline)
ON CONFLICT (code) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind, centerline = EXCLUDED.centerline,
    corridor_width_m = EXCLUDED.corridor_width_m, boundary = EXCLUDED.boundary, footprint = EXCLUDED.footprint,
    freeze_date = EXCLUDED.freeze_date, deadline = EXCLUDED.deadline
RETURNING id
"""
