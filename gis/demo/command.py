"""The demo city's assisting units and command posts (协保单位、指挥分部), deterministic from the city's seed.

Loaded after the parcels and the footprint overlaps (``load_command``, one line in ``gis.demo.load``):

- ``UNIT_NAMES``: city departments, two per district, each with 3–5 staff; every parcel in a project footprint
  is assigned to one of its district's two units and one of its staff, from a day before its signing; about one
  in twelve is reassigned later (to the other unit, or another staff member: 跟换调整), each change with its
  'assignment' event dated that day;
- a command post per district, set up ``POST_DAYS`` days before the city's last day, commander and two deputies;
  a front-line visit most weeks and on-site duty most days, each post with its own habits
  (``VISIT_MISS`` and ``DUTY_MISS``: the share of weeks and days missed), so the dispatch check finds a few
  missed weeks and days, more of them at the less diligent posts, and one post that stopped visiting lately.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.demo.generator import ACTOR, DemoCity
from gis.domain.stages import today_in
from gis.platform.bulk import copy_frame
from gis.platform.config import DEFAULT_TIMEZONE

COMMAND_TABLES = ("unit_assignments", "unit_staff", "assisting_units", "duty_days", "frontline_visits",
                  "command_posts")
UNIT_NAMES = ("市自然资源和规划局", "市住房和城乡建设局", "市财政局", "市公安局", "市城市管理行政执法局",
              "市交通运输局", "市水利局", "市人力资源和社会保障局", "市农业农村局", "市市场监督管理局")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰文斌建国志红卫东海波"
TITLES = ("科长", "副科长", "科员", "主任科员", "办事员")
POST_DAYS = 182  # half a year of visits and duty
VISIT_MISS = (0.0, 0.08, 0.2, 0.1)  # per post, by district order; a fourth post also stops visiting lately
DUTY_MISS = (0.0, 0.03, 0.1, 0.05)
RECENT_STOP_WEEKS = 3  # the last post in district order has not visited in its last three complete weeks
REASSIGNED_SHARE = 1 / 12
PROBLEMS = ("个别被征收户对评估结果有异议，迟迟不签约", "安置房源不足，过渡期延长引发不满",
            "拆除施工扰民，周边群众投诉", "历史遗留宅基地权属不清", "补偿款发放进度滞后于签约进度",
            "协保人员到岗不足，入户频次偏低",
            "钉子户以外出为由拒绝入户", "杆线迁改未同步推进，影响交地")
DECISIONS = ("由协保单位牵头，三日内再次入户做思想工作", "街道会同指挥部办公室一周内调配安置房源",
             "调整施工时段，夜间停工", "请自然资源部门调取原始档案，一周内出具意见", "财政三个工作日内拨付到位",
             "更换协保人员，主要负责人亲自包户", "依法启动补偿决定程序", "协调供电、通信单位限期迁改")
PLACES = ("项目现场", "安置小区", "被征收户家中", "街道会议室", "拆除现场", "红线内临时指挥点")


def _name(rng: np.random.Generator) -> str:
    given = "".join(rng.choice(list(GIVEN), size=int(rng.integers(1, 3))))
    return str(rng.choice(list(SURNAMES))) + given


def _last_day(city: DemoCity) -> date:
    """The city's own today: the day of its last event in the city's time zone (the history runs up to it)."""
    if city.events.empty:
        return today_in(DEFAULT_TIMEZONE)
    return city.events["at"].max().tz_convert(DEFAULT_TIMEZONE).date()


def load_command(conn: Connection, city: DemoCity) -> dict[str, int]:
    """Insert the demo's units, staff, assignments (with their events), command posts, visits and duty days, in
    the caller's transaction, after the parcels and overlaps; the rows written per table."""
    rng = np.random.default_rng(city.seed + 16)
    today = _last_day(city)
    districts = [(int(i), str(c)) for i, c in zip(city.districts["id"], city.districts["code"], strict=True)]
    written = _units(conn, city, rng, today, districts)
    written |= _posts(conn, rng, today, districts)
    return written


