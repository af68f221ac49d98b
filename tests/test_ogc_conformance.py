"""OGC API - Features (Part 1 Core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS; Part 3 Filtering) and OGC API -
Tiles, in process, one test per requirement group of the standards, against the demo city.

Expected answers come from the generator's own frames with shapely/pyproj (never from PostGIS), or,
for the temporary parcels a test adds, from what the test wrote.
"""

from __future__ import annotations

import json
from datetime import date

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape
from sqlalchemy import text

from api.ogc_docs import CONFORMANCE
from gis.domain.privacy import mask_name

BASE = "http://testserver/ogc"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
TO_WGS = Transformer.from_crs(4549, 4326, always_xy=True)
TO_GK = Transformer.from_crs(4326, 4549, always_xy=True)
TO_MERC = Transformer.from_crs(4549, 3857, always_xy=True)
MIN_M2, MIN_SHARE = 1.0, 0.005


def reproject(geom, transformer):
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def viewer(client, role_headers):
    def get(url, role="viewer", **params):
        # (httpx drops a URL's own query string when given params, even empty ones)
        return client.get(url, params=params or None, headers=role_headers[role])
    return get


@pytest.fixture(scope="module")
def parcels(demo_city):
    """The demo parcels indexed by id, with their district names and geometries in CRS84."""
    frame = demo_city.parcels.set_index("id")
    names = dict(zip(demo_city.districts["id"], demo_city.districts["name"]))
    frame["district_name"] = frame["district_id"].map(names)
    frame["wgs"] = reproject(frame.geometry.values, TO_WGS)
    return frame


def hits(geoms, index, other) -> set[int]:
    return {int(i) for i in index[shapely.intersects(geoms, other)]}


def ids_of(body) -> set[int]:
    return {f["id"] for f in body["features"]}


def all_ids(get, url, **params) -> set[int]:
    """Every id of a query, following the next links (which must not repeat a feature)."""
    seen: list[int] = []
    body = get(url, **({"limit": 10000} | params)).json()
    for _ in range(100):
        seen += [f["id"] for f in body["features"]]
        nxt = [x["href"] for x in body["links"] if x["rel"] == "next"]
        if not nxt:
            break
        body = get(nxt[0]).json()
    else:
        raise AssertionError("the next links do not end")
    assert len(seen) == len(set(seen))
    return set(seen)


# ---------------------------------------------------------------------------------------------
# Part 1 Core: landing page, conformance, API definition, collections


