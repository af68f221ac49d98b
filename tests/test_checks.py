"""Inspection checks: on the demo city each finds exactly what the generator planted; hand-made cases
sit on each side of every threshold, in a small database of their own ('checks').

Expected values come from the generator's own frames (payments, standards, events) and shapely,
never from the queries under test.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from gis import checks
from gis.demo.generator import DEFAULT_TODAY
from gis.domain.stages import today_in
from gis.platform.config import SQM_PER_MU
from gis.platform.db import get_app_engine, get_engine
from gis.records.footprints import refresh_parcels
from tests.conftest import add_parcel
from tests.oracles import TZ, footprint_of, last_stage_events
from tests.worlds import WORLD_ORIGIN, insert_document_requirements, insert_zone, two_districts

AS_OF = DEFAULT_TODAY.isoformat()


def run(client, name: str, **params) -> dict:
    r = client.get(f"/checks/{name}", params={"as_of": AS_OF} | params)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------------------------
# The demo city: exactly the planted cases, with the facts computed independently


def test_paid_not_demolished_finds_the_planted_parcels(client, demo_city):
    body = run(client, "paid-not-demolished")
    planted = demo_city.planted
    got = {f["code"]: f for f in body["findings"]}
    assert set(got) == set(planted["paid_not_demolished"])
    assert body["params"] == {"days": 30} and "30天" in body["rule"]
    for code, f in got.items():
        assert f["days_since_payment"] == planted["paid_not_demolished_days"][code]
        assert f["days_overdue"] == f["days_since_payment"] - 30
        assert f["stage"] == "paid"
    # The rule's parameter moves the line: the two paid 32 and 33 days ago drop out at 32 days.
    stricter = run(client, "paid-not-demolished", days=32)
    assert {f["code"] for f in stricter["findings"]} == {c for c, d in planted["paid_not_demolished_days"].items()
                                                         if d > 32}


def test_double_compensation_finds_the_paid_twice_and_the_overlapping_pair(client, demo_city):
    body = run(client, "double-compensation")
    planted = demo_city.planted
    by_rule: dict[str, set[str]] = {rule: set() for rule in checks.DOUBLE_RULES_ZH}
    for f in body["findings"]:
        by_rule[f["rule"]].add(f["code"])
    assert by_rule == {"same_item_twice": set(planted["paid_twice"]),
                       "overlapping_parcels": set(planted["overlapping_pair"]), "earlier_project": set()}
    assert body["summary"] == {"same_item_twice": 1, "overlapping_parcels": 2, "earlier_project": 0}
    geoms = demo_city.parcels.set_index("code").geometry
    a, b = planted["overlapping_pair"]
    overlap = shapely.intersection(geoms[a], geoms[b]).area
    for f in body["findings"]:
        if f["rule"] == "overlapping_parcels":
            assert f["other_code"] == (b if f["code"] == a else a)
            assert f["overlap_m2"] == pytest.approx(overlap, rel=1e-6)
            assert f["overlap_share"] == pytest.approx(overlap / min(geoms[a].area, geoms[b].area), rel=1e-6)
    twice = demo_city.payments[demo_city.payments["parcel_id"] == int(
        demo_city.parcels.set_index("code").at[planted["paid_twice"][0], "id"])]
    (row,) = [f for f in body["findings"] if f["rule"] == "same_item_twice"]
    assert row["payments"] == 2 and row["amount_yuan"] == pytest.approx(twice["amount_yuan"].sum())


def test_above_standard_finds_the_planted_payments_with_their_excess(client, demo_city):
    body = run(client, "above-standard")
    got = {f["code"]: f for f in body["findings"]}
    assert set(got) == set(demo_city.planted["above_standard"])
    parcels = demo_city.parcels.set_index("code")
    standards = demo_city.standards.set_index(["district_id", "kind"])["rate_yuan"]
    for code, f in got.items():
        pay = demo_city.payments[demo_city.payments["parcel_id"] == int(parcels.at[code, "id"])].iloc[0]
        rate = Decimal(str(standards[(int(parcels.at[code, "district_id"]), parcels.at[code, "kind"])]))
        standard_amount = (rate * Decimal(str(pay["basis_area"]))).quantize(Decimal("0.01"))
        assert f["standard_amount"] == pytest.approx(float(standard_amount))
        assert f["excess_yuan"] == pytest.approx(float(Decimal(str(pay["amount_yuan"])) - standard_amount))
        assert f["paid_rate"] == pytest.approx(pay["amount_yuan"] / pay["basis_area"], abs=0.01)
    assert body["summary"] == {"payments_checked": len(demo_city.payments), "payments_without_standard": 0}


def test_incomplete_archives_finds_the_missing_documents(client, demo_city):
    body = run(client, "incomplete-archives")
    got = {f["code"]: f["missing_kinds"] for f in body["findings"]}
    assert {c: set(k) for c, k in got.items()} == {c: set(k) for c, k in
                                                   demo_city.planted["missing_documents"].items()}
    for f in body["findings"]:
        assert f["missing_labels"] == [checks.DOCUMENT_LABELS_ZH[k] for k in f["missing_kinds"]]
        assert f["missing_count"] == len(f["missing_kinds"])


def test_incidental_area_finds_the_fields_outside_every_footprint(client, demo_city):
    body = run(client, "incidental-area")
    got = {f["code"]: f for f in body["findings"]}
    assert set(got) == set(demo_city.planted["incidental"])
    union = shapely.union_all([footprint_of(p) for _, p in demo_city.projects.iterrows()])
    geoms = demo_city.parcels.set_index("code").geometry
    for code, f in got.items():
        outside = geoms[code].area - shapely.intersection(geoms[code], union).area
        assert f["outside_m2"] == pytest.approx(outside, rel=1e-6)
        assert f["outside_mu"] == pytest.approx(outside / SQM_PER_MU, rel=1e-6)
        assert f["outside_share"] == pytest.approx(outside / geoms[code].area, rel=1e-6)
    assert body["params"] == {"min_outside_m2": 1.0, "min_outside_share": 0.5}


def test_stalled_lists_the_planted_holdouts_and_legacy_case_and_the_stalled_parcels(client, demo_city, settings):
    body = run(client, "stalled")
    findings = {f["code"]: f for f in body["findings"]}
    planted = demo_city.planted
    assert {c for c, f in findings.items() if f["holdout"]} == set(planted["holdouts"])
    assert {c for c, f in findings.items() if f["legacy"]} == set(planted["legacy"])
    parcels = demo_city.parcels.set_index("code")
    (legacy,) = planted["legacy"]
    assert findings[legacy]["legacy_days"] == (DEFAULT_TODAY - parcels.at[legacy, "surveyed_on"]).days
    last = last_stage_events(demo_city, DEFAULT_TODAY)
    # A holdout came with its record: it dates from the event carrying its note, the last stage change.
    for code in planted["holdouts"]:
        since = last.at[int(parcels.at[code, "id"]), "at"].astimezone(TZ).date()
        assert findings[code]["holdout_days"] == (DEFAULT_TODAY - since).days
    # Stalled: in a footprint beyond the tolerance, not cleared, last stage change more than 90 days back.
    in_footprint = set()
    for _, project in demo_city.projects.iterrows():
        fp = footprint_of(project)
        for code, geom in zip(demo_city.parcels["code"], demo_city.parcels.geometry):
            if geom.intersects(fp):
                area = geom.intersection(fp).area
                if area >= settings.blocker_min_m2 and area >= settings.blocker_min_share * geom.area:
                    in_footprint.add(code)
    expected = set()
    for code in in_footprint:
        row = last.loc[int(parcels.at[code, "id"])]
        if row["stage_to"] != "cleared" and (DEFAULT_TODAY - row["at"].astimezone(TZ).date()).days > 90:
            expected.add(code)
    assert {c for c, f in findings.items() if f["stalled"]} == expected
    assert body["summary"] == {"stalled": len(expected), "holdout": len(planted["holdouts"]),
                               "legacy": len(planted["legacy"])}


def test_a_past_day_replays_the_history(client, demo_city):
    """Before its second payment the paid-twice parcel was paid once; before the planted payments were made,
    the late ones were not yet late."""
    planted = demo_city.planted
    pays = demo_city.payments.merge(demo_city.parcels[["id", "code"]], left_on="parcel_id", right_on="id")
    (code,) = planted["paid_twice"]
    first, second = sorted(pays[pays["code"] == code]["paid_on"])
    before = run(client, "double-compensation", as_of=(second - timedelta(days=1)).isoformat())
    assert code not in {f["code"] for f in before["findings"] if f["rule"] == "same_item_twice"}
    day = DEFAULT_TODAY - timedelta(days=40)
    late = run(client, "paid-not-demolished", as_of=day.isoformat())
    # Paid more than 70 days before today: more than 30 days before that day. Demolition follows payment within
    # 28 days everywhere else, so nothing else was late then either.
    assert {f["code"] for f in late["findings"]} == {c for c, d in planted["paid_not_demolished_days"].items()
                                                     if d - 40 > 30}


def test_checks_are_for_inspectors_and_admins(client, anon_client, role_headers):
    for role, status in (("viewer", 403), ("district_editor", 403), ("inspector", 200), ("admin", 200)):
        r = client.get("/checks/paid-not-demolished", params={"as_of": AS_OF}, headers=role_headers[role])
        assert r.status_code == status, role
    assert anon_client.get("/checks/stalled").status_code == 401
    names = {f["owner_name"] for f in client.get("/checks/paid-not-demolished", params={"as_of": AS_OF},
                                                   headers=role_headers["inspector"]).json()["findings"]}
    assert not any("*" in n for n in names)  # inspectors see owners' names


def test_bad_parameters_are_422(client):
    for name, params in (("paid-not-demolished", {"days": -1}), ("double-compensation", {"min_overlap_share": 2}),
                         ("stalled", {"days": "x"}), ("stalled", {"format": "docx"}),
                         ("incidental-area", {"as_of": "2026-13-01"})):
        assert client.get(f"/checks/{name}", params=params).status_code == 422, (name, params)


def test_overview_counts_every_check(client, demo_city):
    body = client.get("/checks", params={"as_of": AS_OF}).json()
    counts = {c["check"]: c["count"] for c in body["checks"]}
    assert counts["paid_not_demolished"] == len(demo_city.planted["paid_not_demolished"])
    assert counts["incidental_area"] == len(demo_city.planted["incidental"])
    assert set(counts) == set(checks.CHECKS)


def test_exports_state_the_parameters_and_hold_the_findings(client, demo_city):
    body = run(client, "paid-not-demolished", days=31)
    r = client.get("/checks/paid-not-demolished", params={"as_of": AS_OF, "days": 31, "format": "csv"})
    assert r.status_code == 200 and r.headers["x-check-params"] == "days=31"
    assert "days31" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["地块编号", "类型"] and "逾期天数" in rows[0]
    assert [row[0] for row in rows[1:-1]] == [f["code"] for f in body["findings"]]
    overdue = rows[0].index("逾期天数")
    assert [int(row[overdue]) for row in rows[1:-1]] == [f["days_overdue"] for f in body["findings"]]

    r = client.get("/checks/incidental-area", params={"as_of": AS_OF, "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "地块编号" and "红线外面积(亩)" in values[0]
    assert {v[0] for v in values[1:-1]} == set(demo_city.planted["incidental"])

    r = client.get("/checks/incidental-area", params={"as_of": AS_OF, "format": "geojson"})
    fc = json.loads(r.content)
    geoms = demo_city.parcels.set_index("code").geometry
    for feature in fc["features"]:
        lon, lat = shapely.geometry.shape(feature["geometry"]).centroid.coords[0]
        assert 118 < lon < 120 and 30 < lat < 31.5
        assert feature["properties"]["outside_m2"] == pytest.approx(geoms[feature["id"]].area, rel=1e-6)


def test_cli_prints_the_findings(demo_city, settings, monkeypatch):
    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["check", "paid-not-demolished", "--as-of", AS_OF, "--days", "32",
                                          "--format", "csv"])
        table = CliRunner().invoke(app, ["check", "incidental-area", "--as-of", AS_OF])
        bad = CliRunner().invoke(app, ["check", "stalled", "--days", "-3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    days = demo_city.planted["paid_not_demolished_days"]
    assert {row[0] for row in rows[1:-1]} == {c for c, d in days.items() if d > 32}
    assert "付款后拆除期限(天)=32" in result.stderr
    assert table.exit_code == 0 and all(c in table.stdout for c in demo_city.planted["incidental"])
    assert bad.exit_code != 0


# ---------------------------------------------------------------------------------------------
# Thresholds, in a database of their own: districts A and B, project Z1 over their common edge
# (frozen 2025-06-01) and Z2 over A's west half (frozen ten days ago).


@pytest.fixture(scope="module")
def world(pg_dir, settings):
    from types import SimpleNamespace

    s = two_districts(pg_dir, "checks")
    today = today_in(s.city_timezone)
    with get_engine(s).begin() as conn:
        insert_zone(conn, s.srid, 1, "Z1", "一期", (500, 1500), "2025-06-01", "2027-06-30")
        insert_zone(conn, s.srid, 2, "Z2", "二期", (0, 500), today - timedelta(days=10), "2028-06-30")
        insert_document_requirements(conn)
        # District A's house standard rose 99 days ago (the old one held until the day before); its land is
        # priced per mu; B has no standard.
        conn.execute(text(
            "INSERT INTO compensation_standards (district_id, kind, item, unit, rate_yuan, valid_from) VALUES "
            "(1, 'house', 'house_value', 'm2', 3000, '2024-01-01'), "
            "(1, 'house', 'house_value', 'm2', 3500, :new_from), "
            "(1, 'land', 'land', 'mu', 60000, '2024-01-01')"
        ), {"new_from": today - timedelta(days=99)})
    return SimpleNamespace(settings=s, today=today)


def owner(world):
    return get_engine(world.settings).begin()


def pay(world, pid: int, days_ago: int, amount: str, item: str = "house_value", **extra) -> None:
    with owner(world) as conn:
        conn.execute(text(
            "INSERT INTO payments (parcel_id, project_id, paid_on, amount_yuan, item, basis_area, basis_unit, "
            "rate_yuan) VALUES (:p, :project, :on, :amount, :item, :basis, :unit, :rate)"
        ), {"p": pid, "on": world.today - timedelta(days=days_ago), "amount": Decimal(amount), "item": item,
            "project": extra.get("project"), "basis": extra.get("basis"), "unit": extra.get("unit"),
            "rate": extra.get("rate")})


def place(world, pid: int, x0: float, y0: float, x1: float, y1: float) -> None:
    """Give a parcel a rectangle relative to the world's origin, in the strip no ``add_parcel`` cell uses."""
    x, y = WORLD_ORIGIN
    with owner(world) as conn:
        conn.execute(text("UPDATE parcels SET geom = ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid)) "
                          "WHERE id = :id"),
                     {"id": pid, "x0": x + x0, "y0": y + y0, "x1": x + x1, "y1": y + y1, "srid": world.settings.srid})
        refresh_parcels(conn, [pid])


