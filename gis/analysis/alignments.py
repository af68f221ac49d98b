"""Alignment revisions (改线): a project's new line and width, or new boundary, kept with every earlier one.

Each revision records its geometry, who made it, when, why, and the day it takes effect; answers for a
past day (blockers ``as_of``, reports) use the revision in force on that day
(``gis.records.footprints.overlaps_in_force_sql``). The diff of two revisions says what the change does:
parcels entering and leaving the footprint, overlap gained and lost, households, holdouts, and the
estimated compensation before and after, measured the way ad hoc overlap queries are.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import shapely
from sqlalchemy import Connection, text

from gis.analysis.overlaps import Totals, footprint_geojson, overlap_hits, overlap_report
from gis.domain.geometry import QueryGeometry, alignment_of
from gis.domain.tolerance import Tolerance
from gis.platform.config import SQM_PER_MU
from gis.platform.db import working_srid
from gis.platform.errors import InvalidInput, NotFound
from gis.records.footprints import record_revision, refresh_projects, shelve_overlaps
from gis.records.projects import alignment_params, check_in_city, resolve_project

MAX_NOTE = 2000

_CURRENT = """
SELECT p.revision, p.corridor_width_m, ST_AsBinary(p.centerline) AS centerline, ST_AsBinary(p.boundary) AS boundary,
       (SELECT max(r.effective_from) FROM project_revisions r WHERE r.project_id = p.id) AS effective_from
FROM projects p WHERE p.id = :id
FOR UPDATE
"""
_MOVE = """
UPDATE projects SET revision = :revision, centerline = ST_GeomFromWKB(:line, ST_SRID(footprint)),
       corridor_width_m = :width, boundary = ST_GeomFromWKB(:boundary, ST_SRID(footprint)),
       footprint = ST_GeomFromWKB(:footprint, ST_SRID(footprint))
WHERE id = :project_id
"""


def revise_alignment(conn: Connection, ref: str | int, alignment: QueryGeometry, *, actor: str, today: date,
                     effective_from: date | None = None, note: str | None = None) -> int:
    """Make ``alignment`` the project's current revision; returns its number.

    Refused: a revision identical to the current one, and one taking effect before the current one did
    (the revisions in force must follow each other in time).
    """
    project_id = resolve_project(conn, ref)
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"the note may have at most {MAX_NOTE} characters", "note")
    current = conn.execute(text(_CURRENT), {"id": project_id}).one()
    if _same_alignment(current, alignment):
        raise InvalidInput(f"the alignment is identical to the current revision {current.revision}", "geometry")
    effective_from = effective_from or today
    if current.effective_from is not None and effective_from < current.effective_from:
        raise InvalidInput(f"revision {current.revision} is in force from {current.effective_from}; a new one "
                           "cannot take effect before it", "effective_from")
    check_in_city(conn, alignment)
    shelve_overlaps(conn, project_id)
    revision = current.revision + 1
    params = alignment_params(alignment)
    conn.execute(text(_MOVE), params | {"project_id": project_id, "revision": revision})
    record_revision(conn, project_id, revision, params, actor=actor, effective_from=effective_from, note=note)
    refresh_projects(conn, [project_id])
    return revision


def _same_alignment(current: Any, alignment: QueryGeometry) -> bool:
    stored = current.centerline if alignment.is_line else current.boundary
    if stored is None or (alignment.is_line and current.corridor_width_m != alignment.width_m):
        return False
    return shapely.equals(shapely.from_wkb(bytes(stored)), alignment.geometry)


_REVISIONS = """
SELECT r.revision, r.effective_from, r.corridor_width_m, ST_Area(r.footprint) AS footprint_m2,
       r.centerline IS NOT NULL AS is_line, r.created_by, r.created_at, r.note, r.revision = p.revision AS current
       {geometry}
FROM project_revisions r JOIN projects p ON p.id = r.project_id
WHERE r.project_id = :id
ORDER BY r.revision
"""
_REVISION_GEOMETRY = ", ST_AsGeoJSON(ST_Transform(r.footprint, 4326), 7) AS footprint"


def list_revisions(conn: Connection, ref: str | int, *, with_geometry: bool = False) -> dict[str, Any]:
    """Every revision of a project (archived ones too), oldest first."""
    project_id = resolve_project(conn, ref, archived=True)
    rows = conn.execute(text(_REVISIONS.format(geometry=_REVISION_GEOMETRY if with_geometry else "")),
                        {"id": project_id}).mappings().all()
    return {"project_id": project_id, "revisions": [_revision_facts(r) for r in rows]}


def _revision_facts(row: Any) -> dict[str, Any]:
    out = {
        "revision": row["revision"], "effective_from": row["effective_from"].isoformat(),
        "geometry_type": "line" if row["is_line"] else "polygon", "corridor_width_m": row["corridor_width_m"],
        "footprint_m2": round(row["footprint_m2"], 2), "footprint_mu": round(row["footprint_m2"] / SQM_PER_MU, 4),
        "created_by": row["created_by"], "created_at": row["created_at"].isoformat(), "note": row["note"],
        "current": row["current"],
    }
    if "footprint" in row.keys():
        out["footprint"] = json.loads(row["footprint"])
    return out


_REVISION_ALIGNMENT = """
SELECT ST_AsBinary(coalesce(centerline, boundary)) AS geom, corridor_width_m, ST_SRID(footprint) AS srid
FROM project_revisions WHERE project_id = :id AND revision = :revision
"""


def revision_alignment(conn: Connection, project_id: int, revision: int) -> QueryGeometry:
    """The alignment of one revision of a project (centre line and corridor width, or boundary) in the working CRS;
    NotFound for a revision it does not have."""
    row = conn.execute(text(_REVISION_ALIGNMENT), {"id": project_id, "revision": revision}).first()
    if row is None:
        raise NotFound(f"project {project_id} has no revision {revision}", "revision")
    return alignment_of(shapely.from_wkb(bytes(row.geom)), row.corridor_width_m, source_srid=row.srid)


def revision_diff(conn: Connection, ref: str | int, a: int, b: int, tolerance: Tolerance, today: date, *,
                  reveal_personal: bool = False) -> dict[str, Any]:
    """What going from revision ``a`` to revision ``b`` does, with today's parcels and standards."""
    project_id = resolve_project(conn, ref, archived=True)
    before, after = revision_alignment(conn, project_id, a), revision_alignment(conn, project_id, b)
    return {"project_id": project_id, "from_revision": a, "to_revision": b} | alignment_diff(
        conn, before, after, tolerance, today, reveal_personal=reveal_personal)


