"""Map pages without a browser: offline HTML, labels, personal data, the static PNG, GCJ-02."""

from __future__ import annotations

import io
import json
import re
from datetime import date

import folium
import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer
from shapely.geometry import Point, shape
from sqlalchemy import text

from gis.domain.privacy import mask_name
from gis.domain.stages import STAGE_LABELS_ZH
from gis.domain.tolerance import Tolerance
from gis.maps.assets import FOLIUM_ASSETS, ExternalResource, external_urls
from gis.maps.blocker_map import blocker_map_html
from gis.maps.gcj02 import mercator_affine, mercator_offset, wgs84_to_gcj02
from gis.maps.page import Basemap, MapContext, new_map, render

# Published reference values (googollee/eviltransform's tests): WGS 84 lat, lon → GCJ-02 lat, lon.
GCJ02_REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# What a page loads: its scripts and stylesheets (the site header's <a href> links are pages, not assets).
ASSET_REF = re.compile(r"""<(?:script[^>]*\bsrc|link[^>]*\bhref)="([^"]+)\"""")


@pytest.fixture(scope="module")
def project_id(client) -> int:
    """新安路 (Xin'an Road): a few hundred blockers, holdouts among them."""
    return next(p["id"] for p in client.get("/projects").json()["projects"] if p["code"] == "xinan_road")


@pytest.fixture(scope="module")
def blockers(client, project_id) -> list[dict]:
    return client.get(f"/projects/{project_id}/blockers?limit=10000&format=geojson").json()["features"]


def test_gcj02_matches_published_values():
    for wlat, wlon, glat, glon in GCJ02_REFERENCE:
        lon, lat = wgs84_to_gcj02(wlon, wlat)
        assert float(lon) == pytest.approx(glon, abs=1e-9)
        assert float(lat) == pytest.approx(glat, abs=1e-9)
    lon, lat = wgs84_to_gcj02(np.array([2.35, 118.98]), np.array([48.85, 30.63]))  # Paris is outside China
    assert (float(lon[0]), float(lat[0])) == (2.35, 48.85)
    assert 100 < np.hypot(*mercator_offset(118.98, 30.63)) < 1000


@pytest.mark.parametrize("z", [12, 15, 18])
def test_gcj02_tile_affine_is_exact_to_a_tenth_of_a_pixel(z):
    """The per-tile affine map against the exact per-point shift, at points over a whole tile near Ningguo."""
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    size = 2 * 20037508.342789244 / (1 << z)
    cx, cy = to_merc.transform(118.98, 30.63)
    a, b, d, e, xoff, yoff = mercator_affine(cx, cy, size / 2)
    xs, ys = np.meshgrid(np.linspace(cx - size / 2, cx + size / 2, 9), np.linspace(cy - size / 2, cy + size / 2, 9))
    lon, lat = to_merc.transform(xs.ravel(), ys.ravel(), direction="INVERSE")
    exact = np.column_stack(to_merc.transform(*wgs84_to_gcj02(lon, lat)))
    fitted = np.column_stack([a * xs.ravel() + b * ys.ravel() + xoff, d * xs.ravel() + e * ys.ravel() + yoff])
    assert np.hypot(*(exact - fitted).T).max() < size / 256 / 10


def test_project_map_is_offline_and_its_assets_are_served(client, anon_client, project_id):
    r = client.get(f"/projects/{project_id}/map")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.findall(r"https?://", html, re.I), "the page names an outside URL"
    assert not re.findall(r"""(?:src|href)=["']?//""", html), "protocol-relative URL"
    refs = [u for u in ASSET_REF.findall(html) if not u.startswith("data:")]
    assert {u.rsplit("/", 1)[-1] for u in refs} >= {"leaflet.js", "leaflet.css", "Leaflet.VectorGrid.bundled.min.js"}
    for ref in refs:
        assert ref.startswith("/static/vendor/")
        got = anon_client.get(ref)  # public: scripts and stylesheets only
        assert got.status_code == 200, ref
        for css_url in re.findall(r"url\(['\"]?([^'\")]+)", got.text if ref.endswith(".css") else ""):
            if css_url.startswith(("data:", "#")):
                continue
            assert not css_url.startswith(("http:", "https:", "//")), (ref, css_url)
            target = ref.rsplit("/", 1)[0] + "/" + css_url.split("?")[0].split("#")[0]
            assert anon_client.get(target).status_code == 200, (ref, css_url)
    assert "/tiles/parcels/{z}/{x}/{y}.mvt" in html
    assert "fonts.googleapis" not in html


