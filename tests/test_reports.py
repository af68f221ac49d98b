"""Reports: their numbers against the demo generator's history replayed by hand, the same bytes when generated
twice, the XLSX re-read with openpyxl, and the HTML page in a real headless Chromium with no outside requests."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta

import openpyxl
import pytest
import shapely
from typer.testing import CliRunner

from gis import reports
from gis.demo.generator import DEFAULT_TODAY
from gis.domain.stages import ALL_STAGES
from gis.domain.tolerance import Tolerance
from gis.platform.db import get_app_engine
from tests.oracles import footprint_of, stage_on

ACQUIRED = ("paid", "demolished", "cleared")


@pytest.fixture(scope="module")
def members(demo_city, settings) -> dict[str, set[int]]:
    """Project code → ids of the parcels in its footprint beyond the tolerance (shapely, not PostGIS)."""
    out = {}
    geoms = demo_city.parcels.geometry.values
    ids = demo_city.parcels["id"].to_numpy()
    for _, project in demo_city.projects.iterrows():
        fp = footprint_of(project)
        hit = shapely.intersects(fp, geoms)
        area = shapely.area(shapely.intersection(geoms[hit], fp))
        keep = (area >= settings.blocker_min_m2) & (area >= settings.blocker_min_share * shapely.area(geoms[hit]))
        out[project["code"]] = set(ids[hit][keep].tolist())
    return out


CASES = [("weekly", DEFAULT_TODAY), ("three-day", date(2026, 6, 30)), ("daily", date(2025, 12, 31))]


@pytest.mark.parametrize(("kind", "day"), CASES)
def test_report_numbers_agree_with_the_history(client, demo_city, members, kind, day):
    body = client.get(f"/reports/{kind}", params={"date": day.isoformat(), "format": "json"}).json()
    period = {"daily": 1, "three-day": 3, "weekly": 7}[kind]
    assert (body["date"], body["previous"], body["period_days"]) == (day.isoformat(),
                                                                     (day - timedelta(days=period)).isoformat(), period)
    now, before = stage_on(demo_city, day), stage_on(demo_city, day - timedelta(days=period))
    projects = {p["code"]: p for p in body["projects"]}
    deadlines = dict(zip(demo_city.projects["code"], demo_city.projects["deadline"]))
    for code, ids in members.items():
        p = projects[code]
        recorded = [i for i in ids if i in now]
        cleared = sum(now[i] == "cleared" for i in recorded)
        cleared_before = sum(before.get(i) == "cleared" for i in ids)
        assert (p["total"], p["cleared"], p["cleared_before"], p["change"]) == (
            len(recorded), cleared, cleared_before, cleared - cleared_before), code
        assert p["blocking_by_stage"] == {s: sum(now[i] == s for i in recorded)
                                          for s in ALL_STAGES if s != "cleared"}
        assert p["stage_changes"] == sum(now[i] != before.get(i) for i in recorded)
        assert p["days_to_deadline"] == (deadlines[code] - day).days
        series = {pt["date"]: pt for pt in body["series"][code]}
        assert series[day.isoformat()]["cleared"] == cleared
        for back in (0, period, 45, 200):
            then = day - timedelta(days=back)
            if then.isoformat() not in series:
                continue
            stages = stage_on(demo_city, then)
            point = series[then.isoformat()]
            assert point["recorded"] == sum(i in stages for i in ids)
            assert point["acquired"] == sum(stages.get(i) in ACQUIRED for i in ids)
            assert point["cleared"] == sum(stages.get(i) == "cleared" for i in ids)
    # The district ranking (比拼): every parcel in any footprint, by district, ranked by share cleared.
    district_of = dict(zip(demo_city.parcels["id"], demo_city.parcels["district_id"]))
    code_of_district = dict(zip(demo_city.districts["id"], demo_city.districts["code"]))
    in_any = set().union(*members.values())
    expected = {}
    for d in demo_city.districts["code"]:
        mine = [i for i in in_any if code_of_district[district_of[i]] == d and i in now]
        cleared = sum(now[i] == "cleared" for i in mine)
        expected[d] = (len(mine), cleared, cleared - sum(before.get(i) == "cleared" for i in mine))
    got = {d["district"]: (d["total"], d["cleared"], d["change"]) for d in body["districts"]}
    assert got == {d: v for d, v in expected.items() if v[0] or d in got}
    order = sorted(got, key=lambda d: (-(100.0 * got[d][1] / got[d][0] if got[d][0] else 0), -got[d][1], d))
    assert [d["district"] for d in body["districts"]] == order
    assert [d["rank"] for d in body["districts"]] == list(range(1, len(order) + 1))


def test_report_lists_the_checks_and_holdouts(client, demo_city):
    body = client.get("/reports/daily", params={"date": DEFAULT_TODAY.isoformat(), "format": "json"}).json()
    counts = {c["check"]: c["count"] for c in body["checks"]}
    planted = demo_city.planted
    assert counts["paid_not_demolished"] == len(planted["paid_not_demolished"])
    assert counts["above_standard"] == len(planted["above_standard"])
    assert counts["incomplete_archives"] == len(planted["missing_documents"])
    assert counts["incidental_area"] == len(planted["incidental"])
    assert counts["double_compensation"] == len(planted["paid_twice"]) + len(planted["overlapping_pair"])
    assert {h["code"] for h in body["holdouts"]} == set(planted["holdouts"]) | set(planted["legacy"])
    top = {c["check"]: c["top"] for c in body["checks"]}
    assert {f["code"] for f in top["paid_not_demolished"]} == set(planted["paid_not_demolished"])
    for b in body["blockers"]:
        project = next(p for p in body["projects"] if p["code"] == b["project"])
        assert b["total"] == project["blocking"] == sum(b["by_stage"].values())
        days = [i["days_in_stage"] for i in b["longest"]]
        assert days == sorted(days, reverse=True) and len(days) == min(10, b["total"])


@pytest.fixture(scope="module")
def built_twice(demo_city, settings):
    """The weekly report for the demo's day, built twice from scratch (maps and charts included)."""
    tol = Tolerance.from_settings(settings)
    files = []
    for _ in range(2):
        with get_app_engine(settings).connect() as conn:
            report = reports.build_report(conn, "weekly", DEFAULT_TODAY, tolerance=tol, tz=settings.city_timezone)
        files.append((reports.render_html(report), reports.render_xlsx(report), report))
    return files


