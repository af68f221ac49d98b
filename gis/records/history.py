"""The parcels' history (``parcel_events``): the only code that writes it, for one edit and for a whole import.

One event shape for every author: the parcel, who, what kind of change, the stage move (from, to) when it is
one, the changed fields as ``{"field": {"from": …, "to": …}}`` (or the payment or document recorded), and a
note. The table is append-only for the service's login (migration 0004 revokes UPDATE and DELETE).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

# Migration 0004 holds its own copy: a migration stays as it was written.
EVENT_KINDS = ("created", "stage", "attributes", "geometry", "flags", "payment", "document", "assignment",
               "resettlement", "land_supply")
COLUMNS = ("parcel_id", "actor", "kind", "stage_from", "stage_to", "changes", "note")
_INSERT = f"INSERT INTO parcel_events ({', '.join(COLUMNS)})"
_VALUES = _INSERT + " VALUES (:parcel_id, :actor, :kind, :stage_from, :stage_to, CAST(:changes AS jsonb), :note)"


def event(parcel_id: int, actor: str, kind: str, *, stage_from: str | None = None, stage_to: str | None = None,
          changes: Mapping[str, Any] | None = None, note: str | None = None) -> dict[str, Any]:
    """One event as the bound parameters ``record`` takes."""
    if kind not in EVENT_KINDS:
        raise ValueError(kind)
    return {"parcel_id": parcel_id, "actor": actor, "kind": kind, "stage_from": stage_from, "stage_to": stage_to,
            "changes": json.dumps(changes, ensure_ascii=False, default=str) if changes is not None else None,
            "note": note}


def record(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Append ``events`` (made by ``event``) in the caller's transaction."""
    if events:
        conn.execute(text(_VALUES), list(events))


def record_selected(conn: Connection, select_sql: str, params: Mapping[str, Any], *, with_sql: str = "") -> None:
    """Append the events a SELECT yields, set-based (an import's thousands in one statement).

    ``select_sql`` yields the columns of ``COLUMNS`` in that order; ``with_sql`` is a WITH clause it reads
    (``WITH ins AS (INSERT … RETURNING …)``). Both are SQL written in this package, never caller text.
    """
    conn.execute(text(f"{with_sql} {_INSERT} {select_sql}"), dict(params))


# ---------------------------------------------------------------------------------------------
# The rectification items' history (``finding_events``, migration 0012): the same shape for a finding
# of an inspection check followed to the end: who, what kind of change, the status move, the changes, a note.

FINDING_EVENT_KINDS = ("created", "status", "evidence", "recheck", "assigned")
FINDING_COLUMNS = ("finding_id", "at", "actor", "kind", "status_from", "status_to", "changes", "note")
# ``at`` is now unless given (the demo city dates its items).
_FINDING_VALUES = (f"INSERT INTO finding_events ({', '.join(FINDING_COLUMNS)}) VALUES (:finding_id, "
                   "coalesce(CAST(:at AS timestamptz), now()), :actor, :kind, :status_from, :status_to, "
                   "CAST(:changes AS jsonb), :note)")


def finding_event(finding_id: int, actor: str, kind: str, *, status_from: str | None = None,
                  status_to: str | None = None, changes: Mapping[str, Any] | None = None,
                  note: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """One rectification item's event as the bound parameters ``record_findings`` takes (``at``: now unless
    given)."""
    if kind not in FINDING_EVENT_KINDS:
        raise ValueError(kind)
    return {"finding_id": finding_id, "at": at, "actor": actor, "kind": kind, "status_from": status_from,
            "status_to": status_to,
            "changes": json.dumps(changes, ensure_ascii=False, default=str) if changes is not None else None,
            "note": note}


def record_findings(conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Append rectification items' ``events`` (made by ``finding_event``) in the caller's transaction."""
    if events:
        conn.execute(text(_FINDING_VALUES), list(events))
