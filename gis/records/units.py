"""Assisting units (协保单位): city departments lending staff to the districts, and which households they help with.

The rules, each stated here once:

- **A unit** has a code (a letter, then letters, digits, ``_`` or ``-``; at most 32) and a name; its **staff**
  are people (name, phone: personal data, masked for roles that may not see it) with an optional title, kept
  when they leave (``active`` false) so past assignments still name them.
- **An assignment** gives a parcel (a household) to a unit and, optionally, one of its staff, from a day on.
  A parcel has at most one open assignment. Assigning a parcel again ends its open assignment on the new
  assignment's day and opens the new one: this is the reassignment the source asks for
  (对不能胜任协保工作人员的要及时跟换调整). Assigning it to the same unit and staff again changes nothing.
  Every change is also a ``parcel_events`` row of kind ``assignment`` (``gis.records.history``), naming the
  units by code and the staff by id (never by name: the history is read by every role).
- **Who assigns**: admins anywhere; district editors only parcels of their own districts (the whole request
  is refused when one parcel lies outside them).
- **Limits**: ``MAX_NAME``, ``CODE_PATTERN``; names and phones at most ``MAX_PERSON`` characters, notes at most
  ``MAX_NOTE_TEXT`` (``gis.domain.limits``); the assignment day within the days a record can have and not after
  today. Migration 0011 writes the table's CHECK constraints from these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.limits import MAX_NOTE, MAX_PERSON_TEXT, NOTE, PAST_DAY, PERSON_TEXT
from gis.domain.privacy import mask_name, mask_phone
from gis.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.records.history import event as history_event
from gis.records.history import record as record_history
from gis.records.users import Principal

MAX_NAME = 100
MAX_PERSON = MAX_PERSON_TEXT
MAX_NOTE_TEXT = MAX_NOTE
CODE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
CODE_SQL_PATTERN = CODE_PATTERN  # POSIX regular expression, the same text
MAX_PARCELS_PER_REQUEST = 10_000


def check_text(value: str | None, where: str, *, max_length: int, required: bool = False) -> str | None:
    """``value`` stripped, or None when empty; InvalidInput naming ``where`` when required and empty, too long
    or holding NUL (the message never quotes the value: it may be personal)."""
    value = value.strip() if isinstance(value, str) else value
    if not value:
        if required:
            raise InvalidInput(f"{where} is required", where)
        return None
    if "\x00" in value:
        raise InvalidInput(f"{where} must not contain NUL (0x00) characters", where)
    if len(value) > max_length:
        raise InvalidInput(f"{where} must be at most {max_length} characters long", where)
    return value


def check_person(value: str | None, where: str, *, required: bool = False) -> str | None:
    """A person's name or phone within PERSON_TEXT."""
    return check_text(value, where, max_length=PERSON_TEXT.max_length or MAX_PERSON, required=required)


def check_note(value: str | None, where: str = "note") -> str | None:
    """A note within NOTE."""
    return check_text(value, where, max_length=NOTE.max_length or MAX_NOTE_TEXT)


def check_past_day(day: date, today: date, where: str) -> date:
    """``day`` if it is a day something can have happened on (not after ``today``)."""
    problem = PAST_DAY.problem(day, today)
    if problem:
        raise InvalidInput(f"{where} {problem}", where)
    return day


def check_code(code: str) -> str:
    """A unit's code if it has the form CODE_PATTERN."""
    if not isinstance(code, str) or not re.fullmatch(CODE_PATTERN, code):
        raise InvalidInput("a unit code is a letter followed by up to 31 letters, digits, _ or -", "code")
    return code


# ---------------------------------------------------------------------------------------------
# Units and staff


def add_unit(conn: Connection, code: str, name: str, actor: str) -> dict[str, Any]:
    """Store a new unit; Conflict when the code is taken."""
    code = check_code(code)
    name = check_text(name, "name", max_length=MAX_NAME, required=True)
    row = conn.execute(text(
        "INSERT INTO assisting_units (code, name, recorded_by) VALUES (:code, :name, :actor) "
        "ON CONFLICT (code) DO NOTHING RETURNING id"), {"code": code, "name": name, "actor": actor}).first()
    if row is None:
        raise Conflict(f"unit {code!r} exists already", "code")
    return {"id": row.id, "code": code, "name": name}