def test_landing_page_links_and_conformance(viewer):
    r = viewer("/ogc")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    rels = {x["rel"]: x for x in r.json()["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    for rel in ("self", "service-desc", "service-doc", "conformance", "data",
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"):
        assert viewer(rels[rel]["href"]).status_code == 200, rel
    conf = viewer(rels["conformance"]["href"]).json()["conformsTo"]
    for cls in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-2/1.0/conf/crs",
                "ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json", "ogcapi-tiles-1/1.0/conf/core"):
        assert f"http://www.opengis.net/spec/{cls}" in conf
    assert conf == CONFORMANCE


def test_no_token_no_data(anon_client):
    for path in ("/ogc", "/ogc/collections", "/ogc/collections/parcels/items", "/ogc/api"):
        r = anon_client.get(path)
        assert r.status_code == 401 and "detail" in r.json(), path


def test_api_definition_lists_queryables_per_collection(viewer, demo_city):
    r = viewer("/ogc/api")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.") and doc["servers"][0]["url"] == BASE
    components = doc["components"]["parameters"]
    limit = components["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 10000, 100)

    def params(path):
        out = {}
        for p in doc["paths"][path]["get"]["parameters"]:
            if "$ref" in p:
                p = components[p["$ref"].rsplit("/", 1)[-1]]  # every reference resolves
            out[p["name"]] = p
        return out

    parcel_params = params("/collections/parcels/items")
    assert {"stage", "kind", "district", "code", "holdout", "households", "limit", "bbox", "filter", "crs"} \
        <= set(parcel_params)
    assert parcel_params["stage"]["in"] == "query" and "paid" in parcel_params["stage"]["schema"]["enum"]
    assert "owner_name" not in parcel_params  # viewers may not filter on personal data
    assert {"code", "name", "kind", "deadline"} <= set(params("/collections/projects/items"))
    assert {"tileMatrixSetId", "tileMatrix", "tileRow", "tileCol"} <= set(
        params("/collections/parcels/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"))
    for code in demo_city.projects["code"]:
        assert {"overlap_m2", "share", "stage"} <= set(params(f"/collections/blockers-{code}/items"))
    admin = viewer("/ogc/api", role="admin").json()
    names = {p.get("name") for p in admin["paths"]["/collections/parcels/items"]["get"]["parameters"]}
    assert "owner_name" in names
    assert viewer("/ogc/api", f="html").headers["content-type"].startswith("text/html")


def test_collections_metadata_extent_and_crs(viewer, demo_city, parcels):
    r = viewer("/ogc/collections")
    assert r.status_code == 200
    listed = {c["id"]: c for c in r.json()["collections"]}
    expected = {"parcels", "projects", "districts"} | {f"blockers-{c}" for c in demo_city.projects["code"]}
    assert set(listed) == expected
    crs = [CRS84, EPSG.format(4326), EPSG.format(4490), EPSG.format(4549)]
    for cid, c in listed.items():
        assert c["crs"] == crs and c["storageCrs"] == EPSG.format(4549) and c["itemType"] == "feature"
        rels = {x["rel"] for x in c["links"]}
        assert {"self", "items"} <= rels
        assert viewer(f"/ogc/collections/{cid}").json() == c
    # The extent (CRS84) holds every feature, and not much more: it is the lon/lat box around the working
    # CRS's box, which the grid's convergence (about 0.6° here) turns by a few tens of metres.
    x0, y0, x1, y1 = listed["parcels"]["extent"]["spatial"]["bbox"][0]
    wx0, wy0, wx1, wy1 = shapely.total_bounds(parcels["wgs"].values)
    assert x0 <= wx0 and y0 <= wy0 and x1 >= wx1 and y1 >= wy1
    assert max(wx0 - x0, wy0 - y0, x1 - wx1, y1 - wy1) < 0.002
    interval = listed["parcels"]["extent"]["temporal"]["interval"][0]
    assert interval == [min(parcels["stage_since"]).isoformat(), max(parcels["stage_since"]).isoformat()]
    assert listed["projects"]["extent"]["temporal"]["interval"][0][1] == max(demo_city.projects["deadline"]).isoformat()


# ---------------------------------------------------------------------------------------------
# Items: paging, bbox, one feature, errors


def test_items_paging_with_next_and_prev(viewer, parcels):
    r = viewer("/ogc/collections/parcels/items")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["numberMatched"] == len(parcels)
    assert body["numberReturned"] == len(body["features"]) == 100  # the default limit
    assert {x["rel"] for x in body["links"]} >= {"self", "next", "collection"}
    assert all(f["type"] == "Feature" and f["geometry"]["type"] == "MultiPolygon" for f in body["features"])
    assert all_ids(viewer, "/ogc/collections/parcels/items", limit=1000) == set(parcels.index)
    second = viewer("/ogc/collections/parcels/items", limit=50, offset=50).json()
    prev = next(x["href"] for x in second["links"] if x["rel"] == "prev")
    assert ids_of(viewer(prev).json()) == {f["id"] for f in body["features"][:50]}
    last = viewer("/ogc/collections/parcels/items", limit=10, offset=len(parcels) - 4, count="false").json()
    assert last["numberReturned"] == 4 and "numberMatched" not in last
    assert "next" not in {x["rel"] for x in last["links"]}


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 10001}, {"limit": "x"}, {"offset": -1},
                                 {"count": "maybe"}, {"bbox": "1,2,3"}, {"bbox": "3,2,1,4"}, {"bbox": "a,b,c,d"},
                                 {"crs": "EPSG:3857"}, {"bbox": "1,2,3,4", "bbox-crs": "EPSG:9999"},
                                 {"bbox-crs": EPSG.format(4326)}, {"datetime": "yesterday"}, {"unknown": 1},
                                 {"households": "many"}, {"f": "xml"}, {"filter-lang": "cql2-text"}])
