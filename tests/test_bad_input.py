"""Bad input to the analysis endpoints: a clear 4xx with a JSON body saying what and where, never a 500."""

from __future__ import annotations

import json

import pytest

LINE = {"type": "LineString", "coordinates": [[118.96, 30.62], [118.99, 30.64]]}


def _post(client, path, body):
    r = client.post(path, json=body)
    assert r.headers["content-type"].startswith("application/json")
    return r.status_code, r.json()


def test_unknown_project_is_404(client):
    for path in ("/projects/9999", "/projects/9999/blockers"):
        r = client.get(path)
        assert r.status_code == 404 and "9999" in r.json()["detail"]


@pytest.mark.parametrize(
    ("geometry", "extra", "where", "words"),
    [
        ({"type": "Polygon", "coordinates": [[[118.96, 30.62], [118.99, 30.64], [118.99, 30.62],
                                              [118.96, 30.64], [118.96, 30.62]]]},
         {}, "geometry.coordinates", "Self-intersection"),
        ({"type": "Polygon", "coordinates": []}, {}, "geometry.coordinates", "empty"),
        ({"type": "Point", "coordinates": [118.97, 30.63]}, {}, "geometry.type", "Point"),
        ({"type": "Polygon", "coordinates": [[[1, 2], [3]]]}, {}, "geometry.coordinates", "malformed"),
        ({"type": "LineString", "coordinates": [[200.0, 30.6], [201.0, 30.7]]}, {"width_m": 30},
         "geometry.coordinates", "out of range"),
        ({"type": "LineString", "coordinates": [[30.62, 118.96], [30.64, 118.99]]}, {"width_m": 30},
         "geometry.coordinates", "swapped"),
        ({"type": "LineString", "coordinates": [[-75.0, 40.0], [-75.1, 40.1]]}, {"width_m": 30},
         "geometry.coordinates", "outside"),
        (LINE, {"width_m": 30, "crs": "EPSG:999999"}, "crs", "unrecognised"),
        (LINE, {"width_m": 30, "crs": "EPSG:32650"}, "crs", "not accepted"),
        (LINE, {"width_m": 30, "crs": "wgs84-ish"}, "crs", "unrecognised"),
        (LINE, {"width_m": 0}, "width_m", "positive"),
        (LINE, {"width_m": -5}, "width_m", "positive"),
        (LINE, {"width_m": 50000}, "width_m", "implausible"),
        (LINE, {}, "width_m", "needs a corridor width"),
        ({"type": "LineString", "coordinates": [[4397000.0, 3390000.0], [4398000.0, 3391000.0]]},
         {"width_m": 30, "crs": 4549}, "geometry.coordinates", "zone prefix"),
    ],
)
def test_bad_geometries_get_422_saying_what_and_where(client, geometry, extra, where, words):
    status, body = _post(client, "/overlaps", {"geometry": geometry, **extra})
    assert status == 422, body
    assert body["where"] == where
    assert words.lower() in body["detail"].lower()


def test_a_bad_candidate_is_named(client):
    status, body = _post(client, "/overlaps/compare", {"candidates": [
        {"name": "a", "geometry": LINE, "width_m": 30},
        {"name": "b", "geometry": {"type": "Point", "coordinates": [118.9, 30.6]}, "width_m": 30},
    ]})
    assert status == 422 and body["where"] == "candidates[1].geometry.type"


def test_schema_errors_are_422_with_locations(client):
    status, body = _post(client, "/overlaps", {"width_m": 30})
    assert status == 422
    assert any("geometry" in err["loc"] for err in body["detail"])
    r = client.post("/overlaps", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.get("/projects/1/blockers", params={"sort": "owner_name"})
    assert r.status_code == 422 and r.json()["where"] == "sort"
    r = client.get("/projects/1/blockers", params={"stage": "demolishedd"})
    assert r.status_code == 422 and r.json()["where"] == "stage"
    r = client.get("/projects/1/blockers", params={"as_of": "2026-13-01"})
    assert r.status_code == 422
    r = client.get("/projects/1/blockers", params={"limit": 0})
    assert r.status_code == 422
    status, body = _post(client, "/overlaps/bands", {"geometry": LINE, "bands": [10, 5]})
    assert status == 422 and body["where"] == "bands"


def test_huge_payloads_are_refused_with_413(client):
    coords = [[118.9 + i * 1e-7, 30.6] for i in range(300_000)]
    payload = json.dumps({"geometry": {"type": "LineString", "coordinates": coords}, "width_m": 30})
    assert len(payload) > 5 * 1024 * 1024
    r = client.post("/overlaps", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_too_many_vertices_in_an_accepted_body_is_413(client):
    coords = [[400000 + i, 3390000 + i % 2] for i in range(210_000)]
    payload = json.dumps({"geometry": {"type": "LineString", "coordinates": coords}, "width_m": 30, "crs": 4549})
    assert len(payload) < 5 * 1024 * 1024
    r = client.post("/overlaps", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "vertices" in r.json()["detail"]