def preview_revision(conn: Connection, ref: str | int, proposed: QueryGeometry, tolerance: Tolerance, today: date,
                     *, reveal_personal: bool = False) -> dict[str, Any]:
    """What a proposed alignment would change against the current one, before it is saved."""
    project_id = resolve_project(conn, ref)
    current = conn.execute(text("SELECT revision FROM projects WHERE id = :id"), {"id": project_id}).scalar_one()
    check_in_city(conn, proposed)
    before = revision_alignment(conn, project_id, current)
    srid = working_srid(conn)
    return {"project_id": project_id, "from_revision": current, "to_revision": None,
            "footprints": {"before": footprint_geojson(conn, before.footprint, srid),
                           "after": footprint_geojson(conn, proposed.footprint, srid)}} | alignment_diff(
        conn, before, proposed, tolerance, today, reveal_personal=reveal_personal)


def preview_project(conn: Connection, proposed: QueryGeometry, tolerance: Tolerance, today: date, *,
                    reveal_personal: bool = False) -> dict[str, Any]:
    """What a new project on ``proposed`` would hit, before it is saved: its footprint and every parcel in it
    beyond the tolerance, with totals and totals by district (the overlap query's answer)."""
    check_in_city(conn, proposed)
    return overlap_report(conn, proposed, working_srid(conn), tolerance, today, reveal_personal=reveal_personal,
                          with_geometry=True)


def alignment_diff(conn: Connection, before: QueryGeometry, after: QueryGeometry, tolerance: Tolerance,
                   today: date, *, reveal_personal: bool = False) -> dict[str, Any]:
    """Parcels entering and leaving the footprint, overlap gained and lost, and both sides' totals."""
    srid = working_srid(conn)
    old = {h["code"]: h for h in overlap_hits(conn, before, srid, tolerance, today, reveal_personal=reveal_personal,
                                              with_geometry=True)}
    new = {h["code"]: h for h in overlap_hits(conn, after, srid, tolerance, today, reveal_personal=reveal_personal,
                                              with_geometry=True)}
    entering = [new[c] for c in sorted(new.keys() - old.keys())]
    leaving = [old[c] for c in sorted(old.keys() - new.keys())]
    changes = {c: new.get(c, {}).get("overlap_m2", 0.0) - old.get(c, {}).get("overlap_m2", 0.0)
               for c in old.keys() | new.keys()}
    gained = sum(d for d in changes.values() if d > 0)
    lost = -sum(d for d in changes.values() if d < 0)
    totals_before, totals_after = Totals.of(list(old.values())), Totals.of(list(new.values()))
    return {
        "tolerance": tolerance.as_dict(),
        "before": {"footprint_m2": round(before.footprint.area, 2)} | totals_before.as_dict(),
        "after": {"footprint_m2": round(after.footprint.area, 2)} | totals_after.as_dict(),
        "entering": entering,
        "leaving": leaving,
        "overlap_changed": [
            {"code": c, "overlap_before_m2": old[c]["overlap_m2"], "overlap_after_m2": new[c]["overlap_m2"]}
            for c in sorted(old.keys() & new.keys()) if abs(changes[c]) >= 0.01
        ],
        "overlap_gained_m2": round(gained, 2), "overlap_gained_mu": round(gained / SQM_PER_MU, 4),
        "overlap_lost_m2": round(lost, 2), "overlap_lost_mu": round(lost / SQM_PER_MU, 4),
        "households_entering": sum(h["households"] or 0 for h in entering),
        "households_leaving": sum(h["households"] or 0 for h in leaving),
        "holdouts_entering": [h["code"] for h in entering if h["holdout"]],
        "holdouts_leaving": [h["code"] for h in leaving if h["holdout"]],
        "estimated_compensation_before_yuan": totals_before.estimated_compensation_yuan,
        "estimated_compensation_after_yuan": totals_after.estimated_compensation_yuan,
    }