def test_same_data_same_report_byte_for_byte(built_twice):
    (html1, xlsx1, report), (html2, xlsx2, _) = built_twice
    assert html1 == html2 and xlsx1 == xlsx2
    assert len(report.maps) == 3 and len(report.charts) == 3
    assert all(png.startswith(b"\x89PNG") for png in [*report.maps.values(), *report.charts.values()])


def test_xlsx_has_chinese_sheets_and_the_report_numbers(built_twice):
    _, xlsx, report = built_twice[0]
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    sheets = {"概况", "项目进度", "片区比拼", "阻碍地块", "钉子户", "核查汇总", "进度曲线数据", "图表"}
    assert sheets <= set(book.sheetnames)
    assert book.properties.created == datetime(2026, 11, 27) == book.properties.modified
    rows = list(book["项目进度"].iter_rows(values_only=True))
    assert rows[0][:4] == ("项目代码", "项目", "红线内地块", "已交地")
    got = {r[0]: r for r in rows[1:]}
    for p in report.projects:
        assert got[p["code"]][2:6] == (p["total"], p["cleared"], p["cleared_before"], p["change"])
        assert got[p["code"]][6] == pytest.approx(p["percent_cleared"] / 100)
    ranking = list(book["片区比拼"].iter_rows(values_only=True))
    assert [r[1] for r in ranking[1:]] == [d["district_name"] for d in report.districts]
    checks = {r[0]: r[1] for r in list(book["核查汇总"].iter_rows(values_only=True))[1:]}
    assert checks == {c["title"]: c["count"] for c in report.checks}
    holdouts = {r[0] for r in list(book["钉子户"].iter_rows(values_only=True))[1:]}
    assert holdouts == {h["code"] for h in report.holdouts}
    assert len(book["图表"]._images) == 6


