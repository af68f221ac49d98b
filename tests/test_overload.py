"""Overload degrades into bounded waits and 503 with Retry-After and a JSON body, never a 500 or a stall.

Each test makes one resource scarce on purpose (a pool of one connection, held; a statement time limit with a
lock in the way; one tile slot, taken) and checks the answer, on the real database. /health keeps answering
throughout: it has connections and threads of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.routers import tiles as tiles_router
from gis.platform.db import get_engine
from gis.platform.versioned import BytesLRU
from tests.conftest import bearer
from tests.worlds import settings_for

TILE = "/tiles/districts/10/850/420.mvt"  # a tile over the demo city's districts: never empty
ADVISORY_KEY = 914_014


@contextmanager
def app_client(pg_dir, token: str, **overrides: object) -> Iterator[TestClient]:
    """The API over the session's demo database with the capacity settings ``overrides``."""
    settings = settings_for(pg_dir, **overrides)
    with TestClient(create_app(settings), headers=bearer(token)) as client:
        assert client.get(TILE).status_code == 200  # and the caller's token is now in the principal cache
        client.app.state.tile_cache = BytesLRU(max_bytes=0)  # every tile built: these tests are about building
        yield client


def assert_busy(r, settings) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == str(settings.retry_after_s)
    assert r.headers["content-type"].startswith("application/json")
    assert "busy" in r.json()["detail"]


def test_a_pool_that_stays_taken_is_a_503_not_a_500(pg_dir, demo_city, role_tokens):
    with app_client(pg_dir, role_tokens["viewer"], db_pool_size=1, db_max_overflow=0,
                    db_pool_timeout_s=0.2) as client:
        settings = client.app.state.settings
        with client.app.state.engine.connect():  # the pool's one connection, held
            assert_busy(client.get(TILE), settings)  # async route (tile capacity)
            assert_busy(client.get("/districts/progress"), settings)  # sync route (a connection per request)
            assert_busy(client.get("/districts"), settings)  # async route (Database.read)
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["ok"] is True
        assert client.get(TILE).status_code == 200  # and it comes back once the connection is free


def test_a_statement_past_its_time_limit_is_a_503_not_a_500(pg_dir, demo_city, role_tokens, monkeypatch):
    real_tile = tiles_router.vector_tile

    def slow_tile(conn, *args, **kwargs):  # the real tile after a statement that outlasts the limit
        conn.execute(text("SELECT pg_sleep(20)"))
        return real_tile(conn, *args, **kwargs)

    with app_client(pg_dir, role_tokens["viewer"], db_statement_timeout_s=2) as client:
        monkeypatch.setattr(tiles_router, "vector_tile", slow_tile)
        assert_busy(client.get(TILE), client.app.state.settings)
        monkeypatch.setattr(tiles_router, "vector_tile", real_tile)
        assert client.get(TILE).status_code == 200


def test_tiles_beyond_their_slots_wait_a_bounded_time_then_503(pg_dir, demo_city, role_tokens, settings,
                                                              monkeypatch):
    real_tile = tiles_router.vector_tile

    def tile_behind_a_lock(conn, *args, **kwargs):  # the real tile, once the test lets go of the lock
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": ADVISORY_KEY})
        return real_tile(conn, *args, **kwargs)

    monkeypatch.setattr(tiles_router, "vector_tile", tile_behind_a_lock)
    with app_client(pg_dir, role_tokens["viewer"], tile_concurrency=1, tile_queue_timeout_s=0.3) as client:
        capacity = client.app.state.tile_capacity
        first: dict = {}
        with get_engine(settings).connect() as owner:
            owner.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                worker = threading.Thread(target=lambda: first.update(r=client.get(TILE)))
                worker.start()
                deadline = time.monotonic() + 30
                while capacity.in_use < 1 and time.monotonic() < deadline:  # the one slot is taken
                    time.sleep(0.01)
                assert capacity.in_use == 1
                assert_busy(client.get(TILE), client.app.state.settings)
                health = client.get("/health")
                assert health.status_code == 200 and health.json()["ok"] is True
                assert client.get("/districts").status_code == 200  # other routes are not held up
            finally:
                owner.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                owner.commit()
            worker.join(timeout=30)
        assert first["r"].status_code == 200  # the request holding the slot finished normally
        assert capacity.in_use == 0


@pytest.mark.parametrize("path", ["/tiles/parcels/16/0/0.mvt", "/tiles/projects/0/0/0.mvt"])
def test_tiles_still_answer_through_the_capacity(client, path):
    r = client.get(path)
    assert r.status_code in (200, 204)


def test_maps_and_downloads_beyond_their_slots_get_a_503(pg_dir, demo_city, role_tokens):
    with app_client(pg_dir, role_tokens["viewer"], render_concurrency=1, render_queue_timeout_s=0.2) as client:
        capacity = client.app.state.render_capacity
        with client.portal.wrap_async_context_manager(capacity.slot()):  # the one render slot, taken
            for path in ("/projects/1/map.png", "/projects/1/map", "/parcels/export?format=csv",
                         "/projects/1/blockers?format=xlsx"):
                assert_busy(client.get(path), client.app.state.settings)
            assert client.get("/projects/1/blockers").status_code == 200  # a page is not a render
            assert client.get("/health").status_code == 200
        assert client.get("/parcels/export?format=csv").status_code == 200
        assert capacity.in_use == 0
