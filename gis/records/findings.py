"""Rectification items (督查督办、整改): inspection findings followed to the end, with their history and evidence.

An item is one finding of an inspection check on one parcel (made by ``gis.rectification.open_item``, which runs
the check). It names the district responsible (the parcel's), optionally an assisting unit by its code (free
text until the units' table exists), a deadline and a status:

    open → rectifying → rectified → verified
                 ↑           ↓
              reopened ←─────┘ (and verified → reopened)

Who moves it: an inspector (or admin) opens, verifies and reopens; a district editor of the item's district (or an
admin) starts and reports the rectification and uploads evidence. Every change is one ``finding_events`` row
written through ``gis.records.history``; the status of any past day is replayed from those rows, so the overdue
list of a past day stays what it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.limits import DAY, NOTE, check_values
from gis.domain.stages import end_of_day, today_in
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.records import history
from gis.records.documents import safe_filename, store_file
from gis.records.users import ROLE_RANK, Principal, Role

STATUSES = ("open", "rectifying", "rectified", "verified", "reopened")
STATUS_LABELS_ZH = {"open": "待整改", "rectifying": "整改中", "rectified": "已整改待核验", "verified": "已核验销号",
                    "reopened": "重新整改"}
# Still to be rectified: an item in one of these past its deadline is overdue.
PENDING = ("open", "rectifying", "reopened")
# Who may make each move: "editor" is a district editor of the item's district (or an admin), "inspector" an
# inspector or admin.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("open", "rectifying"): "editor", ("open", "rectified"): "editor",
    ("reopened", "rectifying"): "editor", ("reopened", "rectified"): "editor",
    ("rectifying", "rectified"): "editor",
    ("rectified", "verified"): "inspector", ("rectified", "reopened"): "inspector",
    ("verified", "reopened"): "inspector",
}
MAX_LIST = 10_000

# The item's status at the end of :end, replayed from its events (constants only in the SQL).
STATUS_AT_SQL = """(SELECT e.status_to FROM finding_events e
    WHERE e.finding_id = {finding} AND e.status_to IS NOT NULL AND e.at < {end}
    ORDER BY e.at DESC, e.id DESC LIMIT 1)"""


def is_inspector(principal: Principal) -> bool:
    """Inspectors and admins open, verify and reopen items."""
    return ROLE_RANK[principal.role] >= ROLE_RANK[Role.inspector]


def ensure_inspector(principal: Principal) -> None:
    """Forbidden unless ``principal`` is an inspector or admin."""
    if not is_inspector(principal):
        raise Forbidden("only an inspector (or admin) may do this with a finding")


def check_status(status: str, where: str = "status") -> str:
    """``status`` if it is one of ``STATUSES``; InvalidInput naming them otherwise."""
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}", where)
    return status


def _check_note(note: str | None, where: str = "note") -> str | None:
    if note is not None:
        check_values({where: NOTE}, {where: note})
    return note


def insert_item(conn: Connection, *, check_name: str, check_params: dict[str, Any], parcel_id: int,
                summary: str, detail: dict[str, Any], deadline: date, unit_code: str | None, note: str | None,
                principal: Principal, at: datetime | None = None) -> int:
    """Store a new item (status open) for a finding already confirmed by its check; its 'created' event too
    (``at``: now unless given)."""
    ensure_inspector(principal)
    check_values({"deadline": DAY}, {"deadline": deadline})
    _check_note(note)
    if unit_code is not None and conn.execute(text("SELECT 1 FROM assisting_units WHERE code = :c"),
                                              {"c": unit_code}).first() is None:
        raise InvalidInput(f"no assisting unit {unit_code!r}", "unit_code")
    district = conn.execute(text("SELECT district_id FROM parcels WHERE id = :id"), {"id": parcel_id}).scalar()
    if district is None:
        raise NotFound(f"no parcel with id {parcel_id}")
    pending = conn.execute(text(
        "SELECT id FROM findings WHERE check_name = :c AND parcel_id = :p AND status <> 'verified' LIMIT 1"),
        {"c": check_name, "p": parcel_id}).scalar()
    if pending is not None:
        raise Conflict(f"finding {pending} of this check on this parcel is still being followed")
    new_id = conn.execute(text(
        """INSERT INTO findings (check_name, check_params, parcel_id, district_id, unit_code, summary, detail,
                                 deadline, note, created_by, created_at, updated_at)
           VALUES (:check, CAST(:params AS jsonb), :parcel, :district, :unit, :summary, CAST(:detail AS jsonb),
                   :deadline, :note, :by, coalesce(CAST(:at AS timestamptz), now()),
                   coalesce(CAST(:at AS timestamptz), now())) RETURNING id"""),
        {"check": check_name, "params": _json(check_params), "parcel": parcel_id, "district": district,
         "unit": unit_code, "summary": summary[:2000], "detail": _json(detail), "deadline": deadline, "note": note,
         "by": principal.name, "at": at}).scalar_one()
    history.record_findings(conn, [history.finding_event(
        new_id, principal.name, "created", status_to="open",
        changes={"check": check_name, "deadline": deadline, "unit_code": unit_code}, note=note, at=at)])
    return int(new_id)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _item_row(conn: Connection, finding_id: int, *, lock: bool = False) -> dict[str, Any]:
    row = conn.execute(text("SELECT * FROM findings WHERE id = :id" + (" FOR UPDATE" if lock else "")),
                       {"id": finding_id}).mappings().first()
    if row is None:
        raise NotFound(f"no finding with id {finding_id}")
    return dict(row)


def may_move(principal: Principal, district_id: int, who: str) -> bool:
    """Whether ``principal`` may make a move reserved to ``who`` (editor or inspector) on an item of a district."""
    if who == "inspector":
        return is_inspector(principal)
    return principal.may_edit_district(district_id)


def set_status(conn: Connection, finding_id: int, status: str, principal: Principal, *, note: str | None = None,
               at: datetime | None = None) -> dict[str, Any]:
    """Move an item to ``status`` when the move is allowed (``TRANSITIONS``) and ``principal`` may make it;
    Conflict for a move the workflow has no arrow for, Forbidden for the wrong role or district. ``at``: now
    unless given."""
    check_status(status)
    _check_note(note)
    item = _item_row(conn, finding_id, lock=True)
    who = TRANSITIONS.get((item["status"], status))
    if who is None:
        raise Conflict(f"a finding cannot go from {item['status']} to {status}")
    if not may_move(principal, item["district_id"], who):
        raise Forbidden("rectifying is for the editors of the finding's district; verifying and reopening for "
                        "inspectors")
    conn.execute(text("UPDATE findings SET status = :s, updated_at = coalesce(CAST(:at AS timestamptz), now()) "
                      "WHERE id = :id"), {"s": status, "id": finding_id, "at": at})
    history.record_findings(conn, [history.finding_event(finding_id, principal.name, "status",
                                                         status_from=item["status"], status_to=status, note=note,
                                                         at=at)])
    return get_item(conn, finding_id)


def add_evidence(conn: Connection, finding_id: int, *, filename: str | None, chunks: Iterable[bytes],
                 data_dir: Path, max_bytes: int, principal: Principal) -> dict[str, Any]:
    """Store an evidence file (整改佐证材料) in the documents' content store for an item of a district the caller
    may edit, and log it in the item's history."""
    item = _item_row(conn, finding_id)
    if not principal.may_edit_district(item["district_id"]):
        raise Forbidden("this finding lies outside the districts this user may edit")
    sha, size, rel = store_file(chunks, data_dir, max_bytes)
    row = conn.execute(text(
        """INSERT INTO finding_documents (finding_id, filename, sha256, size_bytes, storage_path, uploaded_by)
           VALUES (:f, :name, :sha, :size, :path, :by) RETURNING id, filename, sha256, size_bytes, uploaded_at"""),
        {"f": finding_id, "name": safe_filename(filename), "sha": sha, "size": size, "path": rel,
         "by": principal.name}).mappings().one()
    out = dict(row) | {"uploaded_at": row["uploaded_at"].isoformat()}
    history.record_findings(conn, [history.finding_event(finding_id, principal.name, "evidence", changes={
        "document": {k: out[k] for k in ("id", "filename", "sha256", "size_bytes")}})])
    return out


