"""The days a project's compensation was published (亮底征收): recorded by the command centre, one per day.

Decree 590 Art. 29 asks that each household's compensation be published within the expropriation area; the public
pages (``gis.disclosure``) show the record live, but the day it was actually published, on site or in the
government's announcements, is a fact of its own. The sunshine check (``gis.inspections.sunshine``) holds each
payment against the project's first publication day on or before the payment's. Who recorded a day, and when, is kept.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.limits import NOTE, PAST_DAY
from gis.platform.errors import Conflict, InvalidInput, ProjectNotFound

_PROJECT_SQL = "SELECT id FROM projects WHERE id = :id AND archived_at IS NULL"
_INSERT_SQL = """
INSERT INTO compensation_disclosures (project_id, published_on, note, recorded_by)
VALUES (:project_id, :published_on, :note, :actor)
ON CONFLICT (project_id, published_on) DO NOTHING
RETURNING id
"""
_LIST_SQL = """
SELECT id, project_id, published_on, note, recorded_by, recorded_at FROM compensation_disclosures
WHERE project_id = :project_id ORDER BY published_on, id
"""
# The first publication day of each project by a day. Dated by the day it happened, as payments are by theirs.
FIRST_DISCLOSED_SQL = """
SELECT project_id, min(published_on) AS disclosed_on FROM compensation_disclosures
WHERE published_on <= :as_of GROUP BY project_id
"""


def record_disclosure(conn: Connection, project_id: int, published_on: date, actor: str, *, today: date,
                      note: str | None = None) -> dict[str, Any]:
    """Record that the project's compensation was published on ``published_on`` (not after ``today``).

    Unknown or archived project: ProjectNotFound; a day out of bounds or a note too long: InvalidInput; the same
    day already recorded for the project: Conflict."""
    if conn.execute(text(_PROJECT_SQL), {"id": project_id}).first() is None:
        raise ProjectNotFound(project_id)
    for where, limit, value in (("published_on", PAST_DAY, published_on), ("note", NOTE, note)):
        problem = limit.problem(value, today)
        if problem:
            raise InvalidInput(f"{where} {problem}", where)
    new_id = conn.execute(text(_INSERT_SQL), {"project_id": project_id, "published_on": published_on,
                                              "note": note, "actor": actor}).scalar()
    if new_id is None:
        raise Conflict(f"project {project_id}'s publication on {published_on.isoformat()} is already recorded")
    return next(d for d in list_disclosures(conn, project_id) if d["id"] == new_id)


def list_disclosures(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """The project's recorded publication days, earliest first, as JSON-ready dicts."""
    if conn.execute(text(_PROJECT_SQL), {"id": project_id}).first() is None:
        raise ProjectNotFound(project_id)
    return [{"id": r["id"], "project_id": r["project_id"], "published_on": r["published_on"].isoformat(),
             "note": r["note"], "recorded_by": r["recorded_by"], "recorded_at": r["recorded_at"].isoformat()}
            for r in conn.execute(text(_LIST_SQL), {"project_id": project_id}).mappings()]