def codes(world, check, params, as_of: date | None = None, **kw) -> dict[str, dict]:
    with get_app_engine(world.settings).connect() as conn:
        result = check(conn, params, as_of=as_of or world.today, tz=world.settings.city_timezone, **kw)
    return {f["code"]: f for f in result.findings}


def code_of(world, pid: int) -> str:
    with owner(world) as conn:
        return conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": pid}).scalar_one()


def test_paid_not_demolished_at_29_30_and_31_days(world):
    s = world.settings
    parcels = {days: add_parcel(s, 1, stage="paid") for days in (29, 30, 31)}
    for days, pid in parcels.items():
        pay(world, pid, days, "1000")
    demolished = add_parcel(s, 1, stage="demolished")
    pay(world, demolished, 60, "1000")
    repaid = add_parcel(s, 1, stage="paid")
    pay(world, repaid, 60, "1000")
    pay(world, repaid, 10, "500", item="relocation")  # the last payment counts
    found = codes(world, checks.paid_not_demolished, checks.PaidNotDemolished())
    mine = {code_of(world, pid): days for days, pid in parcels.items()}
    assert {c for c in mine if c in found} == {c for c, d in mine.items() if d == 31}
    assert found[next(c for c, d in mine.items() if d == 31)]["days_overdue"] == 1
    assert code_of(world, demolished) not in found and code_of(world, repaid) not in found
    assert code_of(world, repaid) in codes(world, checks.paid_not_demolished, checks.PaidNotDemolished(days=9))


