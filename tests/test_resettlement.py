"""Resettlement (安置) and cleared land: months of transition and the price difference by hand, the checks on the
demo city's planted cases (exactly those), the writes and their refusals on a small world, the routes and the
export."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from gis import checks
from gis.analysis import resettlement as analysis
from gis.analysis.resettlement import add_months, months_started, price_difference, promised_end, transition_months
from gis.demo.resettlement import NOTE_KEY, write_reoccupation_imagery
from gis.imagery.layers import delete_layers_under
from gis.platform.config import DEFAULT_TIMEZONE


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