def test_bad_parameters_are_400_with_a_json_body(viewer, bad):
    r = viewer("/ogc/collections/parcels/items", **bad)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"]


def test_not_found_is_404_with_a_json_body(viewer):
    for path in ("/ogc/collections/nowhere", "/ogc/collections/nowhere/items", "/ogc/collections/parcels/items/0",
                 "/ogc/collections/parcels/items/abc", "/ogc/collections/blockers-nowhere/items",
                 "/ogc/collections/parcels/tiles/NoSuchTMS", "/ogc/collections/blockers-hsr/tiles",
                 "/ogc/collections/blockers-hsr/tiles/WebMercatorQuad/14/0/0",
                 "/ogc/collections/nowhere/tiles/WebMercatorQuad/14/0/0"):
        r = viewer(path)
        assert r.status_code == 404 and r.json()["detail"], path


def test_bbox_in_crs84_4326_and_the_working_crs(viewer, parcels):
    area = box(118.975, 30.645, 118.985, 30.655)  # lon/lat
    inside = hits(parcels["wgs"].values, parcels.index, area.buffer(-1e-6))
    near = hits(parcels["wgs"].values, parcels.index, area.buffer(1e-6))
    got = all_ids(viewer, "/ogc/collections/parcels/items", bbox="118.975,30.645,118.985,30.655")
    assert inside and inside <= got <= near
    latlon = all_ids(viewer, "/ogc/collections/parcels/items", bbox="30.645,118.975,30.655,118.985",
                     **{"bbox-crs": EPSG.format(4326)})
    assert latlon == got
    gk = reproject(area, TO_GK).envelope.buffer(-30, join_style="mitre")  # inside the lon/lat box
    x0, y0, x1, y1 = gk.bounds
    in_gk = all_ids(viewer, "/ogc/collections/parcels/items", bbox=f"{y0},{x0},{y1},{x1}",  # northing first
                    **{"bbox-crs": EPSG.format(4549)})
    assert in_gk == hits(parcels.geometry.values, parcels.index, gk)
    assert in_gk < got


def test_one_feature_and_personal_data_by_role(viewer, parcels):
    pid = int(parcels.index[7])
    real = parcels.loc[pid]
    as_viewer = viewer(f"/ogc/collections/parcels/items/{pid}")
    assert as_viewer.status_code == 200 and as_viewer.headers["content-type"] == "application/geo+json"
    feature = as_viewer.json()
    assert feature["id"] == pid and feature["properties"]["code"] == real["code"]
    assert feature["properties"]["owner_name"] == mask_name(real["owner_name"]) != real["owner_name"]
    assert real["owner_id_number"] not in json.dumps(feature)
    assert {x["rel"] for x in feature["links"]} >= {"self", "collection"}
    admin = viewer(f"/ogc/collections/parcels/items/{pid}", role="admin").json()
    assert admin["properties"]["owner_name"] == real["owner_name"]
    page = viewer("/ogc/collections/parcels/items", limit=1000).json()
    assert not {f["properties"]["owner_phone"] for f in page["features"]} & set(parcels["owner_phone"])


# ---------------------------------------------------------------------------------------------
# Part 2: crs, bbox-crs, Content-Crs


