"""Compensation standards over time: set from planners' sheets (XLSX written here) or JSON, every row checked,
all or nothing; a payment, or an estimate, priced by the standard in force on the parcel's contract date.

In a database of its own ('standards'): districts A (甲区, code a) and B (乙区, code b), 20 m house parcels of
400 m² floor area (``conftest.add_parcel``). Expected amounts are computed here from the numbers the tests
write (floor area × rate), never read back from the queries under test.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from typer.testing import CliRunner

from gis.domain.stages import today_in
from gis.platform.db import get_app_engine, get_engine
from gis.records import standards
from gis.records.parcels import PAYMENT_ITEMS
from tests.conftest import add_parcel, bearer, make_role_tokens
from tests.worlds import two_districts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("片区", "类型", "补偿科目", "单价（元）", "单位", "生效日期")
AREA_M2 = 400  # add_parcel's floor area
OLD_RATE, NEW_RATE = 3000, 3600  # 房屋价值补偿 in 甲区, 元/㎡; the new one from CHANGE_AGO days ago
BETWEEN = 3300  # a paid rate above the old standard and below the new one
LAND_RATE = 60000  # 土地补偿 in 甲区, 元/亩
CHANGE_AGO = 60


@pytest.fixture(scope="module")
def world(pg_dir, settings):
    from api.app import create_app

    s = two_districts(pg_dir, "standards")
    tokens = make_role_tokens(get_engine(s), ["a"], prefix="std")
    today = today_in(s.city_timezone)
    with TestClient(create_app(s), headers=bearer(tokens["admin"])) as client:
        yield SimpleNamespace(settings=s, today=today, change=today - timedelta(days=CHANGE_AGO), client=client,
                              headers={r: bearer(t) for r, t in tokens.items()})


def write_xlsx(path: Path, rows: list[tuple], header: tuple = HEADER) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def upload(world, path: Path, **form):
    with path.open("rb") as fh:
        return world.client.post("/standards/imports", files={"file": (path.name, fh, XLSX)}, data=form)


def stored(world) -> list[tuple]:
    with get_engine(world.settings).connect() as conn:
        return conn.execute(text("SELECT district_id, kind, item, unit, rate_yuan, valid_from "
                                 "FROM compensation_standards ORDER BY 1, 2, 3, 6")).all()


@pytest.fixture(scope="module")
def imported(world, tmp_path_factory):
    """甲区's house value: 3000 元/㎡ from 2024-01-01, 3600 from CHANGE_AGO days ago; its land 60000 元/亩."""
    change = world.change
    path = write_xlsx(tmp_path_factory.mktemp("standards") / "2024年以来补偿标准.xlsx", [
        ("甲区", "房屋", "房屋价值补偿", OLD_RATE, "元/㎡", datetime(2024, 1, 1)),
        ("a", "house", "house_value", NEW_RATE, "元/m2", f"{change.year}年{change.month}月{change.day}日"),
        ("甲区", "土地", "土地补偿", LAND_RATE, "元/亩", "2024/1/1"),
    ])
    r = upload(world, path)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------------------------
# Importing a planner's sheet, and reading the standards back


def test_import_stores_both_rates_with_the_old_ending_the_day_before_the_new(world, imported):
    assert (imported["rows"], imported["created"], imported["unchanged"]) == (3, 3, 0)
    house = [s for s in imported["standards"] if s["item"] == "house_value"]
    assert [(s["rate_yuan"], s["valid_from"], s["valid_to"]) for s in house] == [
        (OLD_RATE, "2024-01-01", (world.change - timedelta(days=1)).isoformat()),
        (NEW_RATE, world.change.isoformat(), None),
    ]
    assert {s["recorded_by"] for s in imported["standards"]} == {"std-admin"}
    # The response came after the commit: another connection sees the rows.
    assert [(r.kind, r.item, r.unit, r.rate_yuan) for r in stored(world)] == [
        ("house", "house_value", "m2", Decimal(OLD_RATE)), ("house", "house_value", "m2", Decimal(NEW_RATE)),
        ("land", "land", "mu", Decimal(LAND_RATE))]