@pytest.mark.parametrize(("rule", "params"), [
    ("area", checks.DoubleCompensation(min_overlap_m2=10, min_overlap_share=0)),
    ("share", checks.DoubleCompensation(min_overlap_m2=0, min_overlap_share=0.05)),
])
def test_overlaps_just_under_and_over_the_tolerance(world, rule, params):
    """Pairs of 20 m squares overlapping by a strip: 9.9 / 10.1 m² against 10 m²; 4.95 % / 5.05 % against 5 %."""
    s = world.settings
    width = {"area": (0.495, 0.505), "share": (0.99, 1.01)}[rule]  # × 20 m: the overlap in m²; ÷ 400 m²: the share
    base = {"area": 20, "share": 520}[rule]
    pairs = []
    for k, w in enumerate(width):
        a, b = add_parcel(s, 1, stage="paid"), add_parcel(s, 1, stage="paid")
        x = base + k * 100
        place(world, a, x, 965, x + 20, 985)
        place(world, b, x + 20 - w, 965, x + 40 - w, 985)
        for pid in (a, b):
            pay(world, pid, 5, "1000")
        pairs.append((code_of(world, a), code_of(world, b)))
    found = codes(world, checks.double_compensation, params)
    overlapping = {c for c, f in found.items() if f["rule"] == "overlapping_parcels"}
    under, over = pairs
    assert not (set(under) & overlapping)
    assert set(over) <= overlapping
    assert found[over[0]]["other_code"] == over[1]
    assert found[over[0]]["overlap_m2"] == pytest.approx(20 * width[1], rel=1e-6)
    # Touching along an edge is no overlap at all, whatever the tolerance.
    a, b = add_parcel(s, 1, stage="paid"), add_parcel(s, 1, stage="paid")
    place(world, a, base + 200, 965, base + 220, 985)
    place(world, b, base + 220, 965, base + 240, 985)
    for pid in (a, b):
        pay(world, pid, 5, "1000")
    loose = codes(world, checks.double_compensation, checks.DoubleCompensation(0, 0))
    assert code_of(world, a) not in loose and code_of(world, b) not in loose


