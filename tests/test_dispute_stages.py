"""A parcel on the dispute path (达不成协议 → 补偿决定 → 强制执行) is a blocker like any other:
listed, drawn on the maps, counted in the reports and the public record, never a 500."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from api.app import create_app
from gis.domain.stages import DISPUTE_STAGES
from gis.platform.db import get_engine
from tests.conftest import add_parcel


@pytest.fixture(scope="module")
def disputed(workflow_db):
    s = workflow_db.settings
    ids = [add_parcel(s, 1, stage="appraised") for _ in DISPUTE_STAGES]
    with get_engine(s).begin() as conn:
        for pid, stage in zip(ids, DISPUTE_STAGES):
            conn.execute(text("UPDATE parcels SET stage = :st WHERE id = :id"), {"st": stage, "id": pid})
            conn.execute(text("INSERT INTO parcel_events (parcel_id, actor, kind, stage_from, stage_to) "
                              "VALUES (:id, 'test', 'stage', 'appraised', :st)"), {"id": pid, "st": stage})
    with TestClient(create_app(s), headers=workflow_db.headers["admin"]) as client:
        yield client, ids


def test_disputed_parcels_are_blockers(disputed):
    client, ids = disputed
    body = client.get("/projects/1/blockers", params={"limit": 10000}).json()
    stages = {i["parcel_id"]: i["stage"] for i in body["items"]}
    assert [stages[i] for i in ids] == list(DISPUTE_STAGES)
    only = client.get("/projects/1/blockers", params={"stage": "court_enforcement"}).json()
    assert [i["parcel_id"] for i in only["items"]] == [ids[2]]


def test_maps_reports_and_disclosure_draw_them(disputed):
    client, ids = disputed
    page = client.get("/projects/1/map")
    assert page.status_code == 200 and "强制执行" in page.text
    geo = client.get("/projects/1/map/blockers.geojson").json()
    assert {f["properties"]["stage"] for f in geo["features"]} >= set(DISPUTE_STAGES)
    png = client.get("/projects/1/map.png")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size[0] > 100
    report = client.get("/reports/daily", params={"format": "json"})
    assert report.status_code == 200
    public = client.get("/public/projects/1/map")
    assert public.status_code == 200 and "补偿决定" in public.text
