"""Who may call what: every route declares its roles with ``Depends(require(Role.X))``.

``require(Role.viewer)`` admits viewers and every higher role (viewer < district_editor < inspector
< admin); ``require_any(Role.district_editor, Role.admin)`` admits exactly those. Both return a
``RoleDependency`` carrying ``.roles``, so the declared roles of each route can be read back
(``route_roles``) and checked by a test over the whole route list. The dependency returns the
``Principal``; put it in the handler's signature to use it (``principal.reveal_personal``), or in
the route's ``dependencies=[...]`` when the handler does not need it.

Credentials: ``Authorization: Bearer <token>`` (scripts, GIS clients), HTTP Basic with the user's name and
one of the user's API tokens as the password (GDAL before 3.9, QGIS and ArcGIS can send nothing else), or
the HttpOnly session cookie set by the login page (browsers). A password is never accepted over Basic: only
the login page takes one, where attempts are throttled. No valid credential → 401 with both challenges;
a role not admitted → 403.

Also here, installed with ``install(app)``: keeping personal data out of logs and error messages
(access-log lines without query strings, validation errors without the rejected input, unhandled
errors logged without their message details and answered with a bare 500).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from gis.platform.db import transaction
from gis.platform.errors import Forbidden, Unauthenticated
from gis.records.users import ROLE_RANK, Principal, Role, hash_token, principal_for_token

__all__ = ["Principal", "PrincipalCache", "Role", "RoleDependency", "RouteInfo", "app_routes", "install",
           "principal_cache", "require", "require_any", "route_roles"]

SESSION_COOKIE = "pb_session"
# Paths anyone may call; everything else must declare its roles (a test walks app.routes).
PUBLIC_PATHS = frozenset({"/health", "/login", "/logout", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                          "/public"})
PUBLIC_PREFIXES = ("/public/", "/static/")


def is_public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class PrincipalCache:
    """Callers recently looked up, by credential hash, for ``seconds``: most requests then reach the
    database once (their own query) instead of twice.

    The price: a token revoked or a user disabled by another process (the CLI, another worker) keeps
    working here for at most ``seconds``; changes made through this app clear it at once. Failed
    lookups are not kept, so a new token works immediately. 0 turns the cache off.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Principal]] = {}

    def get(self, kind: str, token: str) -> Principal | None:
        entry = self._entries.get((kind, hash_token(token)))
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, kind: str, token: str, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= _CACHE_MAX:  # expired entries are dropped only here
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= _CACHE_MAX:
                self._entries.clear()
        self._entries[(kind, hash_token(token))] = (self._clock() + self.seconds, principal)

    def clear(self) -> None:
        self._entries.clear()


_CACHE_MAX = 10_000


def principal_cache(request: Request) -> PrincipalCache:
    """The app's cache of resolved tokens; routes that revoke tokens or end a session clear it."""
    return request.app.state.principals


@dataclass(frozen=True)
class Credential:
    kind: str  # api | session
    token: str
    user: str | None = None  # given with Basic: the token must be this user's