def test_paid_twice_and_land_paid_again_for_a_later_project(world):
    s = world.settings
    twice = add_parcel(s, 1, stage="paid")
    pay(world, twice, 20, "1000", project=1)
    pay(world, twice, 5, "1000", project=1)
    two_items = add_parcel(s, 1, stage="paid")
    pay(world, two_items, 20, "1000", project=1)
    pay(world, two_items, 5, "300", item="relocation", project=1)
    later_project = add_parcel(s, 1, stage="paid")
    pay(world, later_project, 20, "1000", project=1)
    pay(world, later_project, 5, "800", project=2)
    # Cleared 30 days ago (add_parcel), before Z2 was frozen 10 days ago, then paid under Z2; and under Z1.
    cleared_then_z2 = add_parcel(s, 1, stage="cleared")
    pay(world, cleared_then_z2, 3, "700", item="land", project=2)
    cleared_then_z1 = add_parcel(s, 1, stage="cleared")
    pay(world, cleared_then_z1, 3, "700", item="land", project=1)
    with get_app_engine(s).connect() as conn:
        result = checks.double_compensation(conn, as_of=world.today, tz=s.city_timezone)
    rules: dict[str, set[str]] = {}
    for f in result.findings:
        rules.setdefault(f["code"], set()).add(f["rule"])
    assert rules.get(code_of(world, twice)) == {"same_item_twice"}
    assert code_of(world, two_items) not in rules
    assert rules.get(code_of(world, later_project)) == {"earlier_project"}
    assert rules.get(code_of(world, cleared_then_z2)) == {"earlier_project"}
    assert code_of(world, cleared_then_z1) not in rules
    (late,) = [f for f in result.findings if f["code"] == code_of(world, later_project)]
    assert (late["project_code"], late["earlier_project"], late["amount_yuan"]) == ("Z2", "Z1", 800.0)
    (handed,) = [f for f in result.findings if f["code"] == code_of(world, cleared_then_z2)]
    assert handed["earlier_project"] is None and handed["acquired_on"] == world.today - timedelta(days=30)
    # As of the day before its second payment, the twice-paid parcel was paid once.
    before = codes(world, checks.double_compensation, checks.DoubleCompensation(), world.today - timedelta(days=6))
    assert code_of(world, twice) not in before


