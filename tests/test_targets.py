"""Annual targets (年度任务): completion counted from the history for a past date, by hand; quarter against year;
the pace rule; refusals naming row and field with nothing stored; who may write and read."""

from __future__ import annotations

import io
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from typer.testing import CliRunner

from gis.domain.tolerance import Tolerance
from gis.platform.db import get_engine
from gis.records.targets import pace_share, targets_progress
from tests.conftest import add_parcel_with_history as _parcel
from tests.conftest import city_time as _local

YEAR = 2024  # a past year: the other tests' parcels of this world moved in the last weeks, not then
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def world(workflow_db):
    """District A (id 1): P1 400 m² cleared 10 Feb (inside project Z1); P2 250.5 m² cleared 1 Apr 00:30 city
    time (31 Mar in UTC: the second quarter in the city); P3 3.5 mu cleared 20 May (inside Z1); P4 100 m²
    cleared 15 Jan and put back to demolished on 20 Jan; P6 80 m² cleared 31 Dec of the year before.
    District B (id 2): P5 999 m² cleared 1 Feb. Targets of A for the year, Q1 and Q2, and Z1's for the year."""
    s = workflow_db.settings
    with get_engine(s).begin() as conn:
        conn.execute(text("DELETE FROM targets"))
    _parcel(s, 1, m2=400, moves=[(_local(YEAR, 2, 10), "demolished", "cleared")])
    _parcel(s, 1, m2=250.5, inside=False, moves=[(_local(YEAR, 4, 1, 0, 30), "demolished", "cleared")])
    _parcel(s, 1, mu=3.5, moves=[(_local(YEAR, 5, 20), "demolished", "cleared")])
    _parcel(s, 1, m2=100, moves=[(_local(YEAR, 1, 15), "demolished", "cleared"),
                                 (_local(YEAR, 1, 20), "cleared", "demolished")])
    _parcel(s, 1, m2=80, moves=[(_local(YEAR - 1, 12, 31, 23, 59), "demolished", "cleared")])
    _parcel(s, 2, m2=999, moves=[(_local(YEAR, 2, 1), "demolished", "cleared")])
    from api.app import create_app

    with TestClient(create_app(s), headers=workflow_db.headers["admin"]) as client:
        for body in (
            {"district": "a", "year": YEAR, "house_m2": 2000, "land_mu": 10, "parcels": 10},
            {"district": "甲区", "year": str(YEAR), "quarter": 1, "house_m2": 500, "parcels": 2},
            {"district": "a", "year": YEAR, "quarter": "二季度", "house_m2": 250, "land_mu": 3.5},
            {"district": "a", "year": YEAR, "project": "Z1", "parcels": 5},
        ):
            r = client.put("/targets", json=body)
            assert r.status_code == 200, r.text
        yield workflow_db, client
    with get_engine(s).begin() as conn:
        conn.execute(text("DELETE FROM targets"))


def _by(answer: dict, quarter: int | None, project: str | None = None) -> dict:
    [found] = [t for t in answer["targets"] if t["quarter"] == quarter and t["project_code"] == project
               and t["district"] == "a"]
    return found


