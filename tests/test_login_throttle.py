"""Login throttling (issue 14, defect 3): failures lock the user name and the client address for a doubling,
capped time, during which even the right password gets 429 with Retry-After; every attempt is recorded for the
admin; X-Forwarded-For counts only from trusted proxies; parallel attempts cannot slip past the count.

Time is moved by shifting the recorded attempts back in the database, never by waiting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from gis.records import users as auth
from gis.records.users import LoginThrottle, Role

PASSWORD = "right-口令-123"
USERS = ("throttle-a", "throttle-b", "throttle-c")


@pytest.fixture(scope="module")
def users(engine):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = ANY(:n)"), {"n": list(USERS)})
        for name in USERS:
            auth.add_user(conn, name, Role.viewer, password=PASSWORD)
    yield USERS
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = ANY(:n)"), {"n": list(USERS)})


@pytest.fixture
def clean(engine):
    def wipe() -> None:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM login_attempts WHERE user_name LIKE 'throttle-%'"
                              " OR user_name LIKE 'nobody-%'"
                              " OR address LIKE '198.51.100.%' OR address LIKE '203.0.113.%'"))
    wipe()
    yield
    wipe()


def make_app(settings, **overrides):
    from api.app import create_app

    return create_app(settings.model_copy(update=overrides))


def post(browser, user, password, **headers):
    return browser.post("/login", data={"username": user, "password": password}, headers=headers)


def earlier(engine, seconds: float, user: str | None = None) -> None:
    """As if ``seconds`` had passed: the recorded attempts move back."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE login_attempts SET at = at - make_interval(secs => :s) "
                          "WHERE CAST(:u AS text) IS NULL OR user_name = :u"), {"s": seconds, "u": user})


def test_failures_lock_the_user_with_doubling_capped_waits(settings, engine, users, clean):
    app = make_app(settings, login_lock_max_seconds=16.0)
    with TestClient(app, follow_redirects=False, client=("198.51.100.1", 4000)) as browser:
        for _ in range(4):
            assert post(browser, "throttle-a", "wrong").status_code == 401
        fifth = post(browser, "throttle-a", "wrong")
        assert fifth.status_code == 429 and fifth.headers["retry-after"] == "2"
        locked = post(browser, "throttle-a", PASSWORD)  # the right password, while locked
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) in (1, 2)
        assert locked.headers["content-type"].startswith("application/json")
        assert "秒后再试" in locked.json()["detail"] and locked.json()["retry_after"] >= 1
        assert not locked.cookies
        page = post(browser, "throttle-a", PASSWORD, accept="text/html")
        assert page.status_code == 429 and "登录失败次数过多" in page.text and "retry-after" in page.headers
        waits = []
        for _ in range(5):  # each failure after the lock ran out doubles it, up to the cap
            earlier(engine, 20, "throttle-a")
            r = post(browser, "throttle-a", "wrong")
            assert r.status_code == 429
            waits.append(int(r.headers["retry-after"]))
        assert waits == [4, 8, 16, 16, 16]
        assert post(browser, "throttle-b", PASSWORD).status_code == 303  # another user is not affected
        earlier(engine, 20, "throttle-a")
        assert post(browser, "throttle-a", PASSWORD).status_code == 303  # lock over: the right password works
        assert post(browser, "throttle-a", "wrong").status_code == 401  # and the count starts again
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT success, locked, address FROM login_attempts WHERE user_name = 'throttle-a' "
                                 "ORDER BY id")).all()
    assert [(r.success, r.locked) for r in rows] == (
        [(False, False)] * 5 + [(False, True)] * 2 + [(False, False)] * 5 + [(True, False), (False, False)])
    assert {r.address for r in rows} == {"198.51.100.1"}


def test_failures_from_one_address_lock_the_address(settings, engine, users, clean):
    app = make_app(settings, login_address_max_failures=3)
    with TestClient(app, follow_redirects=False, client=("198.51.100.2", 4000)) as sprayer, \
            TestClient(app, follow_redirects=False, client=("198.51.100.3", 4000)) as other:
        assert [post(sprayer, f"nobody-{i}", "guess").status_code for i in range(3)] == [401, 401, 429]
        r = post(sprayer, "throttle-c", PASSWORD)  # a real user's right password, from the locked address
        assert r.status_code == 429 and "retry-after" in r.headers
        assert post(other, "throttle-c", PASSWORD).status_code == 303  # the same user from elsewhere