def test_crs_of_the_answer_with_axis_order(viewer, parcels):
    pid = int(parcels.index[11])
    stored = parcels.loc[pid].geometry
    default = viewer(f"/ogc/collections/parcels/items/{pid}")
    assert default.headers["content-crs"] == f"<{CRS84}>"
    assert shape(default.json()["geometry"]).equals_exact(reproject(stored, TO_WGS), tolerance=1e-6)
    for srid in (4326, 4490):  # latitude first, as the EPSG definition says
        r = viewer(f"/ogc/collections/parcels/items/{pid}", crs=EPSG.format(srid))
        assert r.headers["content-crs"] == f"<{EPSG.format(srid)}>"
        latlon = shapely.transform(shape(r.json()["geometry"]), lambda xy: xy[:, ::-1])
        assert latlon.equals_exact(reproject(stored, TO_WGS), tolerance=1e-6)
    r = viewer("/ogc/collections/parcels/items", crs="EPSG:4549", code=parcels.loc[pid, "code"])
    assert r.headers["content-crs"] == f"<{EPSG.format(4549)}>"
    northing_first = shape(r.json()["features"][0]["geometry"])
    assert shapely.transform(northing_first, lambda xy: xy[:, ::-1]).equals_exact(stored, tolerance=0.001)


# ---------------------------------------------------------------------------------------------
# Part 3: queryables, filter, filter-lang, filter-crs; equality query parameters