def test_completion_for_a_past_date_by_hand(world):
    _wf, client = world
    r = client.get("/targets/progress", params={"year": YEAR, "as_of": f"{YEAR}-03-31"})
    assert r.status_code == 200, r.text
    answer = r.json()
    year, q1, q2 = _by(answer, None), _by(answer, 1), _by(answer, 2)
    # 31 March: P1 only (P2 is cleared on 1 April in the city; P4 was put back; P6 is last year's; P5 is B's)
    assert (year["house_m2"]["done"], year["land_mu"]["done"], year["parcels"]["done"]) == (400, 0, 1)
    assert year["house_m2"]["percent"] == 20.0 and year["parcels"]["percent"] == 10.0
    assert year["elapsed"] == round(91 / 366, 4)  # 2024 is a leap year: 31 + 29 + 31 days of 366
    assert q1["house_m2"] == {"target": 500, "done": 400, "percent": 80.0, "expected": 500, "on_pace": False}
    assert q1["land_mu"] is None and q1["elapsed"] == 1 and q1["status"] == "behind"
    assert q2["house_m2"]["done"] == 0 and q2["elapsed"] == 0 and q2["on_pace"] is True  # not begun yet
    assert _by(answer, None, "Z1")["parcels"]["done"] == 1

    r = client.get("/targets/progress", params={"year": YEAR, "as_of": f"{YEAR}-06-30"})
    answer = r.json()
    year, q1, q2 = _by(answer, None), _by(answer, 1), _by(answer, 2)
    assert (year["house_m2"]["done"], year["land_mu"]["done"], year["parcels"]["done"]) == (650.5, 3.5, 3)
    assert (q1["house_m2"]["done"], q1["parcels"]["done"]) == (400, 1)  # the quarter keeps to its own days
    assert (q2["house_m2"]["done"], q2["land_mu"]["done"]) == (250.5, 3.5)
    assert q2["house_m2"]["percent"] == 100.2 and q2["status"] == "on_pace"
    assert _by(answer, None, "Z1")["parcels"]["done"] == 2  # P2 lies outside the project's footprint
    # only the quarter asked for
    only_q2 = client.get("/targets/progress", params={"year": YEAR, "quarter": 2, "as_of": f"{YEAR}-06-30"}).json()
    assert {t["quarter"] for t in only_q2["targets"]} == {2}


def test_the_pace_rule(world):
    wf, _client = world
    # 10 Feb: 41 of 366 days gone. Houses 400 ≥ 2000 × 41/366 (224.04): on pace; land 0 < 10 × 41/366: behind.
    assert pace_share(YEAR, None, date(YEAR, 2, 10)) == 41 / 366
    assert pace_share(YEAR, 1, date(YEAR - 1, 12, 31)) == 0 and pace_share(YEAR, 1, date(YEAR, 4, 1)) == 1
    with get_engine(wf.settings).connect() as conn:
        answer = targets_progress(conn, Tolerance(1.0, 0.01), year=YEAR, as_of=date(YEAR, 2, 10), tz=TZ)
    year = _by(answer, None)
    assert year["house_m2"]["expected"] == pytest.approx(224.04) and year["house_m2"]["on_pace"] is True
    assert year["land_mu"]["expected"] == pytest.approx(1.1202) and year["land_mu"]["on_pace"] is False
    assert year["on_pace"] is False and year["status"] == "behind"  # every measure must be on pace


def test_district_progress_carries_the_targets_of_the_year_and_quarter(world):
    _wf, client = world
    r = client.get("/districts/progress", params={"as_of": f"{YEAR}-05-31"})
    assert r.status_code == 200, r.text
    districts = {d["district"]: d for d in r.json()["districts"]}
    block = districts["a"]["targets"]
    assert block["year"]["year"] == YEAR and block["year"]["quarter"] is None
    assert block["quarter"]["quarter"] == 2 and block["quarter"]["land_mu"]["done"] == 3.5
    assert block["year"]["house_m2"]["done"] == 650.5
    assert districts["b"]["targets"] == {"year": None, "quarter": None}


