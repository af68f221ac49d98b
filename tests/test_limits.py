"""One declaration of each field's bounds (``info["limits"]`` in gis.domain.schema) serves PATCH, the importer and the
database: for every bounded parcel field, an out-of-range value is refused by all three, naming the field.

The cases are built from the declaration itself, so a field given bounds later is covered without a new line
here; the expected outcome (a refusal) does not come from the code under test.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError

from gis.domain.limits import Limit, check_constraints, limits_of
from gis.domain.schema import metadata
from gis.domain.stages import today_in
from gis.domain.workflow import DATE_COLUMNS
from gis.platform.config import DEFAULT_TIMEZONE
from gis.platform.db import get_engine
from gis.records.parcels import ATTRIBUTE_FIELDS, FLAG_FIELDS
from tests.conftest import add_parcel

PARCEL = limits_of(metadata(4326), "parcels")
STAGE_OF_DATE = {column: stage for stage, column in DATE_COLUMNS.items()}
# The first stage a parcel at "surveyed" can move to, for each stage date: PATCH sets a date by a stage move.
NEXT_FROM_SURVEYED = "appraised"


def _out_of_bounds(limit: Limit, today: date) -> list[tuple[str, object]]:
    """(label, value) outside ``limit``: past each end it states."""
    if limit.max_length is not None:
        return [("too long", "长" * (limit.max_length + 1)), ("NUL", "a\x00b")]
    if isinstance(limit.ge, date):
        cases = [("before the first day", limit.ge - timedelta(days=1))]
        cases.append(("after today", today + timedelta(days=1)) if limit.past
                     else ("after the last day", limit.le + timedelta(days=1)))
        return cases
    cases = [("above the maximum", float(limit.le) * 10 + 1)]
    low = limit.ge if limit.ge is not None else limit.gt
    if low is not None:
        cases.append(("below the minimum", float(low) - 1))
    return cases


def _cases() -> list[tuple[str, str, object]]:
    today = today_in(DEFAULT_TIMEZONE)  # the service's "today" is the city's: after 16:00 UTC it is UTC's tomorrow
    return [(column, label, value) for column, limit in PARCEL.items() for label, value in _out_of_bounds(limit, today)]


CASES = _cases()


def _as_json(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    with TestClient(create_app(workflow_db.settings)) as c:
        yield workflow_db, c


def test_every_bounded_parcel_field_is_covered():
    """Every column of parcels that a person types has bounds (not keys, flags, geometry or bookkeeping)."""
    unbounded = {c.name for c in metadata(4326).tables["parcels"].columns} - set(PARCEL)
    assert unbounded == {"id", "kind", "district_id", "stage", "holdout", "legacy", "version", "updated_at", "geom",
                         "centre_3857"}
    assert len(CASES) >= 2 * len(PARCEL)


@pytest.mark.parametrize(("column", "label", "value"), CASES, ids=[f"{c}-{lbl}" for c, lbl, _v in CASES])
def test_patch_and_import_refuse_the_same_values(world, column, label, value):
    db, client = world
    headers = db.headers["admin"]
    pid = add_parcel(db.settings, 1)
    before = client.get(f"/parcels/{pid}", headers=headers).json()

    # PATCH: the attribute itself, or (a stage date, the stage's start) the day of a stage move.
    if column in ATTRIBUTE_FIELDS + FLAG_FIELDS:
        body = {column: _as_json(value)}
    elif column in STAGE_OF_DATE or column == "stage_since":
        body = {"stage": NEXT_FROM_SURVEYED, "stage_on": _as_json(value)}
    else:
        body = None  # the code is set by imports only
    if body is not None:
        r = client.patch(f"/parcels/{pid}", json=body | {"version": before["version"]}, headers=headers)
        assert r.status_code == 422, r.text
        assert column in r.text or "stage_on" in r.text

    # Import: the same value in a CSV cell of the parcel's row, and the whole import is refused naming it.
    cell = _as_json(value)
    if column == "code":
        csv = f"code,owner_name\n{cell},x\n"
    else:
        csv = f"code,{column}\n{before['code']},{cell}\n"
    r = client.post("/imports", files={"file": ("limits.csv", io.BytesIO(csv.encode()), "text/csv")},
                    headers=headers)
    assert r.status_code == 422, r.text
    issues = r.json()["report"]["issues"]
    # row 2: under the header
    assert [(i["row"], i["field"], i["kind"]) for i in issues] == [(2, column, "bad_value")], issues

    assert client.get(f"/parcels/{pid}", headers=headers).json() == before  # nothing written by either


@pytest.mark.parametrize(("column", "label", "value"), [c for c in CASES if c[1] != "NUL" and c[1] != "after today"],
                         ids=[f"{c}-{lbl}" for c, lbl, _v in CASES if lbl not in ("NUL", "after today")])
def test_the_database_refuses_them_too(workflow_db, column, label, value):
    """The CHECK constraints of migration 0009 keep the fixed bounds even for SQL that skips the service."""
    pid = add_parcel(workflow_db.settings, 1)
    with get_engine(workflow_db.settings).connect() as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text(f"UPDATE parcels SET {column} = :v WHERE id = :id"), {"v": value, "id": pid})
    assert caught.value.orig.diag.constraint_name == f"parcels_{column}_limits"


def test_the_migrated_constraints_are_the_declared_ones(settings, engine):
    declared = {(table, name) for table, name, _sql in check_constraints(metadata(settings.srid))}
    with engine.connect() as conn:
        found = set(conn.execute(text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'c' AND conname LIKE '%\\_limits'"
        )).all())
    assert found == declared
    assert len(declared) >= 30


def test_text_with_nul_never_reaches_the_database(workflow_db):
    with get_engine(workflow_db.settings).connect() as conn, pytest.raises(DataError):
        conn.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})


def test_a_ten_megabyte_owner_name_is_refused_by_import(world):
    """Defect 5: the import stored a 10,485,760-character owner name that PATCH refuses."""
    db, client = world
    pid = add_parcel(db.settings, 1)
    code = client.get(f"/parcels/{pid}", headers=db.headers["admin"]).json()["code"]
    csv = f"code,owner_name\n{code},{'张' * 100}\n{code}x,{'名' * 10_485_760}\n".encode()
    r = client.post("/imports", files={"file": ("big.csv", csv, "text/csv")}, headers=db.headers["admin"],
                    data={"dry_run": "false"})
    assert r.status_code in (413, 422), r.text[:300]
    if r.status_code == 422:
        assert any(i["field"] == "owner_name" and i["row"] == 3 for i in r.json()["report"]["issues"])
        assert "名名名" not in r.text  # the value, personal, is not echoed
    with get_engine(db.settings).connect() as conn:
        longest = conn.execute(text("SELECT max(char_length(owner_name)) FROM parcels")).scalar_one()
    assert longest <= PARCEL["owner_name"].max_length


def test_the_openapi_document_states_the_declared_bounds(world):
    _db, client = world
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    patch = schemas["ParcelPatch"]["properties"]
    for column in ("households", "floor_area_m2", "land_area_mu"):
        bounds = next(s for s in patch[column]["anyOf"] if s.get("type") in ("integer", "number"))
        assert (bounds["minimum"], bounds["maximum"]) == (PARCEL[column].ge, PARCEL[column].le)
    for column in ("owner_name", "owner_id_number", "owner_phone", "holdout_note"):
        assert next(s for s in patch[column]["anyOf"] if s.get("type") == "string")["maxLength"] == \
            PARCEL[column].max_length


def test_a_future_payment_or_one_dated_0001_is_refused(world):
    db, client = world
    pid = add_parcel(db.settings, 1, stage="signed")
    today = today_in(db.settings.city_timezone)
    for day in ("0001-01-01", (today + timedelta(days=1)).isoformat(), "1979-12-31"):
        r = client.post(f"/parcels/{pid}/payments", json={"paid_on": day, "amount_yuan": 100, "item": "subsidy"},
                        headers=db.headers["admin"])
        assert r.status_code == 422, (day, r.text)
    r = client.post(f"/parcels/{pid}/payments", json={"paid_on": today.isoformat(), "amount_yuan": 1e20,
                                                      "item": "subsidy"}, headers=db.headers["admin"])
    assert r.status_code == 422
    assert client.get(f"/parcels/{pid}/payments", headers=db.headers["admin"]).json() == []
