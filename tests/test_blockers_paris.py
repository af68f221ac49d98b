"""Blockers and overlaps on real data: the Paris 18e cadastre and the Ile-de-France rail lines.

The service runs with Lambert-93 (EPSG:2154) as its working CRS. Every area and
membership is checked against shapely + pyproj on the same files, outside PostGIS.
"""

from __future__ import annotations

import json
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from gis.domain.geometry import alignment_of
from gis.platform.bulk import copy_frame
from gis.platform.db import get_engine
from gis.records.projects import ProjectFields, add_project
from tests.conftest import SHARED_DATA, bearer, make_role_tokens
from tests.worlds import empty_database

CADASTRE = SHARED_DATA / "fr-cadastre-rail" / "cadastre-75118-parcelles.json"
RAIL = SHARED_DATA / "fr-cadastre-rail" / "traces-du-reseau-ferre-idf.geojson"
WIDTH = 50.0
MIN_M2, MIN_SHARE = 1.0, 0.005
TO_L93 = Transformer.from_crs(4326, 2154, always_xy=True)


def _to_l93(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_L93.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def paris_files():
    """The parcels and the heavy-rail lines crossing them, read and projected independently of the service."""
    raw = json.loads(CADASTRE.read_text())
    parcels = {f["id"]: _to_l93(shapely.geometry.shape(f["geometry"])) for f in raw["features"]}
    hull = shapely.convex_hull(shapely.union_all(list(parcels.values())))
    rail = json.loads(RAIL.read_text())
    lines = [_to_l93(shapely.geometry.shape(f["geometry"])) for f in rail["features"]
             if f["properties"].get("mode") in ("TRAIN", "RER")]
    crossing = [ln for ln in lines if ln.intersects(hull)]
    assert crossing, "the rail file has heavy-rail lines through Paris 18e"
    return parcels, shapely.multilinestrings(crossing), hull


@pytest.fixture(scope="module")
def paris(pg_dir, paris_files):
    """A service configured for Paris (Lambert-93) with the 6,821 parcels and the rail corridor as a project."""
    parcels, rail, hull = paris_files
    s = empty_database(pg_dir, "paris", srid=2154)
    engine = get_engine(s)
    frame = gpd.read_file(CADASTRE).to_crs(2154)
    multi = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in frame.geometry]
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO districts (id, code, name, geom) VALUES (1, '75118', 'Paris 18e', "
                 "ST_Multi(ST_Buffer(ST_GeomFromWKB(:wkb, 2154), 100)))"),
            {"wkb": shapely.to_wkb(hull)},
        )
        copy_frame(conn, "parcels", pd.DataFrame({
            "id": np.arange(1, len(frame) + 1), "code": frame["id"], "kind": "land", "district_id": 1,
            "households": 1, "land_area_mu": frame["contenance"] / (10000 / 15), "stage": "surveyed", "geom": multi,
        }), ("id", "code", "kind", "district_id", "households", "land_area_mu", "stage", "geom"), srid=2154)
        conn.execute(text("INSERT INTO parcel_events (parcel_id, at, actor, kind, stage_to) "
                          "SELECT id, timestamptz '2026-01-05 10:00+08', 'test', 'created', 'surveyed' FROM parcels"))
        project_id = add_project(conn, "rail", "rail", ProjectFields("RER/TRAIN corridor"),
                                 alignment_of(rail, WIDTH, source_srid=2154), actor="test", today=date.today())
    from api.app import create_app

    token = make_role_tokens(engine, ["75118"])["viewer"]
    with TestClient(create_app(s), headers=bearer(token)) as client:
        yield client, project_id, engine


def _expected_overlaps(parcels: dict, footprint) -> dict[str, tuple[float, float]]:
    shapely.prepare(footprint)
    out = {}
    for code, geom in parcels.items():
        if not footprint.intersects(geom):
            continue
        area = geom.intersection(footprint).area
        if area >= MIN_M2 and area >= MIN_SHARE * geom.area:
            out[code] = (area, area / geom.area)
    return out


def test_rail_blockers_match_an_independent_computation(paris, paris_files):
    client, project_id, _ = paris
    parcels, rail, _ = paris_files
    footprint = shapely.buffer(rail, WIDTH / 2, cap_style="flat", join_style="round")
    expected = _expected_overlaps(parcels, footprint)
    assert len(expected) > 20
    r = client.get(f"/projects/{project_id}/blockers", params={"limit": 10000})
    assert r.status_code == 200, r.text
    body = r.json()
    got = {item["code"]: item for item in body["items"]}
    assert body["total"] == len(got) == len(expected)
    assert set(got) == set(expected)
    for code, (area, share) in expected.items():
        assert got[code]["overlap_m2"] == pytest.approx(area, rel=1e-3, abs=0.01)
        assert got[code]["share"] == pytest.approx(share, rel=1e-3, abs=1e-5)
    assert body["tolerance"] == {"min_overlap_m2": MIN_M2, "min_share": MIN_SHARE}


def test_stored_footprint_is_the_full_corridor(paris, paris_files):
    _, project_id, engine = paris
    _, rail, _ = paris_files
    expected = shapely.buffer(rail, WIDTH / 2, cap_style="flat", join_style="round")
    with engine.connect() as conn:
        stored = shapely.from_wkb(bytes(conn.execute(
            text("SELECT ST_AsBinary(footprint) FROM projects WHERE id = :id"), {"id": project_id}).scalar_one()))
    assert stored.area == pytest.approx(expected.area, rel=1e-4)
    assert stored.symmetric_difference(expected).area < 1e-4 * expected.area


def test_ad_hoc_line_overlaps_match(paris, paris_files):
    client, _, _ = paris
    parcels, rail, hull = paris_files
    line = max(shapely.get_parts(rail), key=lambda g: g.intersection(hull).length)
    to_wgs = Transformer.from_crs(2154, 4326, always_xy=True)
    line_wgs = shapely.transform(line, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))
    r = client.post("/overlaps", json={"geometry": shapely.geometry.mapping(line_wgs), "width_m": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    # The service transforms the WGS 84 line back; do the same round trip independently.
    footprint = shapely.buffer(_to_l93(line_wgs), 15, cap_style="flat", join_style="round")
    expected = _expected_overlaps(parcels, footprint)
    got = {p["code"]: p for p in body["parcels"]}
    assert set(got) == set(expected) and expected
    total = sum(a for a, _ in expected.values())
    assert body["totals"]["overlap_m2"] == pytest.approx(total, rel=1e-3)
    assert body["totals"]["parcels"] == len(expected)
    assert body["query"]["footprint_m2"] == pytest.approx(footprint.area, rel=1e-6)
