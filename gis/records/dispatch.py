"""Front-line dispatch (指挥分部): each district's command post, its log of front-line visits and of on-site duty.

The rules, each stated here once:

- **A command post** belongs to one district (one per district), with its commander (指挥长), deputies
  (副指挥长), the day it was set up and its office as a point on the map. Names are personal data: masked, as
  owners' names are, for roles that may not see them.
- **A front-line visit** (一线调度): the day, the place (a point given in WGS 84 longitude/latitude, stored in the
  working CRS; within ``NEAR_M`` of the post's district), who led it (the commander or a deputy: the source has
  them take turns, 指挥长、副指挥长要轮流坐镇指挥), who else came, problems found, decisions taken, follow-up.
- **On-site duty** (现场办公): a day and the office member on site; one row per person and day.
- **Who records**: admins for any post, district editors for the posts of their districts; posts are set up by
  admins. Days are days that have happened (not after today).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.domain.privacy import mask_name
from gis.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from gis.records.units import MAX_NAME, check_note, check_past_day, check_person, check_text
from gis.records.users import Principal

LEADER_ROLES = ("commander", "deputy")
LEADER_ROLE_LABELS_ZH = {"commander": "指挥长", "deputy": "副指挥长"}
NEAR_M = 20_000  # a visit's place must lie within this distance of the post's district: a point far off is a typo
MAX_DEPUTIES = 20



def _point_sql(srid_param: str = "srid") -> str:
    return f"ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :{srid_param})"


def _check_lon_lat(lon: float, lat: float) -> None:
    for value, name, bound in ((lon, "lon", 180), (lat, "lat", 90)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not -bound <= value <= bound:
            raise InvalidInput(f"{name} must be a number between -{bound} and {bound} (WGS 84 degrees)", name)


def resolve_post(conn: Connection, ref: str | int) -> dict[str, Any]:
    """The command post by id, or by its district's code or name; NotFound otherwise."""
    row = conn.execute(text("""
        SELECT c.id, c.district_id, d.code AS district, d.name AS district_name, c.name, c.established_on
        FROM command_posts c JOIN districts d ON d.id = c.district_id
        WHERE CAST(c.id AS text) = :ref OR d.code = :ref OR d.name = :ref OR c.name = :ref
        ORDER BY c.id LIMIT 1"""), {"ref": str(ref)}).mappings().first()
    if row is None:
        raise NotFound(f"no command post {str(ref)!r}", "post")
    return dict(row)


def add_post(conn: Connection, district: str | int, name: str, commander: str, deputies: Sequence[str], *,
             established_on: date, today: date, lon: float, lat: float, srid: int) -> dict[str, Any]:
    """Set up a district's command post; Conflict when the district has one."""
    d = conn.execute(text("SELECT id, code FROM districts WHERE code = :r OR name = :r OR CAST(id AS text) = :r"),
                     {"r": str(district)}).mappings().first()
    if d is None:
        raise NotFound(f"no district {str(district)!r}", "district")
    if len(deputies) > MAX_DEPUTIES:
        raise InvalidInput(f"at most {MAX_DEPUTIES} deputies", "deputies")
    _check_lon_lat(lon, lat)
    values = {"d": d["id"], "name": check_text(name, "name", max_length=MAX_NAME, required=True),
              "commander": check_person(commander, "commander", required=True),
              "deputies": [check_person(x, f"deputies[{i}]", required=True) for i, x in enumerate(deputies)],
              "on": check_past_day(established_on, today, "established_on"), "lon": lon, "lat": lat, "srid": srid}
    row = conn.execute(text(f"""
        INSERT INTO command_posts (district_id, name, commander, deputies, established_on, geom)
        VALUES (:d, :name, :commander, :deputies, :on, {_point_sql()})
        ON CONFLICT (district_id) DO NOTHING RETURNING id"""), values).first()
    if row is None:
        raise Conflict(f"district {d['code']} has a command post already", "district")
    return {"id": row.id, "district": d["code"]}


def _mask(row: dict[str, Any], keys: Sequence[str], reveal_personal: bool) -> dict[str, Any]:
    if reveal_personal:
        return row
    out = dict(row)
    for k in keys:
        value = out.get(k)
        out[k] = [mask_name(v) for v in value] if isinstance(value, list) else mask_name(value)
    return out