def _units(conn: Connection, city: DemoCity, rng: np.random.Generator, today: date,
           districts: list[tuple[int, str]]) -> dict[str, int]:
    staff_of: dict[int, list[int]] = {}
    unit_of_district: dict[int, list[tuple[int, str]]] = {}
    for k, (district_id, _code) in enumerate(districts):
        for j in range(2):
            name = UNIT_NAMES[(2 * k + j) % len(UNIT_NAMES)]
            code = f"U{2 * k + j + 1:02d}"
            unit_id = conn.execute(text("INSERT INTO assisting_units (code, name, recorded_by) VALUES (:c, :n, :a) "
                                        "RETURNING id"), {"c": code, "n": name, "a": ACTOR}).scalar_one()
            unit_of_district.setdefault(district_id, []).append((unit_id, code))
            names: list[str] = []
            while len(names) < int(rng.integers(3, 6)):
                candidate = _name(rng)
                if candidate not in names:
                    names.append(candidate)
            staff_of[unit_id] = [conn.execute(text(
                "INSERT INTO unit_staff (unit_id, name, phone, title) VALUES (:u, :n, :p, :t) RETURNING id"),
                {"u": unit_id, "n": n, "p": f"139{int(rng.integers(0, 10**8)):08d}",
                 "t": str(rng.choice(TITLES))}).scalar_one() for n in names]
    parcels = conn.execute(text("""
        SELECT pa.id, pa.district_id, pa.surveyed_on, pa.signed_on FROM parcels pa
        WHERE EXISTS (SELECT 1 FROM project_parcel_overlaps o WHERE o.parcel_id = pa.id) ORDER BY pa.id""")).all()
    assignments, events = [], []
    for p in parcels:
        units = unit_of_district.get(p.district_id)
        if not units:
            continue
        which = int(rng.integers(0, 2))
        unit_id, code = units[which]
        staff = staff_of[unit_id]
        staff_id = staff[int(rng.integers(0, len(staff)))]
        start = p.surveyed_on or today - timedelta(days=365)
        start = min(start + timedelta(days=int(rng.integers(0, 15))), p.signed_on or today, today)
        periods = [(unit_id, code, staff_id, start)]
        if rng.random() < REASSIGNED_SHARE and (today - start).days > 30:
            again = start + timedelta(days=int(rng.integers(15, (today - start).days)))
            if rng.random() < 0.5:
                unit_id, code = units[1 - which]
            others = [s for s in staff_of[unit_id] if s != staff_id]
            periods.append((unit_id, code, others[int(rng.integers(0, len(others)))], again))
        previous = (None, None)
        for n, (u, c, s, day) in enumerate(periods):
            ended = periods[n + 1][3] if n + 1 < len(periods) else None
            assignments.append({"parcel_id": p.id, "unit_id": u, "staff_id": s, "assigned_on": day,
                                "ended_on": ended, "assigned_by": ACTOR,
                                "note": "协保人员不能胜任，及时跟换调整" if n else None})
            events.append({"parcel_id": p.id, "at": pd.Timestamp(day, tz=DEFAULT_TIMEZONE) + pd.Timedelta(hours=9),
                           "actor": ACTOR, "kind": "assignment",
                           "changes": json.dumps({"unit": {"from": previous[0], "to": c},
                                                  "staff_id": {"from": previous[1], "to": s},
                                                  "on": day.isoformat()}, ensure_ascii=False),
                           "note": "协保人员不能胜任，及时跟换调整" if n else None})
            previous = (c, s)
    srid = city.srid
    copied = copy_frame(conn, "unit_assignments", pd.DataFrame(assignments),
                        ("parcel_id", "unit_id", "staff_id", "assigned_on", "ended_on", "assigned_by", "note"),
                        srid=srid) if assignments else 0
    if events:
        copy_frame(conn, "parcel_events", pd.DataFrame(events),
                   ("parcel_id", "at", "actor", "kind", "changes", "note"), srid=srid)
    return {"assisting_units": len(staff_of), "unit_staff": sum(map(len, staff_of.values())),
            "unit_assignments": copied}


