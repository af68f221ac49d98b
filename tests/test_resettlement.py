"""Resettlement (安置) and cleared land: months of transition and the price difference by hand, the checks on the
demo city's planted cases (exactly those), the writes and their refusals on a small world, the routes and the
export."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gis import checks
from gis.analysis import resettlement as analysis
from gis.analysis.resettlement import add_months, months_started, price_difference, promised_end, transition_months
from gis.demo.resettlement import NOTE_KEY, write_reoccupation_imagery
from gis.imagery.layers import delete_layers_under
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.db import get_engine
from gis.platform.errors import Conflict, InvalidInput
from gis.records import resettlement as records
from tests.conftest import add_parcel


def test_transition_months_by_hand():
    start = date(2025, 1, 15)
    assert months_started(start, date(2025, 1, 15)) == 0  # nothing before the first day
    assert months_started(start, date(2025, 1, 16)) == 1
    # As of 14 March months 1 (15 Jan) and 2 (15 Feb) have started; on 15 March month 3 starts.
    assert transition_months(start, None, date(2025, 3, 14)) == 2
    assert transition_months(start, None, date(2025, 3, 15)) == 3
    # Keys on 15 March: month 3 starts that day and is not owed, whatever the as-of day after it.
    assert transition_months(start, date(2025, 3, 15), date(2026, 6, 1)) == 2
    # Keys after the as-of day do not count yet.
    assert transition_months(start, date(2025, 9, 1), date(2025, 3, 15)) == 3
    # The 31st: month 2 starts on the last day of February.
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert transition_months(date(2025, 1, 31), None, date(2025, 2, 27)) == 1
    assert transition_months(date(2025, 1, 31), None, date(2025, 2, 28)) == 2
    assert promised_end(start, 12) == date(2026, 1, 15)
    assert promised_end(date(2024, 2, 29), 12) == date(2025, 2, 28)


def test_price_difference_by_hand():
    # 90 m² × 4,200 元/m² = 378,000.00; the old house was worth 300,000: the household pays 78,000.
    d = price_difference(Decimal("300000"), Decimal("90.00"), Decimal("4200"))
    assert (d["flat_value_yuan"], d["difference_yuan"], d["payer"]) == (Decimal("378000.00"), Decimal("78000.00"),
                                                                        "household")
    # 75.5 m² × 4,200 = 317,100.00 against 350,000.50: 32,900.50 is paid to the household.
    d = price_difference(Decimal("350000.50"), Decimal("75.50"), Decimal("4200"))
    assert (d["difference_yuan"], d["payer"]) == (Decimal("-32900.50"), "government")
    # Rounded to the cent: 88.6 × 3,333.33 = 293,333.04 + 1,999.998 = 295,333.038 → 295,333.04.
    assert price_difference(Decimal(0), Decimal("88.6"), Decimal("3333.33"))["flat_value_yuan"] == Decimal("295333.04")


# ---------------------------------------------------------------------------------------------
# The demo city: every check finds exactly the planted cases


@pytest.fixture(scope="module")
def manifest(engine, demo_city):
    with engine.connect() as conn:
        return conn.execute(text("SELECT value FROM dataset_notes WHERE key = :k"), {"k": NOTE_KEY}).scalar_one()


def _codes(engine, name: str, as_of: date) -> list[str]:
    check = checks.get_check(name)
    with engine.connect() as conn:
        result = check.run(conn, check.params(), as_of=as_of)
    return sorted({f["code"] for f in result.findings})


@pytest.mark.parametrize("name", ["transition_overdue", "unresettled", "flat_allocated_twice", "idle_cleared_land"])
def test_each_check_finds_exactly_the_planted_cases(engine, manifest, name):
    planted = manifest["planted"][name]
    assert planted, name
    assert _codes(engine, name, date.fromisoformat(manifest["as_of"])) == planted


def test_demo_has_every_state_and_supply_status(engine, manifest):
    as_of = date.fromisoformat(manifest["as_of"])
    with engine.connect() as conn:
        rows = analysis.households(conn, as_of=as_of, tz=DEFAULT_TIMEZONE)
        land = analysis.cleared_land(conn, as_of=as_of, tz=DEFAULT_TIMEZONE)
        stock = analysis.flats(conn, as_of=as_of)
    assert {r["state"] for r in rows} == set(analysis.STATE_LABELS_ZH)
    assert {r["supply_status"] for r in land} == {"awaiting", "transfer", "allocation"}
    assert {r["status"] for r in stock} == {"available", "allocated", "delivered"}
    assert len({r["estate_code"] for r in stock}) == 2
    # Names are masked unless asked for.
    assert all(r["owner_name"] is None or "*" in r["owner_name"] for r in rows)


def test_totals_per_project_and_district_add_up(engine, manifest):
    as_of = date.fromisoformat(manifest["as_of"])
    with engine.connect() as conn:
        rows = analysis.households(conn, as_of=as_of, tz=DEFAULT_TIMEZONE)
        by_project = analysis.totals(conn, as_of=as_of, tz=DEFAULT_TIMEZONE, by="project")
        by_district = analysis.totals(conn, as_of=as_of, tz=DEFAULT_TIMEZONE, by="district")
        paid_months = conn.execute(text("SELECT count(*) FROM transition_payments WHERE paid_on <= :d"),
                                   {"d": as_of}).scalar()
    roles = manifest["households"]
    resettled = len(roles["money_paid"]) + len(roles["delivered"])
    for groups in (by_project, by_district):
        assert sum(g["households"] for g in groups) == len(rows) == sum(len(v) for v in roles.values())
        assert sum(g["resettled"] for g in groups) == resettled
        assert sum(g["waiting"] for g in groups) == len(rows) - resettled
        assert sum(g["months_paid"] for g in groups) == paid_months
        assert sum(g["overdue"] for g in groups) == len(manifest["planted"]["transition_overdue"])
    # Every household that chose a flat and is paid is paid for each month owed, no more.
    for r in rows:
        if r["choice"] == "flat" and r["months_paid"]:
            assert r["months_paid"] <= r["months_due"]


def test_reoccupation_finds_the_planted_structure(engine, demo_city, tmp_path):
    with engine.begin() as conn:
        shot = write_reoccupation_imagery(conn, tmp_path / "cleared")
    try:
        assert shot["planted"]
        assert _codes(engine, "reoccupied", date.fromisoformat(shot["as_of"])) == shot["planted"]
        # Before the latest epoch there is nothing to compare the cleared state with.
        assert _codes(engine, "reoccupied", date.fromisoformat(shot["layers"]["first"]["acquired_on"])) == []
    finally:
        with engine.begin() as conn:
            delete_layers_under(conn, tmp_path / "cleared")


# ---------------------------------------------------------------------------------------------
# A small world: the writes, their refusals, the routes


@pytest.fixture(scope="module")
def world(workflow_db):
    """An estate in district A with one building of two floors and three flats; four house parcels of A at
    stage demolished with their agreement amounts; a cleared parcel; the API over it."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    s = workflow_db.settings
    parcels = [add_parcel(s, 1, stage="demolished", paid_yuan=300000 + 1000 * k, owner=f"安置户{k}")
               for k in range(4)]
    cleared = add_parcel(s, 1, stage="cleared", paid_yuan=100000)
    with get_engine(s).begin() as conn:
        estate = records.add_estate(conn, "T-AZ", "测试安置小区", 1, "test")
        building = records.add_building(conn, estate, "1栋", 2)
        flats = [records.add_flat(conn, building, n, f, Decimal(a), Decimal(4000))
                 for n, f, a in (("101", 1, "90"), ("102", 1, "75.5"), ("201", 2, "110"))]
        signed = [conn.execute(text("SELECT signed_on FROM parcels WHERE id = :p"), {"p": p}).scalar() for p in parcels]
    with TestClient(create_app(s)) as client:
        yield SimpleNamespace(settings=s, parcels=parcels, cleared=cleared, flats=flats, signed=signed[0],
                              client=client, headers=workflow_db.headers)


