"""Today's blocker pages kept by data version: a repeat is a 304 or the same bytes from the cache, every write of
what a page reads is seen at once, and the owner's name stays masked for the roles that may not see it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis.domain.stages import today_in
from gis.platform.db import get_engine
from gis.records.footprints import refresh_projects
from tests.conftest import add_parcel

PAGE = "/projects/1/blockers?limit=10000"


@pytest.fixture(scope="module")
def world(workflow_db):
    from api.app import create_app

    with TestClient(create_app(workflow_db.settings)) as c:
        yield workflow_db, c


def _items(response) -> dict[int, dict]:
    assert response.status_code == 200, response.text
    return {item["parcel_id"]: item for item in response.json()["items"]}


def test_a_repeat_is_304_or_the_same_bytes_from_the_cache(world):
    w, c = world
    h = w.headers["viewer"]
    add_parcel(w.settings, 1)
    first = c.get(PAGE, headers=h)
    assert first.status_code == 200 and first.headers["etag"]
    # Owners' names: no browser or proxy may keep it (api.security); a client that keeps the tag itself may ask.
    assert first.headers["cache-control"] == "no-store"
    again = c.get(PAGE, headers=h | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    hits = c.app.state.blocker_cache.hits
    same = c.get(PAGE, headers=h)
    assert same.content == first.content and same.headers["etag"] == first.headers["etag"]
    assert c.app.state.blocker_cache.hits == hits + 1
    # Another filter is another page, with a tag of its own.
    other = c.get(PAGE + "&stage=surveyed", headers=h)
    assert other.status_code == 200 and other.headers["etag"] != first.headers["etag"]


def test_each_role_gets_its_own_masking_whoever_asked_first(world):
    w, c = world
    pid = add_parcel(w.settings, 1, owner="欧阳小明")
    admin = c.get(PAGE, headers=w.headers["admin"])
    viewer = c.get(PAGE, headers=w.headers["viewer"])
    assert _items(admin)[pid]["owner_name"] == "欧阳小明"
    assert _items(viewer)[pid]["owner_name"] == "欧**明"
    assert "欧阳小明" not in viewer.text and viewer.headers["etag"] != admin.headers["etag"]
    assert _items(c.get(PAGE, headers=w.headers["viewer"]))[pid]["owner_name"] == "欧**明"  # from the cache


def test_a_change_through_the_api_or_in_sql_is_seen_at_once(world):
    w, c = world
    h, editor = w.headers["viewer"], w.headers["district_editor"]
    pid = add_parcel(w.settings, 1, stage="surveyed")
    before = c.get(PAGE, headers=h)
    assert _items(before)[pid]["stage"] == "surveyed"
    version = c.get(f"/parcels/{pid}", headers=editor).headers["etag"]
    r = c.patch(f"/parcels/{pid}", json={"stage": "appraised"}, headers=editor | {"If-Match": version})
    assert r.status_code == 200, r.text
    after = c.get(PAGE, headers=h | {"If-None-Match": before.headers["etag"]})
    assert after.headers["etag"] != before.headers["etag"] and _items(after)[pid]["stage"] == "appraised"
    # A statement outside the API raises the version by the table's trigger: a cleared parcel leaves the list.
    with get_engine(w.settings).begin() as conn:
        conn.execute(text("UPDATE parcels SET stage = 'cleared' WHERE id = :id"), {"id": pid})
    assert pid not in _items(c.get(PAGE, headers=h | {"If-None-Match": after.headers["etag"]}))
    # So does a change of the project itself: archived, the page is a 404 at once, not the kept list.
    with get_engine(w.settings).begin() as conn:
        conn.execute(text("UPDATE projects SET archived_at = now() WHERE id = 1"))
    try:
        assert c.get(PAGE, headers=h).status_code == 404
    finally:
        with get_engine(w.settings).begin() as conn:
            conn.execute(text("UPDATE projects SET archived_at = NULL WHERE id = 1"))
    assert c.get(PAGE, headers=h).status_code == 200


def test_a_write_elsewhere_keeps_the_page_and_a_district_rename_does_not(world):
    """Kept by the versions of the footprint's region: a parcel outside the project changing stage leaves the page
    (and its tag) as it is; a district's new name, which the page lists, is seen at once."""
    w, c = world
    h, editor = w.headers["viewer"], w.headers["district_editor"]
    inside = add_parcel(w.settings, 1)
    outside = add_parcel(w.settings, 1, inside_project=False)
    before = c.get(PAGE, headers=h)
    assert inside in _items(before) and outside not in _items(before)
    version = c.get(f"/parcels/{outside}", headers=editor).headers["etag"]
    r = c.patch(f"/parcels/{outside}", json={"stage": "appraised"}, headers=editor | {"If-Match": version})
    assert r.status_code == 200, r.text
    hits = c.app.state.blocker_cache.hits
    again = c.get(PAGE, headers=h)
    assert again.headers["etag"] == before.headers["etag"] and again.content == before.content
    assert c.app.state.blocker_cache.hits == hits + 1
    with get_engine(w.settings).begin() as conn:
        old = conn.execute(text("SELECT name FROM districts WHERE id = 1")).scalar_one()
        conn.execute(text("UPDATE districts SET name = '新名区' WHERE id = 1"))
    try:
        renamed = c.get(PAGE, headers=h | {"If-None-Match": before.headers["etag"]})
        assert _items(renamed)[inside]["district_name"] == "新名区"
    finally:
        with get_engine(w.settings).begin() as conn:
            conn.execute(text("UPDATE districts SET name = :n WHERE id = 1"), {"n": old})


def test_a_past_day_is_replayed_each_time_and_not_kept(world):
    w, c = world
    h = w.headers["viewer"]
    add_parcel(w.settings, 1)
    day = (today_in(w.settings.city_timezone) - timedelta(days=1)).isoformat()
    past = c.get(PAGE + f"&as_of={day}", headers=h)
    assert past.status_code == 200 and "etag" not in past.headers
    entries = len(c.app.state.blocker_cache)
    assert c.get(PAGE + f"&as_of={day}", headers=h).content == past.content
    assert len(c.app.state.blocker_cache) == entries


def test_a_deleted_project_is_a_404_at_once_not_its_kept_page(world):
    """Deleted, a project leaves no footprint whose region could meet its own deletion: projects are versioned
    city-wide, so the kept page of a project removed in SQL is never served again."""
    w, c = world
    h = w.headers["viewer"]
    engine = get_engine(w.settings)
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE copy ON COMMIT DROP AS SELECT * FROM projects WHERE id = 1"))
        copy_id = conn.execute(text("UPDATE copy SET id = (SELECT max(id) + 1 FROM projects), code = 'COPY-1' "
                                    "RETURNING id")).scalar_one()
        conn.execute(text("INSERT INTO projects SELECT * FROM copy"))
        refresh_projects(conn, [copy_id])
        # As after an import: every table's edits folded into its base, none left to meet the footprint.
        conn.execute(text("SELECT tile_edit_everywhere(source) FROM tile_versions"))
    page = f"/projects/{copy_id}/blockers?limit=10000"
    kept = c.get(page, headers=h)
    assert kept.status_code == 200 and _items(kept) == _items(c.get(PAGE, headers=h))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM projects WHERE id = :id"), {"id": copy_id})
    assert c.get(page, headers=h).status_code == 404
    assert c.get(page, headers=h | {"If-None-Match": kept.headers["etag"]}).status_code == 404