def test_forwarded_for_is_believed_from_trusted_proxies_only(settings, engine, users, clean):
    app = make_app(settings, trusted_proxies=("10.9.9.0/24",))
    with TestClient(app, follow_redirects=False, client=("10.9.9.9", 4000)) as proxied, \
            TestClient(app, follow_redirects=False, client=("198.51.100.4", 4000)) as direct:
        post(proxied, "nobody-1", "x", **{"x-forwarded-for": "203.0.113.5"})
        post(proxied, "nobody-2", "x", **{"x-forwarded-for": "203.0.113.6, 10.9.9.8"})  # a chain of our proxies
        post(proxied, "nobody-3", "x", **{"x-forwarded-for": "203.0.113.9, 203.0.113.7"})  # the client forged one
        post(direct, "nobody-4", "x", **{"x-forwarded-for": "203.0.113.8"})  # not from a proxy: ignored
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT user_name, address FROM login_attempts WHERE user_name LIKE 'nobody-%'"))
                   .all())
    assert got == {"nobody-1": "203.0.113.5", "nobody-2": "203.0.113.6", "nobody-3": "203.0.113.7",
                   "nobody-4": "198.51.100.4"}


def test_parallel_attempts_cannot_pass_the_count(engine, users, clean):
    """12 wrong passwords at once, each in its own transaction: exactly 5 are heard, the rest refused unheard."""
    throttle = LoginThrottle(lock_seconds=600)

    def attempt(i: int) -> auth.LoginResult:
        with engine.begin() as conn:
            return auth.login(conn, "throttle-b", f"wrong-{i}", 1.0, address=f"198.51.100.{10 + i}",
                              throttle=throttle)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(attempt, range(12)))
    assert all(r.token is None for r in results)
    with engine.connect() as conn:
        heard, unheard = conn.execute(text("SELECT count(*) FILTER (WHERE NOT locked), count(*) FILTER (WHERE locked) "
                                           "FROM login_attempts WHERE user_name = 'throttle-b'")).one()
    assert (heard, unheard) == (5, 7)
    with engine.begin() as conn:  # the right password too, while locked
        assert auth.login(conn, "throttle-b", PASSWORD, 1.0, throttle=throttle).retry_after > 500


def test_admin_lists_attempts_and_old_ones_are_pruned(client, settings, engine, users, clean, role_headers,
                                                      monkeypatch):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO login_attempts (at, user_name, address, success) "
                          "VALUES (now() - interval '400 days', 'throttle-c', '198.51.100.99', false)"))
    with TestClient(client.app, follow_redirects=False, client=("198.51.100.5", 4000)) as browser:
        assert post(browser, "throttle-c", "wrong").status_code == 401
        assert post(browser, "throttle-c", PASSWORD).status_code == 303
    listed = client.get("/users/login-attempts", params={"user": "throttle-c"}, headers=role_headers["admin"])
    assert listed.status_code == 200
    assert [(a["user_name"], a["address"], a["success"], a["locked"]) for a in listed.json()] == [
        ("throttle-c", "198.51.100.5", True, False), ("throttle-c", "198.51.100.5", False, False)]  # the old one pruned
    assert client.get("/users/login-attempts", params={"user": "throttle-c", "failed_only": True},
                      headers=role_headers["admin"]).json()[0]["success"] is False
    for role in ("viewer", "inspector"):
        assert client.get("/users/login-attempts", headers=role_headers[role]).status_code == 403
    assert client.get("/users/login-attempts", params={"limit": 0}, headers=role_headers["admin"]).status_code == 422

    from cli import app as cli
    from gis.platform.config import get_settings

    monkeypatch.setenv("GIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GIS_PG_FSYNC", "false")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["user", "attempts", "--user", "throttle-c"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    lines = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert [line[1:] for line in lines] == [["throttle-c", "198.51.100.5", "ok"],
                                            ["throttle-c", "198.51.100.5", "failed"]]


def test_nul_in_a_user_name_is_a_422(client):
    r = client.post("/login", data={"username": "a\0b", "password": "x"})
    assert r.status_code == 422 and "detail" in r.json()
