"""Gaps on the front line (指挥一线缺位): weeks without a leader's visit and days without anyone on site, per post.

The source: 各片区指挥长、副指挥长要轮流坐镇指挥，每周至少到一线调度1次，每天至少安排1名指挥分部办公室同志现场办公.
The rules, each stated here once, as of a day:

- **Weeks**: the last ``weeks`` complete weeks (Monday to Sunday) ending on or before the day; a week counts
  once the post exists, i.e. from the first Monday on or after the day it was set up. A week is **missed** when
  the post logged no front-line visit dated within it, led by the commander or a deputy (they take turns).
- **Days**: the last ``days`` days up to and including the day, from the day the post was set up. A day is
  **missed** when no one is logged on on-site duty at the post that day.
- Only what was logged counts: visits and duty dated within the window, whenever they were recorded.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.privacy import mask_name

GAP_LABELS_ZH = {"visit": "当周无指挥长/副指挥长一线调度", "duty": "当日无指挥分部人员现场办公"}

_GAPS_SQL = """
WITH posts AS (
    SELECT c.id AS post_id, c.name AS post_name, c.commander, c.established_on, c.geom, d.code AS district,
           d.name AS district_name
    FROM command_posts c JOIN districts d ON d.id = c.district_id
),
weeks AS (
    SELECT p.post_id, CAST(w AS date) AS from_day, CAST(w AS date) + 6 AS to_day
    FROM posts p CROSS JOIN generate_series(
        date_trunc('week', CAST(:as_of AS date) + 1) - :weeks * interval '1 week',
        date_trunc('week', CAST(:as_of AS date) + 1) - interval '1 week', interval '1 week') w
    WHERE CAST(w AS date) >= p.established_on
),
days AS (
    SELECT p.post_id, CAST(d AS date) AS from_day, CAST(d AS date) AS to_day
    FROM posts p CROSS JOIN generate_series(CAST(:as_of AS date) - (:days - 1), CAST(:as_of AS date),
                                            interval '1 day') d
    WHERE :days > 0 AND CAST(d AS date) >= p.established_on
),
gaps AS (
    SELECT w.post_id, 'visit' AS gap, w.from_day, w.to_day FROM weeks w
    WHERE NOT EXISTS (SELECT 1 FROM frontline_visits v WHERE v.post_id = w.post_id
                      AND v.visited_on BETWEEN w.from_day AND w.to_day)
    UNION ALL
    SELECT y.post_id, 'duty', y.from_day, y.to_day FROM days y
    WHERE NOT EXISTS (SELECT 1 FROM duty_days t WHERE t.post_id = y.post_id AND t.duty_on = y.from_day)
)
SELECT g.post_id, p.district, p.district_name, p.post_name, p.commander, g.gap, g.from_day, g.to_day,
       g.to_day - g.from_day + 1 AS days_long,
       (SELECT max(v.visited_on) FROM frontline_visits v WHERE v.post_id = g.post_id AND v.visited_on <= g.to_day)
           AS last_visit_on {geom}
FROM gaps g JOIN posts p ON p.post_id = g.post_id
ORDER BY p.district, g.gap DESC, g.from_day
"""


def dispatch_gaps(conn: Connection, as_of: date, *, weeks: int, days: int, reveal_personal: bool = False,
                  with_geometry: bool = False) -> list[dict[str, Any]]:
    """Each missed week and missed day per command post, by the rules of this module's docstring: post,
    district, commander (masked unless ``reveal_personal``), gap (``visit`` or ``duty``), from and to day, its
    length in days and the post's last visit by then; with ``with_geometry`` the post's point as WKB."""
    sql = _GAPS_SQL.format(geom=", ST_AsBinary(p.geom) AS geom" if with_geometry else "")
    rows = conn.execute(text(sql), {"as_of": as_of, "weeks": weeks, "days": days}).mappings()
    out = []
    for r in rows:
        row = dict(r)
        if not reveal_personal:
            row["commander"] = mask_name(row["commander"])
        if "geom" in row and isinstance(row["geom"], memoryview):
            row["geom"] = bytes(row["geom"])
        out.append(row)
    return out


def posts_missing_visits(conn: Connection, as_of: date, *, weeks: int = 4,
                         reveal_personal: bool = False) -> list[dict[str, Any]]:
    """Command posts with weeks missing a front-line visit among the last ``weeks`` complete weeks (the weekly
    dispatch agenda's 指挥分部一线调度缺位): per post, district, commander (masked unless ``reveal_personal``),
    the missed weeks (their Mondays), how many, and the last visit by the day."""
    by_post: dict[int, dict[str, Any]] = {}
    for g in dispatch_gaps(conn, as_of, weeks=weeks, days=0, reveal_personal=reveal_personal):
        post = by_post.setdefault(g["post_id"], {k: g[k] for k in ("post_id", "district", "district_name",
                                                                   "post_name", "commander")}
                                  | {"missed_weeks": [], "last_visit_on": None})
        post["missed_weeks"].append(g["from_day"])
    last = dict(conn.execute(text("SELECT post_id, max(visited_on) FROM frontline_visits WHERE visited_on <= :d "
                                  "GROUP BY post_id"), {"d": as_of}).all())
    for post_id, post in by_post.items():
        post["last_visit_on"] = last.get(post_id)
    return [p | {"missed": len(p["missed_weeks"])} for p in by_post.values()]