def test_queryables_json_schema(viewer):
    r = viewer("/ogc/collections/parcels/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    schema = r.json()
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"
    assert schema["$id"] == f"{BASE}/collections/parcels/queryables"
    props = schema["properties"]
    assert props["stage"]["type"] == "string" and "cleared" in props["stage"]["enum"]
    assert props["stage_since"] == {"title": "进入本阶段日期", "type": "string", "format": "date"}
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert "owner_name" not in props
    assert "owner_name" in viewer("/ogc/collections/parcels/queryables", role="admin").json()["properties"]
    for name in props:  # every queryable really filters
        if name != "geometry":
            assert viewer("/ogc/collections/parcels/items", limit=1, filter=f"{name} IS NULL").status_code == 200


def test_cql2_text_and_json_attribute_filters(viewer, parcels):
    def count(**params):
        r = viewer("/ogc/collections/parcels/items", limit=1, **params)
        assert r.status_code == 200, r.text
        return r.json()["numberMatched"]

    paid = int((parcels["stage"] == "paid").sum())
    assert count(filter="stage = 'paid'") == paid
    assert count(filter=json.dumps({"op": "=", "args": [{"property": "stage"}, "paid"]}),
                 **{"filter-lang": "cql2-json"}) == paid
    assert count(stage="paid") == paid
    assert count(stage=["paid", "signed"]) == int(parcels["stage"].isin(["paid", "signed"]).sum())
    expected = parcels[(parcels["kind"] == "house") & ((parcels["households"] >= 3) | parcels["holdout"])
                       & ~parcels["stage"].isin(["cleared", "demolished"])]
    assert count(filter="kind = 'house' AND (households >= 3 OR holdout = true) AND NOT stage IN "
                        "('cleared', 'demolished')") == len(expected)
    holdouts = int(parcels["holdout"].sum())
    assert holdouts > 0
    # GDAL's and desktop GIS's spelling of a boolean: 1/0, also as query parameters
    assert count(filter="holdout = 1") == count(filter="holdout = true") == count(holdout="1") == holdouts
    assert count(filter="holdout = 0") == count(holdout="false") == len(parcels) - holdouts
    assert viewer("/ogc/collections/parcels/items", filter="holdout = 2").status_code == 400
    assert count(filter="code LIKE 'NS-00001%'") == int(parcels["code"].str.startswith("NS-00001").sum())
    assert count(filter="floor_area_m2 BETWEEN 100 AND 200") == int(parcels["floor_area_m2"].between(100, 200).sum())
    assert count(filter="stage_since >= DATE('2026-01-01')") == int((parcels["stage_since"] >= date(2026, 1, 1)).sum())
    assert count(datetime="2026-01-01/..") == int((parcels["stage_since"] >= date(2026, 1, 1)).sum())
    assert count(filter="district_name = '西津'") == int((parcels["district_name"] == "西津").sum()) > 0
    assert count(filter="CASEI(district) = casei('XIJIN')") == int((parcels["district_name"] == "西津").sum())
    assert count(district_name="河沥溪", kind="land") == int(((parcels["district_name"] == "河沥溪")
                                                             & (parcels["kind"] == "land")).sum())
    injection = "code = 'x''; DROP TABLE parcels; --'"
    assert count(filter=injection) == 0 and count() == len(parcels)


def test_quotes_and_chinese_text_filter_exactly(viewer, engine, settings):
    owners = {"Q-OBRIEN-1": "O'Brien", "Q-OBRIEN-2": "O'Brien-Smith", "Q-CN-1": "欧阳·奥布莱恩", "Q-CN-2": "欧阳"}
    with engine.begin() as conn:
        for k, (code, owner) in enumerate(owners.items()):
            conn.execute(text(
                "INSERT INTO parcels (code, kind, district_id, owner_name, stage, geom) VALUES (:code, 'house', "
                "(SELECT min(id) FROM districts), :owner, 'surveyed', "
                "ST_Multi(ST_MakeEnvelope(:x, 3370000, :x + 20, 3370020, :srid)))"),
                {"code": code, "owner": owner, "x": 400000 + 40 * k, "srid": settings.srid})
    try:
        def owners_of(role="admin", **params):
            r = viewer("/ogc/collections/parcels/items", role=role, **params)
            assert r.status_code == 200, r.text
            return sorted(f["properties"]["owner_name"] for f in r.json()["features"])

        assert owners_of(filter="owner_name = 'O''Brien'") == ["O'Brien"]
        assert owners_of(filter="owner_name LIKE 'O''Brien%'") == ["O'Brien", "O'Brien-Smith"]
        assert owners_of(filter=json.dumps({"op": "=", "args": [{"property": "owner_name"}, "O'Brien"]}),
                         **{"filter-lang": "cql2-json"}) == ["O'Brien"]
        assert owners_of(owner_name="O'Brien") == ["O'Brien"]
        assert owners_of(filter="owner_name = '欧阳'") == ["欧阳"]
        assert owners_of(filter="owner_name LIKE '欧阳%'") == ["欧阳", "欧阳·奥布莱恩"]
        assert owners_of(filter="owner_name IN ('欧阳·奥布莱恩', 'O''Brien-Smith')") == ["O'Brien-Smith",
                                                                                   "欧阳·奥布莱恩"]
        assert owners_of(filter="code = 'Q-OBRIEN-1' OR code = 'Q-CN-1'") == ["O'Brien", "欧阳·奥布莱恩"]
        assert owners_of(role="viewer", filter="code LIKE 'Q-%'") == sorted(mask_name(o) for o in owners.values())
        # personal fields are not queryable for a viewer: no confirming a name by filtering on it
        for params in ({"filter": "owner_name = 'O''Brien'"}, {"owner_name": "O'Brien"}):
            assert viewer("/ogc/collections/parcels/items", **params).status_code == 422
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM parcels WHERE code LIKE 'Q-%'"))


def test_spatial_filter_with_a_project_line(viewer, demo_city, parcels):
    hsr = demo_city.projects.set_index("code").loc["hsr"]
    line = hsr["centerline"].geoms[0]
    wgs_line = reproject(line, TO_WGS)
    wkt = "LINESTRING(" + ", ".join(f"{x!r} {y!r}" for x, y in wgs_line.coords) + ")"
    crossed = hits(parcels.geometry.values, parcels.index, reproject(wgs_line, TO_GK))
    got = all_ids(viewer, "/ogc/collections/parcels/items", filter=f"S_INTERSECTS(geometry, {wkt})")
    assert crossed and got == crossed
    gk_wkt = "LINESTRING(" + ", ".join(f"{y!r} {x!r}" for x, y in line.coords) + ")"  # northing first
    assert all_ids(viewer, "/ogc/collections/parcels/items", filter=f"S_INTERSECTS(geometry, {gk_wkt})",
                   **{"filter-crs": EPSG.format(4549)}) == hits(parcels.geometry.values, parcels.index, line)
    blocking = all_ids(viewer, "/ogc/collections/parcels/items",
                       filter=f"S_INTERSECTS(geometry, {wkt}) AND stage <> 'cleared'")
    assert blocking == {i for i in crossed if parcels.loc[i, "stage"] != "cleared"}
    bbox_json = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [118.975, 30.645, 118.985, 30.655]}]}
    assert all_ids(viewer, "/ogc/collections/parcels/items", filter=json.dumps(bbox_json),
                   **{"filter-lang": "cql2-json"}) == all_ids(viewer, "/ogc/collections/parcels/items",
                                                               bbox="118.975,30.645,118.985,30.655")