def list_posts(conn: Connection, *, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """The command posts by district code, with commander and deputies (masked unless ``reveal_personal``) and
    the office's place as WGS 84 longitude and latitude."""
    rows = conn.execute(text("""
        SELECT c.id, d.code AS district, d.name AS district_name, c.name, c.commander, c.deputies, c.established_on,
               ST_X(ST_Transform(c.geom, 4326)) AS lon, ST_Y(ST_Transform(c.geom, 4326)) AS lat
        FROM command_posts c JOIN districts d ON d.id = c.district_id ORDER BY d.code""")).mappings()
    return [_mask(dict(r), ("commander", "deputies"), reveal_personal) for r in rows]


def _ensure_may_record(principal: Principal, post: dict[str, Any]) -> None:
    if not principal.may_edit_district(post["district_id"]):
        raise Forbidden("this command post belongs to a district this user may not record for")


def record_visit(conn: Connection, post: str | int, principal: Principal, *, visited_on: date, today: date,
                 leader: str, leader_role: str, lon: float, lat: float, srid: int, attendees: str | None = None,
                 place: str | None = None, problems: str | None = None, decisions: str | None = None,
                 follow_up: str | None = None) -> dict[str, Any]:
    """Log a front-line visit of ``post``'s leaders."""
    p = resolve_post(conn, post)
    _ensure_may_record(principal, p)
    if leader_role not in LEADER_ROLES:
        raise InvalidInput(f"leader_role is one of {', '.join(LEADER_ROLES)}", "leader_role")
    _check_lon_lat(lon, lat)
    near = conn.execute(text(f"""SELECT ST_DWithin({_point_sql()}, d.geom, :near) FROM districts d
                                 WHERE d.id = :d"""),
                        {"lon": lon, "lat": lat, "srid": srid, "near": NEAR_M, "d": p["district_id"]}).scalar()
    if not near:
        raise InvalidInput(f"the place lies more than {NEAR_M // 1000} km from district {p['district']}", "lon")
    values = {"post": p["id"], "on": check_past_day(visited_on, today, "visited_on"),
              "leader": check_person(leader, "leader", required=True), "role": leader_role,
              "attendees": check_note(attendees, "attendees"), "place": check_note(place, "place"),
              "problems": check_note(problems, "problems"), "decisions": check_note(decisions, "decisions"),
              "follow_up": check_note(follow_up, "follow_up"), "by": principal.name, "lon": lon, "lat": lat,
              "srid": srid}
    visit_id = conn.execute(text(f"""
        INSERT INTO frontline_visits (post_id, visited_on, leader, leader_role, attendees, place, geom, problems,
                                      decisions, follow_up, recorded_by)
        VALUES (:post, :on, :leader, :role, :attendees, :place, {_point_sql()}, :problems, :decisions, :follow_up,
                :by) RETURNING id"""), values).scalar_one()
    return {"id": visit_id, "post": p["district"], "visited_on": values["on"].isoformat()}


def visits(conn: Connection, post: str | int | None = None, *, since: date | None = None, until: date | None = None,
           reveal_personal: bool = False) -> list[dict[str, Any]]:
    """The front-line visits, of one post or all, newest first, with the place in WGS 84."""
    post_id = resolve_post(conn, post)["id"] if post is not None else None
    rows = conn.execute(text("""
        SELECT v.id, d.code AS district, d.name AS district_name, v.visited_on, v.leader, v.leader_role,
               v.attendees, v.place, v.problems, v.decisions, v.follow_up, v.recorded_by,
               ST_X(ST_Transform(v.geom, 4326)) AS lon, ST_Y(ST_Transform(v.geom, 4326)) AS lat
        FROM frontline_visits v JOIN command_posts c ON c.id = v.post_id JOIN districts d ON d.id = c.district_id
        WHERE (CAST(:post AS integer) IS NULL OR v.post_id = :post)
          AND (CAST(:since AS date) IS NULL OR v.visited_on >= :since)
          AND (CAST(:until AS date) IS NULL OR v.visited_on <= :until)
        ORDER BY v.visited_on DESC, v.id DESC"""), {"post": post_id, "since": since, "until": until}).mappings()
    return [_mask(dict(r), ("leader",), reveal_personal) for r in rows]


def record_duty(conn: Connection, post: str | int, principal: Principal, *, duty_on: date, today: date,
                person: str, note: str | None = None) -> dict[str, Any]:
    """Log a day of on-site duty at ``post``; the same person on the same day twice changes nothing."""
    p = resolve_post(conn, post)
    _ensure_may_record(principal, p)
    values = {"post": p["id"], "on": check_past_day(duty_on, today, "duty_on"),
              "person": check_person(person, "person", required=True), "note": check_note(note), "by": principal.name}
    stored = conn.execute(text("""
        INSERT INTO duty_days (post_id, duty_on, person, note, recorded_by) VALUES (:post, :on, :person, :note, :by)
        ON CONFLICT (post_id, duty_on, person) DO NOTHING"""), values).rowcount
    return {"post": p["district"], "duty_on": values["on"].isoformat(), "stored": bool(stored)}


def duty_log(conn: Connection, post: str | int | None = None, *, since: date | None = None,
             until: date | None = None, reveal_personal: bool = False) -> list[dict[str, Any]]:
    """The on-site duty days, of one post or all, newest first."""
    post_id = resolve_post(conn, post)["id"] if post is not None else None
    rows = conn.execute(text("""
        SELECT d.code AS district, d.name AS district_name, y.duty_on, y.person, y.note
        FROM duty_days y JOIN command_posts c ON c.id = y.post_id JOIN districts d ON d.id = c.district_id
        WHERE (CAST(:post AS integer) IS NULL OR y.post_id = :post)
          AND (CAST(:since AS date) IS NULL OR y.duty_on >= :since)
          AND (CAST(:until AS date) IS NULL OR y.duty_on <= :until)
        ORDER BY y.duty_on DESC, d.code, y.id"""), {"post": post_id, "since": since, "until": until}).mappings()
    return [_mask(dict(r), ("person",), reveal_personal) for r in rows]