def test_html_opens_in_headless_chromium_without_errors_or_outside_requests(built_twice, tmp_path):
    """Loaded from a file, as a report mailed around would be: as it is, and with everything but the file aborted
    (the maps' browser-test helper, ``tests.test_maps_browser.Visit``, does the looking)."""
    from playwright.sync_api import sync_playwright

    from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, Visit

    html, _, report = built_twice[0]
    (tmp_path / "weekly.html").write_text(html, encoding="utf-8")
    base = tmp_path.as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for block_outside in (False, True):
                visit = Visit(browser, base, "no-token", "/weekly.html", block_outside, "report-weekly")
                try:
                    visit.check_offline(base)
                    assert all(u.startswith((base + "/", "data:")) for u in visit.requests)
                    images = visit.page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
                    title = visit.page.title()
                    bars = visit.page.evaluate("document.querySelectorAll('.bar span').length")
                finally:
                    visit.close()
                assert len(images) == 6 and all(done and width > 0 for done, width in images)
                assert title == report.heading
                assert bars == len(report.projects) + len(report.districts) + sum(
                    len(d["projects"]) for d in report.districts)
        finally:
            browser.close()


def test_reports_are_for_every_role_with_owner_names_masked_for_viewers(client, anon_client, role_headers):
    params = {"date": DEFAULT_TODAY.isoformat(), "format": "json"}
    assert anon_client.get("/reports/daily", params=params).status_code == 401
    viewer = client.get("/reports/daily", params=params, headers=role_headers["viewer"])
    assert viewer.status_code == 200
    names = [h["owner_name"] for h in viewer.json()["holdouts"]]
    assert names and all("*" in n for n in names)
    inspector = client.get("/reports/daily", params=params, headers=role_headers["inspector"]).json()
    assert not any("*" in h["owner_name"] for h in inspector["holdouts"])
    assert not any("*" in f["owner_name"] for c in inspector["checks"] for f in c["top"] if f.get("owner_name"))
    assert client.get("/reports/monthly", params=params).status_code == 422
    assert client.get("/reports/daily", params={"date": "2026-02-30"}).status_code == 422


def test_cli_report(client, settings, monkeypatch, role_headers):
    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["report", "three-day", "--date", "2026-11-20", "--json"])
        table = CliRunner().invoke(app, ["report", "daily", "--date", "2026-11-20"])
        bad = CliRunner().invoke(app, ["report", "monthly"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    api = client.get("/reports/three-day", params={"date": "2026-11-20", "format": "json"},
                     headers=role_headers["viewer"]).json()
    # The CLI runs with the database's own credentials (the operator): names masked as for a viewer unless
    # --reveal-personal, but the checks' findings listed (a viewer gets their counts only).
    cli_report = json.loads(out.stdout)
    assert all(c["findings_shown"] for c in cli_report["checks"])
    assert {k: v for k, v in cli_report.items() if k != "checks"} == {k: v for k, v in api.items() if k != "checks"}
    assert [c["count"] for c in cli_report["checks"]] == [c["count"] for c in api["checks"]]
    assert table.exit_code == 0 and "高铁项目" in table.stdout
    assert bad.exit_code != 0


def test_check_findings_in_reports_only_for_the_roles_that_may_read_checks(client, role_headers, demo_city):
    """Issue 14, defect 13: viewers and district editors are refused /checks, so their reports carry each
    check's rule and counts but not its findings (parcels, owners, amounts); inspectors and admins get both."""
    day = DEFAULT_TODAY.isoformat()
    planted = set(demo_city.planted["paid_not_demolished"])
    for role in ("viewer", "district_editor"):
        assert client.get("/checks", headers=role_headers[role]).status_code == 403
        body = client.get("/reports/daily", params={"date": day, "format": "json"}, headers=role_headers[role]).json()
        assert {c["check"]: c["count"] for c in body["checks"]}["paid_not_demolished"] == len(planted)
        assert all(c["top"] == [] and c["findings_shown"] is False for c in body["checks"]), role
        page = client.get("/reports/daily", params={"date": day}, headers=role_headers[role])
        assert page.status_code == 200 and "核查明细仅向纪检监察和管理员显示" in page.text
        assert not any(code in page.text.split("五、纪检监察核查", 1)[1] for code in planted), role
        book = openpyxl.load_workbook(io.BytesIO(client.get("/reports/daily", params={"date": day, "format": "xlsx"},
                                                            headers=role_headers[role]).content))
        assert "核查汇总" in book.sheetnames and not [n for n in book.sheetnames if n.startswith("核查-")]
    for role in ("inspector", "admin"):
        assert client.get("/checks", headers=role_headers[role]).status_code == 200
        body = client.get("/reports/daily", params={"date": day, "format": "json"}, headers=role_headers[role]).json()
        top = {c["check"]: c for c in body["checks"]}["paid_not_demolished"]
        assert top["findings_shown"] is True and {f["code"] for f in top["top"]} == planted
