"""The workbench and the site's header in a real headless Chromium (Debian's), with every request outside the
service aborted: what the page shows is what the API answers.

- A line drawn with the mouse (Leaflet-Geoman's line tool) and a width typed in: the page's table, totals and
  map hold the same parcels and totals as ``POST /overlaps``.
- Two candidates compared: the side-by-side table holds ``POST /overlaps/compare``'s figures.
- Distance bands, a download, a parcel's card, an invalid polygon's message in Chinese with its place marked.
- Every header link opens (status < 400) in the browser; 退出登录 signs out, and a page then sends to the login.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from gis.records import users as auth
from gis.records.users import Role
from tests.conftest import bearer, live_server
from tests.test_maps_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Visit
from tests.test_workbench import BOW_TIE, CROSSING_LINE

READY = "() => document.body.dataset.ready === 'true'"
# A second candidate: east of the first, crossing 新安路 too.
SECOND_LINE = {"type": "LineString", "coordinates": [[118.976, 30.618], [118.976, 30.604]]}
PASSWORD = "workbench-口令-2026"


@pytest.fixture(scope="module")
def base_url(settings, demo_city, role_tokens):
    from api.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url):  # closed before the server stops
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def workbench(browser, base_url, role_tokens):
    visit = Visit(browser, base_url, role_tokens["viewer"], "/workbench", True, "workbench", ready=READY)
    yield visit
    visit.close()


def shown(cells: list[str]) -> list[float]:
    """The numbers of table cells as written on the page."""
    return [float(c.replace(",", "")) for c in cells]


def same(page_cells: list[str], values: list[float], digits: int) -> bool:
    """The page shows ``values`` to ``digits`` decimals (JavaScript and Python may round a half differently)."""
    return shown(page_cells) == pytest.approx(values, abs=10 ** -digits * 0.51)


def test_a_line_drawn_with_the_mouse_shows_what_post_overlaps_answers(workbench, base_url, client, role_headers):
    page = workbench.page
    # Draw with Geoman's line tool: click the points on the map, then the last one again to finish.
    page.locator(".leaflet-pm-icon-polyline").click()
    points = page.evaluate("""(coords) => coords.map(([lon, lat]) => {
        const p = workbench.map.latLngToContainerPoint([lat, lon]);
        const box = document.getElementById('map').getBoundingClientRect();
        return [box.left + p.x, box.top + p.y]; })""", CROSSING_LINE["coordinates"])
    for x, y in points:
        page.mouse.click(x, y)
    page.mouse.click(*points[-1])
    page.wait_for_function("() => workbench.candidates[0].geometry !== null")
    drawn = page.evaluate("workbench.candidates[0].geometry")
    assert drawn["type"] == "LineString" and len(drawn["coordinates"]) == 2
    width = page.locator("#candidates .candidate[data-index='0'] [name=width]")
    width.fill("40")
    width.dispatch_event("change")
    page.locator("[data-action=analyse]").click()
    page.wait_for_function("() => document.body.dataset.analysed !== undefined"
                           " && document.body.dataset.busy === 'false'")

    expected = client.post("/overlaps", json={"geometry": drawn, "width_m": 40},
                           headers=role_headers["viewer"]).json()
    assert expected["totals"]["parcels"] > 5
    codes = page.eval_on_selector_all("#hits-table tr", "rows => rows.map(r => r.dataset.code)")
    assert codes == [p["code"] for p in expected["parcels"]]
    assert page.evaluate("workbench.last.totals") == expected["totals"]
    totals = page.eval_on_selector_all("#totals-table tr[data-totals] td", "cells => cells.map(c => c.textContent)")
    t = expected["totals"]
    assert totals[0] == "合计"
    assert same(totals[1:3], [t["parcels"], t["households"]], 0)
    assert same(totals[3:4], [t["house_m2"]], 1) and same(totals[4:5], [t["land_mu"]], 2)
    assert same(totals[5:6], [t["overlap_m2"]], 1)
    assert same(totals[6:], [t["holdouts"], t["estimated_compensation_yuan"]], 0)
    # The parcels hit are drawn on the map, one path each, in their stage's colour.
    assert page.evaluate("workbench.map.hasLayer && document.querySelectorAll('#map path').length") >= len(codes)
    assert "涉及地块" in page.locator("#draw-result").text_content()
    # The red lines crossed and the line's length, as POST /overlaps/crossings says.
    crossing = client.post("/overlaps/crossings", json={"geometry": drawn}).json()
    summary = page.locator("#crossings-summary").text_content()
    length = float(summary.split("线长 ")[1].split(" 米")[0].replace(",", ""))
    assert length == pytest.approx(crossing["length_m"], abs=0.051) and "新安路" in summary
    page.screenshot(path=str(ARTIFACTS / "workbench-analysed.png"))
    # A download of the same answer.
    download = page.evaluate("workbench.exportAnswer('xlsx')")
    assert download["status"] == 200 and download["name"].endswith(".xlsx") and download["size"] > 1000
    workbench.check_offline(base_url)


def test_comparing_two_candidates_matches_overlaps_compare(workbench, base_url, client):
    page = workbench.page
    page.evaluate("""([a, b]) => { workbench.setGeometry(0, a, 40); workbench.setGeometry(1, b, 25); }""",
                  [CROSSING_LINE, SECOND_LINE])
    assert page.locator("#candidates .candidate").count() == 2
    answer = page.evaluate("workbench.compare()")
    expected = client.post("/overlaps/compare", json={"candidates": [
        {"name": "方案一", "geometry": CROSSING_LINE, "width_m": 40},
        {"name": "方案二", "geometry": SECOND_LINE, "width_m": 25}]}).json()
    assert answer == expected
    table = page.locator("#compare-table")
    assert table.locator("thead th").all_text_contents() == ["指标", "方案一", "方案二"]
    for key, digits in (("parcels", 0), ("overlap_m2", 1), ("estimated_compensation_yuan", 0), ("holdouts", 0)):
        cells = table.locator(f"tr[data-metric={key}] td").all_text_contents()
        assert same(cells[1:], [c["totals"][key] for c in expected["candidates"]], digits), key
    assert expected["candidates"][0]["totals"] != expected["candidates"][1]["totals"]
    assert f"共同涉及地块 {expected['hit_by_all_count']} 宗" in page.locator("#compare-result").text_content()
    page.screenshot(path=str(ARTIFACTS / "workbench-compared.png"))
    # A third candidate, and no fourth.
    page.locator("[data-action=add-candidate]").click()
    assert page.locator("#candidates .candidate").count() == 3
    assert page.locator("[data-action=add-candidate]").is_disabled()
    workbench.check_offline(base_url)


def test_bands_search_and_the_parcel_card(workbench, base_url, client, role_headers):
    page = workbench.page
    page.evaluate("(g) => workbench.setGeometry(0, g, 40)", CROSSING_LINE)
    answer = page.evaluate("workbench.bands([0, 30, 60, 120])")
    expected = client.post("/overlaps/bands", json={"geometry": CROSSING_LINE, "bands": [0, 30, 60, 120]},
                           headers=role_headers["viewer"]).json()
    assert answer == expected
    rows = page.locator("#bands-table tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").nth(1).text_content() for i in range(3)] == [
        str(b["parcels"]) for b in expected["bands"]]

    code = expected["bands"][0]["items"][0]["code"]
    found = page.evaluate("(code) => workbench.search({code})", code)
    assert found["total"] >= 1 and page.locator("#search-table tr").count() == len(found["items"])
    page.locator(f"#search-table tr[data-id='{found['items'][0]['id']}']").click()
    first = found["items"][0]["code"]
    page.wait_for_function(f"() => document.getElementById('parcel-card').dataset.parcel === {first!r}")
    record = client.get(f"/parcels/{found['items'][0]['id']}", headers=role_headers["viewer"]).json()
    card = page.locator("#parcel-card")
    assert "时间线" in card.text_content() and "补偿款" in card.text_content() and "档案" in card.text_content()
    timeline = card.locator("h4:text('时间线') + table tbody tr")
    assert timeline.count() == len(record["timeline"]) > 0
    # owners masked for a viewer, and no owner search field
    assert record["owner_name"] in page.locator("#parcel-facts").text_content()
    assert page.locator("#search-form [name=owner]").count() == 0
    workbench.check_offline(base_url)


def test_an_invalid_polygon_is_said_in_chinese_and_marked_on_the_map(workbench, base_url):
    page = workbench.page
    page.evaluate("(g) => workbench.setGeometry(0, g)", BOW_TIE)
    page.evaluate("workbench.analyse()")
    message = page.locator("#draw-result")
    assert "error" in message.get_attribute("class")
    assert message.text_content().startswith("图形无效：自相交")
    lon, lat = map(float, page.evaluate("document.body.dataset.errorPoint").split(","))
    assert (lon, lat) == pytest.approx((118.975, 30.61), abs=1e-9)
    marker = page.locator(".pb-error-marker")
    assert marker.count() == 1 and "30.610000, 118.975000" in marker.text_content()
    # the marked place is in view
    assert page.evaluate("workbench.map.getBounds().contains([30.61, 118.975])")
    page.screenshot(path=str(ARTIFACTS / "workbench-invalid.png"))
    outside = [u for u in workbench.requests if not u.startswith(base_url + "/") and not u.startswith("data:")]
    assert not outside and not workbench.aborted


def test_a_line_without_width_is_said_in_chinese(workbench):
    page = workbench.page
    page.evaluate("(g) => workbench.setGeometry(0, g, null)", CROSSING_LINE)
    page.evaluate("workbench.analyse()")
    assert page.locator("#draw-result").text_content() == "线须填写宽度（米）"


# ---------------------------------------------------------------------------------------------
# The header in the browser, signed in with a password (the session cookie), and signing out


@pytest.fixture(scope="module")
def planner(engine, demo_city):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'wb-planner'"))
        auth.add_user(conn, "wb-planner", Role.inspector, password=PASSWORD)
    yield "wb-planner"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'wb-planner'"))


def test_header_links_open_and_sign_out_works(browser, base_url, planner):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    aborted: list[str] = []

    def guard(route) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    try:
        page = context.new_page()
        page.goto(base_url + "/workbench")
        page.wait_for_url("**/login?next=/workbench")  # not signed in yet
        page.fill("#username", planner)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base_url + "/workbench")
        page.wait_for_function(READY)
        header = page.locator("header.pb-site-header")
        assert "wb-planner（纪检监察）" in header.text_content()
        links = header.locator("nav a").evaluate_all("links => links.map(a => [a.dataset.nav, a.href])")
        assert [k for k, _ in links] == ["projects", "maps", "workbench", "reports", "resettlement", "checks",
                                        "findings", "contest", "public", "docs"]
        for key, href in links:
            response = page.goto(href)
            assert response.status < 400, (key, href, response.status)
            assert page.locator("header.pb-site-header").count() == 1, key
        page.goto(base_url + "/")
        page.locator("header.pb-site-header form button").click()
        page.wait_for_url("**/login")
        after = page.goto(base_url + "/workbench")
        page.wait_for_url("**/login?next=/workbench")
        assert after.status == 401 and page.locator("#password").count() == 1
        assert not aborted
    finally:
        context.close()


def test_the_workbench_is_for_signed_in_users(anon_client, client, role_tokens):
    assert anon_client.get("/workbench").status_code == 401
    assert anon_client.get("/workbench/workbench.js").status_code == 401
    for role in ("viewer", "district_editor", "inspector", "admin"):
        page = client.get("/workbench", headers=bearer(role_tokens[role]))
        assert page.status_code == 200
        assert ('name="owner"' in page.text) == (role in ("inspector", "admin"))