def credential(request: Request) -> Credential:
    """The caller's credential from the Authorization header (Bearer, or Basic with a token as the password),
    else from the session cookie; 401 when there is none."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            return _basic(value.strip())
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>', or Basic with your user name and a token")
        return Credential("api", value.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return Credential("session", cookie)
    raise Unauthenticated("sign in at /login, or send 'Authorization: Bearer <token>'")


def _basic(value: str) -> Credential:
    try:
        user, sep, token = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep or not user or not token:
        raise Unauthenticated("Basic credentials are the user name and an API token, as 'name:token' in base64")
    return Credential("api", token, user)


def _look_up(engine: Engine, kind: str, token: str) -> Principal | None:
    with transaction(engine) as conn:
        return principal_for_token(conn, token, kind)


async def authenticate(request: Request) -> Principal:
    """The caller, from the cache or (in the thread pool, on a connection of its own) the database."""
    given = credential(request)
    kind, token = given.kind, given.token
    cache = principal_cache(request)
    principal = cache.get(kind, token)
    if principal is None:
        principal = await run_in_threadpool(_look_up, request.app.state.engine, kind, token)
        if principal is None:
            raise Unauthenticated("the token is not valid (revoked, mistyped or for another server)" if kind == "api"
                                  else "the session has expired: sign in again at /login")
        cache.put(kind, token, principal)
    if given.user is not None and given.user != principal.name:
        raise Unauthenticated("the token is not valid (revoked, mistyped or for another server)")
    return principal


class RoleDependency:
    """A FastAPI dependency admitting the roles in ``.roles``; it returns the calling Principal."""

    def __init__(self, roles: Iterable[Role]) -> None:
        self.roles = frozenset(roles)

    def __repr__(self) -> str:
        return f"RoleDependency({', '.join(sorted(r.value for r in self.roles))})"

    async def __call__(self, request: Request) -> Principal:
        # async, with the lookup in the thread pool only on a cache miss: a plain def would cost every
        # request a hop to the thread pool and back, and a query.
        principal = await authenticate(request)
        request.state.principal = principal  # also when refused: the error page's header says who is signed in
        if principal.role not in self.roles:
            allowed = ", ".join(r.value for r in sorted(self.roles, key=ROLE_RANK.get))
            raise Forbidden(f"this needs the role {allowed}; you are {principal.role.value}")
        return principal


@lru_cache
def require(minimum: Role) -> RoleDependency:
    """``minimum`` and every role above it. Cached: one object per role, so FastAPI runs it once a request."""
    return RoleDependency(r for r in Role if ROLE_RANK[r] >= ROLE_RANK[minimum])


@lru_cache
def require_any(*roles: Role) -> RoleDependency:
    """Exactly these roles."""
    return RoleDependency(roles)


def route_roles(route: Any) -> frozenset[Role] | None:
    """The roles a route (anything with a ``dependant``) admits: the intersection if it declares several
    (router and route), None if it declares none."""
    found: list[frozenset[Role]] = []
    stack = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, RoleDependency):
            found.append(dep.call.roles)
        stack.extend(dep.dependencies)
    if not found:
        return None
    return frozenset.intersection(*found)


@dataclass(frozen=True)
class RouteInfo:
    """One route as served: its full path, methods and declared roles (None: declares none)."""

    path: str
    methods: frozenset[str]
    roles: frozenset[Role] | None
    is_api: bool
    path_params: dict[str, Any]  # name → annotated type


def app_routes(app: FastAPI) -> list[RouteInfo]:
    """Every route of the app with the dependencies it really runs (routers' included), flattened."""
    try:  # FastAPI ≥ 0.150 keeps included routers nested and resolves their routes lazily
        from fastapi.routing import iter_route_contexts

        routes: Iterable[Any] = iter_route_contexts(app.routes)
    except ImportError:
        routes = app.routes
    out = []
    for route in routes:
        original = getattr(route, "original_route", route)
        dependant = getattr(route, "dependant", None) if isinstance(original, APIRoute) else None
        params = {p.name: p.field_info.annotation for p in dependant.path_params} if dependant else {}
        out.append(RouteInfo(path=route.path, methods=frozenset(getattr(route, "methods", None) or ()),
                             roles=route_roles(route) if dependant else None, is_api=dependant is not None,
                             path_params=params))
    return out


# ---------------------------------------------------------------------------------------------
# Logs without personal data (the error responses are api.errors')


class _AccessLogWithoutQuery(logging.Filter):
    """uvicorn's access line is (client, method, path?query, http version, status): drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


_ACCESS_FILTER = _AccessLogWithoutQuery()


def install(app: FastAPI, cache_seconds: float) -> None:
    """Wire authentication into the app: the principal cache, and the access-log filter that drops query strings."""
    app.state.principals = PrincipalCache(cache_seconds)
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access.filters:
        access.addFilter(_ACCESS_FILTER)
