"""Checks and reports as HTML pages with their maps: each check's page lists the flagged parcels (Chinese headers and
values), draws them on an offline Leaflet map and links every download; the reports are pages with their maps. In
Chromium with the outside network blocked: the pages render their maps with no console error, and the header's
links resolve."""

from __future__ import annotations

import html
import json
import re
from datetime import date

import pytest
from playwright.sync_api import sync_playwright

from gis import checks
from tests.conftest import live_server
from tests.downloads import FILE_FORMATS, code_of, read_download
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, Visit
from tests.test_workbench import LINK, header_of

DAY = "2026-11-20"
READY = "() => document.body.dataset.ready === 'true'"


def first_position(coordinates: list) -> list[float]:
    """A GeoJSON geometry's first position, whatever its type (a post's point, a parcel's rings)."""
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    return coordinates[:2]


def data_block(page: str, name: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', page, re.DOTALL)
    assert found, name
    return json.loads(found[1].replace("<\\/", "</"))


@pytest.mark.parametrize("check", list(checks.CHECKS.values()), ids=lambda c: c.slug)
def test_each_check_has_a_page_with_its_parcels_its_map_and_its_downloads(client, role_headers, check):
    h = role_headers["inspector"]
    path = f"/checks/{check.slug}"
    answer = client.get(path, params={"as_of": DAY}, headers=h).json()
    r = client.get(path, params={"as_of": DAY, "format": "html"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    header_of(page)  # the site's header, once
    assert html.escape(answer["title"]) in page and html.escape(answer["rule"]) in page
    assert f"<strong data-count>{answer['count']}</strong>" in page
    # the table: Chinese headers, one row per finding in the JSON's order (parcels by code; a command post's gaps
    # have no parcel)
    heads = re.findall(r"<th>([^<]+)</th>", page)
    assert all(re.search(r"[\u4e00-\u9fff]", h_) for h_ in heads), heads
    codes = [html.unescape(c) for c in re.findall(r'<tr data-code="([^"]*)">', page)]
    assert codes == [f.get("code") or "" for f in answer["findings"]]
    assert heads[0] == ("地块编号" if answer["findings"] and "code" in answer["findings"][0] else heads[0])
    # no stage or kind code shown raw: values are the Chinese labels
    for f in answer["findings"]:
        if f.get("stage"):
            assert f">{f['stage']}<" not in page
    # the map: the very parcels the GeoJSON download holds, in WGS 84
    download = client.get(path, params={"as_of": DAY, "format": "geojson"}, headers=h).json()
    shown = data_block(page, "findings")
    def keys(features: list[dict]) -> list[str]:  # the parcel's code, or where a post lies (to about 100 m)
        return sorted(f["properties"].get("code")
                      or str([round(v, 3) for v in first_position(f["geometry"]["coordinates"])]) for f in features)

    assert keys(shown["features"]) == keys(download["features"])
    for f in shown["features"]:
        lon, lat = first_position(f["geometry"]["coordinates"])
        assert 118 < lon < 120 and 30 < lat < 31.5  # the demo city, in degrees
    assert data_block(page, "districts")["features"]  # the districts under them
    assert "/static/vendor/leaflet/dist/leaflet.js" in page and "https://" not in page and "http://" not in page
    # every download link opens
    links = [(html.unescape(u), f) for u, f in re.findall(r'<a href="([^"]+)" data-format="([a-z]+)"', page)]
    assert sorted(fmt for _u, fmt in links) == sorted(["xlsx", "csv", "geojson", "gpkg", "shp", "kml", "json"])
    for url, fmt in links:
        if fmt in ("csv", "json"):
            got = client.get(url, headers=h)
            assert got.status_code == 200, url
    assert client.get(path, params={"format": "html"}, headers=role_headers["viewer"]).status_code == 403


@pytest.fixture(scope="module")
def base_url(settings, demo_city, role_tokens):
    from api.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def busiest_check(client, h) -> str:
    overview = client.get("/checks", params={"as_of": DAY}, headers=h).json()["checks"]
    return max(overview, key=lambda c: c["count"])["path"]


def test_a_check_page_and_a_report_page_render_their_maps_offline(browser, base_url, client, role_headers,
                                                                 role_tokens):
    path = busiest_check(client, role_headers["inspector"])
    expected = client.get(path, params={"as_of": DAY, "format": "geojson"}, headers=role_headers["inspector"]).json()
    assert expected["features"], "the demo city flags parcels in its busiest check"
    check_page = Visit(browser, base_url, role_tokens["inspector"], f"{path}?as_of={DAY}&format=html", True,
                       "check-page", ready=READY)
    try:
        check_page.check_offline(base_url)
        drawn = check_page.page.evaluate("() => window.checkMap.count")
        assert drawn == len(expected["features"])
        assert check_page.page.locator("#map path.leaflet-interactive").count() >= drawn  # painted as SVG
        assert check_page.page.locator(".legend").text_content().count("问题地块") == 1
        header_links = check_page.page.locator("header.pb-site-header nav a").evaluate_all(
            "links => links.map(a => a.href)")
        for href in header_links:  # a report is drawn on request (maps and charts): slow on a busy machine
            response = check_page.page.goto(href, wait_until="commit", timeout=180_000)
            assert response.status < 400, href
        assert not check_page.errors and not check_page.aborted
    finally:
        check_page.close()
    # opened from a quick page first: Visit's own navigation waits 30 s, and a report is drawn on request
    report = Visit(browser, base_url, role_tokens["viewer"], "/public/", True, "report-page")
    try:
        report.requests.clear()
        response = report.page.goto(f"{base_url}/reports/weekly?date={DAY}", wait_until="networkidle",
                                    timeout=180_000)
        report.status = response.status
        report.check_offline(base_url)
        maps = report.page.locator("img[src^='data:image/png']")
        assert maps.count() >= 1
        sizes = maps.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        assert all(w > 100 and h > 100 for w, h in sizes), sizes  # decoded and drawn, not broken images
        assert report.page.locator("header.pb-site-header").count() == 1
    finally:
        report.close()


def test_the_landing_page_and_the_header_reach_checks_and_reports(client, role_headers):
    h = role_headers["inspector"]
    landing = client.get("/", headers=h).text
    for href in ("/reports/daily", "/reports/weekly", "/checks?format=html"):
        assert f'href="{html.escape(href)}"' in landing or f'href="{href}"' in landing, href
    links = {key: html.unescape(href) for href, key in LINK.findall(header_of(landing))}
    assert links["checks"] == "/checks?format=html" and links["reports"] == "/reports/daily"
    overview = client.get(links["checks"], headers=h).text
    pages = [html.unescape(u) for u in re.findall(r'<a href="([^"]+)" data-page>', overview)]
    assert len(pages) == len(checks.CHECKS)
    assert all(client.get(u, headers=h).status_code == 200 for u in pages)
    for project in client.get("/projects", headers=h).json()["projects"]:  # each project's battle map
        assert f'href="/projects/{project["id"]}/map.pdf"' in landing
    assert "/checks?format=html" not in client.get("/", headers=role_headers["viewer"]).text.split("</header>")[1]


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_every_check_downloads_in_every_format_with_the_jsons_parcels(client, engine, settings, role_headers, fmt,
                                                                    tmp_path):
    """Each check's list re-read as its users' tools read it (csv with BOM, openpyxl, pyogrio): the same parcels as
    the JSON, and its first numeric column's values in the spreadsheet and in the GIS fields."""
    h = role_headers["inspector"]
    flagged = 0
    for check in checks.CHECKS.values():
        path = f"/checks/{check.slug}"
        answer = client.get(path, params={"as_of": DAY}, headers=h).json()
        r = client.get(path, params={"as_of": DAY, "format": fmt}, headers=h)
        assert r.status_code == 200, (path, r.text[:200])
        folder = tmp_path / check.slug
        folder.mkdir()
        if not answer["findings"]:
            continue
        flagged += 1
        rows = read_download(fmt, r.content, folder)
        assert len(rows) == len(answer["findings"]), path
        if "code" in answer["findings"][0]:  # parcels (a command post's gaps have none)
            assert sorted(code_of(row, fmt) for row in rows) == sorted(f["code"] for f in answer["findings"]), path
        with engine.connect() as conn:
            columns = check.run(conn, check.params(), as_of=date.fromisoformat(DAY), tz=settings.city_timezone).columns
        numeric = next((c for c in columns if c.type in ("m2", "mu", "float", "int")
                        and c.key in answer["findings"][0]), None)
        if numeric is None or fmt == "kml":
            continue
        key = numeric.label if fmt in ("csv", "xlsx") else numeric.shp_name if fmt == "shp" else numeric.key
        got = sorted(float(row[key]) for row in rows if row[key] not in (None, "") and row[key] == row[key])  # not NaN
        want = sorted(float(f[numeric.key]) for f in answer["findings"] if f[numeric.key] is not None)
        assert got == pytest.approx(want, abs=0.01), (path, key)
    assert flagged >= 3  # the demo city plants findings for most checks

