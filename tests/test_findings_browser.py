"""The findings list (督查整改台账) and the contest page (四季竞赛) in a real headless Chromium (Debian's), with every
request outside the service aborted: they render offline, with no console error, and show what the API answers."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import live_server
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, Visit


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


def test_the_findings_list_renders_offline(browser, base_url, role_tokens, client, role_headers):
    listed = client.get("/findings", headers=role_headers["viewer"]).json()
    assert listed["count"] == 16
    visit = Visit(browser, base_url, role_tokens["viewer"], "/findings?format=html", True, "findings")
    try:
        visit.check_offline(base_url)
        page = visit.page
        ids = page.eval_on_selector_all("tbody tr[data-id]", "rows => rows.map(r => Number(r.dataset.id))")
        assert ids == [i["id"] for i in listed["items"]]
        assert page.locator("header, .pb-site-header").count() >= 1 and "督查整改台账" in page.inner_text("h1")
        overdue = sum(1 for i in listed["items"] if i["overdue"])
        assert page.locator("tbody tr.overdue").count() == overdue
        # the filters are a plain form: choose 仅逾期 and submit
        page.select_option("#filters select[name=overdue]", "true")
        page.click("#filters button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.locator("tbody tr[data-id]").count() == overdue
        assert not visit.errors and not visit.aborted
    finally:
        visit.close()


def test_the_contest_page_renders_offline(browser, base_url, role_tokens, client, role_headers):
    answer = client.get("/contest", headers=role_headers["viewer"]).json()
    visit = Visit(browser, base_url, role_tokens["viewer"], "/contest?format=html", True, "contest")
    try:
        visit.check_offline(base_url)
        rows = visit.page.eval_on_selector_all("#ranking tbody tr", "rows => rows.map(r => r.dataset.district)")
        assert rows == [d["district"] for d in answer["districts"]]
        assert visit.page.locator("svg rect.score").count() == sum(d["score"] is not None for d in answer["districts"])
    finally:
        visit.close()