def _posts(conn: Connection, rng: np.random.Generator, today: date,
           districts: list[tuple[int, str]]) -> dict[str, int]:
    established = today - timedelta(days=POST_DAYS)
    visits: list[dict[str, Any]] = []
    duty: list[dict[str, Any]] = []
    for k, (district_id, _code) in enumerate(districts):
        post = conn.execute(text("""
            INSERT INTO command_posts (district_id, name, commander, deputies, established_on, geom)
            SELECT d.id, d.name || '征收征迁指挥分部', :commander, :deputies, :on, ST_PointOnSurface(d.geom)
            FROM districts d WHERE d.id = :d RETURNING id"""),
            {"d": district_id, "commander": _name(rng), "deputies": [_name(rng), _name(rng)],
             "on": established}).scalar_one()
        leaders = conn.execute(text("SELECT commander, deputies FROM command_posts WHERE id = :p"), {"p": post}).one()
        places = conn.execute(text("""
            SELECT ST_PointOnSurface(pa.geom) FROM parcels pa WHERE pa.district_id = :d AND pa.stage <> 'cleared'
              AND EXISTS (SELECT 1 FROM project_parcel_overlaps o WHERE o.parcel_id = pa.id)
            ORDER BY pa.id LIMIT 200"""), {"d": district_id}).scalars().all()
        monday = established + timedelta(days=(7 - established.weekday()) % 7)
        weeks = []
        while monday + timedelta(days=6) <= today:
            weeks.append(monday)
            monday += timedelta(days=7)
        stop = RECENT_STOP_WEEKS if k == len(districts) - 1 else 0
        for w, week in enumerate(weeks):
            if rng.random() < VISIT_MISS[k % len(VISIT_MISS)] or w >= len(weeks) - stop:
                continue
            deputy = rng.random() < 0.4  # 指挥长、副指挥长轮流坐镇
            place = places[int(rng.integers(0, len(places)))] if places else None
            visits.append({
                "post_id": post, "visited_on": week + timedelta(days=int(rng.integers(0, 5))),
                "leader": leaders.deputies[int(rng.integers(0, 2))] if deputy else leaders.commander,
                "leader_role": "deputy" if deputy else "commander",
                "attendees": "指挥分部办公室、街道、协保单位负责同志", "place": str(rng.choice(PLACES)),
                "geom": place, "problems": str(rng.choice(PROBLEMS)), "decisions": str(rng.choice(DECISIONS)),
                "follow_up": "指挥部办公室跟踪督办，下周调度会通报", "recorded_by": ACTOR})
        office = [_name(rng) for _ in range(3)]
        for n in range((today - established).days + 1):
            if rng.random() < DUTY_MISS[k % len(DUTY_MISS)]:
                continue
            duty.append({"post_id": post, "duty_on": established + timedelta(days=n),
                         "person": office[n % len(office)], "recorded_by": ACTOR})
    for v in visits:
        conn.execute(text("""
            INSERT INTO frontline_visits (post_id, visited_on, leader, leader_role, attendees, place, geom, problems,
                                          decisions, follow_up, recorded_by)
            SELECT :post_id, :visited_on, :leader, :leader_role, :attendees, :place,
                   coalesce(CAST(:geom AS geometry), c.geom), :problems, :decisions, :follow_up, :recorded_by
            FROM command_posts c WHERE c.id = :post_id"""), v)
    if duty:
        conn.execute(text("INSERT INTO duty_days (post_id, duty_on, person, recorded_by) "
                          "VALUES (:post_id, :duty_on, :person, :recorded_by)"), duty)
    return {"command_posts": len(districts), "frontline_visits": len(visits), "duty_days": len(duty)}