def test_listing_filters_and_the_standards_in_force_on_a_day(world, imported):
    def rates(**params) -> list[float]:
        r = world.client.get("/standards", params=params, headers=world.headers["viewer"])
        assert r.status_code == 200, r.text
        return [s["rate_yuan"] for s in r.json()["standards"]]

    day_before = (world.change - timedelta(days=1)).isoformat()
    assert rates(district="甲区", kind="房屋", item="房屋价值补偿") == [OLD_RATE, NEW_RATE]
    assert rates(district="a", kind="house", on=day_before) == [OLD_RATE]
    assert rates(district="a", kind="house", on=world.change.isoformat()) == [NEW_RATE]
    assert rates(on=world.today.isoformat()) == [NEW_RATE, LAND_RATE]
    assert rates(on="2023-12-31") == []
    assert rates(district="乙区") == []
    for bad in ({"district": "丙区"}, {"kind": "厂房区"}, {"item": "精神损失"}, {"on": "2025-02-30"},
                {"sort": "rate"}):
        r = world.client.get("/standards", params=bad)
        assert r.status_code == 422, (bad, r.text)
    assert world.client.get("/standards", params={"district": "丙区"}).json()["where"] == "district"


# ---------------------------------------------------------------------------------------------
# The contract date decides the standard: the above-standard check


def pay(world, pid: int, days_ago: int, amount: int) -> None:
    with get_engine(world.settings).begin() as conn:
        conn.execute(text("INSERT INTO payments (parcel_id, paid_on, amount_yuan, item) "
                          "VALUES (:p, :on, :amount, 'house_value')"),
                     {"p": pid, "on": world.today - timedelta(days=days_ago), "amount": amount})


def set_dates(world, pid: int, **dates: int | None) -> None:
    """Set ``signed_on`` / ``compensation_decision_on`` to that many days ago (None: no such date)."""
    with get_engine(world.settings).begin() as conn:
        for column, days_ago in dates.items():
            assert column in ("signed_on", "compensation_decision_on")
            conn.execute(text(f"UPDATE parcels SET {column} = :day WHERE id = :id"),
                         {"id": pid, "day": None if days_ago is None else world.today - timedelta(days=days_ago)})


def code_of(world, pid: int) -> str:
    with get_engine(world.settings).connect() as conn:
        return conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": pid}).scalar_one()


def test_payments_are_checked_against_the_standard_of_their_contract_date(world, imported):
    s = world.settings
    before, after = CHANGE_AGO + 30, CHANGE_AGO - 30  # contract dates, days ago, either side of the change
    cases: dict[int, tuple[int, int | None]] = {}  # parcel → (paid rate, the standard's rate it is held to)

    def case(paid_rate: int, expected_rate: int, paid_ago: int = 10, **dates: int | None) -> None:
        pid = add_parcel(s, 1, stage="paid")
        set_dates(world, pid, **dates)
        pay(world, pid, paid_ago, AREA_M2 * paid_rate)
        cases[pid] = (paid_rate, expected_rate)

    case(BETWEEN, OLD_RATE, signed_on=before)  # signed before the change, paid after: the old rate holds
    case(BETWEEN, NEW_RATE, signed_on=after)  # signed after: the new rate, so not above it
    case(3700, NEW_RATE, signed_on=after)
    # The dispute path: the compensation decision is the contract date, also over an agreement that fell through.
    case(BETWEEN, OLD_RATE, signed_on=None, compensation_decision_on=before)
    case(BETWEEN, NEW_RATE, signed_on=before - 10, compensation_decision_on=after)
    # No contract date recorded: the payment's own date.
    case(BETWEEN, NEW_RATE, signed_on=None)
    case(BETWEEN, OLD_RATE, paid_ago=before, signed_on=None)
    # A contract recorded after the payment cannot be the one it was paid under: the payment's date.
    case(BETWEEN, OLD_RATE, paid_ago=before, signed_on=after)

    r = world.client.get("/checks/above-standard", params={"as_of": world.today.isoformat()})
    assert r.status_code == 200, r.text
    found = {f["code"]: f for f in r.json()["findings"]}
    for pid, (paid_rate, rate) in cases.items():
        code = code_of(world, pid)
        excess = AREA_M2 * (paid_rate - rate)
        if excess <= 0:
            assert code not in found, (code, paid_rate, rate)
            continue
        f = found[code]
        assert (f["standard_rate"], f["standard_amount"], f["excess_yuan"]) == (rate, AREA_M2 * rate, excess), code
        assert f["standard_from"] == ("2024-01-01" if rate == OLD_RATE else world.change.isoformat())
    assert r.json()["summary"]["payments_without_standard"] == 0


# ---------------------------------------------------------------------------------------------
# The overlap estimate: today's standard for a parcel without a contract, the contract's otherwise