def test_above_standard_at_the_cent(world):
    s = world.settings
    cases = {}  # parcel id → expected excess (None: within the standard)

    def case(amount: str, days_ago: int, excess: str | None, item: str = "house_value", **basis) -> None:
        pid = add_parcel(s, 1, stage="paid")
        pay(world, pid, days_ago, amount, item=item, **basis)
        cases[pid] = excess

    case("350000.00", 5, None, basis=100, unit="m2")  # exactly the standard: 3500 × 100
    case("350000.01", 5, "0.01", basis=100, unit="m2")  # a cent above
    case("350001.00", 5, "1.00", basis=100, unit="m2", rate=Decimal("3500.01"))  # the rate a cent above
    case("300000.00", 150, None, basis=100, unit="m2")  # the old standard, in force then
    case("350000.00", 150, "50000.00", basis=100, unit="m2")  # the new rate paid under the old standard
    case("1400000.00", 5, None)  # no basis: the parcel's floor area, 400 m²
    case("1400000.01", 5, "0.01")
    case("9000000.00", 5, None, item="relocation", basis=100, unit="m2")  # not priced per area
    land_ok, land_over = add_parcel(s, 1, stage="paid"), add_parcel(s, 1, stage="paid")
    with owner(world) as conn:
        conn.execute(text("UPDATE parcels SET kind = 'land', floor_area_m2 = NULL, land_area_mu = 1.5 "
                          "WHERE id = ANY(:ids)"), {"ids": [land_ok, land_over]})
    pay(world, land_ok, 5, "90000.00", item="land", basis=1000, unit="m2")  # 1000 m² = 1.5 mu × 60000
    pay(world, land_over, 5, "90000.01", item="land")  # the parcel's 1.5 mu
    cases |= {land_ok: None, land_over: "0.01"}
    unpriced = add_parcel(s, 2, stage="paid")  # district B has no standard
    pay(world, unpriced, 5, "99999999.00", basis=1, unit="m2")
    with get_app_engine(s).connect() as conn:
        result = checks.above_standard(conn, as_of=world.today, tz=s.city_timezone)
    found = {f["code"]: f for f in result.findings}
    for pid, excess in cases.items():
        code = code_of(world, pid)
        if excess is None:
            assert code not in found, code
        else:
            assert found[code]["excess_yuan"] == pytest.approx(float(excess)), code
    assert code_of(world, unpriced) not in found
    assert result.summary["payments_without_standard"] >= 1
    tolerant = codes(world, checks.above_standard, checks.AboveStandard(tolerance_yuan=0.01))
    assert not ({code_of(world, pid) for pid, e in cases.items() if e == "0.01"} & set(tolerant))


