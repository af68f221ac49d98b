"""Itemised compensation (逐项补偿): every item of a house on state land and of collective land priced from a
standards table written here, each checked against a hand computation from that table: the structure's and the
decoration grade's rates, counted attachments and crops, months of transition, business use, the signing incentive
inside and after its deadline, and a standard that changed in the middle of the project (the agreement's date
decides).

In a database of its own ('compensation'): districts A (甲区, code a) and B (乙区, code b).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.analysis import compensation
from gis.domain.compensation import SurveyFacts, parse_grade
from gis.domain.stages import today_in
from gis.platform.db import get_engine
from gis.platform.errors import InvalidInput
from gis.records import standards, surveys
from gis.records.users import Principal, Role
from tests.conftest import add_parcel, bearer, make_role_tokens
from tests.worlds import two_districts

START = date(2024, 1, 1)
CHANGE = date(2025, 7, 1)  # 甲区's brick-concrete house rate rises mid-project
SIGN_BY = date(2025, 9, 30)  # the signing incentive's deadline
# The standards table, by hand: (kind, item, grade, unit, rate, valid_from, extra)
TABLE = [
    ("house", "house_value", "砖混", "m2", "3000", START),
    ("house", "house_value", "砖混", "m2", "3600", CHANGE),
    ("house", "house_value", "钢混", "m2", "3800", START),
    ("house", "decoration", "中等装修", "m2", "300", START),
    ("house", "decoration", "精装修", "m2", "600", START),
    ("house", "attachments", "水井", "each", "1500", START),
    ("house", "attachments", "围墙", "each", "120", START),
    ("house", "relocation", "", "m2", "20", START),
    ("house", "temporary_resettlement", "", "m2_month", "12", START),
    ("house", "business_loss", "", "m2", "800", START),
    ("house", "incentive", "", "m2", "200", START),
    ("land", "land", "", "mu", "48000", START),
    ("land", "subsidy", "", "mu", "32000", START),
    ("land", "social_security", "", "mu", "25000", START),
    ("land", "crops", "青苗", "mu", "2000", START),
    ("land", "crops", "果树", "each", "80", START),
    ("land", "attachments", "坟墓", "each", "3000", START),
]
ADMIN = Principal("comp-test", Role.admin)


@pytest.fixture(scope="module")
def world(pg_dir, settings):
    from api.app import create_app

    s = two_districts(pg_dir, "compensation")
    tokens = make_role_tokens(get_engine(s), ["a"], prefix="comp")
    rows = [{"district": "甲区", "kind": k, "item": i, "grade": g or None, "unit": u, "rate_yuan": r,
             "valid_from": d.isoformat(), "note": f"宁政〔2024〕{n}号 第{n}条"}
            for n, (k, i, g, u, r, d) in enumerate(TABLE, start=1)]
    rows[10]["sign_by"] = SIGN_BY.isoformat()
    with get_engine(s).begin() as conn:
        standards.put_standards(conn, rows, "comp-test", today=date(2024, 1, 1))
    with TestClient(create_app(s), headers=bearer(tokens["admin"])) as client:
        yield SimpleNamespace(settings=s, client=client, today=today_in(s.city_timezone),
                              headers={r: bearer(t) for r, t in tokens.items()})


def yuan(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def calc(world, h: compensation.Household) -> compensation.Calculation:
    with get_engine(world.settings).connect() as conn:
        return compensation.calculate(conn, h)


def house(on: date, **survey) -> compensation.Household:
    facts = {"structure": "brick_concrete", "decoration": "medium", "business_area_m2": Decimal(30),
             "transition_months": 6} | survey
    return compensation.household("house", 1, on, floor_area_m2=Decimal(120), survey=SurveyFacts(**facts))


def test_every_house_item_is_its_hand_computation(world):
    from gis.domain.compensation import Count

    counts = (Count("attachments", "水井", Decimal(1)), Count("attachments", "围墙", Decimal(25)))
    got = calc(world, house(date(2025, 3, 1), counts=counts))
    lines = [(i.item, i.grade, i.quantity, i.rate_yuan, i.amount_yuan) for i in got.items]
    hand = [
        ("house_value", "brick_concrete", 120, 3000, 120 * 3000),
        ("relocation", "", 120, 20, 120 * 20),
        ("temporary_resettlement", "", 120 * 6, 12, 120 * 6 * 12),
        ("business_loss", "", 30, 800, 30 * 800),
        ("incentive", "", 120, 200, 120 * 200),
        ("decoration", "medium", 120, 300, 120 * 300),
        ("attachments", "水井", 1, 1500, 1500),
        ("attachments", "围墙", 25, 120, 25 * 120),
    ]
    assert lines == [(i, g, Decimal(q), Decimal(r), Decimal(a)) for i, g, q, r, a in hand]
    assert got.total_yuan == Decimal(sum(a for *_x, a in hand)) == Decimal("459540")
    assert got.complete
    # Each line names its standard's article and the day it took effect.
    (value,) = [i for i in got.items if i.item == "house_value"]
    assert (value.article, value.valid_from) == ("宁政〔2024〕1号 第1条", START)


def test_the_agreement_date_chooses_the_standard_that_changed_mid_project(world):
    before = calc(world, house(CHANGE - timedelta(days=1)))
    after = calc(world, house(CHANGE))
    (b,) = [i for i in before.items if i.item == "house_value"]
    (a,) = [i for i in after.items if i.item == "house_value"]
    assert (b.rate_yuan, b.amount_yuan, b.valid_from) == (3000, 120 * 3000, START)
    assert (a.rate_yuan, a.amount_yuan, a.valid_from) == (3600, 120 * 3600, CHANGE)
    assert after.total_yuan - before.total_yuan == 120 * (3600 - 3000)
    # The steel-concrete class kept its one rate across the change.
    steel = calc(world, house(CHANGE, structure="steel_concrete"))
    assert [i.amount_yuan for i in steel.items if i.item == "house_value"] == [120 * 3800]


def test_the_signing_incentive_only_inside_its_deadline(world):
    on_time = calc(world, house(SIGN_BY))
    late = calc(world, house(SIGN_BY + timedelta(days=1)))
    (i1,) = [i for i in on_time.items if i.item == "incentive"]
    (i2,) = [i for i in late.items if i.item == "incentive"]
    assert i1.amount_yuan == 120 * 200 and i1.note is None
    assert i2.amount_yuan == 0 and SIGN_BY.isoformat() in i2.note
    assert on_time.total_yuan - late.total_yuan == 120 * 200


def test_rounding_to_the_fen_and_missing_facts(world):
    odd = compensation.household("house", 1, date(2025, 3, 1), floor_area_m2=Decimal("87.65"),
                                 survey=SurveyFacts(structure="brick_concrete"))
    got = calc(world, odd)
    by = {i.item: i for i in got.items}
    assert by["house_value"].amount_yuan == yuan(Decimal("87.65") * 3000)
    assert by["relocation"].amount_yuan == yuan(Decimal("87.65") * 20)  # 1753.00
    # No months of transition recorded: the item is listed without an amount, and says why.
    assert by["temporary_resettlement"].amount_yuan is None and "过渡期" in by["temporary_resettlement"].note
    assert "decoration" not in by and "business_loss" not in by  # no decoration, no business use
    assert not got.complete
    # No structure recorded while rates are set per structure: no amount, and the reason.
    unknown = calc(world, compensation.household("house", 1, date(2025, 3, 1), floor_area_m2=Decimal(100)))
    (value,) = [i for i in unknown.items if i.item == "house_value"]
    assert value.amount_yuan is None and value.note == "缺少房屋结构"


def test_every_land_item_is_its_hand_computation(world):
    from gis.domain.compensation import Count

    counts = (Count("crops", "青苗", Decimal("2.5")), Count("crops", "果树", Decimal(40)),
              Count("attachments", "坟墓", Decimal(2)))
    h = compensation.household("land", 1, date(2025, 3, 1), land_area_mu=Decimal("2.5"),
                               survey=SurveyFacts(counts=counts))
    got = calc(world, h)
    lines = [(i.item, i.grade, i.amount_yuan) for i in got.items]
    assert lines == [
        ("land", "", Decimal("2.5") * 48000), ("crops", "青苗", Decimal("2.5") * 2000), ("crops", "果树", 40 * 80),
        ("subsidy", "", Decimal("2.5") * 32000), ("attachments", "坟墓", 2 * 3000),
        ("social_security", "", Decimal("2.5") * 25000),
    ]
    assert got.total_yuan == Decimal("120000") + 5000 + 3200 + 80000 + 6000 + 62500
    # A district without standards has no items at all.
    other = compensation.household("land", 2, date(2025, 3, 1), land_area_mu=Decimal("2.5"))
    assert calc(world, other).items == []


def test_standards_by_grade_and_the_incentive_deadline_are_kept_and_refused(world):
    with get_engine(world.settings).connect() as conn:
        listed = standards.list_standards(conn, item="房屋价值补偿", on=CHANGE)
        assert {(s["grade"], s["rate_yuan"]) for s in listed} == {("brick_concrete", 3600), ("steel_concrete", 3800)}
        (incentive,) = standards.list_standards(conn, item="incentive")
        assert incentive["sign_by"] == SIGN_BY
        bad = [
            {"district": "a", "kind": "house", "item": "house_value", "grade": "茅草", "rate_yuan": 10,
             "valid_from": "2026-01-01"},
            {"district": "a", "kind": "house", "item": "relocation", "grade": "砖混", "rate_yuan": 10,
             "valid_from": "2026-01-01"},
            {"district": "a", "kind": "house", "item": "relocation", "sign_by": "2026-03-01", "rate_yuan": 10,
             "valid_from": "2026-01-01"},
        ]
        with pytest.raises(standards.StandardsRejected) as refused:
            standards.put_standards(conn, bad, "comp-test")
    assert [(i.row, i.column) for i in refused.value.issues] == [(1, "grade"), (2, "grade"), (3, "sign_by")]


def test_a_parcels_survey_is_recorded_and_prices_its_calculation(world):
    s = world.settings
    pid = add_parcel(s, 1, stage="paid")  # a house of 400 m²
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET signed_on = :d WHERE id = :id"), {"d": date(2025, 3, 1), "id": pid})
        conn.execute(text("INSERT INTO payments (parcel_id, paid_on, amount_yuan, item) "
                          "VALUES (:id, :d, 400 * 3000 + 1000, 'house_value')"), {"id": pid, "d": date(2025, 3, 5)})
        out = surveys.put_survey(conn, pid, {"structure": "砖混", "decoration": "精装",
                                             "counts": [{"item": "attachments", "grade": "水井", "quantity": 2}]},
                                 ADMIN)
        assert out["changed"] and out["structure"] == "brick_concrete" and out["decoration"] == "fine"
        assert not surveys.put_survey(conn, pid, {"structure": "brick_concrete", "decoration": "fine",
                                                  "counts": [{"item": "attachments", "grade": "水井",
                                                              "quantity": 2}]}, ADMIN)["changed"]
        with pytest.raises(InvalidInput) as bad:
            surveys.put_survey(conn, pid, {"transition_months": 500}, ADMIN)
        assert bad.value.where == "transition_months"
        events = conn.execute(text("SELECT changes FROM parcel_events WHERE parcel_id = :id AND note = '调查登记'"),
                              {"id": pid}).scalars().all()
    assert len(events) == 1 and events[0]["survey.structure"] == {"from": None, "to": "brick_concrete"}
    with get_engine(s).connect() as conn:
        got = compensation.parcel_calculation(conn, pid, today=world.today)
    by = {c["item"]: c for c in got["comparison"]}
    assert got["agreed_on"] == "2025-03-01"
    assert by["house_value"]["standard_yuan"] == 400 * 3000
    assert by["decoration"]["standard_yuan"] == 400 * 600
    assert by["attachments"]["standard_yuan"] == 2 * 1500
    assert (by["house_value"]["paid_yuan"], by["house_value"]["difference_yuan"]) == (400 * 3000 + 1000, 1000)
    assert by["decoration"]["paid_yuan"] == 0 and by["decoration"]["difference_yuan"] == -400 * 600


# ---------------------------------------------------------------------------------------------
# Through the API: the service's estimate, the public one, a parcel's workbook, the survey edit and import

HOUSEHOLD = {"district": "甲区", "kind": "house", "agreed_on": "2025-03-01", "floor_area_m2": 120,
             "structure": "砖混", "decoration": "中等装修", "business_area_m2": 30, "transition_months": 6,
             "counts": [{"item": "attachments", "grade": "水井", "quantity": 1},
                        {"item": "attachments", "grade": "围墙", "quantity": 25}]}


def test_the_service_and_the_public_estimate_are_the_hand_computation(world):
    service = world.client.post("/compensation/estimate", json=HOUSEHOLD)
    public = world.client.post("/public/compensation/estimate", json=HOUSEHOLD, headers={"Authorization": ""})
    assert service.status_code == 200 and public.status_code == 200, (service.text, public.text)
    assert service.json() == public.json()
    assert service.json()["total_yuan"] == 459540 and service.json()["complete"]
    lines = {(i["item"], i["grade"]): i["amount_yuan"] for i in service.json()["items"]}
    assert lines[("house_value", "brick_concrete")] == 360000 and lines[("attachments", "围墙")] == 3000
    late = world.client.post("/compensation/estimate", json=HOUSEHOLD | {"agreed_on": "2025-10-01"}).json()
    assert late["total_yuan"] == 459540 + 120 * (3600 - 3000) - 120 * 200


@pytest.mark.parametrize(("change", "where"), [
    ({"district": "丙区"}, "district"),
    ({"kind": "shop"}, None),
    ({"floor_area_m2": -5}, None),
    ({"floor_area_m2": None}, "floor_area_m2"),
    ({"structure": "茅草"}, "structure"),
    ({"transition_months": 500}, None),
    ({"counts": [{"item": "crops", "grade": "果树", "quantity": 3}]}, "counts[0].item"),
    ({"agreed_on": "2025-13-01"}, None),
    ({"colour": "red"}, None),
])
def test_a_bad_estimate_is_a_422_naming_the_field(world, change, where):
    body = {k: v for k, v in (HOUSEHOLD | change).items() if v is not None}
    for path in ("/compensation/estimate", "/public/compensation/estimate"):
        r = world.client.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        if where:
            assert r.json()["where"] == where


def test_a_parcels_survey_through_the_api_and_its_workbook_read_back(world, tmp_path):
    import openpyxl

    s = world.settings
    pid = add_parcel(s, 1, stage="signed")
    with get_engine(s).begin() as conn:
        conn.execute(text("UPDATE parcels SET signed_on = :d WHERE id = :id"), {"d": date(2025, 8, 1), "id": pid})
    put = world.client.put(f"/parcels/{pid}/survey", json={"structure": "steel_concrete", "transition_months": 12})
    assert put.status_code == 200, put.text
    bad = world.client.put(f"/parcels/{pid}/survey", json={"structure": "茅草"})
    assert bad.status_code == 422 and bad.json()["where"] == "structure"
    outside = add_parcel(s, 2)
    refused = world.client.put(f"/parcels/{outside}/survey", json={"structure": "砖混"},
                               headers=world.headers["district_editor"])
    assert refused.status_code == 403
    assert world.client.get(f"/parcels/{outside}/survey").json() == {"parcel_id": outside}
    got = world.client.get(f"/parcels/{pid}/compensation").json()
    hand = {"house_value": 400 * 3800, "relocation": 400 * 20, "temporary_resettlement": 400 * 12 * 12,
            "incentive": 400 * 200}
    assert {c["item"]: c["standard_yuan"] for c in got["comparison"]} == hand
    r = world.client.get(f"/parcels/{pid}/compensation.xlsx")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    path = tmp_path / "calc.xlsx"
    path.write_bytes(r.content)
    book = openpyxl.load_workbook(path)
    rows = list(book["逐项补偿计算"].iter_rows(values_only=True))
    assert rows[0][:3] == ("补偿科目", "等级/种类", "数量")
    items = {row[0]: row for row in rows[1:] if row[0] in ("房屋价值补偿", "临时安置费")}
    assert items["房屋价值补偿"][1:7] == ("钢混", 400, "㎡", 3800, "元/㎡", 400 * 3800)
    assert items["临时安置费"][2] == 400 * 12 and items["临时安置费"][6] == 400 * 12 * 12
    assert sum(row[6] for row in rows[1:-1]) == sum(hand.values())
    assert rows[-1][6] == f"=SUBTOTAL(9,G2:G{len(rows) - 1})"  # the totals row sums every item
    compared = {row[0]: row[1:] for row in book["与发放金额对比"].iter_rows(values_only=True)}
    assert compared["房屋价值补偿"] == (400 * 3800, 0, -400 * 3800)


def test_survey_facts_import_from_the_parcel_file(world, tmp_path):
    import openpyxl

    s = world.settings
    a, b = add_parcel(s, 1), add_parcel(s, 1)
    with get_engine(s).connect() as conn:
        codes = dict(conn.execute(text("SELECT id, code FROM parcels WHERE id IN (:a, :b)"), {"a": a, "b": b}).all())
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["地块编号", "权利人", "房屋结构", "装修等级", "过渡期(月)", "附属物"])
    sheet.append([codes[a], "某某", "砖木", "简装", 6, "围墙:12；水井:1"])
    sheet.append([codes[b], "某某", "砖混", None, None, None])
    path = tmp_path / "parcels.xlsx"
    book.save(path)
    with path.open("rb") as fh:
        r = world.client.post("/surveys/imports", files={"file": ("parcels.xlsx", fh)})
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 2, "changed": 2, "dry_run": False}
    got = world.client.get(f"/parcels/{a}/survey").json()
    assert (got["structure"], got["decoration"], got["transition_months"]) == ("brick_wood", "simple", 6)
    assert got["counts"] == [{"item": "attachments", "grade": "围墙", "quantity": 12.0},
                             {"item": "attachments", "grade": "水井", "quantity": 1.0}]
    sheet.append(["NO-SUCH-CODE", "", "砖混", None, None, "围墙十米"])
    book.save(path)
    with path.open("rb") as fh:
        refused = world.client.post("/surveys/imports", files={"file": ("parcels.xlsx", fh)})
    assert refused.status_code == 422 and [i["row"] for i in refused.json()["issues"]] == [4]


# ---------------------------------------------------------------------------------------------
# The above-standard check, item by item

def test_the_above_standard_check_names_the_item_and_its_excess(world):
    from gis import checks

    s = world.settings
    made = {}

    def parcel(name: str, signed: date, survey: dict, payments: list[tuple[str, str]]) -> None:
        pid = add_parcel(s, 1, stage="paid")
        with get_engine(s).begin() as conn:
            conn.execute(text("UPDATE parcels SET signed_on = :d WHERE id = :id"), {"d": signed, "id": pid})
            surveys.put_survey(conn, pid, survey, ADMIN)
            for item, amount in payments:
                conn.execute(text("INSERT INTO payments (parcel_id, paid_on, amount_yuan, item) "
                                  "VALUES (:id, :d, :a, :item)"),
                             {"id": pid, "d": signed + timedelta(days=5), "a": Decimal(amount), "item": item})
        with get_engine(s).connect() as conn:
            made[name] = conn.execute(text("SELECT code FROM parcels WHERE id = :id"), {"id": pid}).scalar_one()

    signed = date(2025, 3, 1)
    # Steel-concrete (3800) paid at its own rate: within; brick-concrete paid at the steel rate: 800 × 400 above.
    parcel("steel", signed, {"structure": "钢混"}, [("house_value", str(400 * 3800))])
    parcel("brick", signed, {"structure": "砖混"}, [("house_value", str(400 * 3800))])
    # Two wells surveyed (1500 each), paid for three: 1500 above, named as attachments.
    parcel("wells", signed, {"counts": [{"item": "attachments", "grade": "水井", "quantity": 2}]},
           [("attachments", "2000"), ("attachments", "2500")])
    # The incentive paid to a household that signed after the deadline: all of it is above the standard.
    parcel("late", SIGN_BY + timedelta(days=1), {}, [("incentive", str(400 * 200))])
    parcel("on_time", SIGN_BY, {}, [("incentive", str(400 * 200))])
    # Six months of transition paid for a household surveyed at three: 3 × 400 × 12 above.
    parcel("months", signed, {"transition_months": 3}, [("temporary_resettlement", str(400 * 12 * 6))])
    with get_engine(s).connect() as conn:
        result = checks.above_standard(conn, as_of=world.today)
    found = {(f["code"], f["item"]): f["excess_yuan"] for f in result.findings if f["code"] in made.values()}
    assert found == {
        (made["brick"], "house_value"): 400 * (3800 - 3000),
        (made["wells"], "attachments"): 2000 + 2500 - 2 * 1500,
        (made["late"], "incentive"): 400 * 200,
        (made["months"], "temporary_resettlement"): 3 * 400 * 12,
    }
    (wells,) = [f for f in result.findings if f["code"] == made["wells"]]
    assert (wells["amount_yuan"], wells["standard_amount"]) == (4500, 3000)


def test_the_overlap_estimate_is_the_itemised_total(world):
    import json

    s = world.settings
    pid = add_parcel(s, 1)  # no contract: today's standards
    with get_engine(s).begin() as conn:
        surveys.put_survey(conn, pid, {"structure": "钢混", "transition_months": 12}, ADMIN)
        square = conn.execute(text("SELECT ST_AsGeoJSON(ST_Expand(geom, 1)) FROM parcels WHERE id = :id"),
                              {"id": pid}).scalar_one()
    r = world.client.post("/overlaps", json={"geometry": json.loads(square), "crs": 4549})
    assert r.status_code == 200, r.text
    (hit,) = [h for h in r.json()["parcels"] if h["parcel_id"] == pid]
    # Today is after the incentive's deadline: 0 for it.
    assert hit["estimated_compensation_yuan"] == 400 * 3800 + 400 * 20 + 400 * 12 * 12
    assert hit["estimated_compensation_yuan"] == world.client.get(f"/parcels/{pid}/compensation").json()["total_yuan"]


# ---------------------------------------------------------------------------------------------
# 亮底征收: the standards on the public project page, and the public index

def test_the_public_project_shows_its_districts_standards_item_by_item(world):
    from tests.worlds import insert_zone

    with get_engine(world.settings).begin() as conn:
        insert_zone(conn, world.settings.srid, 71, "Z71", "甲区片区改造", (100, 400), "2025-01-01", "2027-12-31")
        insert_zone(conn, world.settings.srid, 72, "Z72", "乙区片区改造", (1100, 1400), "2025-01-01", "2027-12-31")
    anonymous = {"Authorization": ""}
    record = world.client.get("/public/projects/71", headers=anonymous).json()
    # Today's standards of 甲区, every item and class: the table less the brick-concrete rate superseded.
    published = {(s["kind"], s["item"], s["grade"], s["rate_yuan"]) for s in record["standards"]}
    assert published == {(k, i, parse_grade(i, g), float(r))
                         for k, i, g, _u, r, d in TABLE if (k, i, g, d) != ("house", "house_value", "砖混", START)}
    assert {s["district_name"] for s in record["standards"]} == {"甲区"}
    (incentive,) = [s for s in record["standards"] if s["item"] == "incentive"]
    assert (incentive["sign_by"], incentive["article"]) == (SIGN_BY.isoformat(), "宁政〔2024〕11号 第11条")
    assert world.client.get("/public/projects/72", headers=anonymous).json()["standards"] == []  # 乙区 has none
    page = world.client.get("/public/projects/71/standards", headers=anonymous)
    assert page.status_code == 200 and "砖混" in page.text and "3,600.00" in page.text and "签约期限" in page.text
    index = world.client.get("/public", headers=anonymous)
    assert index.status_code == 200 and 'href="/public/calculator"' in index.text
    assert 'href="/public/projects/71/standards"' in index.text
    assert world.client.get("/public/projects/999/standards", headers=anonymous).status_code == 404


def test_cli_estimate_parcel_and_a_refusal(world, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("GIS_DATABASE_NAME", "compensation")
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    pid = add_parcel(world.settings, 1)
    try:
        estimate = CliRunner().invoke(app, ["compensation", "estimate", "--district", "甲区", "--floor-area-m2", "120",
                                            "--structure", "砖混", "--decoration", "中等装修", "--business-area-m2",
                                            "30", "--transition-months", "6", "--agreed-on", "2025-03-01", "--json"])
        refused = CliRunner().invoke(app, ["compensation", "estimate", "--district", "甲区", "--structure", "茅草",
                                           "--floor-area-m2", "120"])
        workbook = tmp_path / "calc.xlsx"
        parcel = CliRunner().invoke(app, ["compensation", "parcel", str(pid), "--xlsx", str(workbook)])
    finally:
        get_settings.cache_clear()
    assert estimate.exit_code == 0, estimate.output
    assert json.loads(estimate.stdout)["total_yuan"] == 459540 - 1500 - 25 * 120  # without the attachments
    # The entry point (cli.main) prints a GisError's message and where, and exits 1.
    assert refused.exit_code == 1 and isinstance(refused.exception, InvalidInput)
    assert refused.exception.where == "structure"
    assert parcel.exit_code == 0 and workbook.exists(), parcel.output


def test_survey_columns_of_a_parcel_file_are_imported_with_it(world, tmp_path):
    from gis.records.importer import import_file
    from tests.worlds import WORLD_ORIGIN

    x, y = WORLD_ORIGIN
    ring = ",".join(f"{x + dx} {y + dy}" for dx, dy in ((990, 990), (998, 990), (998, 998), (990, 998), (990, 990)))
    wkt = f"POLYGON(({ring}))"
    path = tmp_path / "parcels.csv"
    path.write_text("地块编号,类型,片区,建筑面积,WKT,房屋结构,装修等级,过渡期,附属物\n"
                    f'SV-1,房屋,甲区,64,"{wkt}",砖木,精装修,9,水井:1\n', encoding="utf-8")
    with get_engine(world.settings).begin() as conn:
        report = import_file(conn, path, crs=world.settings.srid, actor="comp-test", settings=world.settings)
        assert report.ok and report.created == 1, report.issues
        assert any("调查登记" in n for n in report.notes), report.notes
        pid = conn.execute(text("SELECT id FROM parcels WHERE code = 'SV-1'")).scalar_one()
    got = world.client.get(f"/parcels/{pid}/survey").json()
    assert (got["structure"], got["decoration"], got["transition_months"]) == ("brick_wood", "fine", 9)
    assert got["counts"] == [{"item": "attachments", "grade": "水井", "quantity": 1.0}]