def resolve_unit(conn: Connection, ref: str | int) -> dict[str, Any]:
    """The unit named by id or code; NotFound otherwise."""
    row = conn.execute(text(
        "SELECT id, code, name FROM assisting_units WHERE code = :ref OR CAST(id AS text) = :ref"),
        {"ref": str(ref)}).mappings().first()
    if row is None:
        raise NotFound(f"no assisting unit {str(ref)!r}", "unit")
    return dict(row)


def add_staff(conn: Connection, unit: str | int, name: str, *, phone: str | None = None,
              title: str | None = None) -> dict[str, Any]:
    """Add a person to a unit's staff; Conflict when the unit has someone of that name already."""
    u = resolve_unit(conn, unit)
    name = check_person(name, "name", required=True)
    values = {"unit": u["id"], "name": name, "phone": check_person(phone, "phone"),
              "title": check_text(title, "title", max_length=MAX_PERSON)}
    row = conn.execute(text(
        "INSERT INTO unit_staff (unit_id, name, phone, title) VALUES (:unit, :name, :phone, :title) "
        "ON CONFLICT (unit_id, name) DO NOTHING RETURNING id"), values).first()
    if row is None:
        raise Conflict("this unit has a staff member of that name already", "name")
    return {"id": row.id, "unit": u["code"]}


def set_staff_active(conn: Connection, staff_id: int, active: bool) -> None:
    """Mark a staff member as still working for the unit, or as gone (kept for the history)."""
    if conn.execute(text("UPDATE unit_staff SET active = :a WHERE id = :id"),
                    {"a": active, "id": staff_id}).rowcount == 0:
        raise NotFound(f"no staff member with id {staff_id}", "staff_id")


def masked_staff(row: dict[str, Any], reveal_personal: bool) -> dict[str, Any]:
    """A staff member's name and phone as ``reveal_personal`` allows (masked like owners' names)."""
    if reveal_personal:
        return row
    return row | {"name": mask_name(row.get("name")), "phone": mask_phone(row.get("phone"))}


def list_units(conn: Connection) -> list[dict[str, Any]]:
    """The units by code, with how many staff (active) and parcels (open assignments) each has."""
    return [dict(r) for r in conn.execute(text("""
        SELECT u.id, u.code, u.name,
               (SELECT count(*) FROM unit_staff s WHERE s.unit_id = u.id AND s.active) AS staff,
               (SELECT count(*) FROM unit_assignments a WHERE a.unit_id = u.id AND a.ended_on IS NULL) AS parcels
        FROM assisting_units u ORDER BY u.code""")).mappings()]