def test_spatial_functions_within_disjoint_contains(viewer, parcels):
    ring = [(118.97, 30.64), (118.99, 30.64), (118.99, 30.66), (118.975, 30.665), (118.97, 30.64)]
    wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in ring) + "))"
    area = reproject(shapely.Polygon(ring), TO_GK)  # the server transforms the vertices, as here
    geoms = parcels.geometry.values
    within = {int(i) for i in parcels.index[shapely.within(geoms, area)]}
    got = all_ids(viewer, "/ogc/collections/parcels/items", filter=f"S_WITHIN(geometry, {wkt})")
    assert within and got == within
    disjoint = viewer("/ogc/collections/parcels/items", limit=1, filter=f"S_DISJOINT(geometry, {wkt})").json()
    assert disjoint["numberMatched"] == int((~shapely.intersects(geoms, area)).sum())
    pid = int(parcels.index[42])
    x, y = reproject(shapely.point_on_surface(parcels.loc[pid].geometry), TO_WGS).coords[0]
    point = shapely.Point(TO_GK.transform(x, y))
    expected = {int(i) for i in parcels.index[shapely.contains(geoms, point)]}
    assert pid in expected
    assert all_ids(viewer, "/ogc/collections/parcels/items", filter=f"S_CONTAINS(geometry, POINT({x!r} {y!r}))") \
        == expected


@pytest.mark.parametrize("bad, status", [
    ("owner = 'x'", 422), ("nonsense = ", 400), ("stage = 'paid' AND", 400),
    ("T_AFTER(stage_since, DATE('2024-01-01'))", 400),
    ("(" * 3000 + "stage = 'paid'" + ")" * 3000, 400),  # cql2-rs would overflow its stack: refused before
    ("NOT " * 300 + "stage = 'paid'", 400),
    ("households = 'three'", 400), ("S_INTERSECTS(stage, POINT(1 2))", 400), ("stage > geometry", 400),
])
def test_filter_errors(viewer, bad, status):
    r = viewer("/ogc/collections/parcels/items", filter=bad)
    assert r.status_code == status and r.json()["detail"], r.text
    assert viewer("/ogc/collections/parcels/items", filter="{", **{"filter-lang": "cql2-json"}).status_code == 400