def test_incomplete_archives_stages_reached_grace_and_moves_back(world):
    s = world.settings
    missing = add_parcel(s, 1, stage="signed")
    complete = add_parcel(s, 1, stage="signed")
    moved_back = add_parcel(s, 1, stage="signed")
    with owner(world) as conn:
        def upload(pid: int, kind: str) -> None:
            conn.execute(text("INSERT INTO documents (parcel_id, kind, filename, sha256, size_bytes, uploaded_by, "
                              "uploaded_at) VALUES (:p, :k, 'f.pdf', repeat('a', 64), 1, 'test', "
                              "now() - interval '29 days')"), {"p": pid, "k": kind})
        for pid in (missing, complete, moved_back):
            upload(pid, "survey_record")
            upload(pid, "appraisal_report")
        upload(complete, "contract")
        conn.execute(text("INSERT INTO parcel_events (parcel_id, at, actor, kind, stage_from, stage_to, note) VALUES "
                          "(:p, now() - interval '2 days', 'test', 'stage', 'signed', 'appraised', '退回重新评估')"),
                     {"p": moved_back})
        conn.execute(text("UPDATE parcels SET stage = 'appraised', signed_on = NULL WHERE id = :p"), {"p": moved_back})
    found = codes(world, checks.incomplete_archives, checks.IncompleteArchives())
    assert found[code_of(world, missing)]["missing_kinds"] == ["contract"]
    assert found[code_of(world, missing)]["missing_labels"] == ["补偿协议"]
    assert code_of(world, complete) not in found
    assert code_of(world, moved_back) not in found
    # Three days ago the moved-back parcel was still signed, without its contract.
    assert code_of(world, moved_back) in codes(world, checks.incomplete_archives, checks.IncompleteArchives(),
                                               world.today - timedelta(days=3))
    # Signed 30 days ago: within a 31-day grace the contract is not due yet, with 29 days it is.
    assert code_of(world, missing) not in codes(world, checks.incomplete_archives, checks.IncompleteArchives(31))
    assert code_of(world, missing) in codes(world, checks.incomplete_archives, checks.IncompleteArchives(29))
    # Documents uploaded 29 days ago were not there 30 days ago.
    early = codes(world, checks.incomplete_archives, checks.IncompleteArchives(), world.today - timedelta(days=30))
    assert early[code_of(world, complete)]["missing_kinds"] == ["survey_record", "appraisal_report", "contract"]


