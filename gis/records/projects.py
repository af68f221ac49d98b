"""Projects: their progress (parcels in the footprint, cleared, still blocking, days to the deadline), and
creating, editing and archiving them from the files and fields planners have.

A project's geometry is a centre line with a corridor width, or a boundary polygon; its footprint follows
the one corridor rule (``gis.domain.geometry.corridor``). Every change of geometry is an alignment revision
(``gis.analysis.alignments``); creating a project records revision 1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis.domain.geometry import QueryGeometry, alignment_of
from gis.domain.limits import DAY, limit_of
from gis.domain.schema import metadata
from gis.domain.tolerance import Tolerance, tolerance_sql
from gis.io.features import LINES, POLYGONS, read_features
from gis.platform.config import SQM_PER_MU
from gis.platform.db import working_srid
from gis.platform.errors import Conflict, InvalidInput, ProjectNotFound
from gis.records.footprints import record_revision, refresh_projects, shelve_overlaps

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
       ON o.project_id = p.id AND """ + tolerance_sql() + """
LEFT JOIN parcels pa ON pa.id = o.parcel_id
WHERE (CAST(:project_id AS integer) IS NULL OR p.id = :project_id) AND p.archived_at IS NULL
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
    rows = conn.execute(text(sql), {**tolerance.params,
                                    "project_id": project_id}).mappings().all()
    return [_summary(r, today) for r in rows]


def get_project(conn: Connection, project_id: int, tolerance: Tolerance, today: date) -> dict[str, Any]:
    """One project with its progress as of ``today``, footprint and centre line (WGS 84) and the tolerance applied;
    ProjectNotFound otherwise."""
    found = list_projects(conn, tolerance, today, with_geometry=True, project_id=project_id)
    if not found:
        raise ProjectNotFound(project_id)
    return found[0] | {"tolerance": tolerance.as_dict()}


CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
KINDS = ("rail", "road", "zone")
KIND_LABELS_ZH = {"rail": "铁路", "road": "道路", "zone": "片区/园区"}
# The bounds gis.domain.schema declares for a project's name and dates (gis.domain.limits): dates outside are typing
# mistakes,
# not plans.
MAX_NAME = limit_of(metadata(4326), "projects", "name").max_length
DATE_RANGE = (DAY.ge, DAY.le)


def resolve_project(conn: Connection, ref: str | int, *, archived: bool = False) -> int:
    """A project id from its id or its code; archived projects only when ``archived`` (their revisions stay)."""
    ref = str(ref)
    row = conn.execute(text(
        "SELECT id FROM projects WHERE (code = :ref OR CAST(id AS text) = :ref) "
        "AND (archived_at IS NULL OR CAST(:archived AS boolean))"), {"ref": ref, "archived": archived}).first()
    if row is None:
        raise ProjectNotFound(ref)
    return int(row[0])


@dataclass(frozen=True)
class ProjectFields:
    """The fields of a project other than its geometry; None leaves a field as it is (on edits)."""

    name: str | None = None
    freeze_date: date | None = None
    deadline: date | None = None

    def validated(self, *, creating: bool) -> ProjectFields:
        if creating and self.name is None:
            raise InvalidInput("a project needs a name", "name")
        if self.name is not None and not (0 < len(self.name.strip()) <= MAX_NAME):
            raise InvalidInput(f"the name must have 1 to {MAX_NAME} characters", "name")
        for where, day in (("freeze_date", self.freeze_date), ("deadline", self.deadline)):
            if day is not None and not DATE_RANGE[0] <= day <= DATE_RANGE[1]:
                raise InvalidInput(f"{day} is outside {DATE_RANGE[0]:%Y}-{DATE_RANGE[1]:%Y}", where)
        return self


def check_code(code: str) -> str:
    """``code`` if it is a valid project code (lower-case letters, digits, _ and -, starting with a letter, at most
    40); InvalidInput otherwise."""
    if not CODE_PATTERN.match(code or ""):
        raise InvalidInput(f"project code {code!r}: lower-case letters, digits, _ and -, starting with a letter, "
                           "at most 40 characters (e.g. xinan_road)", "code")
    return code


def add_project(conn: Connection, code: str, kind: str, fields: ProjectFields, alignment: QueryGeometry, *,
                actor: str, today: date) -> int:
    """Create a project with its first alignment revision (in force from today) and its overlaps."""
    check_code(code)
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", "kind")
    fields = fields.validated(creating=True)
    _check_dates(fields.freeze_date, fields.deadline)
    taken = conn.execute(text("SELECT archived_at IS NOT NULL FROM projects WHERE code = :code"),
                         {"code": code}).first()
    if taken is not None:
        raise Conflict(f"project code {code!r} is already taken" + (" (by an archived project)" if taken[0] else ""),
                       "code")
    check_in_city(conn, alignment)
    # Projects are few and created by hand: max + 1 keeps ids small and needs no sequence on Citus.
    project_id = conn.execute(text(_INSERT_PROJECT), {
        "code": code, "name": fields.name.strip(), "kind": kind,
        "freeze_date": fields.freeze_date, "deadline": fields.deadline, **alignment_params(alignment)}).scalar_one()
    record_revision(conn, project_id, 1, alignment_params(alignment), actor=actor, effective_from=today,
                    note="首次线位")
    refresh_projects(conn, [project_id])
    return int(project_id)


def update_project(conn: Connection, ref: str | int, fields: ProjectFields) -> int:
    """Change a project's name or dates (its geometry changes through a revision)."""
    project_id = resolve_project(conn, ref)
    fields = fields.validated(creating=False)
    row = conn.execute(text("SELECT freeze_date, deadline FROM projects WHERE id = :id"), {"id": project_id}).one()
    _check_dates(fields.freeze_date or row.freeze_date, fields.deadline or row.deadline)
    conn.execute(text("""
        UPDATE projects SET name = coalesce(:name, name), freeze_date = coalesce(:freeze_date, freeze_date),
                            deadline = coalesce(:deadline, deadline)
        WHERE id = :id"""), {"id": project_id, "name": fields.name.strip() if fields.name else None,
                             "freeze_date": fields.freeze_date, "deadline": fields.deadline})
    return project_id