@pytest.mark.parametrize(("body", "where", "words"), [
    ({"district": "a", "year": 1899, "house_m2": 1}, "row 1, year", "between 2000 and 2100"),
    ({"district": "a", "year": YEAR, "quarter": 5, "house_m2": 1}, "row 1, quarter", "quarter must be 1, 2, 3 or 4"),
    ({"district": "a", "year": YEAR, "house_m2": -1}, "row 1, house_m2", "between 0 and"),
    ({"district": "a", "year": YEAR, "land_mu": 0.00001}, "row 1, land_mu", "more than 4 decimals"),
    ({"district": "nowhere", "year": YEAR, "parcels": 1}, "row 1, district", "unknown district"),
    ({"district": "a", "year": YEAR, "project": "nope", "parcels": 1}, "row 1, project", "unknown project"),
    ({"district": "a", "year": YEAR}, "row 1, house_m2", "no amount given"),
])
def test_bad_targets_are_refused_naming_the_field(world, body, where, words):
    _wf, client = world
    before = client.get("/targets").json()["targets"]
    r = client.put("/targets", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["where"] == where and words in r.json()["detail"]
    assert client.get("/targets").json()["targets"] == before


def test_the_database_keeps_the_same_limits(world):
    wf, _client = world
    for values in ("1, 1899, NULL, 1", "1, 2030, 5, 1", "1, 2030, NULL, -1", "1, 2031, NULL, NULL"):
        with pytest.raises(sa_exc.IntegrityError), get_engine(wf.settings).begin() as conn:
            conn.execute(text(f"INSERT INTO targets (district_id, year, quarter, house_m2) VALUES ({values})"))


def test_an_import_is_all_or_nothing(world):
    _wf, client = world
    good = "片区,年度,季度,房屋（万㎡）,土地（亩）,宗数\n乙区,2025,,1.5,20,30\n乙区,2025,一季度,0.25,,\n"
    bad = good + "乙区,1899,5,-1,,\n"
    r = client.post("/targets/imports", files={"file": ("任务.csv", io.BytesIO(bad.encode()), "text/csv")})
    assert r.status_code == 422, r.text
    issues = r.json()["issues"]
    assert {(i["row"], i["column"]) for i in issues} == {(4, "年度"), (4, "季度"), (4, "房屋（万㎡）")}
    assert client.get("/targets", params={"year": 2025}).json()["count"] == 0  # nothing stored
    r = client.post("/targets/imports", files={"file": ("任务.csv", io.BytesIO(good.encode()), "text/csv")})
    assert r.status_code == 200, r.text
    stored = {t["quarter"]: t for t in client.get("/targets", params={"year": 2025}).json()["targets"]}
    assert (stored[None]["house_m2"], stored[None]["land_mu"], stored[None]["parcels"]) == (15000, 20, 30)
    assert (stored[1]["house_m2"], stored[1]["land_mu"]) == (2500, None)  # 万㎡ read as such
    again = client.post("/targets/imports", files={"file": ("任务.csv", io.BytesIO(good.encode()), "text/csv")})
    assert again.status_code == 200 and client.get("/targets", params={"year": 2025}).json()["count"] == 2
    with get_engine(_wf.settings).begin() as conn:  # leave the world as it was for the other tests
        conn.execute(text("DELETE FROM targets WHERE year = 2025"))


def test_bad_query_values_are_refused(world):
    _wf, client = world
    for params, where in (({"year": 1899}, "year"), ({"quarter": 5}, "quarter")):
        r = client.get("/targets/progress", params=params)
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["detail"]] == [["query", where]]  # the range is stated in OpenAPI


def test_admins_write_and_viewers_read(world):
    wf, client = world
    body = {"district": "a", "year": YEAR, "house_m2": 1}
    for role in ("viewer", "district_editor"):
        assert client.put("/targets", json=body, headers=wf.headers[role]).status_code == 403
        files = {"file": ("t.csv", io.BytesIO(b"x"), "text/csv")}
        assert client.post("/targets/imports", files=files, headers=wf.headers[role]).status_code == 403
    for path in ("/targets", "/targets/progress"):
        assert client.get(path, headers=wf.headers["viewer"]).status_code == 200