@pytest.mark.parametrize(("params", "outside", "flagged"), [
    (checks.IncidentalArea(min_outside_m2=0, min_outside_share=0.5), 9.9, False),  # 49.5 % outside
    (checks.IncidentalArea(min_outside_m2=0, min_outside_share=0.5), 10.1, True),  # 50.5 %
    (checks.IncidentalArea(min_outside_m2=200, min_outside_share=0), 9.9, False),  # 198 m²
    (checks.IncidentalArea(min_outside_m2=200, min_outside_share=0), 10.1, True),  # 202 m²
])
def test_incidental_area_just_under_and_over_the_tolerance(world, params, outside, flagged):
    """A 20 m square across Z1's east edge (x = 1500) with ``outside`` metres of its width beyond it."""
    s = world.settings
    pid = add_parcel(s, 2, stage="paid")
    x = 1500 - (20 - outside)
    y = 965 if outside < 10 else 940
    place(world, pid, x, y, x + 20, y + 20)
    found = codes(world, checks.incidental_area, params)
    assert (code_of(world, pid) in found) is flagged
    if flagged:
        f = found[code_of(world, pid)]
        assert f["outside_m2"] == pytest.approx(outside * 20, rel=1e-9)
        assert f["outside_mu"] == pytest.approx(outside * 20 / SQM_PER_MU, rel=1e-9)
        assert f["projects"] == "Z1"


