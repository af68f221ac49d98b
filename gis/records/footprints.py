"""Kept overlaps of project footprints with parcels (table project_parcel_overlaps).

Computed once per project and refreshed for the parcels or projects whose geometry
changes, so that a blockers query is a join and a filter rather than a clip.
The footprint is cut into small pieces (ST_Subdivide) so each clip handles a few
hundred vertices instead of the whole corridor; parcels wholly inside the
footprint skip the clip, their overlap is their own area.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

# The pieces a footprint is cut into: edges at most this long (metres), pieces of at most this many vertices.
_PIECE_EDGE_M = 100
_PIECE_VERTICES = 32


def measured_overlaps_sql(footprints: str, parcel_filter: str = "") -> str:
    """CTEs ending in ``measured(key, parcel_id, parcel_m2, overlap_m2, share)``.

    ``footprints`` is a SELECT yielding ``(key, footprint)`` rows; ``parcel_filter`` an optional
    WHERE clause on ``pa`` (parcels). Both are SQL written in this package, never caller text.
    """
    return f"""
WITH footprints AS ({footprints}),
-- Small pieces: densified first, so that a long corridor of few vertices is cut too (ST_Subdivide alone
-- returns it whole, and its box, most of the city, is what each index probe would scan).
pieces AS MATERIALIZED (
    SELECT f.key, ST_Subdivide(ST_Segmentize(f.footprint, {_PIECE_EDGE_M}), {_PIECE_VERTICES}) AS piece
    FROM footprints f
),
-- A parcel wholly inside a piece counts at its own area; only those on a piece's edge are clipped. The pieces
-- tile the footprint, so a parcel's overlap is the sum over the pieces it meets.
parts AS (
    SELECT pc.key, pa.id AS parcel_id, ST_Area(pa.geom) AS parcel_m2,
           CASE WHEN ST_Covers(pc.piece, pa.geom) THEN ST_Area(pa.geom)
                ELSE ST_Area(ST_Intersection(pa.geom, pc.piece)) END AS part_m2
    FROM pieces pc
    JOIN parcels pa ON ST_Intersects(pa.geom, pc.piece)
    {parcel_filter}
),
measured AS (
    SELECT key, parcel_id, max(parcel_m2) AS parcel_m2, sum(part_m2) AS overlap_m2,
           CASE WHEN max(parcel_m2) > 0 THEN sum(part_m2) / max(parcel_m2) ELSE 0 END AS share
    -- OFFSET 0 measures each pair in the join's order, a piece's parcels one after another, where PostGIS
    -- reuses the piece's prepared geometry; sorted for the grouping first, the pieces would alternate.
    FROM (SELECT * FROM parts OFFSET 0) p
    GROUP BY key, parcel_id
)"""


_PROJECT_FOOTPRINTS = "SELECT id AS key, footprint FROM projects WHERE id = ANY(:project_ids)"
_INSERT = """
INSERT INTO project_parcel_overlaps (parcel_id, project_id, overlap_m2, share)
SELECT parcel_id, key, overlap_m2, share FROM measured WHERE overlap_m2 > 0
"""


def refresh_projects(conn: Connection, project_ids: Sequence[int] | None = None) -> int:
    """Recompute every overlap of the given projects (all when None) with their stored footprints."""
    ids = list(project_ids) if project_ids is not None else _active_projects(conn)
    conn.execute(text("DELETE FROM project_parcel_overlaps WHERE project_id = ANY(:ids)"), {"ids": ids})
    return conn.execute(text(measured_overlaps_sql(_PROJECT_FOOTPRINTS) + _INSERT), {"project_ids": ids}).rowcount


def refresh_parcels(conn: Connection, parcel_ids: Sequence[int]) -> int:
    """Recompute the overlaps of the given parcels with every project (after a geometry change or import)."""
    ids = list(parcel_ids)
    if not ids:
        return 0
    conn.execute(text("DELETE FROM project_parcel_overlaps WHERE parcel_id = ANY(:ids)"), {"ids": ids})
    stmt = text(measured_overlaps_sql(_PROJECT_FOOTPRINTS, "WHERE pa.id = ANY(:parcel_ids)") + _INSERT)
    return conn.execute(stmt, {"project_ids": _active_projects(conn), "parcel_ids": ids}).rowcount


def _active_projects(conn: Connection) -> list[int]:
    """Projects not archived: an archived project's overlaps stay as they were when it was archived."""
    return list(conn.execute(text("SELECT id FROM projects WHERE archived_at IS NULL")).scalars())



