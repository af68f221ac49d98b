"""GET /health, both ways: green on a migrated database, 503 with a JSON body when the database is down."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from api.app import create_app
from gis.platform import cluster, db, migrate
from tests.conftest import DEMO_PARCELS, make_temp_dir
from tests.worlds import settings_for


def test_health_is_green_with_counts(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] and body["database"] == "reachable"
    assert body["postgis"].startswith("3.")
    assert body["counts"]["parcels"] == DEMO_PARCELS
    assert body["counts"]["districts"] == 4 and body["counts"]["projects"] == 3
    assert body["srid"] == 4549


def test_health_is_503_when_the_database_is_down(monkeypatch):
    path = make_temp_dir("pb-health-")
    s = settings_for(path)
    try:
        cluster.start(s)
        migrate.upgrade(s)
        with TestClient(create_app(s)) as client:
            assert client.get("/health").status_code == 200
            cluster.stop(s)
            r = client.get("/health")
            assert r.status_code == 503
            assert r.json()["ok"] is False and r.json()["database"] == "unreachable"
            cluster.start(s)
            assert client.get("/health").status_code == 200
            # A restart while the pool lay idle: the idle connection is pinged, found dead and replaced,
            # so not even the first request after it fails.
            monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
            cluster.stop(s)
            cluster.start(s)
            assert client.get("/health").status_code == 200
    finally:
        cluster.stop(s)
        shutil.rmtree(path, ignore_errors=True)