def test_incidental_area_counts_acquired_parcels_only(world):
    s = world.settings
    signed, cleared = add_parcel(s, 2, stage="signed", inside_project=False), add_parcel(s, 2, stage="cleared",
                                                                                         inside_project=False)
    found = codes(world, checks.incidental_area, checks.IncidentalArea())
    assert code_of(world, signed) not in found
    assert found[code_of(world, cleared)]["outside_share"] == pytest.approx(1.0)
    # Thirty-one days ago it had not been acquired yet (its history begins 30 days ago).
    assert code_of(world, cleared) not in codes(world, checks.incidental_area, checks.IncidentalArea(),
                                                world.today - timedelta(days=31))


def test_stalled_at_29_and_30_days_and_flags_replayed(world):
    s = world.settings
    stuck = add_parcel(s, 1, stage="signed")  # its last stage change 30 days ago
    outside = add_parcel(s, 2, stage="signed", inside_project=False)
    flagged = add_parcel(s, 1, stage="appraised")
    unflagged = add_parcel(s, 1, stage="appraised")
    legacy = add_parcel(s, 1, stage="surveyed")
    with owner(world) as conn:
        event = ("INSERT INTO parcel_events (parcel_id, at, actor, kind, changes) VALUES "
                 "(:p, now() - make_interval(days => :days), 'test', 'flags', CAST(:changes AS jsonb))")
        conn.execute(text(event), {"p": flagged, "days": 10,
                                   "changes": json.dumps({"holdout": {"from": False, "to": True}})})
        conn.execute(text(event), {"p": unflagged, "days": 20,
                                   "changes": json.dumps({"holdout": {"from": False, "to": True}})})
        conn.execute(text(event), {"p": unflagged, "days": 5,
                                   "changes": json.dumps({"holdout": {"from": True, "to": False}})})
        conn.execute(text("UPDATE parcels SET holdout = true WHERE id = :p"), {"p": flagged})
        conn.execute(text("UPDATE parcels SET legacy = true, holdout_note = '历史遗留' WHERE id = :p"), {"p": legacy})
    at_29 = codes(world, checks.stalled, checks.Stalled(days=29))
    at_30 = codes(world, checks.stalled, checks.Stalled(days=30))
    assert at_29[code_of(world, stuck)]["stalled"] and at_29[code_of(world, stuck)]["days_in_stage"] == 30
    assert code_of(world, stuck) not in at_30
    assert code_of(world, outside) not in at_29  # not in any footprint
    assert at_30[code_of(world, flagged)]["holdout_days"] == 10
    assert code_of(world, unflagged) not in at_30  # the flag was taken off five days ago
    week_ago = codes(world, checks.stalled, checks.Stalled(days=30), world.today - timedelta(days=7))
    assert week_ago[code_of(world, unflagged)]["holdout_days"] == 13
    assert week_ago[code_of(world, flagged)]["holdout_days"] == 3
    assert code_of(world, flagged) not in codes(world, checks.stalled, checks.Stalled(days=30),
                                                world.today - timedelta(days=11))
    assert at_30[code_of(world, legacy)]["legacy_days"] == 30
    assert at_30[code_of(world, legacy)]["holdout_note"] == "历史遗留"


def test_owner_names_are_masked_unless_revealed(world):
    s = world.settings
    pid = add_parcel(s, 1, stage="paid", owner="王小明")
    pay(world, pid, 40, "1000")
    masked = codes(world, checks.paid_not_demolished, checks.PaidNotDemolished())
    shown = codes(world, checks.paid_not_demolished, checks.PaidNotDemolished(), reveal_personal=True)
    assert masked[code_of(world, pid)]["owner_name"] == "王*明"
    assert shown[code_of(world, pid)]["owner_name"] == "王小明"
    assert "王小明" not in json.dumps([f for f in masked.values()], ensure_ascii=False, default=str)
