"""The daily report (一天一汇报) says what happened that day, from the history: which parcels moved stage (code,
district, from → to, time) and, per district, the parcels signed and demolished that day with their areas; a
rebuild for a past day is byte for byte the same. On a small world of parcels moved on known days."""

from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import text

from gis import reports
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine
from tests.conftest import add_parcel_with_history, city_time

DAY = (2023, 3, 15)  # a past day of this world of its own: the other tests' parcels moved in the last weeks


@pytest.fixture(scope="module")
def moved(workflow_db):
    """On 15 March: Q1 (A, 120.5 m²) signed at 09:05; Q2 (A, 2.25 mu) signed at 23:50 city time (15:50 UTC);
    Q3 (B, 300 m²) demolished at 14:00; Q4 (A) signed at 00:10 on 16 March (the next day in the city, still
    15 March in UTC). Q1 moved again on 16 March, which the report for the 15th must not show."""
    s = workflow_db.settings
    y, m, d = DAY
    codes = {}
    codes["q1"] = add_parcel_with_history(s, 1, m2=120.5, moves=[(city_time(y, m, d, 9, 5), "appraised", "signed"),
                                                                 (city_time(y, m, 16, 11), "signed", "paid")])
    codes["q2"] = add_parcel_with_history(s, 1, mu=2.25, moves=[(city_time(y, m, d, 23, 50), "appraised", "signed")])
    codes["q3"] = add_parcel_with_history(s, 2, m2=300, moves=[(city_time(y, m, d, 14), "paid", "demolished")])
    codes["q4"] = add_parcel_with_history(s, 1, m2=80, moves=[(city_time(y, m, 16, 0, 10), "appraised", "signed")])
    with get_engine(s).connect() as conn:
        found = dict(conn.execute(text("SELECT id, code FROM parcels WHERE id = ANY(:ids)"),
                                  {"ids": list(codes.values())}).all())
    return workflow_db, {k: found[v] for k, v in codes.items()}


def _build(wf, kind: str = "daily") -> reports.Report:
    from datetime import date

    with get_engine(wf.settings).connect() as conn:
        return reports.build_report(conn, kind, date(*DAY), tolerance=Tolerance.from_settings(wf.settings),
                                    tz=wf.settings.city_timezone)


def test_the_daily_report_names_the_parcels_moved_that_day(moved):
    wf, code = moved
    report = _build(wf)
    ours = [m for m in report.moves if m["code"] in code.values()]
    assert [(m["code"], m["district"], m["stage_from"], m["stage_to"], m["time"]) for m in ours] == [
        (code["q1"], "a", "appraised", "signed", "09:05"),
        (code["q2"], "a", "appraised", "signed", "23:50"),
        (code["q3"], "b", "paid", "demolished", "14:00"),
    ]
    by = {d["district"]: d for d in report.today_by_district}
    assert by["a"]["signed"] == {"parcels": 2, "house_m2": 120.5, "land_mu": 2.25}
    assert by["a"]["demolished"] == {"parcels": 0, "house_m2": 0.0, "land_mu": 0.0}
    assert by["b"]["demolished"] == {"parcels": 1, "house_m2": 300.0, "land_mu": 0.0}
    html = reports.render_html(report)
    assert "今日动态" in html and code["q3"] in html and "补偿款发放 → 腾空/拆除" in html
    today_section = html[html.index("今日动态"):html.index("一、项目进度")]
    assert code["q1"] in today_section and code["q4"] not in today_section  # Q4 signed on the 16th in the city
    book = openpyxl.load_workbook(io.BytesIO(reports.render_xlsx(report)))
    rows = list(book["今日阶段变动"].iter_rows(values_only=True))
    assert rows[0][:6] == ("片区", "地块编号", "类型", "原阶段", "新阶段", "时间")
    assert ("乙区", code["q3"], "房屋", "补偿款发放", "腾空/拆除", "14:00", 300, None) in rows
    assert code["q4"] not in {r[1] for r in rows}
    sheet = book["今日签约拆除"]
    assert sheet.cell(2, 5).number_format == "#,##0.0000" and sheet.cell(2, 4).number_format == "#,##0.00"
    assert [c.value for c in sheet[2]] == ["a", "甲区", 2, 120.5, 2.25, 0, 0, 0]


def test_a_past_day_rebuilds_byte_for_byte_and_only_the_daily_report_has_it(moved):
    wf, _code = moved
    first, second = _build(wf), _build(wf)
    assert reports.render_xlsx(first) == reports.render_xlsx(second)
    assert reports.render_html(first) == reports.render_html(second)
    # a parcel recorded and moved later does not change the past day's report
    y, m, _d = DAY
    add_parcel_with_history(wf.settings, 1, m2=50, moves=[(city_time(y, m + 1, 20), "appraised", "signed")])
    assert reports.render_xlsx(_build(wf)) == reports.render_xlsx(first)
    weekly = _build(wf, "weekly")
    assert weekly.moves is None and "moves" not in weekly.as_dict() and "今日动态" not in reports.render_html(weekly)
    assert "moves" in first.as_dict()