def unit_staff(conn: Connection, unit: str | int, *, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """A unit's staff (those gone too), by name."""
    u = resolve_unit(conn, unit)
    rows = conn.execute(text("SELECT id, name, phone, title, active FROM unit_staff WHERE unit_id = :u ORDER BY id"),
                        {"u": u["id"]}).mappings()
    return [masked_staff(dict(r), reveal_personal) for r in rows]


# ---------------------------------------------------------------------------------------------
# Assignments


_PARCELS_SQL = """
SELECT pa.id, pa.code, pa.district_id, a.id AS assignment_id, a.unit_id, a.staff_id, u.code AS unit_code
FROM parcels pa
LEFT JOIN unit_assignments a ON a.parcel_id = pa.id AND a.ended_on IS NULL
LEFT JOIN assisting_units u ON u.id = a.unit_id
WHERE pa.id = ANY(:ids) OR pa.code = ANY(:codes)
FOR UPDATE OF pa
"""


def assign(conn: Connection, parcels: Sequence[int | str], unit: str | int, principal: Principal, *,
           staff_id: int | None = None, on: date, today: date, note: str | None = None) -> dict[str, Any]:
    """Assign ``parcels`` (ids or codes) to ``unit`` (and one of its staff) from day ``on``, in the caller's
    transaction: open assignments of other units or staff end on ``on`` (a reassignment), and each change is a
    history event. Answers the counts: assigned (new), reassigned, unchanged."""
    if not parcels:
        raise InvalidInput("no parcels given", "parcels")
    if len(parcels) > MAX_PARCELS_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_PARCELS_PER_REQUEST} parcels at a time", "parcels")
    on = check_past_day(on, today, "on")
    note = check_note(note)
    u = resolve_unit(conn, unit)
    if staff_id is not None:
        active = conn.execute(text("SELECT active FROM unit_staff WHERE id = :s AND unit_id = :u"),
                              {"s": staff_id, "u": u["id"]}).scalar()
        if active is None:
            raise InvalidInput(f"staff member {staff_id} is not of unit {u['code']}", "staff_id")
        if not active:
            raise InvalidInput(f"staff member {staff_id} no longer works for unit {u['code']}", "staff_id")
    ids = [p for p in parcels if isinstance(p, int)]
    codes = [p for p in parcels if isinstance(p, str)]
    rows = conn.execute(text(_PARCELS_SQL), {"ids": ids, "codes": codes}).mappings().all()
    found_ids = {r["id"] for r in rows} | {r["code"] for r in rows}
    missing = [p for p in parcels if p not in found_ids]
    if missing:
        raise NotFound(f"no parcel {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                       "parcels")
    outside = [r["code"] for r in rows if not principal.may_edit_district(r["district_id"])]
    if outside:
        raise Forbidden(f"parcel {outside[0]} lies outside the districts this user may assign in")
    counts = {"assigned": 0, "reassigned": 0, "unchanged": 0}
    events = []
    for r in rows:
        if r["unit_id"] == u["id"] and r["staff_id"] == staff_id:
            counts["unchanged"] += 1
            continue
        if r["assignment_id"] is not None:
            started = conn.execute(text(
                "SELECT assigned_on FROM unit_assignments WHERE parcel_id = :p AND id = :id"),
                {"p": r["id"], "id": r["assignment_id"]}).scalar_one()
            if started > on:
                raise InvalidInput(f"parcel {r['code']} was assigned on {started}, after {on}", "on")
            conn.execute(text("UPDATE unit_assignments SET ended_on = :on WHERE parcel_id = :p AND id = :id"),
                         {"on": on, "p": r["id"], "id": r["assignment_id"]})
            counts["reassigned"] += 1
        else:
            counts["assigned"] += 1
        conn.execute(text(
            "INSERT INTO unit_assignments (parcel_id, unit_id, staff_id, assigned_on, assigned_by, note) "
            "VALUES (:p, :u, :s, :on, :by, :note)"),
            {"p": r["id"], "u": u["id"], "s": staff_id, "on": on, "by": principal.name, "note": note})
        events.append(history_event(r["id"], principal.name, "assignment", changes={
            "unit": {"from": r["unit_code"], "to": u["code"]}, "staff_id": {"from": r["staff_id"], "to": staff_id},
            "on": on.isoformat()}, note=note))
    record_history(conn, events)
    return {"unit": u["code"], "on": on.isoformat(), **counts}


_ASSIGNMENTS_SQL = """
SELECT a.id, a.parcel_id, pa.code, d.code AS district, d.name AS district_name, u.code AS unit, u.name AS unit_name,
       a.staff_id, s.name AS staff_name, a.assigned_on, a.ended_on, a.assigned_by, a.note
FROM unit_assignments a
JOIN parcels pa ON pa.id = a.parcel_id
JOIN districts d ON d.id = pa.district_id
JOIN assisting_units u ON u.id = a.unit_id
LEFT JOIN unit_staff s ON s.id = a.staff_id
WHERE (CAST(:parcel AS bigint) IS NULL OR a.parcel_id = :parcel)
  AND (CAST(:unit AS integer) IS NULL OR a.unit_id = :unit)
ORDER BY pa.code, a.assigned_on, a.id
"""


def assignments(conn: Connection, *, parcel_id: int | None = None, unit: str | int | None = None,
                reveal_personal: bool = False) -> list[dict[str, Any]]:
    """Assignments with their periods (the history: ended ones too), of one parcel or one unit, or all."""
    unit_id = resolve_unit(conn, unit)["id"] if unit is not None else None
    rows = conn.execute(text(_ASSIGNMENTS_SQL), {"parcel": parcel_id, "unit": unit_id}).mappings()
    return [r | {"staff_name": r["staff_name"] if reveal_personal else mask_name(r["staff_name"])}
            for r in map(dict, rows)]