_LIST_SQL = """
SELECT f.id, f.check_name, f.parcel_id, pa.code AS parcel_code, f.district_id, d.code AS district,
       d.name AS district_name, f.unit_code, f.summary, f.deadline, f.status, f.note, f.created_by, f.created_at,
       f.updated_at, f.status IN ('open', 'rectifying', 'reopened') AND f.deadline < :today AS overdue,
       CASE WHEN f.status IN ('open', 'rectifying', 'reopened') AND f.deadline < :today
            THEN CAST(:today AS date) - f.deadline END AS days_overdue
FROM findings f JOIN parcels pa ON pa.id = f.parcel_id JOIN districts d ON d.id = f.district_id
WHERE (CAST(:status AS text) IS NULL OR f.status = :status)
  AND (CAST(:district AS text) IS NULL OR d.code = :district)
  AND (CAST(:overdue AS boolean) IS NULL
       OR (f.status IN ('open', 'rectifying', 'reopened') AND f.deadline < :today) = :overdue)
  AND (CAST(:ids AS integer[]) IS NULL OR f.id = ANY(:ids))
ORDER BY f.deadline, f.id
LIMIT :limit
"""


def list_items(conn: Connection, *, today: date, status: str | None = None, district: str | None = None,
               overdue: bool | None = None, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The items by deadline, each with ``overdue`` (still pending after its deadline, as of ``today``) and
    ``days_overdue``; filtered by status, district code and overdue when given."""
    if status is not None:
        check_status(status)
    if district is not None and conn.execute(text("SELECT 1 FROM districts WHERE code = :c"),
                                             {"c": district}).first() is None:
        raise InvalidInput(f"no district with code {district!r}", "district")
    rows = conn.execute(text(_LIST_SQL), {"today": today, "status": status, "district": district,
                                          "overdue": overdue, "ids": ids, "limit": MAX_LIST}).mappings()
    return [dict(r) for r in rows]


def get_item(conn: Connection, finding_id: int, *, today: date | None = None) -> dict[str, Any]:
    """One item with its finding's detail, parameters, history (oldest first) and evidence files; overdue as of
    ``today`` (default: today in the city's default time zone)."""
    item = _item_row(conn, finding_id)
    listed = list_items(conn, today=today or today_in(DEFAULT_TIMEZONE), ids=[finding_id])[0]
    events = conn.execute(text(
        """SELECT id, at, actor, kind, status_from, status_to, changes, note FROM finding_events
           WHERE finding_id = :id ORDER BY at, id"""), {"id": finding_id}).mappings()
    docs = conn.execute(text(
        """SELECT id, filename, sha256, size_bytes, uploaded_by, uploaded_at FROM finding_documents
           WHERE finding_id = :id ORDER BY uploaded_at, id"""), {"id": finding_id}).mappings()
    return listed | {"check_params": item["check_params"], "detail": item["detail"],
                     "history": [dict(e) for e in events], "documents": [dict(d) for d in docs]}


def as_json(item: dict[str, Any]) -> dict[str, Any]:
    """An item with JSON's types (dates and times as ISO text)."""
    def value(v: Any) -> Any:
        if isinstance(v, (date, datetime)):
            return v.isoformat()
        if isinstance(v, list):
            return [value(x) for x in v]
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        return v
    return value(item)


# ---------------------------------------------------------------------------------------------
# For the reports: overdue items and new items of a day, replayed from the history

_OVERDUE_SQL = f"""
SELECT f.id, f.check_name, pa.code AS parcel_code, d.code AS district, d.name AS district_name, f.unit_code,
       f.summary, f.deadline, s.status, CAST(:as_of AS date) - f.deadline AS days_overdue
FROM findings f JOIN parcels pa ON pa.id = f.parcel_id JOIN districts d ON d.id = f.district_id
CROSS JOIN LATERAL (SELECT {STATUS_AT_SQL.format(finding="f.id", end=":end")} AS status) s
WHERE s.status = ANY(:pending) AND f.deadline < :as_of
ORDER BY f.deadline, f.id
"""
_NEW_SQL = """
SELECT f.id, f.check_name, pa.code AS parcel_code, d.code AS district, d.name AS district_name, f.unit_code,
       f.summary, f.deadline, e.actor AS created_by
FROM finding_events e JOIN findings f ON f.id = e.finding_id
JOIN parcels pa ON pa.id = f.parcel_id JOIN districts d ON d.id = f.district_id
WHERE e.kind = 'created' AND e.at >= :start AND e.at < :end
ORDER BY d.code, f.id
"""


def overdue_items(conn: Connection, as_of: date, *, tz: str = DEFAULT_TIMEZONE) -> list[dict[str, Any]]:
    """Items still pending (open, rectifying, reopened) at the end of ``as_of`` whose deadline was before that
    day, oldest deadline first, with ``days_overdue``: for the weekly dispatch agenda (每周一调度)."""
    params = {"as_of": as_of, "end": end_of_day(as_of, tz), "pending": list(PENDING)}
    return [dict(r) for r in conn.execute(text(_OVERDUE_SQL), params).mappings()]


def new_items(conn: Connection, day: date, *, tz: str = DEFAULT_TIMEZONE) -> list[dict[str, Any]]:
    """Items opened during ``day`` (city time), by district: the daily report's 新增督查问题."""
    params = {"start": end_of_day(day - timedelta(days=1), tz), "end": end_of_day(day, tz)}
    return [dict(r) for r in conn.execute(text(_NEW_SQL), params).mappings()]