def test_writes_follow_the_rules_and_keep_history(world):
    s, (p0, p1, p2, p3), (f1, f2, _f3) = world.settings, world.parcels, world.flats
    today = date.today()
    day = world.signed
    engine = get_engine(s)
    with engine.begin() as conn:
        for p in (p0, p1, p2):
            records.register_household(conn, records.HouseholdIn(p, "flat", transition_from=day, promised_months=6,
                                                                 monthly_fee_yuan=Decimal(1200)), "test", today)
        records.register_household(conn, records.HouseholdIn(p3, "money"), "test", today)
        # The agreement amount is the old house's value unless given.
        assert records.get_household(conn, p0)["old_value_yuan"] == Decimal("300000.00")
    with engine.begin() as conn, pytest.raises(Conflict, match="already recorded"):
        records.register_household(conn, records.HouseholdIn(p0, "money"), "test", today)
    with engine.begin() as conn, pytest.raises(InvalidInput, match="no transition"):
        records.register_household(conn, records.HouseholdIn(world.cleared, "money", promised_months=3), "test",
                                   today)
    # Signing order: p0, p1, p2 signed the same day, so by code; p1 cannot select before p0.
    with engine.begin() as conn, pytest.raises(Conflict, match="not this household's turn"):
        records.select_flat(conn, p1, f1, day, "test", today)
    with engine.begin() as conn:
        chosen = records.select_flat(conn, p0, f1, day, "test", today)
        assert chosen["selection_order"] == 1
    with engine.begin() as conn, pytest.raises(Conflict, match="already allocated"):
        records.select_flat(conn, p1, f1, day, "test", today)
    # The database itself refuses a second allocation of a flat in force.
    with engine.begin() as conn, pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO resettlement_allocations (parcel_id, flat_id, selection_order, selected_on) "
                          "VALUES (:p, :f, 2, :d)"), {"p": p1, "f": f1, "d": day})
    with engine.begin() as conn:
        assert records.select_flat(conn, p1, f2, day, "test", today)["selection_order"] == 2
        # A month's fee once; the transition months, as of today, are those started since `day`.
        records.pay_transition_month(conn, p0, 1, day, Decimal(1200), "test", today)
    with engine.begin() as conn, pytest.raises(Conflict, match="already paid"):
        records.pay_transition_month(conn, p0, 1, day, Decimal(1200), "test", today)
    with engine.begin() as conn:
        difference = analysis.household_difference(conn, p0)
        # 90 m² × 4,000 = 360,000 against 300,000: the household pays 60,000.
        assert difference["difference_yuan"] == Decimal("60000.00")
        assert analysis.household_difference(conn, p0, Decimal(400000))["difference_yuan"] == Decimal("-40000.00")
        records.hand_over_keys(conn, p0, today, "test", today)
        kinds = conn.execute(text("SELECT count(*) FROM parcel_events WHERE parcel_id = :p AND kind = 'resettlement'"),
                             {"p": p0}).scalar()
        assert kinds == 4  # household, selection, fee, keys
        steps = [s["step"] for s in analysis.timeline(conn, p0, as_of=today, tz=DEFAULT_TIMEZONE)]
        assert steps[0] == "agreement" and steps[-1] == "keys" and "selection" in steps and "transition_fee" in steps
        state = {h["parcel_id"]: h["state"] for h in analysis.households(conn, as_of=today, tz=DEFAULT_TIMEZONE)}
        assert state == {p0: "delivered", p1: "selected", p2: "awaiting_selection", p3: "money_paid"}
    # p2 is demolished with no flat and no fee, but 30 days is the grace: found with grace 0 only (it is not
    # past its promise either). Nothing written by a refused call.
    with engine.connect() as conn:
        found = checks.get_check("unresettled").run(conn, checks.get_check("unresettled").params(grace_days=0))
        assert p2 in {f["parcel_id"] for f in found.findings} and p0 not in {f["parcel_id"] for f in found.findings}
        assert conn.execute(text("SELECT count(*) FROM transition_payments WHERE parcel_id = :p"),
                            {"p": p0}).scalar() == 1


