"""Error answers in Chinese where people read them: ``detail`` stays English, ``detail_zh`` comes with
``Accept-Language: zh``, and a browser opening a page gets a Chinese error page under the site's header."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.messages_zh import wants_chinese
from tests.conftest import bearer
from tests.worlds import settings_for

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("header,expected", [
    ("zh", True), ("zh-CN", True), ("zh-Hans;q=0.9", True), ("en-GB, zh-TW;q=0.5", True), ("ZH-cn", True),
    ("en", False), ("en, zh;q=0", False), ("", False), (None, False), ("fr;q=0.8, de", False)])
def test_which_clients_ask_for_chinese(header, expected):
    assert wants_chinese(header) is expected


def cases(client) -> list[tuple[str, str, int, str]]:
    """(role, path, status, a piece of the expected Chinese): one of each kind of error the map answers."""
    project_id = client.get("/projects").json()["projects"][0]["id"]
    return [
        ("viewer", f"/projects/{project_id}/blockers?format=docx", 422, "format：取值不在允许的范围内，可用："),
        ("viewer", f"/projects/{project_id}/blockers?stagee=signed", 422, "不认识的查询参数 stagee"),  # strict query
        ("viewer", "/parcels/999999999", 404, "没有这个地块"),  # NotFound
        ("viewer", "/projects/no_such_road/blockers", 404, "没有这个项目"),  # ProjectNotFound
        ("viewer", "/checks", 403, "需要以下角色之一"),  # Forbidden
        (None, "/me", 401, "请先登录"),  # Unauthenticated
        ("viewer", f"/projects/{project_id}/blockers?limit=many", 422, "查询参数 limit：须为整数"),  # validation
        ("viewer", "/no/such/route", 404, "未找到"),  # Starlette's own 404
    ]


def test_every_kind_of_error_says_it_in_chinese_when_asked(client, anon_client, role_headers):
    for role, path, status, piece in cases(client):
        c, h = (client, role_headers[role]) if role else (anon_client, {})
        plain = c.get(path, headers=h)
        assert plain.status_code == status, (path, plain.text)
        assert "detail_zh" not in plain.json(), path  # not asked: the English contract only
        assert not has_chinese(str(plain.json()["detail"])), path  # detail stays English
        asked = c.get(path, headers=h | ZH)
        assert asked.status_code == status, path
        body = asked.json()
        assert body["detail"] == plain.json()["detail"], path  # the same English detail beside it
        assert piece in body["detail_zh"] and has_chinese(body["detail_zh"]), (path, body["detail_zh"])


def test_a_refused_geometry_says_why_and_where_in_chinese(client, role_headers):
    bow_tie = {"type": "Polygon", "coordinates": [[[118.97, 30.60], [118.98, 30.62], [118.98, 30.60],
                                                   [118.97, 30.62], [118.97, 30.60]]]}
    r = client.post("/overlaps", json={"geometry": bow_tie}, headers=role_headers["viewer"] | ZH)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"].startswith("invalid geometry") and body["detail_zh"] == "图形无效：自相交"
    assert body["point"] == pytest.approx([118.975, 30.61], abs=1e-9)


def test_a_busy_service_says_it_in_chinese(pg_dir, demo_city, role_tokens):
    settings = settings_for(pg_dir, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2)
    with TestClient(create_app(settings), headers=bearer(role_tokens["viewer"])) as c:
        assert c.get("/districts/progress").status_code == 200
        with c.app.state.engine.connect():  # the pool's one connection, held
            r = c.get("/districts/progress", headers=ZH)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "busy" in r.json()["detail"] and r.json()["detail_zh"].startswith("服务繁忙")


def test_a_browser_opening_a_page_gets_the_error_as_a_chinese_page(client, role_headers):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = client.get("/checks?format=html", headers=role_headers["viewer"] | browser)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "您的角色无权进行此操作" in r.text and "需要以下角色之一" in r.text
    assert 'class="pb-site-header"' in r.text and "test-viewer" in r.text  # the site's header, signed in
    missing = client.get("/parcels/999999999", headers=role_headers["viewer"] | browser)
    assert missing.status_code == 404 and "没有这个地块" in missing.text and "no parcel" not in missing.text
    # a script asking for JSON (fetch sends */*) still gets JSON
    assert client.get("/parcels/999999999", headers=role_headers["viewer"]).json()["detail"].startswith("no parcel")