def test_vendor_serves_only_the_page_packages(anon_client):
    assert anon_client.get("/static/vendor/leaflet/dist/leaflet.js").status_code == 200
    assert anon_client.get("/static/vendor/pbf/package.json").status_code == 404  # a build dependency
    assert anon_client.get("/static/vendor/leaflet/../pbf/package.json").status_code == 404
    assert anon_client.get("/static/vendor/leaflet/dist/nothing.js").status_code == 404


def test_every_folium_resource_has_a_local_copy(settings):
    """Every script and stylesheet folium and its plugins in use name (read from folium itself) is mapped."""
    from folium.plugins import VectorGridProtobuf

    names = {n for cls in (folium.Map, VectorGridProtobuf) for n, _ in [*cls.default_js, *cls.default_css]}
    assert names == set(FOLIUM_ASSETS)
    for path in filter(None, FOLIUM_ASSETS.values()):
        assert (settings.map_assets_dir / path).is_file(), path
    m = folium.Map(tiles=None)
    VectorGridProtobuf("/t/{z}/{x}/{y}.mvt", "t").add_to(m)
    folium.Marker([0, 0], icon=folium.Icon(icon="home", prefix="fa")).add_to(m)
    html = render(m, MapContext())
    assert external_urls(html) == []
    with pytest.raises(ExternalResource, match="openstreetmap"):  # folium's default basemap is online
        render(folium.Map(), MapContext())


def test_a_resource_without_a_local_copy_fails_loudly():
    m = new_map(MapContext(), "t")
    extra = folium.MacroElement()
    extra.default_js = [("something_new", "https://cdn.example.org/x.js")]
    m.add_child(extra)
    with pytest.raises(ExternalResource):
        render(m, MapContext())


def test_legend_in_chinese_and_english(client, project_id):
    zh = client.get(f"/projects/{project_id}/map").text
    en = client.get(f"/projects/{project_id}/map?lang=en").text
    for label in ("征迁阶段", STAGE_LABELS_ZH["surveyed"], STAGE_LABELS_ZH["appraised"], "钉子户", "项目红线",
                  "片区界线"):
        assert label in zh
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    for label in ("Stage", "Surveyed", "Appraised", "Holdout", "Project footprint", "District boundaries"):
        assert label in en
    assert "征迁阶段" not in en
    assert client.get(f"/projects/{project_id}/map?lang=fr").status_code == 422
    assert client.get("/projects/999999/map").status_code == 404


def _json_text(value: str) -> str:
    """How the page embeds a string in its JSON (non-ASCII as \\u escapes)."""
    return json.dumps(value)[1:-1]


def test_owner_masked_for_viewer_and_shown_for_inspector(client, engine, project_id, blockers, role_headers):
    url = f"/projects/{project_id}/map/blockers.geojson"
    viewer = {f["id"]: f["properties"] for f in client.get(url, headers=role_headers["viewer"]).json()["features"]}
    inspector = {f["id"]: f["properties"]
                 for f in client.get(url, headers=role_headers["inspector"]).json()["features"]}
    with engine.connect() as conn:
        owners = dict(conn.execute(text("SELECT id, owner_name FROM parcels WHERE id = ANY(:ids)"),
                                   {"ids": list(viewer)}).all())
    assert any(len(name) == 3 for name in owners.values())
    for pid, name in owners.items():
        assert inspector[pid]["owner"] == name
        assert viewer[pid]["owner"] == mask_name(name) != name
    # The page itself carries no owner at all: it fetches them with the caller's own credentials.
    page = client.get(f"/projects/{project_id}/map", headers=role_headers["inspector"]).text
    assert not any(_json_text(name) in page or name in page for name in owners.values())