def estimate_of(world, pid: int) -> dict:
    """The overlap query of the parcel's own square, 1 m wider on each side (no neighbour within 20 m)."""
    with get_engine(world.settings).connect() as conn:
        square = conn.execute(text("SELECT ST_AsGeoJSON(ST_Expand(geom, 1)) FROM parcels WHERE id = :id"),
                              {"id": pid}).scalar_one()
    r = world.client.post("/overlaps", json={"geometry": json.loads(square), "crs": 4549})
    assert r.status_code == 200, r.text
    (hit,) = [p for p in r.json()["parcels"] if p["code"] == code_of(world, pid)]
    return hit


def test_overlap_estimates_use_todays_rate_unless_a_contract_fixed_an_earlier_one(world, imported):
    s = world.settings
    unsigned = add_parcel(s, 1, stage="appraised")
    signed_early = add_parcel(s, 1, stage="signed")
    set_dates(world, signed_early, signed_on=CHANGE_AGO + 30)
    land = add_parcel(s, 1, stage="appraised")
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET kind = 'land', floor_area_m2 = NULL, land_area_mu = 0.6 WHERE id = :id"),
                     {"id": land})

    hit = estimate_of(world, unsigned)
    assert (hit["standard_rate_yuan"], hit["standard_valid_from"]) == (NEW_RATE, world.change.isoformat())
    assert hit["estimated_compensation_yuan"] == pytest.approx(AREA_M2 * NEW_RATE)
    hit = estimate_of(world, signed_early)
    assert hit["estimated_compensation_yuan"] == pytest.approx(AREA_M2 * OLD_RATE)
    hit = estimate_of(world, land)  # the whole 20 m square inside: 400 m² = 0.6 mu at the land rate
    assert hit["standard_unit"] == "mu"
    assert hit["estimated_compensation_yuan"] == pytest.approx(400 / (10000 / 15) * LAND_RATE, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad rows: each named by row and column, and nothing written


VALID = ("乙区", "房屋", "房屋价值补偿", 2800, "元/㎡", "2025-01-01")
BAD_ROWS = {
    "unknown district": (("丙区",) + VALID[1:], "片区", "unknown district"),
    "negative rate": (VALID[:3] + (-2800,) + VALID[4:], "单价（元）", "more than 0"),
    "bad date": (VALID[:5] + ("2025-02-30",), "生效日期", "must be a date"),
    "no date": (VALID[:5] + (None,), "生效日期", "is empty"),
    "unknown kind": (VALID[:1] + ("厂区",) + VALID[2:], "类型", "unknown kind"),
    "item of the other kind": (VALID[:2] + ("青苗补偿",) + VALID[3:], "补偿科目", "no item of 房屋"),
    "unknown unit": (VALID[:4] + ("元/吨",) + VALID[5:], "单位", "unknown unit"),
    "duplicate": (VALID, "生效日期", "row 2 already gives"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_named_and_nothing_is_stored(world, imported, tmp_path, case):
    row, column, reason = BAD_ROWS[case]
    before = stored(world)
    r = upload(world, write_xlsx(tmp_path / "bad.xlsx", [VALID, row]))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["where"] == f"row 3, {column}"
    assert [(i["row"], i["column"]) for i in body["issues"]] == [(3, column)]
    assert reason in body["issues"][0]["message"]
    assert stored(world) == before  # not even the good row 2


def test_every_bad_row_is_reported_at_once(world, imported, tmp_path):
    rows = [VALID] + [row for row, _column, _reason in BAD_ROWS.values()]
    r = upload(world, write_xlsx(tmp_path / "bad.xlsx", rows))
    assert r.status_code == 422
    got = [(i["row"], i["column"]) for i in r.json()["issues"]]
    assert got == [(n, column) for n, (_row, column, _reason) in enumerate(BAD_ROWS.values(), start=3)]


def test_a_sheet_without_a_required_column_is_refused(world, imported, tmp_path):
    r = upload(world, write_xlsx(tmp_path / "no_date.xlsx", [VALID[:5]], header=HEADER[:5]))
    assert r.status_code == 422 and r.json()["where"] == "header" and "生效日期" in r.json()["detail"]


def json_row(values: tuple) -> dict:
    return dict(zip(("district", "kind", "item", "rate_yuan", "unit", "valid_from"), values))


OUT_OF_RANGE = [
    ("rate_yuan", 0, "m2"), ("rate_yuan", -1, "m2"), ("rate_yuan", "200000.01", "m2"),
    ("rate_yuan", "10000000.01", "mu"), ("rate_yuan", "12.345", "m2"), ("rate_yuan", "很多", "m2"),
    ("valid_from", "1989-12-31", "m2"), ("valid_from", "2100-01-01", "m2"), ("valid_from", "2025-13-01", "m2"),
]


@pytest.mark.parametrize(("field", "value", "unit"), OUT_OF_RANGE)
def test_put_and_import_refuse_the_same_values_in_the_same_words(world, imported, tmp_path, field, value, unit):
    row = {"district": "b", "kind": "house" if unit == "m2" else "land",
           "item": "house_value" if unit == "m2" else "land", "rate_yuan": 2800, "unit": unit,
           "valid_from": "2025-01-01"} | {field: value}
    before = stored(world)
    put = world.client.put("/standards", json=[row])
    assert put.status_code == 422, put.text
    assert put.json()["where"] == f"row 1, {field}"
    header = {"district": "片区", "kind": "类型", "item": "补偿科目", "rate_yuan": "单价", "unit": "单位",
              "valid_from": "生效日期"}
    sheet = upload(world, write_xlsx(tmp_path / "one.xlsx", [tuple(row.values())], header=tuple(header.values())))
    assert sheet.status_code == 422, sheet.text
    assert sheet.json()["where"] == f"row 2, {header[field]}"
    assert sheet.json()["issues"][0]["message"] == put.json()["issues"][0]["message"]
    assert stored(world) == before


@pytest.mark.parametrize(("rate", "unit", "valid_from", "ok"), [
    (standards.MAX_RATE_YUAN["m2"], "m2", standards.VALID_FROM_RANGE[1], True),
    (standards.MAX_RATE_YUAN["m2"] + Decimal("0.01"), "m2", date(2025, 1, 1), False),
    (standards.MAX_RATE_YUAN["mu"], "mu", standards.VALID_FROM_RANGE[0], True),
    (standards.MAX_RATE_YUAN["mu"] + 1, "mu", date(2025, 1, 1), False),
    (Decimal(0), "m2", date(2025, 1, 1), False),
    (Decimal(1), "m2", standards.VALID_FROM_RANGE[0] - timedelta(days=1), False),
    (Decimal(1), "m2", standards.VALID_FROM_RANGE[1] + timedelta(days=1), False),
])
def test_the_database_keeps_the_same_limits(world, rate, unit, valid_from, ok):
    """The CHECK constraints of migration 0007, written from the same constants, hold even for the owner."""
    kind = "house" if unit == "m2" else "land"
    engine = get_engine(world.settings)
    with engine.connect() as conn:
        with conn.begin() as tx:
            insert = text("INSERT INTO compensation_standards (district_id, kind, item, unit, rate_yuan, valid_from) "
                          "VALUES (2, :kind, :item, :unit, :rate, :day)")
            params = {"kind": kind, "item": standards.BASE_ITEM[kind], "unit": unit, "rate": rate, "day": valid_from}
            if ok:
                conn.execute(insert, params)
            else:
                with pytest.raises(IntegrityError, match="compensation_standards_(rate|valid_from)_range"):
                    conn.execute(insert, params)
            tx.rollback()
        with conn.begin(), pytest.raises(IntegrityError, match="compensation_standards_item"):
            conn.execute(text("INSERT INTO compensation_standards (district_id, kind, item, unit, rate_yuan, "
                              "valid_from) VALUES (2, 'house', 'crops', 'mu', 100, '2025-01-01')"))


# ---------------------------------------------------------------------------------------------
# PUT: stores, answers with what was stored; a standard in force keeps its rate


def test_put_stores_and_a_standard_in_force_keeps_its_rate(world, imported):
    future = date(world.today.year + 1, 1, 1).isoformat()
    rows = [json_row(("b", "land", "crops", "1500.5", "mu", "2024-03-01")),
            json_row(("乙区", "房屋", "搬迁费", 20, None, future)) | {"note": "宁政〔2025〕1号"}]
    r = world.client.put("/standards", json=rows)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["corrected"], body["unchanged"]) == (2, 0, 0)
    assert [(s["item"], s["unit"], s["rate_yuan"], s["valid_from"], s["note"]) for s in body["standards"]] == [
        ("crops", "mu", 1500.5, "2024-03-01", None), ("relocation", "m2", 20.0, future, "宁政〔2025〕1号")]
    # Sent again: nothing changes. The future one may be corrected; the one in force keeps its rate.
    assert world.client.put("/standards", json=rows).json()["unchanged"] == 2
    fixed = world.client.put("/standards", json=[rows[1] | {"rate_yuan": 25}])
    assert fixed.status_code == 200 and fixed.json()["corrected"] == 1
    assert fixed.json()["standards"][0]["rate_yuan"] == 25.0
    refused = world.client.put("/standards", json=[rows[0] | {"rate_yuan": 1800}])
    assert refused.status_code == 422 and refused.json()["where"] == "row 1, rate_yuan"
    assert "not rewritten" in refused.json()["detail"]
    noted = world.client.put("/standards", json=[rows[0] | {"note": "宁政〔2024〕3号"}])
    assert noted.status_code == 200 and noted.json()["standards"][0]["note"] == "宁政〔2024〕3号"
    assert world.client.put("/standards", json=[rows[0] | {"colour": "red"}]).status_code == 422
    assert world.client.put("/standards", json=rows, headers=world.headers["inspector"]).status_code == 403


def test_put_refuses_a_duplicate_within_the_list(world, imported):
    row = json_row(("b", "house", "incentive", 100, "m2", "2025-05-01"))
    r = world.client.put("/standards", json=[row, row | {"rate_yuan": 200}])
    assert r.status_code == 422 and r.json()["where"] == "row 2, valid_from"


# ---------------------------------------------------------------------------------------------
# The template, English headers, the command line


def test_the_template_reads_back_as_an_importable_sheet(world, imported, tmp_path):
    r = world.client.get("/standards/template.xlsx", headers=world.headers["viewer"])
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    path = tmp_path / "template.xlsx"
    path.write_bytes(r.content)
    book = openpyxl.load_workbook(path)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("片区", "类型", "补偿科目", "单价", "单位", "生效日期", "依据", "等级/种类", "签约期限")
    assert len(rows) == 2 and rows[1][:3] == ("甲区", "房屋", "房屋价值补偿")
    assert "填写说明" in book.sheetnames
    before = stored(world)
    check = upload(world, path, dry_run="true")
    assert check.status_code == 200, check.text
    assert (check.json()["rows"], check.json()["created"], check.json()["dry_run"]) == (1, 1, True)
    assert stored(world) == before


def test_a_csv_with_english_headers(world, imported, tmp_path):
    path = tmp_path / "standards.csv"
    path.write_text("district,kind,item,rate_yuan,valid_from,colour\n"
                    f"a,house,house_value,{NEW_RATE},{world.change.isoformat()},red\n", encoding="utf-8")
    with path.open("rb") as fh:
        r = world.client.post("/standards/imports", files={"file": (path.name, fh, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["unchanged"] == 1 and r.json()["notes"] == ["columns not used: colour"]


def test_a_unit_in_the_rate_header_and_the_service_login_cannot_delete(world, imported, tmp_path):
    path = write_xlsx(tmp_path / "per_mu.xlsx", [("乙区", "房屋", "奖励", 50000, datetime(2024, 6, 1))],
                      header=("片区", "类型", "补偿科目", "单价（元/亩）", "生效日期"))
    r = upload(world, path)
    assert r.status_code == 200, r.text
    assert [(s["item"], s["unit"], s["unit_label"]) for s in r.json()["standards"]] == [("incentive", "mu", "元/亩")]
    with get_app_engine(world.settings).begin() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("DELETE FROM compensation_standards"))


def test_cli_template_import_and_list(world, imported, tmp_path, monkeypatch):
    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("GIS_DATABASE_NAME", "standards")
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    template = tmp_path / "模板.xlsx"
    bad = write_xlsx(tmp_path / "bad.xlsx", [BAD_ROWS["negative rate"][0]])
    try:
        made = CliRunner().invoke(app, ["standards", "template", str(template)])
        checked = CliRunner().invoke(app, ["standards", "import", str(template), "--dry-run"])
        refused = CliRunner().invoke(app, ["standards", "import", str(bad)])
        listed = CliRunner().invoke(app, ["standards", "list", "--district", "甲区", "--kind", "房屋", "--on",
                                          (world.change - timedelta(days=1)).isoformat(), "--format", "csv"])
    finally:
        get_settings.cache_clear()
    assert made.exit_code == 0 and template.exists(), made.output
    assert checked.exit_code == 0 and "1 standards would be created" in checked.stderr, checked.output
    assert refused.exit_code == 1 and "单价（元）" in refused.stderr and "nothing was stored" in refused.stderr
    assert listed.exit_code == 0, listed.output
    rows = list(csv.reader(io.StringIO(listed.stdout)))
    assert rows[0][:4] == ["片区", "类型", "补偿科目", "单价"]
    assert [r[3] for r in rows[1:]] == [f"{OLD_RATE}.00"]


def test_the_vocabulary_fits_the_payments():
    items = {i for kind_items in standards.ITEMS_BY_KIND.values() for i in kind_items}
    assert items <= set(PAYMENT_ITEMS) and set(standards.ITEM_LABELS_ZH) == set(PAYMENT_ITEMS)
    assert all(standards.BASE_ITEM[k] in standards.ITEMS_BY_KIND[k] for k in standards.KINDS)
