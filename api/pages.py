"""What every HTML page of the API shares: the site's header for whoever is calling."""

from __future__ import annotations

from fastapi import Request

from api.auth import Principal, authenticate
from gis.maps.nav import site_header
from gis.platform.errors import Unauthenticated


def root_path(request: Request) -> str:
    """The service's root path behind a proxy ("" at the root)."""
    return request.scope.get("root_path", "")


def page_header(request: Request, current: str | None = None) -> str:
    """The header for the caller the route's role dependency admitted (``request.state.principal``); the public
    variant on a page that admits anyone."""
    return site_header(getattr(request.state, "principal", None), base_url=root_path(request), current=current)


async def optional_principal(request: Request) -> Principal | None:
    """The caller on a page anyone may open (the API docs): signed in, or None; never a 401."""
    try:
        principal = await authenticate(request)
    except Unauthenticated:
        return None
    request.state.principal = principal
    return principal
