"""The web front (issue 14, defect 12): sign-out by POST only, a Content-Security-Policy and no framing on every
page, no-store on personal JSON and downloads, and the Secure cookie whenever the request came over HTTPS (directly
or through a trusted proxy)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.security import content_security_policy
from gis.records import users as auth
from gis.records.users import Role

PASSWORD = "front-口令-123"


@pytest.fixture(scope="module")
def front_user(engine, client):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'front-admin'"))
        auth.add_user(conn, "front-admin", Role.admin, password=PASSWORD)
    yield "front-admin"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'front-admin'"))
        conn.execute(text("DELETE FROM login_attempts WHERE user_name = 'front-admin'"))


def sign_in(browser: TestClient) -> str:
    r = browser.post("/login", data={"username": "front-admin", "password": PASSWORD})
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def test_sign_out_is_post_only_and_the_pages_have_a_button(client, front_user):
    with TestClient(client.app, follow_redirects=False) as browser:
        sign_in(browser)
        assert browser.get("/logout").status_code == 405
        assert browser.get("/me").status_code == 200  # still signed in
        for page in ("/", "/admin"):
            html = browser.get(page).text
            assert '<form method="post" action="/logout"' in html and "退出登录" in html, page
            assert 'href="/logout"' not in html
        assert browser.post("/logout").status_code == 303
        assert browser.get("/me").status_code == 401


def test_every_page_has_a_policy_and_cannot_be_framed(client, role_headers):
    project_id = client.get("/projects").json()["projects"][0]["id"]
    pages = ["/", "/admin", "/login", "/docs", f"/projects/{project_id}/map", "/districts/map",
             f"/public/projects/{project_id}/map", "/reports/daily?date=2026-11-20"]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "http:" not in csp and "https:" not in csp, path  # nothing from elsewhere (no basemap configured)
        assert r.headers["x-frame-options"] == "DENY", path
    assert client.get("/me").headers["x-frame-options"] == "DENY"


def test_the_basemap_host_is_allowed_for_images_only(settings):
    csp = content_security_policy(settings.model_copy(update={
        "basemap_url": "https://t{s}.tianditu.gov.cn/img_w/wmts?x={x}&y={y}&l={z}&tk=KEY"}))
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "https://*.tianditu.gov.cn" in directives["img-src"]
    assert "tianditu" not in csp.replace(directives["img-src"], "")


def test_personal_json_and_downloads_are_not_stored(client, role_headers, demo_city):
    parcel_id = int(demo_city.parcels.iloc[0]["id"])
    project_id = client.get("/projects").json()["projects"][0]["id"]
    for role in ("viewer", "admin"):
        h = role_headers[role]
        for path in (f"/parcels/{parcel_id}", f"/parcels/{parcel_id}/history", "/me",
                     f"/projects/{project_id}/blockers?format=json",
                     f"/projects/{project_id}/map/blockers.geojson",
                     "/parcels/export?format=csv&district=xijin"):
            r = client.get(path, headers=h)
            assert r.status_code == 200, (path, r.status_code)
            assert r.headers["cache-control"] == "no-store", (role, path)
    # Tiles and assets keep their caching; so does the public health check.
    tile = client.get("/tiles/parcels/14/13578/6722.mvt")
    assert tile.status_code in (200, 204) and tile.headers["cache-control"] == "private, max-age=0, must-revalidate"
    assert tile.headers["etag"]  # revalidated by its data version: a 304 while nothing it draws has changed
    assert client.get("/health").headers.get("cache-control") != "no-store"


@pytest.mark.parametrize(("base_url", "peer", "forwarded", "secure"), [
    ("http://testserver", "198.51.100.50", None, False),
    ("https://testserver", "198.51.100.50", None, True),  # HTTPS straight to the service
    ("http://testserver", "198.51.100.50", "https", False),  # anyone can claim it: not believed
    ("http://testserver", "10.8.0.1", "https", True),  # the trusted proxy says the client used HTTPS
    ("http://testserver", "10.8.0.1", "http", False),
])
def test_the_session_cookie_is_secure_over_https(settings, front_user, engine, base_url, peer, forwarded, secure):
    app = create_app(settings.model_copy(update={"trusted_proxies": ("10.8.0.0/24",)}))
    headers = {"x-forwarded-proto": forwarded} if forwarded else {}
    with TestClient(app, base_url=base_url, follow_redirects=False, client=(peer, 4000), headers=headers) as browser:
        cookie = sign_in(browser)
    attributes = [p.strip().lower() for p in cookie.split(";")]
    assert ("secure" in attributes) == secure
    assert "httponly" in attributes
