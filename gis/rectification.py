"""Findings followed to the end (督查督办、整改、回头看): a check's finding becomes a rectification item, and the
re-check (回头看) runs each rectified item's check again.

Both run an inspection check (``gis.checks``), which makes this a product. ``open_item`` confirms that the check,
run as of today with the given parameters, does flag the parcel, and keeps what it said (without personal data).
``recheck`` runs, for every item reported rectified, its check with the parameters it was opened with, once per
check and parameters: an item whose parcel the check no longer flags is verified (已核验销号); one it still flags
is reopened (重新整改), each with a 'recheck' event naming the day the check was run for.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.checks import CHECKS, HEADER_KEYS, CheckResult, format_value, get_check, jsonable
from gis.domain.schema import personal_columns
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.errors import InvalidInput
from gis.records import findings, history
from gis.records.users import Principal

# What an item keeps of its finding: never the owner's name (the history is read by more roles than the check).
_KEPT_OUT = {*personal_columns("parcels"), "geom"}


def _flagged(conn: Connection, check_name: str, params: dict[str, Any], as_of: date, tz: str) -> dict[int, Any]:
    """parcel id → its first finding row (and the result), the check run with ``params`` as of ``as_of``."""
    check = get_check(check_name)
    counts = {f.name for f in dataclasses.fields(check.params) if f.type in ("int", int)}
    for name in counts & set(params):  # a day count given as 10.0 is 10; 10.5 is no day count
        if not math.isfinite(params[name]) or float(params[name]) != int(params[name]):
            raise InvalidInput(f"{name} is a whole number of days", f"params.{name}")
        params = params | {name: int(params[name])}
    try:
        values = check.params(**params)
    except TypeError as exc:
        raise InvalidInput(f"parameters of {check.slug}: {exc}", "params") from None
    result = check.run(conn, values, as_of=as_of, tz=tz)
    out: dict[int, Any] = {}
    for row in result.findings:
        out.setdefault(row["parcel_id"], (row, result))
    return out


def describe(row: dict[str, Any], result: CheckResult) -> tuple[str, dict[str, Any]]:
    """What an item keeps of a check's finding row: a one-line summary in words, and the row without personal
    data or geometry."""
    shown = [c for c in result.columns if c.key not in HEADER_KEYS and c.key not in _KEPT_OUT][:3]
    parts = [f"{c.label}：{format_value(c, row.get(c.key))}" for c in shown if row.get(c.key) is not None]
    summary = f"{result.title}（地块{row['code']}）" + ("：" + "；".join(parts) if parts else "")
    return summary, {k: jsonable(v) for k, v in row.items() if k not in _KEPT_OUT}


def open_item(conn: Connection, *, check: str, parcel_id: int, deadline: date, principal: Principal,
              params: dict[str, Any] | None = None, unit_code: str | None = None, note: str | None = None,
              today: date, tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """Make the finding of ``check`` on ``parcel_id`` (flagged as of ``today``) a rectification item: the parcel's
    district responsible, ``deadline`` to rectify. InvalidInput when the check does not flag the parcel, or the
    deadline is before today."""
    findings.ensure_inspector(principal)
    name = get_check(check).name
    if deadline < today:
        raise InvalidInput("the deadline is before today", "deadline")
    params = dict(params or {})
    hit = _flagged(conn, name, params, today, tz).get(parcel_id)
    if hit is None:
        raise InvalidInput(f"the check {get_check(name).slug} does not flag parcel {parcel_id} as of {today}",
                           "parcel_id")
    row, result = hit
    summary, detail = describe(row, result)
    new_id = findings.insert_item(conn, check_name=name, check_params=result.params, parcel_id=parcel_id,
                                  summary=summary, detail=detail, deadline=deadline,
                                  unit_code=unit_code, note=note, principal=principal)
    return findings.get_item(conn, new_id, today=today)


def recheck(conn: Connection, principal: Principal, *, today: date, tz: str = DEFAULT_TIMEZONE,
            ids: list[int] | None = None) -> dict[str, Any]:
    """回头看: every rectified item (or those of ``ids``) re-checked as of ``today``: verified when its check no
    longer flags the parcel, reopened when it still does. Returns the ids of each and the checks run."""
    findings.ensure_inspector(principal)
    rows = conn.execute(text(
        """SELECT id, check_name, check_params, parcel_id FROM findings
           WHERE status = 'rectified' AND (CAST(:ids AS integer[]) IS NULL OR id = ANY(:ids))
           ORDER BY id FOR UPDATE"""), {"ids": ids}).mappings().all()
    runs: dict[tuple[str, str], dict[int, Any]] = {}
    verified, reopened = [], []
    for r in rows:
        key = (r["check_name"], json.dumps(r["check_params"], sort_keys=True))
        if key not in runs:
            runs[key] = _flagged(conn, r["check_name"], r["check_params"], today, tz)
        still = r["parcel_id"] in runs[key]
        status = "reopened" if still else "verified"
        conn.execute(text("UPDATE findings SET status = :s, updated_at = now() WHERE id = :id"),
                     {"s": status, "id": r["id"]})
        note = f"回头看（{today}）：" + ("问题仍存在，重新整改" if still else "复核通过，销号")
        history.record_findings(conn, [history.finding_event(
            r["id"], principal.name, "recheck", status_from="rectified", status_to=status,
            changes={"as_of": today, "still_flagged": still}, note=note)])
        (reopened if still else verified).append(r["id"])
    return {"as_of": today.isoformat(), "verified": verified, "reopened": reopened,
            "checks_run": sorted({k[0] for k in runs})}


def known_checks() -> dict[str, str]:
    """Check name → its Chinese title: every check an item may come from."""
    return {name: c.title for name, c in CHECKS.items()}
