"""The map pages in a real headless Chromium (Debian's), served by uvicorn on the loopback interface.

Each page is loaded twice: once as it is, once with every request outside the service aborted. Both
times no request may leave the service (the browser's own log of requests), no console error may
appear, and the map must draw what it shows (SVG paths in the stage colours, tiles of parcels).
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from gis.maps.district_map import CLASS_COLOURS, class_colour
from gis.maps.page import STAGE_COLOURS
from tests.conftest import live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def base_url(settings, demo_city, role_tokens):
    from api.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url):  # closed before the server stops, so no keep-alive connection holds the server up
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    """One page load with everything the browser did: requests, failures, console errors."""

    def __init__(self, browser, base_url: str, token: str, path: str, block_outside: bool, name: str,
                 ready: str | None = None) -> None:
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.aborted: list[str] = []
        self.tile_statuses: list[int] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           extra_http_headers={"Authorization": f"Bearer {token}"})
        if block_outside:
            def guard(route) -> None:
                if route.request.url.startswith(base_url + "/"):
                    route.continue_()
                else:
                    self.aborted.append(route.request.url)
                    route.abort()
            self.context.route("**/*", guard)
        page = self.context.new_page()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("response", lambda r: self.tile_statuses.append(r.status) if "/tiles/" in r.url else None)
        response = page.goto(base_url + path, wait_until="networkidle")
        self.status = response.status
        self.page = page
        # ``ready`` is a function ("() => ..."): Playwright calls it without eval, which the pages' CSP forbids.
        if ready:  # drawing can finish after the last response (vector tiles are decoded, then painted)
            page.wait_for_function(ready, timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}{'-blocked' if block_outside else ''}.png"))

    def check_offline(self, base_url: str) -> None:
        assert self.status == 200
        assert self.requests, "the browser logged no request"
        outside = [u for u in self.requests if not u.startswith(base_url + "/") and not u.startswith("data:")]
        assert not outside, f"requests left the service: {outside}"
        assert not self.aborted
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"console errors: {self.errors}"

    def path_fills(self, selector: str) -> Counter:
        return Counter(self.page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('fill'))"))

    def close(self) -> None:
        self.context.close()


# Pixels painted on the vector-tile canvases (every parcel of the city, lightly coloured by stage).
PAINTED_TILE_PIXELS = """() => Array.from(document.querySelectorAll('.leaflet-tile-pane canvas')).reduce((n, c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n; }, 0)"""


@pytest.fixture(scope="module")
def xinan(client) -> dict:
    project = next(p for p in client.get("/projects").json()["projects"] if p["code"] == "xinan_road")
    blockers = client.get(f"/projects/{project['id']}/blockers?limit=10000").json()["items"]
    return project | {"stages": Counter(b["stage"] for b in blockers), "total": len(blockers)}


@pytest.mark.parametrize("block_outside", [False, True], ids=["open", "outside-blocked"])
def test_project_map_in_chromium(browser, base_url, role_tokens, xinan, block_outside):
    visit = Visit(browser, base_url, role_tokens["viewer"], f"/projects/{xinan['id']}/map", block_outside,
                  "project-map", ready=f"() => document.body.getAttribute('data-blockers') === '{xinan['total']}' "
                                       f"&& ({PAINTED_TILE_PIXELS})() > 10000")
    try:
        visit.check_offline(base_url)
        fills = visit.path_fills(".leaflet-blockers-pane path")
        colour_stage = {c: s for s, c in STAGE_COLOURS.items()}
        drawn = Counter({colour_stage[c]: n for c, n in fills.items() if c in colour_stage})
        assert sum(fills.values()) == xinan["total"] > 100
        assert drawn == xinan["stages"]
        rings = visit.page.locator(".leaflet-holdouts-pane path").count()
        assert rings == xinan["holdouts"] > 0
        # Every parcel of the city arrives as vector tiles, drawn on canvas.
        assert 200 in visit.tile_statuses and all(s in (200, 204) for s in visit.tile_statuses)
        assert visit.page.evaluate(PAINTED_TILE_PIXELS) > 10000
        assert visit.page.locator(".leaflet-control-scale").count() == 1
        legend = visit.page.locator(".pb-legend").inner_text()
        assert "征迁阶段" in legend and "钉子户" in legend
        # A click on a blocker opens its popup with the Chinese field names and a masked owner.
        visit.page.locator(".leaflet-blockers-pane path").first.dispatch_event("click")
        popup = visit.page.locator(".leaflet-popup-content").inner_text()
        assert "编号" in popup and "权利人" in popup and "*" in popup
    finally:
        visit.close()


@pytest.mark.parametrize("block_outside", [False, True], ids=["open", "outside-blocked"])
def test_district_map_in_chromium(browser, base_url, role_tokens, client, block_outside):
    visit = Visit(browser, base_url, role_tokens["viewer"], "/districts/map", block_outside, "district-map")
    try:
        visit.check_offline(base_url)
        progress = client.get("/districts/progress").json()["districts"]
        expected = Counter(class_colour(d["percent_cleared"]) for d in progress)
        fills = visit.path_fills(".leaflet-overlay-pane path")
        assert Counter({c: n for c, n in fills.items() if c in CLASS_COLOURS}) == expected
        assert "已交地比例" in visit.page.locator(".pb-legend").inner_text()
        # A click on a district opens its figures.
        order = visit.page.eval_on_selector_all(".leaflet-overlay-pane path",
                                                "els => els.map(e => e.getAttribute('fill'))")
        first = next(i for i, fill in enumerate(order) if fill in CLASS_COLOURS)
        visit.page.locator(".leaflet-overlay-pane path").nth(first).dispatch_event("click")
        popup = visit.page.locator(".leaflet-popup-content").inner_text()
        assert "排名" in popup and "已交地" in popup
    finally:
        visit.close()


@pytest.mark.parametrize("block_outside", [False, True], ids=["open", "outside-blocked"])
def test_landing_page_in_chromium(browser, base_url, role_tokens, client, block_outside):
    visit = Visit(browser, base_url, role_tokens["viewer"], "/", block_outside, "landing")
    try:
        visit.check_offline(base_url)
        projects = client.get("/projects").json()["projects"]
        bars = visit.page.locator("[role=progressbar]")
        assert bars.count() == len(projects)
        for i, p in enumerate(projects):
            width = bars.nth(i).locator("div").evaluate("e => e.getBoundingClientRect().width")
            full = bars.nth(i).evaluate("e => e.getBoundingClientRect().width")
            assert width / full == pytest.approx((p["percent_cleared"] or 0) / 100, abs=0.01)
        links = visit.page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
        assert {f"/projects/{p['id']}/map" for p in projects} <= set(links)
        assert "/districts/map" in links and "/docs" in links
        # Following a link keeps the browser inside the service.
        visit.page.click(f"a[href='/projects/{projects[0]['id']}/map']")
        visit.page.wait_for_load_state("networkidle")
        assert re.search(r"/projects/\d+/map$", visit.page.url)
        visit.check_offline(base_url)
    finally:
        visit.close()


def test_api_docs_render_offline(browser, base_url, role_tokens, client):
    """Swagger UI from the pinned npm package: every operation of the OpenAPI document is listed. Swagger UI 5.3x
    draws only the operations near the window (a virtualised list), so the page is scrolled through to the end."""
    spec = client.get("/openapi.json").json()
    operations = {op["operationId"] for item in spec["paths"].values() for method, op in item.items()
                  if method in {"get", "post", "put", "patch", "delete"}}
    visit = Visit(browser, base_url, role_tokens["viewer"], "/docs", True, "api-docs",
                  ready="() => document.querySelectorAll('.opblock').length > 0")
    try:
        visit.check_offline(base_url)
        listed: set[str] = set()
        while True:
            listed |= set(visit.page.evaluate("() => Array.from(document.querySelectorAll('.opblock'), e => e.id)"))
            before = visit.page.evaluate("() => window.scrollY")
            visit.page.mouse.wheel(0, 500)
            visit.page.wait_for_timeout(150)
            if visit.page.evaluate("() => window.scrollY") == before:
                break
        # Swagger UI's element ids: operations-<tag>-<operationId>
        assert {op for op in operations if not any(i.endswith(f"-{op}") for i in listed)} == set()
        assert len(listed) == len(operations)
        assert any("/static/vendor/swagger-ui-dist/" in u for u in visit.requests)
        assert not visit.errors
    finally:
        visit.close()


# The page's controls (zoom, scale, title, layer list, legend, attribution) and the project line's box, in pixels.
CONTROLS_AND_LINE = """() => {
    const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    return {controls: Array.from(document.querySelectorAll('.leaflet-control')).map(e => [e.className, box(e)]),
            line: Array.from(document.querySelectorAll('.leaflet-footprint-pane path')).map(box)}; }"""


@pytest.mark.parametrize("viewport", [(1280, 900), (1000, 640), (1600, 760)])
@pytest.mark.parametrize("code", ["hsr", "xinan_road", "devzone"])
def test_no_control_covers_the_project_line(browser, base_url, role_tokens, client, code, viewport):
    """Legends and layer controls never cover the red line: the map is fitted with the line's whole extent clear
    of every control, once the blockers (and the legend's counts) are in."""
    project = next(p for p in client.get("/projects").json()["projects"] if p["code"] == code)
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  extra_http_headers={"Authorization": f"Bearer {role_tokens['viewer']}"})
    try:
        page = context.new_page()
        page.goto(f"{base_url}/projects/{code}/map", wait_until="networkidle")
        page.wait_for_function(f"() => document.body.getAttribute('data-blockers') === '{project['blocking']}'",
                               timeout=10_000)
        found = page.evaluate(CONTROLS_AND_LINE)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"project-map-{code}-{viewport[0]}x{viewport[1]}.png"))
    finally:
        context.close()
    assert len(found["line"]) == 1 and len(found["controls"]) >= 5
    (left, top, right, bottom), = found["line"]
    assert right - left > 50 or bottom - top > 50, "the line is drawn at a readable size"
    for name, (x0, y0, x1, y1) in found["controls"]:
        overlap = min(x1, right) - max(x0, left), min(y1, bottom) - max(y0, top)
        assert min(overlap) <= 0, \
            f"{name} covers the project line: {(x0, y0, x1, y1)} over {(left, top, right, bottom)}"