def test_the_map_data_is_every_blocker(client, project_id, blockers):
    r = client.get(f"/projects/{project_id}/map/blockers.geojson", headers={"Accept": "application/geo+json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    drawn = {f["id"]: f for f in r.json()["features"]}
    assert set(drawn) == {f["id"] for f in blockers}
    for feature in blockers:
        props, mine = feature["properties"], drawn[feature["id"]]
        assert mine["properties"]["code"] == props["code"]
        assert mine["properties"]["stage"] == props["stage"]
        assert mine["properties"]["days"] == props["days_in_stage"]
        assert mine["properties"]["overlap_m2"] == pytest.approx(props["overlap_m2"], abs=0.051)
        assert mine["properties"]["district"] == props["district_name"]
        # 6 decimals (about 0.1 m): the same polygon as the API's 7.
        assert shape(mine["geometry"]).hausdorff_distance(shape(feature["geometry"])) < 1e-6
    assert client.get("/projects/999999/map/blockers.geojson").status_code == 404


def test_popup_labels(client, project_id):
    html = client.get(f"/projects/{project_id}/map").text
    for alias in ("编号", "类型", "阶段", "本阶段天数", "重叠面积（m²）", "重叠面积（亩）", "片区", "权利人"):
        assert _json_text(alias) in html
    assert "Days in stage" in client.get(f"/projects/{project_id}/map?lang=en").text


def test_holdouts_marked_apart(client, project_id, blockers):
    holdouts = {f["properties"]["code"] for f in blockers if f["properties"]["holdout"]}
    assert holdouts, "the demo city plants holdouts on Xin'an Road"
    data = client.get(f"/projects/{project_id}/map/blockers.geojson").json()["features"]
    ringed = {f["properties"]["code"] for f in data if "ring" in f["properties"]}
    assert ringed == holdouts
    for f in data:
        if "ring" in f["properties"]:  # the ring's centre lies in the parcel
            assert shape(f["geometry"]).contains(Point(f["properties"]["ring"]))
    html = client.get(f"/projects/{project_id}/map").text
    assert '"weight": 4' in html and 'pane: "holdouts"' in html  # thick outline, rings above the blockers


def test_gcj02_basemap_shifts_the_overlays_for_display_only(client, engine, settings, project_id, blockers):
    basemap = Basemap("/basemap/{z}/{x}/{y}.png", crs="gcj02", attribution="高德")
    with engine.connect() as conn:
        plain = blocker_map_html(conn, project_id, tolerance=Tolerance.from_settings(settings))
        shifted = blocker_map_html(conn, project_id, tolerance=Tolerance.from_settings(settings),
                                   ctx=MapContext(basemap=basemap))
        footprint = json.loads(conn.execute(text("SELECT ST_AsGeoJSON(ST_Transform(footprint, 4326), 7) "
                                                 "FROM projects WHERE id = :id"), {"id": project_id}).scalar_one())
        stored = conn.execute(text("SELECT md5(ST_AsEWKB(geom)::text) FROM parcels WHERE id = :id"),
                              {"id": blockers[0]["id"]}).scalar_one()
    assert "/basemap/{z}/{x}/{y}.png" in shifted and "/basemap/" not in plain
    assert "blockers.geojson?shift=gcj02" in shifted and "mvt?shift=gcj02" in shifted and "shift=" not in plain
    lon, lat = footprint["coordinates"][0][0][0]
    glon, glat = (round(float(v), 6) for v in wgs84_to_gcj02(lon, lat))
    assert f"[{glon}, {glat}]" in shifted and f"[{round(lon, 6)}, {round(lat, 6)}]" in plain
    data = client.get(f"/projects/{project_id}/map/blockers.geojson?shift=gcj02").json()["features"]
    by_id = {f["id"]: f for f in data}
    for feature in blockers[:50]:
        lon, lat = np.array(feature["geometry"]["coordinates"][0][0]).T
        glon, glat = wgs84_to_gcj02(lon, lat)
        got = np.array(by_id[feature["id"]]["geometry"]["coordinates"][0][0])
        assert np.abs(got - np.column_stack([glon, glat])).max() < 1e-6
    with engine.connect() as conn:  # what is stored did not move
        assert conn.execute(text("SELECT md5(ST_AsEWKB(geom)::text) FROM parcels WHERE id = :id"),
                            {"id": blockers[0]["id"]}).scalar_one() == stored


def test_imagery_layers_offered_unless_the_basemap_is_gcj02(engine, settings, project_id):
    imagery = [{"name": "航拍 2026-01-16", "url_template": "/imagery/7/tiles/{z}/{x}/{y}.png", "attribution": "无人机",
                "bounds": [[30.6, 118.9], [30.7, 119.0]]}]
    tolerance = Tolerance.from_settings(settings)
    with engine.connect() as conn:
        html = blocker_map_html(conn, project_id, tolerance=tolerance, imagery=imagery)
        gcj = blocker_map_html(conn, project_id, tolerance=tolerance, imagery=imagery,
                               ctx=MapContext(basemap=Basemap("/b/{z}/{x}/{y}.png", crs="gcj02")))
    assert "/imagery/7/tiles/{z}/{x}/{y}.png" in html and _json_text("航拍 2026-01-16") in html
    assert "/imagery/7/" not in gcj


def test_configured_basemap_is_the_only_outside_url_allowed():
    url = "https://t0.tianditu.gov.cn/vec_w/wmts?tk=KEY&x={x}&y={y}&l={z}"
    html = render(new_map(MapContext(basemap=Basemap(url)), "t"), MapContext(basemap=Basemap(url)))
    assert external_urls(html, allowed=[url]) == []
    assert external_urls(html) != []


def test_district_map(client, project_id):
    r = client.get("/districts/map")
    assert r.status_code == 200
    html = r.text
    assert not re.findall(r"https?://", html, re.I)
    for label in ("已交地比例", "0–20%", "80–100%", "无数据", "各片区征迁进度"):
        assert label in html
    progress = client.get("/districts/progress").json()["districts"]
    for d in progress:
        assert f"{d['percent_cleared']:.1f}%" in html
    one = client.get(f"/districts/map?project_id={project_id}&lang=en")
    assert one.status_code == 200 and "District progress" in one.text
    assert client.get("/districts/map?project_id=999999").status_code == 404


def test_landing_page(client, anon_client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert '<html lang="zh-CN">' in html and not re.findall(r"https?://", html)
    projects = client.get("/projects").json()["projects"]
    bars = re.findall(r'aria-valuenow="([0-9.]+)"', html)
    assert len(bars) == len(projects)
    for p in projects:
        assert p["name"] in html
        assert f'href="/projects/{p["id"]}/map"' in html
        assert f'aria-valuenow="{p["percent_cleared"] or 0:.1f}"' in html
    assert 'href="/districts/map"' in html and 'href="/docs"' in html
    # A browser without a session is sent to the sign-in page.
    redirect = anon_client.get("/", headers={"Accept": "text/html"})
    assert redirect.status_code == 401 and "/login?next=/" in redirect.text


def test_pages_need_a_sign_in(anon_client, project_id, role_headers):
    for path in ("/", f"/projects/{project_id}/map", f"/projects/{project_id}/map.png", "/districts/map",
                 f"/projects/{project_id}/map/blockers.geojson"):
        assert anon_client.get(path).status_code == 401, path
        assert anon_client.get(path, headers=role_headers["viewer"]).status_code == 200, path


def test_png_from_the_api(client, project_id):
    r = client.get(f"/projects/{project_id}/map.png?width=900&height=600")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (900, 600)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in ("#fc8d59", "#fee08b")}  # appraised, signed
    drawn = sum(int(np.all(pixels == c, axis=1).sum()) for c in colours)
    assert drawn > 500, "the blockers are drawn in their stage colours"
    assert client.get(f"/projects/{project_id}/map.png?width=50").status_code == 422


def test_png_from_the_cli(settings, demo_city, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from gis.platform.config import get_settings

    for key, value in {"GIS_DATA_DIR": str(settings.data_dir), "GIS_PG_FSYNC": "false"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        out = tmp_path / "xinan.png"
        result = CliRunner().invoke(app, ["map", "xinan_road", "--png", str(out), "--width", "640", "--height", "480"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (640, 480)


def test_missing_assets_answer_503(settings, demo_city, role_tokens, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import bearer

    app = create_app(settings.model_copy(update={"map_assets_dir": tmp_path}))
    with TestClient(app, headers=bearer(role_tokens["viewer"])) as c:
        r = c.get("/districts/map")
    assert r.status_code == 503
    assert "npm ci" in r.json()["detail"]


def test_static_map_blockers_for_a_past_day_are_replayed(client, engine, demo_city):
    """Reports for a past day draw that day's blockers, not today's."""
    from gis.domain.tolerance import Tolerance
    from gis.maps.blocker_map import project_blockers

    day = date(2025, 6, 1)
    expected = client.get("/projects/1/blockers", params={"as_of": day.isoformat(), "limit": 1}).json()["total"]
    now = client.get("/projects/1/blockers", params={"limit": 1}).json()["total"]
    assert expected != now
    with engine.connect() as conn:
        _, items = project_blockers(conn, 1, Tolerance(1.0, 0.005), tz="Asia/Shanghai", today=day,
                                    reveal_personal=False, as_of=day)
    assert len(items) == expected