def test_supply_of_cleared_land(world):
    s, today = world.settings, date.today()
    engine = get_engine(s)
    with engine.begin() as conn, pytest.raises(InvalidInput, match="only cleared land"):
        records.record_supply(conn, world.parcels[0], "transfer", today, "某项目", "test", today)
    with engine.connect() as conn:
        before = {r["parcel_id"]: r["supply_status"] for r in analysis.cleared_land(conn, as_of=today,
                                                                                     tz=DEFAULT_TIMEZONE)}
    assert before[world.cleared] == "awaiting"
    r = world.client.post(f"/cleared-land/{world.cleared}/supply", headers=world.headers["district_editor"],
                          json={"method": "allocation", "supplied_on": today.isoformat(), "receiving_project": "道路"})
    assert r.status_code == 201, r.text
    land = world.client.get("/cleared-land", headers=world.headers["viewer"]).json()
    mine = next(p for p in land["parcels"] if p["parcel_id"] == world.cleared)
    assert (mine["supply_status"], mine["receiving_project"]) == ("allocation", "道路")
    # Once only; a bad method is a 422 naming the field.
    again = world.client.post(f"/cleared-land/{world.cleared}/supply", headers=world.headers["admin"],
                              json={"method": "allocation", "supplied_on": today.isoformat(), "receiving_project": "x"})
    assert again.status_code == 409
    bad = world.client.post(f"/cleared-land/{world.cleared}/supply", headers=world.headers["admin"],
                            json={"method": "sale", "supplied_on": today.isoformat(), "receiving_project": "x"})
    assert bad.status_code == 422 and "method" in bad.text
    layer = world.client.get("/cleared-land.geojson", headers=world.headers["viewer"])
    assert layer.status_code == 200
    features = layer.json()["features"]
    assert [f["geometry"]["type"] for f in features if f["id"] == mine["code"]] == ["MultiPolygon"]


