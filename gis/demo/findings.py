"""The demo city's rectification items (督查整改): findings of three checks followed in every status, some overdue.

Deterministic: the day is the city's last recorded event, the parcels the first ones (by code) that the
paid-not-demolished, incomplete-archives and stalled checks flag on that day (in turn), and each item's dates
are fixed offsets from it. Written through ``gis.records.findings`` (its history through ``gis.records.history``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import zip_longest
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from gis.checks import incomplete_archives, paid_not_demolished, stalled
from gis.platform.config import DEFAULT_TIMEZONE
from gis.records import findings
from gis.records.users import Principal, Role
from gis.rectification import describe

INSPECTOR = Principal("demo-inspector", Role.inspector)
EDITOR = Principal("demo-editor", Role.admin)  # stands for each district's editor: the demo has no editor per district
# (days before the day it was opened, deadline in days from the day, the moves after opening: (status, day offset))
PLAN: tuple[tuple[int, int, tuple[tuple[str, int], ...]], ...] = (
    (3, 27, ()),                                                   # open
    (40, -10, ()),                                                 # open, overdue
    (20, 10, (("rectifying", -15),)),                              # rectifying
    (45, -5, (("rectifying", -40),)),                              # rectifying, overdue
    (30, 5, (("rectifying", -25), ("rectified", -2))),             # rectified, waiting for 回头看
    (60, -20, (("rectified", -30), ("verified", -25))),            # verified
    (50, -8, (("rectified", -20), ("reopened", -12))),             # reopened, overdue
    (25, 20, (("rectified", -10), ("reopened", -6), ("rectifying", -3))),  # reopened, rectifying again
)


def _at(day: date, hour: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz))


def plant_findings(conn: Connection, *, tz: str = DEFAULT_TIMEZONE) -> int:
    """Open and move the demo's items (the plan twice over, on 16 findings); returns how many."""
    last = conn.execute(text("SELECT max(at) FROM parcel_events")).scalar()
    if last is None:
        return 0
    today = last.astimezone(ZoneInfo(tz)).date()
    results = [paid_not_demolished(conn, as_of=today, tz=tz), incomplete_archives(conn, as_of=today, tz=tz),
               stalled(conn, as_of=today, tz=tz)]
    rows = [sorted({r["parcel_id"]: r for r in res.findings}.values(), key=lambda r: r["code"]) for res in results]
    # the checks' findings taken in turn while each has some: 16 in all
    queues = [[(res, r) for r in pool] for res, pool in zip(results, rows, strict=True)]
    candidates = [c for pair in zip_longest(*queues) for c in pair if c is not None][: 2 * len(PLAN)]
    made = 0
    for k, (result, row) in enumerate(candidates):
        opened, deadline, moves = PLAN[k % len(PLAN)]
        summary, detail = describe(row, result)
        fid = findings.insert_item(conn, check_name=result.check, check_params=result.params,
                                   parcel_id=row["parcel_id"], summary=summary, detail=detail,
                                   deadline=today + timedelta(days=deadline), unit_code=None, note=None,
                                   principal=INSPECTOR, at=_at(today - timedelta(days=opened), 9, tz))
        for status, offset in moves:
            who = INSPECTOR if status in ("verified", "reopened") else EDITOR
            findings.set_status(conn, fid, status, who, at=_at(today + timedelta(days=offset), 15, tz))
        made += 1
    return made
