"""Each report kind says what it is for (gis.report_sections): the daily names the day's moved parcels, the
three-day summary the trend against the targets and the stalled cases, the weekly dispatch its agenda; each
rebuilt for a past day is the same, byte for byte. On a small world of its own, the figures computed by hand."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from sqlalchemy import text

from gis import report_sections, reports
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine
from gis.records.findings import insert_item
from gis.records.users import Principal, Role
from tests.conftest import add_parcel_with_history, city_time
from tests.worlds import WORLD_ORIGIN, insert_zone, two_districts

DAY = date(2023, 3, 15)


def _at(day: date, hh: int = 10, mm: int = 0) -> datetime:
    return city_time(day.year, day.month, day.day, hh, mm)


@pytest.fixture(scope="module")
def world(pg_dir):
    """District A's 2023 target: 1000 m², 12.5 mu, 4 parcels; B's: 5000 m² with nothing done (behind). In A,
    inside Z1 (一期): 'c2' (200 m²) cleared on 1 March, 'l1' (3 mu of land) on the 2nd, 'c1' (300 m²) on the 14th,
    's1' (120.5 m²) signed on the 15th at 09:05, 'old' appraised 150 days before the 15th (stalled), 'hold' a
    holdout signed 40 days before."""
    s = two_districts(pg_dir, "reports_purpose")
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "一期", (500, 1500), "2022-06-01", "2027-06-30")
        conn.execute(text("INSERT INTO targets (district_id, year, house_m2, land_mu, parcels, recorded_by) VALUES "
                          "(1, 2023, 1000, 12.5, 4, 'test'), (2, 2023, 5000, NULL, NULL, 'test')"))
    ids = {
        "c2": add_parcel_with_history(s, 1, m2=200, moves=[(_at(date(2023, 3, 1)), "paid", "cleared")]),
        "l1": add_parcel_with_history(s, 1, mu=3.0, moves=[(_at(date(2023, 3, 2)), "paid", "cleared")]),
        "c1": add_parcel_with_history(s, 1, m2=300, moves=[(_at(DAY - timedelta(days=1)), "paid", "cleared")]),
        "s1": add_parcel_with_history(s, 1, m2=120.5, moves=[(_at(DAY, 9, 5), "appraised", "signed")]),
        "old": add_parcel_with_history(s, 1, m2=80, moves=[(_at(DAY - timedelta(days=150)), "surveyed", "appraised")]),
        "hold": add_parcel_with_history(s, 1, m2=90, moves=[(_at(DAY - timedelta(days=40)), "appraised", "signed")]),
    }
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET holdout = true, holdout_note = '拒不签约' WHERE id = :id"),
                     {"id": ids["hold"]})
        codes = dict(conn.execute(text("SELECT id, code FROM parcels WHERE id = ANY(:ids)"),
                                  {"ids": list(ids.values())}).all())
        # 'hold' is worked by unit U1's 王协保 since 1 March (by another unit before); A's command post, set up on
        # 1 February, went to the front line in the weeks of 13 and 27 February only: of the four complete weeks
        # before the 15th (Mondays 13, 20, 27 Feb, 6 Mar), those of 20 February and 6 March were missed.
        conn.execute(text("INSERT INTO assisting_units (id, code, name) VALUES "
                          "(1, 'U0', '市国土局'), (2, 'U1', '市住建局')"))
        conn.execute(text("INSERT INTO unit_staff (id, unit_id, name) VALUES (1, 2, '王协保')"))
        conn.execute(text(
            "INSERT INTO unit_assignments (parcel_id, unit_id, staff_id, assigned_on, ended_on, assigned_by) VALUES "
            "(:p, 1, NULL, '2023-01-10', '2023-03-01', 'test'), (:p, 2, 1, '2023-03-01', NULL, 'test')"),
            {"p": ids["hold"]})
        x, y = WORLD_ORIGIN
        point = "ST_SetSRID(ST_MakePoint(:x + 600, :y + 500), :srid)"
        conn.execute(text(
            "INSERT INTO command_posts (id, district_id, name, commander, established_on, geom) "
            f"VALUES (1, 1, '甲区指挥分部', '李指挥', '2023-02-01', {point})"), {"x": x, "y": y, "srid": s.srid})
        for day, role in (("2023-02-14", "commander"), ("2023-03-01", "deputy"), ("2023-03-14", "commander")):
            conn.execute(text(
                "INSERT INTO frontline_visits (post_id, visited_on, leader, leader_role, geom, recorded_by) "
                f"VALUES (1, :day, '李指挥', :role, {point}, 'test')"),
                {"day": day, "role": role, "x": x, "y": y, "srid": s.srid})
        # Findings: on 'old' (stalled) opened on 1 March, due the 10th, still open; on 'hold' opened on the day.
        inspector = Principal("督查员", Role.inspector)
        insert_item(conn, check_name="stalled", check_params={}, parcel_id=ids["old"], summary="久拖未决",
                    detail={}, deadline=date(2023, 3, 10), unit_code=None, note=None, principal=inspector,
                    at=_at(date(2023, 3, 1)))
        insert_item(conn, check_name="stalled", check_params={}, parcel_id=ids["hold"], summary="钉子户未化解",
                    detail={}, deadline=date(2023, 4, 15), unit_code=None, note=None, principal=inspector,
                    at=_at(DAY, 11))
    return s, {k: codes[v] for k, v in ids.items()}


def build(s, kind: str) -> reports.Report:
    with get_engine(s).connect() as conn:
        return reports.build_report(conn, kind, DAY, tolerance=Tolerance.from_settings(s), tz=s.city_timezone)


def weekly_title(report: reports.Report, check: str) -> str:
    (found,) = [c["title"] for c in report.checks if c["check"] == check]
    return found


def section(report: reports.Report, key: str) -> report_sections.SectionTable:
    (found,) = [t for t in report.sections if t.key == key]
    return found


def test_the_three_day_summary_has_the_trend_against_target_and_the_stalled_cases(world):
    s, code = world
    report = build(s, "three-day")
    assert [t.key for t in report.sections] == ["target_trend", "stalled_cases"]
    trend = {r["district_name"]: r for r in section(report, "target_trend").rows}
    # A: 200 + 300 m² and 3 mu cleared this year (ahead of 74/365 of the year), 300 m² of them since the 12th;
    # 291 days left = 97 three-day periods.
    a = trend["甲区"]
    assert (a["house_m2_target"], a["house_m2_done"], a["house_m2_gain"]) == (1000, 500, 300)
    assert a["house_m2_needed"] == round(500 / 97, 2) and (a["parcels_done"], a["parcels_gain"]) == (3, 1)
    assert (a["land_mu_done"], a["land_mu_gain"], a["land_mu_needed"]) == (3.0, 0.0, round(9.5 / 97, 4))
    assert a["status"] == "on_pace"
    b = trend["乙区"]
    assert (b["house_m2_done"], b["house_m2_needed"], b["status"]) == (0, round(5000 / 97, 2), "behind")
    assert "parcels_target" not in b
    stalled = section(report, "stalled_cases")
    assert [r["code"] for r in stalled.rows] == [code["hold"], code["old"]]
    assert stalled.rows[0]["project_names"] == "一期"
    html = reports.render_html(report)
    assert "三日趋势与久拖案件" in html and "任务完成趋势" in html and "本周调度议程" not in html
    book = openpyxl.load_workbook(io.BytesIO(reports.render_xlsx(report)))
    sheet = book["任务完成趋势"]
    header = [c.value for c in sheet[1]]
    house, land = header.index("房屋已完成(㎡)") + 1, header.index("土地任务(亩)") + 1
    assert sheet.cell(2, land).value == 12.5
    assert sheet.cell(2, house).number_format == "#,##0.00" and sheet.cell(2, land).number_format == "#,##0.0000"


def test_the_weekly_dispatch_has_its_agenda_and_the_daily_does_not(world):
    s, code = world
    weekly = build(s, "weekly")
    assert [t.key for t in weekly.sections] == ["key_parcels", "behind_target", "overdue_findings",
                                                "posts_missing_visits"]
    (overdue,) = section(weekly, "overdue_findings").rows
    assert (overdue["parcel_code"], overdue["days_overdue"], overdue["status"]) == (code["old"], 5, "open")
    assert overdue["check_title"] == weekly_title(weekly, "stalled")
    key = section(weekly, "key_parcels")
    # hold: 40/30 + 0.4 (400 m² parcel) + 10 (holdout) = 11.73; old: 150/30 + 0.4 = 5.4; Z1's deadline is years off.
    assert [(r["rank"], r["code"], r["priority"]) for r in key.rows] == [
        (1, code["hold"], pytest.approx(40 / 30 + 0.4 + 10, abs=1e-3)), (2, code["old"], pytest.approx(5.4))]
    # the unit working each on the day, its staff masked for a report that may not show names
    assert [(r["unit_name"], r["staff_name"]) for r in key.rows] == [("市住建局", "王*保"), (None, None)]
    (post,) = section(weekly, "posts_missing_visits").rows
    assert (post["post_name"], post["missed"], post["missed_weeks"]) == ("甲区指挥分部", 2, "2023-02-20、2023-03-06")
    assert post["last_visit_on"] == date(2023, 3, 14)
    assert [r["district_name"] for r in section(weekly, "behind_target").rows] == ["乙区"]
    # project names, not codes, in the checks' findings too
    (stalled,) = [c for c in weekly.checks if c["check"] == "stalled"]
    assert {f["projects"] for f in stalled["top"]} == {"一期"}
    assert {h["projects"] for h in weekly.holdouts} == {"一期"}
    html = reports.render_html(weekly)
    agenda = html[html.index("本周调度议程"):html.index("一、项目进度")]
    assert "议题一" in agenda and code["hold"] in agenda and "议题二" in agenda and "乙区" in agenda
    assert code["s1"] not in agenda and "今日动态" not in html

    daily = build(s, "daily")
    assert [t.key for t in daily.sections] == ["new_findings"] and [m["code"] for m in daily.moves] == [code["s1"]]
    assert [r["parcel_code"] for r in section(daily, "new_findings").rows] == [code["hold"]]  # not the 1 March one
    html = reports.render_html(daily)
    assert "本周调度议程" not in html and code["s1"] in html[html.index("今日动态"):html.index("一、项目进度")]


def test_the_daily_hook_adds_a_section(world, monkeypatch):
    s, _code = world

    def news(conn, ctx):
        return report_sections.SectionTable("news", "今日新增问题", f"{ctx.day}", (report_sections.Column(
            "n", "件数", "int"),), [{"n": 3}])

    monkeypatch.setitem(report_sections.SECTIONS, "daily", [news])
    daily = build(s, "daily")
    assert [t.key for t in daily.sections] == ["news"] and "今日新增问题" in reports.render_html(daily)


@pytest.mark.parametrize("kind", ["daily", "three-day", "weekly"])
def test_a_past_day_rebuilds_byte_for_byte(world, kind):
    s, _code = world
    first = build(s, kind)
    html, xlsx = reports.render_html(first), reports.render_xlsx(first)
    # a parcel recorded (15 days) and cleared (45 days) after the day changes nothing of the day's report
    add_parcel_with_history(s, 1, m2=70, moves=[(_at(DAY + timedelta(days=45)), "paid", "cleared")])
    again = build(s, kind)
    assert reports.render_html(again) == html and reports.render_xlsx(again) == xlsx
    assert "日终的地块阶段（历史记录回放）绘制" in html