def test_cli_imports_and_lists(world, tmp_path, monkeypatch):
    from cli import app as cli
    from gis.platform.config import get_settings

    wf, _client = world
    s = wf.settings
    for key, value in {"GIS_DATA_DIR": str(s.data_dir), "GIS_PG_FSYNC": "false",
                       "GIS_DATABASE_NAME": s.database_name, "GIS_PG_PORT": str(s.pg_port)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        sheet = tmp_path / "targets.csv"
        sheet.write_text("片区,年度,季度,宗数\n乙区,2026,7,3\n", encoding="utf-8")
        runner = CliRunner()
        refused = runner.invoke(cli, ["targets", "import", str(sheet)])
        assert refused.exit_code == 1 and "quarter must be 1, 2, 3 or 4" in refused.output
        sheet.write_text("片区,年度,季度,宗数\n乙区,2026,4,3\n", encoding="utf-8")
        assert runner.invoke(cli, ["targets", "import", str(sheet)]).exit_code == 0
        listed = runner.invoke(cli, ["targets", "list", "--year", "2026", "--json"])
        assert listed.exit_code == 0 and '"parcels": 3' in listed.stdout
    finally:
        get_settings.cache_clear()
        with get_engine(s).begin() as conn:
            conn.execute(text("DELETE FROM targets WHERE year = 2026"))


def test_the_demo_city_has_targets_on_pace_and_behind(client, demo_city):
    from gis.demo.generator import DEFAULT_TODAY, generate_city

    r = client.get("/districts/progress", params={"as_of": DEFAULT_TODAY.isoformat()})
    assert r.status_code == 200, r.text
    blocks = [d["targets"] for d in r.json()["districts"]]
    assert len(blocks) == len(demo_city.districts) and all(b["year"] and b["quarter"] for b in blocks)
    assert {b["year"]["status"] for b in blocks} == {"on_pace", "behind"}
    assert all(b["quarter"]["quarter"] == 4 and b["year"]["year"] == DEFAULT_TODAY.year for b in blocks)
    again = generate_city(len(demo_city.parcels), seed=demo_city.seed, srid=demo_city.srid).targets
    assert again.equals(demo_city.targets)  # deterministic


def test_the_landing_page_shows_the_districts_targets(client, demo_city, settings, engine):
    from gis.demo.generator import DEFAULT_TODAY
    from gis.maps.landing import landing_html
    from gis.records.targets import district_targets

    with engine.connect() as conn:
        blocks = district_targets(conn, Tolerance.from_settings(settings), DEFAULT_TODAY)
    html = landing_html([], today=DEFAULT_TODAY, targets=blocks)
    section = html[html.index("年度任务完成情况"):]
    assert all(name in section for name in demo_city.districts["name"])
    assert f"{DEFAULT_TODAY.year}年全年" in section and f"{DEFAULT_TODAY.year}年第4季度" in section
    assert "按进度" in section and "滞后" in section
    first = blocks[demo_city.districts["code"].iloc[0]]["year"]["house_m2"]
    assert f"{first['done']:,.2f} / {first['target']:,.2f} ㎡" in section
    page = client.get("/")  # the page the service serves (today's targets, whatever today is)
    assert page.status_code == 200 and "重点项目进度" in page.text


def test_the_reports_show_the_targets_for_their_day(world):
    import openpyxl

    from gis import reports

    wf, _client = world
    with get_engine(wf.settings).connect() as conn:
        report = reports.build_report(conn, "daily", date(YEAR, 3, 31), tolerance=Tolerance.from_settings(wf.settings),
                                      tz=TZ, pictures=False)
    got = {(t["district"], t["quarter"]): t for t in report.targets}
    assert set(got) == {("a", None), ("a", 1)}  # the year's and the quarter's; the project's is not a district's
    assert got[("a", 1)]["house_m2"]["done"] == 400 and got[("a", 1)]["status"] == "behind"
    html = reports.render_html(report)
    assert "年度任务完成情况" in html and "400.00 / 500.00（80.0%）" in html and "2024年第1季度" in html
    rows = list(openpyxl.load_workbook(io.BytesIO(reports.render_xlsx(report)))["年度任务"].iter_rows(values_only=True))
    assert rows[1:] == [("甲区", "2024年全年", 2000, 400, 10, 0, 10, 1, round(91 / 366, 4), "滞后"),
                        ("甲区", "2024年第1季度", 500, 400, None, None, 2, 1, 1, "滞后")]
