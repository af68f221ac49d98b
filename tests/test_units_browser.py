"""The demo city's assisting units and command posts, and a unit's page in a real headless Chromium (Debian's)
with every request outside the service aborted: it renders offline, with the site's header, its households on
the map and no console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from gis.analysis.dispatch import posts_missing_visits
from gis.analysis.units import unit_ranking
from gis.checks import DispatchGaps, dispatch_gaps_check
from gis.demo.command import RECENT_STOP_WEEKS, _last_day
from tests.conftest import live_server
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, Visit


def test_the_demo_city_has_units_reassignments_posts_and_gaps(engine, demo_city):
    """Two units per district with staff; every parcel in a footprint assigned, some reassigned; four posts with
    visits and duty; the check finds missed weeks and days, and the last post's last three weeks missed."""
    day = _last_day(demo_city)
    with engine.connect() as conn:
        counts = conn.execute(text("""
            SELECT (SELECT count(*) FROM assisting_units), (SELECT count(*) FROM unit_staff),
                   (SELECT count(DISTINCT parcel_id) FROM unit_assignments),
                   (SELECT count(DISTINCT parcel_id) FROM project_parcel_overlaps),
                   (SELECT count(*) FROM unit_assignments WHERE ended_on IS NOT NULL),
                   (SELECT count(*) FROM parcel_events WHERE kind = 'assignment'),
                   (SELECT count(*) FROM unit_assignments),
                   (SELECT count(*) FROM command_posts), (SELECT count(*) FROM frontline_visits)""")).one()
        ranking = unit_ranking(conn, as_of=day)["units"]
        gaps = dispatch_gaps_check(conn, DispatchGaps(weeks=26, days=182), as_of=day)
        missing = posts_missing_visits(conn, day, weeks=RECENT_STOP_WEEKS)
    units, staff, assigned, in_footprints, ended, events, periods, posts, visits = counts
    n_districts = len(demo_city.districts)
    assert units == 2 * n_districts and staff >= 3 * units
    assert assigned == in_footprints and ended > 0 and events == periods
    assert posts == n_districts and visits > 0
    assert sorted(u["rank"] for u in ranking) == list(range(1, units + 1))  # no two units tie in the demo
    assert gaps.summary["visit"] > 0 and gaps.summary["duty"] > 0
    first, last = demo_city.districts["code"].iloc[0], demo_city.districts["code"].iloc[-1]
    by_post = {m["district"]: m for m in missing}
    assert by_post[last]["missed"] == RECENT_STOP_WEEKS and first not in by_post  # the first post never misses


@pytest.fixture(scope="module")
def base_url(settings, demo_city, role_tokens):
    from api.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


def test_a_units_page_renders_offline_with_its_households(base_url, role_tokens, client, engine):
    top = client.get("/units/ranking").json()["units"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            visit = Visit(browser, base_url, role_tokens["viewer"], f"/units/{top['code']}/page", True, "unit-page",
                          ready="() => document.querySelectorAll('.leaflet-overlay-pane path').length > 0")
            try:
                visit.check_offline(base_url)
                page = visit.page
                assert page.locator("[data-site-header]").count() == 1
                assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
                title = page.locator(".pb-title").inner_text()
                assert top["name"] in title and f"第{top['rank']}名" in title and "协保地块" in title
                # Every household of the unit is drawn (one path each), over the district outlines.
                paths = page.locator(".leaflet-overlay-pane path.leaflet-interactive").count()
                assert paths == top["parcels"]
                # Staff names are masked for a viewer: none of the unit's real names is on the page.
                with engine.connect() as conn:
                    names = conn.execute(text("SELECT s.name FROM unit_staff s JOIN assisting_units u "
                                              "ON u.id = s.unit_id WHERE u.code = :c"), {"c": top["code"]}).scalars()
                    html = page.content()
                    assert not [n for n in names if len(n) > 1 and n in html]
            finally:
                visit.close()
        finally:
            browser.close()
