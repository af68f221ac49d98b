"""The workbench's API and the site's header, over the demo city (TestClient; the browser tests are in
tests/test_workbench_browser.py).

- ``GET /parcels/search``: by code, district and owner, against the generated city's own table; owners only for
  roles that may see personal data; LIKE wildcards typed by a user are plain characters.
- ``POST /overlaps/crossings``: the drawn line's length and the red lines it crosses, against shapely on the
  projects' footprints.
- An invalid drawn geometry: 422 naming where (``where``) and the place (``point``).
- The header: on every page, each of its links opens for the role it is shown to; public pages get the public
  variant.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from tests.conftest import bearer

# Across 新安路's first (nearly east-west) segment, north to south.
CROSSING_LINE = {"type": "LineString", "coordinates": [[118.972, 30.618], [118.972, 30.605]]}
# A polygon crossing itself at (118.975, 30.610).
BOW_TIE = {"type": "Polygon", "coordinates": [[[118.97, 30.605], [118.98, 30.615], [118.98, 30.605],
                                                [118.97, 30.615], [118.97, 30.605]]]}


def to_working(settings, geometry: dict):
    t = Transformer.from_crs(4326, settings.srid, always_xy=True)
    return shapely.transform(shape(geometry), lambda xy: np.column_stack(t.transform(*xy.T)))


# ---------------------------------------------------------------------------------------------
# Search


def test_search_by_code_and_district_matches_the_city(client, role_headers, demo_city):
    parcels = demo_city.parcels
    codes = parcels["code"]
    answer = client.get("/parcels/search", params={"code": "xj-00001", "limit": 200},
                        headers=role_headers["viewer"]).json()
    expected = sorted(codes[codes.str.contains("XJ-00001", case=False, regex=False)])
    assert answer["total"] == len(expected) > 1
    assert [p["code"] for p in answer["items"]] == expected

    district = demo_city.districts.iloc[1]
    in_district = parcels[parcels["district_id"] == district["id"]]
    for ref in (district["code"], district["name"]):
        answer = client.get("/parcels/search", params={"district": ref, "limit": 5},
                            headers=role_headers["viewer"]).json()
        assert answer["total"] == len(in_district)
        assert [p["code"] for p in answer["items"]] == sorted(in_district["code"])[:5]
    both = client.get("/parcels/search", params={"district": district["code"], "code": "00002"},
                      headers=role_headers["viewer"]).json()
    assert both["total"] == int(in_district["code"].str.contains("00002", regex=False).sum())


def test_search_by_owner_is_for_roles_that_see_personal_data(client, role_headers, demo_city):
    owner = demo_city.parcels["owner_name"].dropna().iloc[7]
    part = owner[1:]
    for role in ("viewer", "district_editor"):
        refused = client.get("/parcels/search", params={"owner": part}, headers=role_headers[role])
        assert refused.status_code == 403 and refused.json()["where"] == "owner"
    answer = client.get("/parcels/search", params={"owner": part, "limit": 200}, headers=role_headers["inspector"])
    expected = demo_city.parcels[demo_city.parcels["owner_name"].fillna("").str.contains(part, regex=False)]
    assert answer.json()["total"] == len(expected) >= 1
    assert {p["owner_name"] for p in answer.json()["items"]} <= set(expected["owner_name"])
    # a viewer's results show owners masked
    masked = client.get("/parcels/search", params={"code": expected["code"].iloc[0]},
                        headers=role_headers["viewer"]).json()["items"][0]
    assert masked["owner_name"] != owner and "*" in masked["owner_name"]


@pytest.mark.parametrize(("params", "where"), [
    ({}, "code"), ({"code": "  "}, "code"), ({"district": "nowhere"}, "district"), ({"code": "X", "limit": 0}, "limit"),
    ({"code": "X", "cod": "Y"}, "cod"),
])
def test_a_search_without_criteria_or_with_a_bad_one_is_a_422(client, params, where):
    r = client.get("/parcels/search", params=params)
    assert r.status_code == 422, r.text
    assert where in r.text


def test_wildcards_typed_in_a_search_are_plain_characters(client):
    for text in ("%", "_", "X_-"):
        assert client.get("/parcels/search", params={"code": text}).json()["total"] == 0


# ---------------------------------------------------------------------------------------------
# Crossings


def test_crossings_name_the_red_lines_the_line_crosses_and_its_length(client, settings, role_headers):
    answer = client.post("/overlaps/crossings", json={"geometry": CROSSING_LINE}, headers=role_headers["viewer"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    line = to_working(settings, CROSSING_LINE)
    assert body["type"] == "LineString"
    assert body["length_m"] == pytest.approx(line.length, abs=0.05) and 1400 < body["length_m"] < 1500
    projects = client.get("/projects", params={"geometry": "true"}).json()["projects"]
    expected = {p["code"]: line.intersection(to_working(settings, p["footprint"])).length
                for p in projects if line.intersects(to_working(settings, p["footprint"]))}
    got = {p["code"]: p for p in body["projects"]}
    assert set(got) == set(expected) and "xinan_road" in got
    for code, inside in expected.items():
        assert got[code]["inside_m"] == pytest.approx(inside, abs=0.05)
    xinan = got["xinan_road"]
    assert 40 <= xinan["inside_m"] < 41  # a 40 m corridor crossed almost square
    assert len(xinan["crossing_points"]) == 2  # in through one edge of the red line, out through the other
    for lon, lat in xinan["crossing_points"]:
        assert lon == pytest.approx(118.972, abs=1e-6) and 30.605 < lat < 30.618


def test_crossings_of_a_polygon_give_its_area_and_the_shared_area(client, settings, demo_city):
    square = {"type": "Polygon", "coordinates": [[[118.97, 30.605], [118.975, 30.605], [118.975, 30.615],
                                                   [118.97, 30.615], [118.97, 30.605]]]}
    body = client.post("/overlaps/crossings", json={"geometry": square}).json()
    poly = to_working(settings, square)
    assert body["area_m2"] == pytest.approx(poly.area, rel=1e-6)
    xinan = next(p for p in body["projects"] if p["code"] == "xinan_road")
    footprint = demo_city.projects.set_index("code").loc["xinan_road", "footprint"]  # as generated, in metres
    assert xinan["overlap_m2"] == pytest.approx(poly.intersection(footprint).area, rel=1e-6)


def test_a_line_crossing_nothing_crosses_nothing(client):
    far = {"type": "LineString", "coordinates": [[118.90, 30.70], [118.901, 30.701]]}
    body = client.post("/overlaps/crossings", json={"geometry": far}).json()
    assert body["projects"] == [] and body["length_m"] > 100


# ---------------------------------------------------------------------------------------------
# An invalid drawing says where


@pytest.mark.parametrize("route", ["/overlaps", "/overlaps/crossings", "/overlaps?format=xlsx"])
def test_an_invalid_polygon_is_a_422_with_the_place(client, route):
    r = client.post(route, json={"geometry": BOW_TIE})
    assert r.status_code == 422
    body = r.json()
    assert body["where"] == "geometry.coordinates" and "Self-intersection" in body["detail"]
    assert body["point"] == pytest.approx([118.975, 30.61], abs=1e-9)


def test_an_invalid_candidate_names_its_place_in_a_comparison(client):
    line = {"type": "LineString", "coordinates": CROSSING_LINE["coordinates"]}
    r = client.post("/overlaps/compare", json={"candidates": [
        {"name": "甲", "geometry": line, "width_m": 30}, {"name": "乙", "geometry": BOW_TIE}]})
    assert r.status_code == 422
    assert r.json()["where"] == "candidates[1].geometry.coordinates"
    assert r.json()["point"] == pytest.approx([118.975, 30.61], abs=1e-9)


# ---------------------------------------------------------------------------------------------
# The site's header

HEADER = re.compile(r'<header class="pb-site-header".*?</header>', re.DOTALL)
LINK = re.compile(r'<a href="([^"]+)" data-nav="([a-z]+)"')


def header_of(html: str) -> str:
    found = HEADER.findall(html)
    assert len(found) == 1, "one header on the page"
    return found[0]


def signed_in_pages(client) -> list[str]:
    project_id = client.get("/projects").json()["projects"][0]["id"]
    return ["/", "/workbench", f"/projects/{project_id}/map", "/districts/map",
            f"/projects/{project_id}/revisions/1/diff/1/map", "/reports/daily", "/docs", "/ogc?f=html",
            "/findings?format=html", "/contest?format=html",
            "/ogc/collections?f=html", "/ogc/collections/parcels/items?f=html&limit=2"]


@pytest.mark.parametrize("role", ["viewer", "district_editor", "inspector", "admin"])
def test_every_page_has_the_header_and_its_links_open(client, role_headers, role_tokens, role):
    h = role_headers[role]
    pages = signed_in_pages(client) + (["/admin"] if role == "admin" else [])
    opened: dict[str, int] = {}
    for page in pages:
        r = client.get(page, headers=h)
        assert r.status_code == 200, (page, r.status_code)
        header = header_of(r.text)
        assert f"test-{role}" in header, page  # who is signed in
        assert '<form method="post" action="/logout"' in header and "退出登录" in header
        assert 'href="/logout"' not in r.text
        links = {key: href for href, key in LINK.findall(header)}
        expected = {"projects", "maps", "workbench", "reports", "findings", "contest", "resettlement", "public", "docs"}
        expected |= {"checks"} if role in ("inspector", "admin") else set()
        expected |= {"admin"} if role == "admin" else set()
        assert set(links) == expected, (page, links)
        for href in links.values():
            if href not in opened:
                opened[href] = client.get(href, headers=h).status_code
    assert all(status < 400 for status in opened.values()), opened


def test_public_pages_have_the_public_header(anon_client, client):
    project_id = client.get("/projects").json()["projects"][0]["id"]
    for page in ("/public/", f"/public/projects/{project_id}/map", "/docs", "/login?next=/workbench"):
        r = anon_client.get(page)
        assert r.status_code == 200, page
        header = header_of(r.text)
        assert "退出登录" not in header and "/logout" not in header and "pb-user" not in header
        links = {key: href for href, key in LINK.findall(header)}
        assert set(links) == {"public", "docs", "login"}
        assert all(anon_client.get(href).status_code < 400 for href in links.values())
    index = anon_client.get("/public/").text
    for p in client.get("/projects").json()["projects"]:
        assert f'href="/public/projects/{p["id"]}/map"' in index and p["name"] in index


def test_a_signed_in_caller_on_a_public_page_still_gets_the_public_header(client, role_tokens):
    project_id = client.get("/projects").json()["projects"][0]["id"]
    header = header_of(client.get(f"/public/projects/{project_id}/map", headers=bearer(role_tokens["admin"])).text)
    assert "退出登录" not in header


def test_the_landing_page_links_every_kind_of_page(client):
    html = client.get("/").text
    for href in ("/districts/map", "/workbench", "/reports/daily", "/reports/weekly", "/public/", "/docs"):
        assert f'href="{href}"' in html, href
    for p in client.get("/projects").json()["projects"]:
        assert f'href="/public/projects/{p["id"]}/map"' in html


def test_the_checks_page_lists_each_check_with_its_count_and_its_lists(client, role_headers):
    h = role_headers["inspector"]
    overview = client.get("/checks", headers=h).json()
    r = client.get("/checks", params={"format": "html"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    header_of(r.text)
    rows = re.findall(r'<tr data-check="([^"]+)"><td><a href="([^"]+)" data-page>([^<]+)</a></td>'
                      r'<td class="n">(\d+)</td>(.*?)</tr>', r.text, re.DOTALL)
    assert [(name, title, int(count)) for name, _page, title, count, _ in rows] == [
        (c["check"], c["title"], c["count"]) for c in overview["checks"]]
    for i, (_name, page, _title, count, rest) in enumerate(rows):
        assert client.get(page.replace("&amp;", "&"), headers=h).status_code == 200  # the check's own page
        links = [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', rest)]
        assert len(links) == 7
        for href in (links if i == 0 else [links[0], links[-1]]):  # every format of one check, two of the rest
            got = client.get(href, headers=h)
            assert got.status_code == 200, (href, got.text[:200])
        assert client.get(links[-1], headers=h).json()["count"] == int(count)
    assert client.get("/checks", params={"format": "html"}, headers=role_headers["viewer"]).status_code == 403