def test_routes_mask_names_and_export_rereads(world):
    viewer = world.client.get("/resettlement/households", headers=world.headers["viewer"]).json()
    inspector = world.client.get("/resettlement/households", headers=world.headers["inspector"]).json()
    assert viewer["count"] == inspector["count"] >= 4
    assert all("安置户" not in (h["owner_name"] or "") for h in viewer["households"])
    assert {h["owner_name"] for h in inspector["households"]} >= {"安置户0", "安置户3"}
    # An editor of district A records for A's parcels; B's are refused (403), bad bodies are 422.
    other = add_parcel(world.settings, 2, stage="demolished", paid_yuan=1000)
    r = world.client.post("/resettlement/households", headers=world.headers["district_editor"],
                          json={"parcel_id": other, "choice": "money"})
    assert r.status_code == 403
    r = world.client.post("/resettlement/households", headers=world.headers["admin"],
                          json={"parcel_id": other, "choice": "cash"})
    assert r.status_code == 422 and "choice" in r.text
    r = world.client.get("/resettlement/households?color=red", headers=world.headers["viewer"])
    assert r.status_code == 422
    # The workbook: a totals sheet and one per project, re-read.
    xlsx = world.client.get("/resettlement/status.xlsx", headers=world.headers["viewer"])
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    totals = list(book[book.sheetnames[0]].iter_rows(values_only=True))
    assert book.sheetnames[0] == "按项目汇总" and totals[0][:3] == ("项目编号", "项目", "安置户数")
    households = sum(r[2] for r in totals[1:] if isinstance(r[2], int) and not str(r[0]).startswith("合计"))
    assert households == viewer["count"]
    listed = [row for name in book.sheetnames[1:] for row in book[name].iter_rows(values_only=True)]
    assert all("安置户" not in str(cell) for row in listed for cell in row)
    totals_api = world.client.get("/resettlement/totals?by=district", headers=world.headers["viewer"]).json()
    assert sum(g["households"] for g in totals_api["groups"]) == viewer["count"]


def test_page_and_map_show_totals_without_names(world):
    page = world.client.get("/resettlement", headers=world.headers["viewer"])
    assert page.status_code == 200 and "安置进度" in page.text and 'data-nav="resettlement"' in page.text
    groups = world.client.get("/resettlement/totals", headers=world.headers["viewer"]).json()["groups"]
    for g in groups:  # each project's row: its name, then its households
        assert f'<td>{g["name"]}</td><td class="n">{g["households"]}</td>' in page.text
    flats = world.client.get("/resettlement/flats", headers=world.headers["viewer"]).json()["flats"]
    available = sum(f["status"] == "available" for f in flats)
    assert f'<td>测试安置小区</td><td class="n">{available}</td>' in page.text
    names = [f"安置户{k}" for k in range(4)]
    assert not [n for n in names if n in page.text]
    land = world.client.get("/cleared-land/map", headers=world.headers["viewer"])
    assert land.status_code == 200 and "交地后土地供应" in land.text and not [n for n in names if n in land.text]
    assert "cdn." not in land.text.lower()  # the map's scripts are served locally


def test_cli_lists_exports_and_refuses(world, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app as cli
    from gis.platform.config import get_settings

    s = world.settings
    for key, value in {"GIS_DATA_DIR": str(s.data_dir), "GIS_PG_FSYNC": "false",
                       "GIS_DATABASE_NAME": s.database_name, "GIS_PG_PORT": str(s.pg_port)}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(cli, ["cleared-land", "list"])
        assert listed.exit_code == 0 and str(world.cleared) in listed.stdout
        out = tmp_path / "status.xlsx"
        assert runner.invoke(cli, ["resettlement", "export", str(out)]).exit_code == 0
        assert load_workbook(out, read_only=True).sheetnames[0] == "按项目汇总"
        refused = runner.invoke(cli, ["cleared-land", "supply", str(world.parcels[0]), "transfer", "某项目",
                                      "--actor", "test"])
        assert refused.exit_code == 1
        assert "only cleared land" in (refused.output + str(refused.exception))
        with get_engine(s).connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM land_supply WHERE parcel_id = :p"),
                                {"p": world.parcels[0]}).scalar() == 0
    finally:
        get_settings.cache_clear()
