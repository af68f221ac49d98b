"""The admin page in a real headless Chromium: upload a CAD drawing, choose its layer, preview what the line
would hit, save, and the project is there — in the API, on the landing page and in the page's own list.

A city of its own (database ``admin_page``): two districts and a row of 20 m parcels along y = 500 m, a 10 m
corridor through their middle, so each parcel on the line loses exactly 10 m × 20 m.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from shapely.geometry import LineString, Polygon, box
from sqlalchemy import text

from gis.io.features import file_layers
from gis.platform.db import get_engine
from tests.conftest import bearer, live_server, make_role_tokens
from tests.test_maps_browser import CHROMIUM, CHROMIUM_ARGS, Visit
from tests.worlds import WORLD_ORIGIN, two_districts

X, Y = WORLD_ORIGIN
ON_LINE = [box(X + 100 + i * 60, Y + 490, X + 120 + i * 60, Y + 510) for i in range(30)]
OFF_LINE = [box(X + 100 + i * 60, Y + 800, X + 120 + i * 60, Y + 820) for i in range(5)]
CENTRE = LineString([(X + 50, Y + 500), (X + 1950, Y + 500)])
WIDTH_M = 10.0


@pytest.fixture(scope="module")
def city(pg_dir, settings):
    s = two_districts(pg_dir, "admin_page")
    engine = get_engine(s)
    with engine.begin() as conn:
        for i, geom in enumerate(ON_LINE + OFF_LINE):
            conn.execute(text(
                "INSERT INTO parcels (code, kind, district_id, owner_name, floor_area_m2, stage, geom) VALUES "
                "(:code, 'house', :d, '测试户主', 120, 'surveyed', ST_Multi(ST_GeomFromText(:wkt, :srid)))"
            ), {"code": f"A{i:03d}", "d": 1 if geom.centroid.x < X + 1000 else 2, "wkt": geom.wkt, "srid": s.srid})
    tokens = make_role_tokens(engine, ["a"], prefix="adminpage")
    return s, tokens


@pytest.fixture(scope="module")
def drawing(tmp_path_factory) -> Path:
    """A design institute's drawing: the centre line on CAD layer 中线, the sheet's frame on 图框."""
    path = tmp_path_factory.mktemp("cad") / "高铁中线.dxf"
    frame = Polygon([(X - 100, Y - 100), (X + 2100, Y - 100), (X + 2100, Y + 1100), (X - 100, Y + 1100)]).exterior
    gpd.GeoDataFrame({"Layer": ["中线", "图框"]}, geometry=[CENTRE, LineString(frame.coords)]).to_file(
        path, driver="DXF")
    return path


def test_file_layers_lists_a_drawings_cad_layers(drawing):
    assert file_layers(drawing) == [
        {"name": "中线", "features": 1, "lines": 1, "polygons": 0},
        # a closed polyline is a boundary a planner may pick as a red line
        {"name": "图框", "features": 1, "lines": 1, "polygons": 1},
    ]


def test_admin_page_is_for_admins_only(city):
    from api.app import create_app

    s, tokens = city
    with TestClient(create_app(s)) as c:
        assert c.get("/admin", headers=bearer(tokens["district_editor"])).status_code == 403
        assert c.get("/admin", headers=bearer(tokens["viewer"])).status_code == 403
        assert c.get("/admin").status_code == 401
        assert c.get("/admin", headers=bearer(tokens["admin"])).status_code == 200
        refused = c.post("/admin/files/layers", headers=bearer(tokens["admin"]),
                         files={"file": ("名单.csv", "code,name\n1,2\n".encode())})
        assert refused.status_code == 422 and refused.json()["where"] == "file"


def test_upload_a_line_preview_save_and_the_project_appears(city, drawing):
    from api.app import create_app

    s, tokens = city
    expected = {f"A{i:03d}" for i in range(len(ON_LINE))}
    corridor = CENTRE.buffer(WIDTH_M / 2, cap_style="flat")
    expected_m2 = sum(p.intersection(corridor).area for p in ON_LINE + OFF_LINE)
    assert round(expected_m2) == 30 * 200  # the independent computation agrees with the set-up's intent

    with live_server(create_app(s)) as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            visit = Visit(browser, base_url, tokens["admin"], "/admin", block_outside=True, name="admin-page",
                          ready="() => document.body.dataset.ready === 'true'")
            page = visit.page
            form = page.locator("#project-form")
            form.locator("[name=code]").fill("hsr_east")
            form.locator("[name=name]").fill("高铁东延线")
            form.locator("[name=kind]").select_option("rail")
            form.locator("[name=file]").set_input_files(str(drawing))
            # the drawing's CAD layers are offered once the file is chosen
            page.wait_for_function("() => document.querySelector('#project-form [name=layer]').options.length === 3")
            form.locator("[name=layer]").select_option("中线")
            form.locator("[name=width_m]").fill(str(WIDTH_M))
            form.locator("[name=crs]").fill("4549")
            form.locator("[name=deadline]").fill("2027-06-30")

            form.locator("[data-action=preview]").click()
            page.wait_for_function("() => document.querySelector('#project-result').textContent.startsWith('预览')")
            preview = page.locator("#project-result").text_content()
            assert "涉及地块 30 宗" in preview and f"占地 {expected_m2:,.0f} ㎡" in preview, preview
            # the footprint and the 30 parcels are drawn on the map
            assert page.locator(".leaflet-overlay-pane path").count() >= 1 + 30 + 2  # preview, parcels, districts
            with get_engine(s).connect() as conn:  # a preview saves nothing
                assert conn.execute(text("SELECT count(*) FROM projects")).scalar_one() == 0

            form.locator("button[type=submit]").click()
            page.wait_for_function("() => document.querySelector('#project-result').textContent.startsWith('已保存')")
            assert "涉及地块 30 宗" in page.locator("#project-result").text_content()
            assert "高铁东延线" in page.locator("#projects-table").text_content()
            assert page.locator("#revision-form [name=project] option[value=hsr_east]").count() == 1
            page.screenshot(path=str(Path(__file__).resolve().parents[1] / "test-artifacts" / "admin-saved.png"))
            visit.check_offline(base_url)
            visit.close()
        finally:
            browser.close()

    with TestClient(create_app(s)) as c:
        h = bearer(tokens["viewer"])
        project = c.get("/projects/hsr_east", headers=h).json()
        assert (project["kind"], project["corridor_width_m"], project["deadline"]) == ("rail", WIDTH_M, "2027-06-30")
        items = c.get("/projects/hsr_east/blockers?limit=1000", headers=h).json()["items"]
        assert {b["code"] for b in items} == expected
        assert sum(b["overlap_m2"] for b in items) == pytest.approx(expected_m2, rel=1e-6)
        assert "高铁东延线" in c.get("/", headers=h).text
