"""The public calculator (亮底征收) in a real headless Chromium (Debian's), not signed in, every request outside the
service aborted: the total and the items the page shows for a resident's inputs are those of the service's own
``POST /compensation/estimate`` for the same inputs, and the page asks for nothing personal.

In the database of tests/test_compensation.py (its standards table, districts 甲区 and 乙区).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import live_server
from tests.test_compensation import HOUSEHOLD, world  # noqa: F401 - the module's database, standards and client
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def page(world):  # noqa: F811 - the fixture imported above
    from api.app import create_app

    with live_server(create_app(world.settings)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()  # no credentials: the public
        aborted: list[str] = []
        errors: list[str] = []

        def guard(route) -> None:
            if route.request.url.startswith(url + "/"):
                route.continue_()
            else:
                aborted.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        pg = context.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = pg.goto(url + "/public/calculator")
        assert response is not None and response.status == 200
        yield pg
        assert not aborted, aborted
        assert not errors, errors
        browser.close()


def _total(page) -> float:
    page.wait_for_function("() => document.getElementById('total') !== null")
    value = float(page.locator("#total").get_attribute("data-total"))
    page.evaluate("() => { document.getElementById('result').innerHTML = ''; }")
    return value


def test_the_public_calculator_shows_the_services_estimate(page, world):  # noqa: F811
    page.select_option("#district", "a")
    page.select_option("#kind", "house")
    page.fill("#agreed_on", HOUSEHOLD["agreed_on"])
    page.fill("#floor_area_m2", str(HOUSEHOLD["floor_area_m2"]))
    page.select_option("#structure", "brick_concrete")
    page.select_option("#decoration", "medium")
    page.fill("#business_area_m2", str(HOUSEHOLD["business_area_m2"]))
    page.fill("#transition_months", str(HOUSEHOLD["transition_months"]))
    page.fill("#counts", "附属物 水井 1\n附属物 围墙 25")
    page.click("#go")
    shown = _total(page)
    service = world.client.post("/compensation/estimate", json=HOUSEHOLD).json()
    assert shown == service["total_yuan"] == 459540
    # Land: area and crops.
    page.select_option("#kind", "land")
    page.fill("#land_area_mu", "2.5")
    page.fill("#counts", "青苗 果树 40")
    page.click("#go")
    shown = _total(page)
    land = {"district": "a", "kind": "land", "agreed_on": HOUSEHOLD["agreed_on"], "land_area_mu": 2.5,
            "counts": [{"item": "crops", "grade": "果树", "quantity": 40}]}
    service = world.client.post("/compensation/estimate", json=land).json()
    assert shown == service["total_yuan"] == 2.5 * (48000 + 32000 + 25000) + 40 * 80
    # Nothing personal is asked for: no field for a name, an ID number or a phone.
    labels = " ".join(page.locator("label").all_inner_texts())
    assert not any(word in labels for word in ("姓名", "身份证", "电话", "权利人"))