_FIRST_REVISIONS = """
INSERT INTO project_revisions (project_id, revision, effective_from, centerline, corridor_width_m, boundary,
                               footprint, created_by, note)
SELECT p.id, p.revision, coalesce(p.freeze_date, CAST(now() AS date)), p.centerline, p.corridor_width_m, p.boundary,
       p.footprint, :actor, '首次线位'
FROM projects p
WHERE NOT EXISTS (SELECT FROM project_revisions r WHERE r.project_id = p.id)
"""


def record_first_revisions(conn: Connection, actor: str) -> int:
    """Keep the alignment of projects loaded in bulk (the demo) as their first revision, in force from the freeze."""
    return conn.execute(text(_FIRST_REVISIONS), {"actor": actor}).rowcount


_RECORD_REVISION = """
INSERT INTO project_revisions (project_id, revision, effective_from, centerline, corridor_width_m, boundary,
                               footprint, created_by, note)
VALUES (:project_id, :revision, :effective_from,
        ST_GeomFromWKB(:line, Find_SRID('public', 'projects', 'footprint')), :width,
        ST_GeomFromWKB(:boundary, Find_SRID('public', 'projects', 'footprint')),
        ST_GeomFromWKB(:footprint, Find_SRID('public', 'projects', 'footprint')), :actor, :note)
"""


def record_revision(conn: Connection, project_id: int, revision: int, alignment: dict[str, Any], *, actor: str,
                    effective_from: date, note: str | None) -> None:
    """Keep an alignment (``gis.records.projects.alignment_params``) as revision ``revision`` of a project."""
    conn.execute(text(_RECORD_REVISION), alignment | {
        "project_id": project_id, "revision": revision, "effective_from": effective_from, "actor": actor,
        "note": note})


_SHELVE = """
INSERT INTO revision_parcel_overlaps (parcel_id, project_id, revision, overlap_m2, share)
SELECT o.parcel_id, o.project_id, p.revision, o.overlap_m2, o.share
FROM project_parcel_overlaps o JOIN projects p ON p.id = o.project_id
WHERE o.project_id = :project_id
ON CONFLICT DO NOTHING
"""


def shelve_overlaps(conn: Connection, project_id: int) -> None:
    """Move a project's kept overlaps to its current revision's record (it is superseded or archived)."""
    record_first_revisions(conn, "system")  # projects written by hand-made SQL have none yet
    conn.execute(text(_SHELVE), {"project_id": project_id})
    conn.execute(text("DELETE FROM project_parcel_overlaps WHERE project_id = :project_id"),
                 {"project_id": project_id})


# The revision in force on :as_of_day: the latest to take effect by then; before the first, the first.
# (Projects written by hand-made SQL have no revisions: their current geometry is all there is.)
_IN_FORCE = """coalesce(
    (SELECT max(r.revision) FROM project_revisions r WHERE r.project_id = p.id AND r.effective_from <= :as_of_day),
    (SELECT min(r.revision) FROM project_revisions r WHERE r.project_id = p.id), p.revision)"""


def overlaps_in_force_sql() -> str:
    """A subquery, to stand where ``project_parcel_overlaps`` does, of the overlaps of each project's revision
    in force on ``:as_of_day``: the kept ones when that is the current revision, else those kept with it
    when it was superseded. Columns: parcel_id, project_id, overlap_m2, share."""
    return f"""(
    SELECT po.parcel_id, po.project_id, po.overlap_m2, po.share
    FROM projects p CROSS JOIN LATERAL (SELECT {_IN_FORCE} AS revision) f
    JOIN project_parcel_overlaps po ON po.project_id = p.id AND f.revision = p.revision
    UNION ALL
    SELECT ro.parcel_id, ro.project_id, ro.overlap_m2, ro.share
    FROM projects p CROSS JOIN LATERAL (SELECT {_IN_FORCE} AS revision) f
    JOIN revision_parcel_overlaps ro ON ro.project_id = p.id AND ro.revision = f.revision AND f.revision <> p.revision
)"""