def test_blocker_collections_match_shapely(viewer, demo_city, parcels):
    geoms = parcels.geometry.values
    for _, project in demo_city.projects.iterrows():
        overlap = shapely.area(shapely.intersection(geoms, project["footprint"]))
        keep = (overlap >= MIN_M2) & (overlap / shapely.area(geoms) >= MIN_SHARE) & (parcels["stage"] != "cleared")
        expected = {int(i) for i in parcels.index[keep.to_numpy()]}
        got = all_ids(viewer, f"/ogc/collections/blockers-{project['code']}/items")
        assert expected and got == expected, project["code"]
    some = viewer("/ogc/collections/blockers-hsr/items", limit=5).json()["features"]
    assert all(0 < f["properties"]["share"] <= 1 and f["properties"]["stage"] != "cleared" for f in some)


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_representations(viewer, client, role_headers):
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/parcels",
                 "/ogc/collections/parcels/items", "/ogc/collections/parcels/items/1",
                 "/ogc/collections/parcels/queryables"):
        r = viewer(path, f="html")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert r.text.startswith("<!doctype html>")
    browser = client.get("/ogc/collections/parcels/items", headers=role_headers["viewer"] | {"Accept": "text/html"})
    assert browser.headers["content-type"].startswith("text/html") and browser.text.count("<tr>") == 101
    assert "<script" not in viewer("/ogc/collections/parcels/items", f="html", code="<script>").text
    # People read these pages: Chinese titles and labelled values, the codes stay in the JSON
    page = viewer("/ogc/collections/parcels/items", f="html", stage="signed", limit=3).text
    head = page[page.index("<thead>"):page.index("</thead>")]
    assert "地块编号" in head and "阶段" in head and ">stage<" not in head and ">code<" not in head
    body = page[page.index("<tbody>"):]
    assert body.count("<td>签约</td>") == 3 and "<td>signed</td>" not in body
    one = viewer("/ogc/collections/parcels/items/1", f="html").text
    assert "<td>阶段</td>" in one and ("<td>是</td>" in one or "<td>否</td>" in one)


# ---------------------------------------------------------------------------------------------
# OGC API - Tiles


def test_tiles_tilematrixset_tilesets_tilejson(viewer):
    sets = viewer("/ogc/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    tms = viewer("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    mercator = "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert tms["crs"] in (mercator, {"uri": mercator})
    assert tms["tileMatrices"][14]["matrixWidth"] == 2 ** 14
    for cid in ("parcels", "projects", "districts"):
        tilesets = viewer(f"/ogc/collections/{cid}/tiles").json()["tilesets"]
        template = next(x["href"] for x in tilesets[0]["links"] if x["rel"] == "item")
        assert template.endswith(f"/ogc/collections/{cid}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}")
        meta = viewer(f"/ogc/collections/{cid}/tiles/WebMercatorQuad").json()
        assert meta["dataType"] == "vector" and meta["layers"][0]["id"] == cid
        tj = viewer(f"/ogc/collections/{cid}/tiles/WebMercatorQuad/tilejson.json").json()
        assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith("/{z}/{y}/{x}")


def test_vector_tile_row_before_column_with_feature_ids(viewer, parcels):
    z = 16
    lon, lat = parcels.loc[parcels.index[100], "wgs"].centroid.coords[0]
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.log(np.tan(np.radians(lat)) + 1 / np.cos(np.radians(lat))) / np.pi) / 2 * n)
    r = viewer(f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.content == viewer(f"/tiles/parcels/{z}/{x}/{y}.mvt").content  # the map's tile, same bytes
    layer = mapbox_vector_tile.decode(r.content)["parcels"]
    got = {f["id"] for f in layer["features"]}
    size = 2 * 20037508.342789244 / n
    tile = box(-20037508.342789244 + x * size, 20037508.342789244 - (y + 1) * size,
               -20037508.342789244 + (x + 1) * size, 20037508.342789244 - y * size)
    inside = hits(reproject(parcels.geometry.values, TO_MERC), parcels.index, tile.buffer(-1))
    assert parcels.index[100] in got and inside <= got
    assert viewer(f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{x + 5000}/{y}").status_code in (204, 404)
    assert viewer(f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{n}/{x}").status_code == 404
    assert viewer("/ogc/collections/parcels/tiles/WebMercatorQuad/23/0/0").status_code == 404