def archive_project(conn: Connection, ref: str | int, *, actor: str) -> int:
    """Take a project out of the lists, maps and answers; its revisions, payments and history stay.

    Its current overlaps are kept with its last revision (``revision_parcel_overlaps``), as a superseded
    revision's are, so no query over the kept overlaps sees it any more.
    """
    project_id = resolve_project(conn, ref)
    shelve_overlaps(conn, project_id)
    conn.execute(text("UPDATE projects SET archived_at = now(), archived_by = :actor WHERE id = :id"),
                 {"id": project_id, "actor": actor})
    return project_id


def alignment_from_file(conn: Connection, path: Path, *, width_m: float | None = None, layer: str | None = None,
                        where: str | None = None, crs: int | None = None) -> QueryGeometry:
    """A project's alignment from a planner's file: its lines as one centre line with the corridor ``width_m``,
    or (no width) its polygons as one boundary. For a DXF drawing ``layer`` is the CAD layer."""
    cad = Path(path).suffix.lower() == ".dxf"
    features = read_features(Path(path), LINES if width_m is not None else POLYGONS, working_srid=working_srid(conn),
                             layer=None if cad else layer, cad_layer=layer if cad else None, where=where, crs=crs)
    return alignment_of(features.union(), width_m, source_srid=features.source_srid)


def _check_dates(freeze_date: date | None, deadline: date | None) -> None:
    if freeze_date and deadline and deadline < freeze_date:
        raise InvalidInput(f"the deadline {deadline} comes before the freeze date {freeze_date}", "deadline")


_IN_CITY_SQL = """
SELECT (SELECT count(*) FROM districts) AS districts,
       EXISTS (SELECT FROM districts WHERE ST_Intersects(geom, ST_GeomFromWKB(:wkb, :srid))) AS inside
"""


def check_in_city(conn: Connection, alignment: QueryGeometry) -> None:
    """A footprint must reach into some district: one wholly outside is a wrong file or a wrong CRS."""
    row = conn.execute(text(_IN_CITY_SQL), {"wkb": shapely.to_wkb(alignment.footprint),
                                            "srid": working_srid(conn)}).one()
    if row.districts == 0:
        raise InvalidInput("there are no districts yet: load the districts first (gis districts import)", "districts")
    if not row.inside:
        raise InvalidInput("the footprint lies outside every district: is it the right file and CRS?", "geometry")


def alignment_params(alignment: QueryGeometry) -> dict[str, Any]:
    """Bound parameters of an alignment: centre line and width, or boundary; and the footprint (WKB)."""
    line = alignment.geometry if alignment.is_line else None
    return {
        "line": shapely.to_wkb(_multi_line(line)) if line is not None else None,
        "width": alignment.width_m if line is not None else None,
        "boundary": None if line is not None else shapely.to_wkb(_multi_polygon(alignment.geometry)),
        "footprint": shapely.to_wkb(_multi_polygon(alignment.footprint)),
    }


def _multi_line(geom: BaseGeometry) -> BaseGeometry:
    return shapely.multilinestrings([geom]) if geom.geom_type == "LineString" else geom


def _multi_polygon(geom: BaseGeometry) -> BaseGeometry:
    return shapely.multipolygons([geom]) if geom.geom_type == "Polygon" else geom


_INSERT_PROJECT = """
INSERT INTO projects (id, code, name, kind, centerline, corridor_width_m, boundary, footprint, freeze_date, deadline)
SELECT coalesce(max(id), 0) + 1, :code, :name, :kind,
       ST_GeomFromWKB(:line, Find_SRID('public', 'projects', 'footprint')), :width,
       ST_GeomFromWKB(:boundary, Find_SRID('public', 'projects', 'footprint')),
       ST_GeomFromWKB(:footprint, Find_SRID('public', 'projects', 'footprint')), :freeze_date, :deadline
FROM projects
RETURNING id
"""
