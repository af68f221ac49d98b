"""Blockers, as_of, overlaps, bands, comparison and district progress on the demo city.

The expected answers are computed with shapely from the generator's own frames
(parcels, projects and the stage history), never from PostGIS.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from gis.analysis.blockers import SORT_KEYS, BlockerFilter, blockers_json, find_blockers
from gis.demo.compensation import itemised_standards, surveys
from gis.demo.generator import DEFAULT_TODAY
from gis.domain.stages import ALL_STAGES
from gis.domain.tolerance import Tolerance
from tests.oracles import footprint_of, stages_at

MIN_M2, MIN_SHARE = 1.0, 0.005
TO_WGS = Transformer.from_crs(4549, 4326, always_xy=True)


def to_wgs(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS.transform(xy[:, 0], xy[:, 1])))


def overlaps_with(parcels, footprint) -> dict[str, tuple[float, float]]:
    """code → (overlap m², share) for every parcel overlapping beyond the tolerance."""
    shapely.prepare(footprint)
    geoms = parcels.geometry.values
    hit = shapely.intersects(footprint, geoms)
    out = {}
    for code, geom in zip(parcels["code"].values[hit], geoms[hit]):
        area = shapely.area(shapely.intersection(geom, footprint))
        if area >= MIN_M2 and area >= MIN_SHARE * geom.area:
            out[code] = (area, area / geom.area)
    return out


@pytest.fixture(scope="module")
def projects(client):
    return {p["code"]: p for p in client.get("/projects").json()["projects"]}


@pytest.mark.parametrize("code", ["hsr", "xinan_road", "devzone"])
def test_blockers_match_an_independent_computation(client, demo_city, projects, code):
    project = demo_city.projects.set_index("code").loc[code]
    expected_all = overlaps_with(demo_city.parcels, footprint_of(project))
    stage = dict(zip(demo_city.parcels["code"], demo_city.parcels["stage"]))
    expected = {c: v for c, v in expected_all.items() if stage[c] != "cleared"}
    assert len(expected) > 20
    body = client.get(f"/projects/{projects[code]['id']}/blockers", params={"limit": 10000}).json()
    got = {b["code"]: b for b in body["items"]}
    assert body["total"] == len(got)
    assert set(got) == set(expected)
    for c, (area, share) in expected.items():
        assert got[c]["overlap_m2"] == pytest.approx(area, rel=1e-3)
        assert got[c]["overlap_mu"] == pytest.approx(area / (10000 / 15), rel=1e-3)
        assert got[c]["share"] == pytest.approx(share, rel=1e-3, abs=1e-6)
        assert got[c]["stage"] == stage[c]
    summary = projects[code]
    assert summary["parcels"] == len(expected_all)
    assert summary["blocking"] == len(expected)
    assert summary["cleared"] == len(expected_all) - len(expected)
    houses = demo_city.parcels.set_index("code")
    blocking_house = houses.loc[[c for c in expected if houses.at[c, "kind"] == "house"], "floor_area_m2"].sum()
    assert summary["blocking_house_m2"] == pytest.approx(blocking_house, rel=1e-6)
    holdouts = sum(bool(houses.at[c, "holdout"]) for c in expected)
    assert summary["holdouts"] == holdouts


def test_filters_sort_and_pagination(client, projects):
    pid = projects["hsr"]["id"]
    full = client.get(f"/projects/{pid}/blockers", params={"limit": 10000}).json()
    pages = [client.get(f"/projects/{pid}/blockers", params={"limit": 50, "offset": o}).json()
             for o in range(0, full["total"], 50)]
    assert [i["code"] for p in pages for i in p["items"]] == [i["code"] for i in full["items"]]
    assert all(p["total"] == full["total"] for p in pages)
    overlaps = [i["overlap_m2"] for i in full["items"]]
    assert overlaps == sorted(overlaps, reverse=True)
    houses = client.get(f"/projects/{pid}/blockers", params={"kind": "house", "stage": ["surveyed", "signed"],
                                                               "limit": 10000}).json()
    assert houses["total"] == sum(1 for i in full["items"] if i["kind"] == "house"
                                  and i["stage"] in ("surveyed", "signed"))
    big = client.get(f"/projects/{pid}/blockers", params={"min_overlap": 500, "sort": "code"}).json()
    assert big["total"] == sum(1 for i in full["items"] if i["overlap_m2"] >= 500)
    codes = [i["code"] for i in big["items"]]
    assert codes == sorted(codes)
    first = full["items"][0]["district"]
    by_district = client.get(f"/projects/{pid}/blockers", params={"district": first, "limit": 10000}).json()
    assert by_district["total"] == sum(1 for i in full["items"] if i["district"] == first)
    # Past the last page, and a filter nothing passes: no items, the total and the project still given.
    beyond = client.get(f"/projects/{pid}/blockers", params={"offset": full["total"]}).json()
    assert (beyond["items"], beyond["total"], beyond["project"]) == ([], full["total"], full["project"])
    assert full["project"] == {k: projects["hsr"][k] for k in ("id", "code", "name", "kind")}
    none = client.get(f"/projects/{pid}/blockers", params={"min_overlap": 1e9}).json()
    assert (none["items"], none["total"], none["project"]["code"]) == ([], 0, "hsr")


def test_geojson_output_is_rfc7946_in_wgs84(client, demo_city, projects):
    r = client.get(f"/projects/{projects['xinan_road']['id']}/blockers", params={"format": "geojson", "limit": 5})
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 5
    parcels = demo_city.parcels.set_index("code")
    for feature in fc["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        expected = to_wgs(parcels.at[feature["properties"]["code"], "geometry"])
        assert geom.symmetric_difference(expected).area < 1e-3 * expected.area
        lon, lat = geom.centroid.x, geom.centroid.y
        assert 118 < lon < 120 and 30 < lat < 31.5


def test_tolerance_excludes_slivers_and_is_stated(client, demo_city, projects):
    pid = projects["hsr"]["id"]
    loose = client.get(f"/projects/{pid}/blockers", params={"min_overlap_m2": 0, "min_share": 0,
                                                             "limit": 10000}).json()
    strict = client.get(f"/projects/{pid}/blockers", params={"min_overlap_m2": 50, "min_share": 0.05,
                                                              "limit": 10000}).json()
    assert strict["tolerance"] == {"min_overlap_m2": 50, "min_share": 0.05}
    expected = {i["code"] for i in loose["items"] if i["overlap_m2"] >= 50 and i["share"] >= 0.05}
    assert {i["code"] for i in strict["items"]} == expected
    assert loose["total"] > strict["total"]


@pytest.mark.parametrize("days_back", [0, 30, 120, 400])
def test_as_of_agrees_with_replaying_the_history(client, demo_city, projects, days_back):
    day = DEFAULT_TODAY - timedelta(days=days_back)
    project = demo_city.projects.set_index("code").loc["hsr"]
    in_footprint = overlaps_with(demo_city.parcels, footprint_of(project))
    ids = dict(zip(demo_city.parcels["code"], demo_city.parcels["id"]))
    state = stages_at(demo_city, day)
    expected = {c for c in in_footprint if ids[c] in state and state[ids[c]][0] != "cleared"}
    body = client.get(f"/projects/{projects['hsr']['id']}/blockers",
                      params={"as_of": day.isoformat(), "limit": 10000}).json()
    got = {i["code"]: i for i in body["items"]}
    assert body["as_of"] == day.isoformat()
    assert set(got) == expected
    for c, item in got.items():
        stage, since = state[ids[c]]
        assert item["stage"] == stage
        assert item["days_in_stage"] == (day - since).days


def test_as_of_shows_progress_over_time(client, projects):
    pid = projects["hsr"]["id"]
    counts = [client.get(f"/projects/{pid}/blockers", params={"as_of": d, "limit": 1}).json()["total"]
              for d in ("2025-03-01", "2026-11-26")]
    assert counts[0] != counts[1]


def test_ad_hoc_line_across_a_district_boundary(client, demo_city):
    hsr = demo_city.projects.set_index("code").loc["hsr"]
    line = shapely.offset_curve(hsr["centerline"].geoms[0], 25)
    districts = demo_city.districts
    crossed = [d for d, g in zip(districts["code"], districts.geometry) if g.intersects(line)]
    assert len(crossed) >= 2
    r = client.post("/overlaps", json={"geometry": shapely.geometry.mapping(line), "crs": "EPSG:4549",
                                       "width_m": 40})
    assert r.status_code == 200, r.text
    body = r.json()
    footprint = shapely.buffer(line, 20, cap_style="flat", join_style="round")
    expected = overlaps_with(demo_city.parcels, footprint)
    got = {p["code"]: p for p in body["parcels"]}
    assert set(got) == set(expected) and len(expected) > 50
    assert body["totals"]["overlap_m2"] == pytest.approx(sum(a for a, _ in expected.values()), rel=1e-3)
    district_of = dict(zip(demo_city.parcels["code"], demo_city.parcels["district_id"]))
    code_of = dict(zip(districts["id"], districts["code"]))
    by_district = {d["district"]: d for d in body["by_district"]}
    assert len(by_district) >= 2
    for dcode, d in by_district.items():
        mine = [c for c in expected if code_of[district_of[c]] == dcode]
        assert d["parcels"] == len(mine)
        assert d["overlap_m2"] == pytest.approx(sum(expected[c][0] for c in mine), rel=1e-3)
    assert sum(d["parcels"] for d in by_district.values()) == body["totals"]["parcels"]


def test_ad_hoc_query_in_wgs84_and_compensation_estimate(client, demo_city):
    zone = demo_city.projects.set_index("code").loc["devzone"]
    body = client.post("/overlaps", json={"geometry": shapely.geometry.mapping(to_wgs(zone["boundary"]))}).json()
    parcels = demo_city.parcels.set_index("code")
    rates = {(r.district_id, r.kind): r.rate_yuan for r in demo_city.standards.itertuples()}
    # Every item, by hand from the demo's itemised standards and surveys (all in force over the demo's contracts).
    items = {(r.district_id, r.kind, r.item, r.grade): float(r.rate_yuan)
             for r in itemised_standards(demo_city).itertuples()}
    facts, counts = surveys(demo_city)
    facts = facts.set_index("parcel_id")
    expected = 0.0
    for p in body["parcels"]:
        row = parcels.loc[p["code"]]
        did, kind, pid = row["district_id"], row["kind"], int(row["id"])
        rate = rates[(did, kind)]
        counted = sum(c.quantity * items[(did, kind, c.item, c.grade)]
                      for c in counts[counts["parcel_id"] == pid].itertuples())
        if kind == "house":
            f, area = facts.loc[pid], row["floor_area_m2"]
            per_m2 = rate + sum(items[(did, kind, i, "")] for i in ("relocation", "incentive"))
            expected += (area * (per_m2 + items[(did, kind, "decoration", f["decoration"])])
                         if f["decoration"] != "none" else area * per_m2)
            expected += area * f["transition_months"] * items[(did, kind, "temporary_resettlement", "")]
            business = f["business_area_m2"] if f["business_area_m2"] == f["business_area_m2"] else 0  # NaN: none
            expected += (business or 0) * items[(did, kind, "business_loss", "")] + counted
        else:
            per_mu = rate + items[(did, kind, "subsidy", "")] + items[(did, kind, "social_security", "")]
            expected += p["overlap_m2"] / (10000 / 15) * per_mu + counted
    assert body["totals"]["estimated_compensation_yuan"] == pytest.approx(expected, rel=1e-6)
    assert body["totals"]["households"] == int(parcels.loc[[p["code"] for p in body["parcels"]], "households"].sum())


def test_polygon_along_parcel_edges_excludes_touching_neighbours(client, demo_city):
    parcels = demo_city.parcels
    target = parcels[parcels["kind"] == "land"].iloc[10]
    neighbours = parcels[parcels.geometry.touches(target.geometry)]
    assert len(neighbours) >= 2, "Voronoi parcels share edges"
    body = client.post("/overlaps", json={"geometry": shapely.geometry.mapping(target.geometry),
                                          "crs": 4549}).json()
    codes = {p["code"] for p in body["parcels"]}
    assert target["code"] in codes
    assert not codes & set(neighbours["code"])
    hit = next(p for p in body["parcels"] if p["code"] == target["code"])
    assert hit["share"] == pytest.approx(1.0, abs=1e-6)


def test_distance_bands_match_shapely(client, demo_city):
    road = demo_city.projects.set_index("code").loc["xinan_road"]["centerline"]
    edges = [0, 30, 60, 120, 300]
    body = client.post("/overlaps/bands", json={"geometry": shapely.geometry.mapping(road), "crs": 4549,
                                                "bands": edges}).json()
    dist = shapely.distance(demo_city.parcels.geometry.values, road)
    for band, lo, hi in zip(body["bands"], edges, edges[1:]):
        mask = (dist >= lo) & (dist < hi)
        assert band["parcels"] == int(mask.sum()), (lo, hi)
        assert {i["code"] for i in band["items"]} == set(demo_city.parcels["code"].values[mask])
        assert band["households"] == int(demo_city.parcels["households"].values[mask].sum())


def test_compare_alignments(client, demo_city):
    hsr = demo_city.projects.set_index("code").loc["hsr"]["centerline"].geoms[0]
    a, b = hsr, shapely.offset_curve(hsr, 25)
    body = client.post("/overlaps/compare", json={"candidates": [
        {"name": "方案一", "geometry": shapely.geometry.mapping(a), "crs": 4549, "width_m": 60},
        {"name": "方案二", "geometry": shapely.geometry.mapping(b), "crs": 4549, "width_m": 60},
    ]}).json()
    sets = [set(overlaps_with(demo_city.parcels, shapely.buffer(g, 30, cap_style="flat", join_style="round")))
            for g in (a, b)]
    assert [c["totals"]["parcels"] for c in body["candidates"]] == [len(s) for s in sets]
    assert set(body["hit_by_all"]) == sets[0] & sets[1]
    holdouts = set(demo_city.parcels.loc[demo_city.parcels["holdout"], "code"])
    assert {h["code"] for h in body["candidates"][0]["holdouts"]} == sets[0] & holdouts


def test_district_progress_and_ranking(client, demo_city):
    body = client.get("/districts/progress").json()
    parcels = demo_city.parcels
    in_any = set()
    for _, project in demo_city.projects.iterrows():
        in_any |= set(overlaps_with(parcels, footprint_of(project)))
    today = date.fromisoformat(body["date"])
    before = {n: stages_at(demo_city, today - timedelta(days=n)) for n in (1, 3, 7)}
    rows = parcels[parcels["code"].isin(in_any)]
    codes = dict(zip(demo_city.districts["id"], demo_city.districts["code"]))
    for d in body["districts"]:
        mine = rows[rows["district_id"].map(codes) == d["district"]]
        cleared = int((mine["stage"] == "cleared").sum())
        assert (d["total"], d["cleared"], d["remaining"]) == (len(mine), cleared, len(mine) - cleared)
        for n in (1, 3, 7):
            then = sum(1 for pid in mine["id"] if before[n].get(pid, ("",))[0] == "cleared")
            assert d["change"][f"{n}d"] == cleared - then
    percents = [d["percent_cleared"] for d in body["districts"]]
    assert percents == sorted(percents, reverse=True)
    assert [d["rank"] for d in body["districts"]] == list(range(1, len(percents) + 1))


def test_line_along_parcel_edges(client, demo_city):
    """A thin corridor along a parcel's boundary: the parcels on both sides overlap it; parcels that only
    touch it (at a corner, or along the flat end) are not in the answer."""
    parcels = demo_city.parcels
    target = parcels[parcels["kind"] == "land"].iloc[20]
    ring = shapely.get_exterior_ring(shapely.get_geometry(target.geometry, 0))
    line = shapely.LineString(shapely.get_coordinates(ring)[:3])
    body = client.post("/overlaps", json={"geometry": shapely.geometry.mapping(line), "crs": 4549,
                                          "width_m": 2}).json()
    footprint = shapely.buffer(line, 1, cap_style="flat", join_style="round")
    expected = overlaps_with(parcels, footprint)
    touching = {c for c, g in zip(parcels["code"], parcels.geometry)
                if g.intersects(footprint) and g.intersection(footprint).area < 1e-6}
    got = {p["code"]: p for p in body["parcels"]}
    assert set(got) == set(expected)
    assert target["code"] in got and len(got) >= 2
    assert not touching & set(got)
    for c, (area, _) in expected.items():
        assert got[c]["overlap_m2"] == pytest.approx(area, rel=1e-3)


SORTS = [*SORT_KEYS, *(f"-{key}" for key in SORT_KEYS)]


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_gives_the_same_page_from_postgresql_json_and_from_python(client, engine, settings, projects,
                                                                             sort):
    """The API's JSON page (items written by PostgreSQL, owner masked in SQL) against the library's page (rows
    masked in Python), for a masked and a revealing role, on a page past the first."""
    tolerance, tz = Tolerance.from_settings(settings), settings.city_timezone
    query = BlockerFilter(sort=sort, limit=60, offset=30)
    with engine.connect() as conn:
        for reveal in (False, True):
            library = find_blockers(conn, projects["devzone"]["id"], query, tolerance, tz=tz, today=DEFAULT_TODAY,
                                    reveal_personal=reveal).as_dict()
            page = json.loads(blockers_json(conn, projects["devzone"]["id"], query, tolerance, tz=tz,
                                            today=DEFAULT_TODAY, reveal_personal=reveal))
            assert len(page["items"]) == 60 and page == json.loads(json.dumps(library))
    key = {"district": "district_name"}.get(sort.lstrip("-"), sort.lstrip("-"))
    values = [i[key] for i in page["items"]]
    if key == "stage":
        values = [ALL_STAGES.index(v) for v in values]
    assert values == sorted(values, reverse=sort.startswith("-"))
    api = client.get(f"/projects/{projects['devzone']['id']}/blockers", params={"sort": sort, "limit": 60,
                                                                               "offset": 30})
    assert [i["code"] for i in api.json()["items"]] == [i["code"] for i in page["items"]]
