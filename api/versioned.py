"""Answers kept by data version (``gis.platform.versioned``) over HTTP: the ETag, a 304 for a repeat, the cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from gis.platform.versioned import BytesLRU, VersionedKey

# The client asks again each time (the data changes during the day) and an unchanged answer is a 304. JSON
# answers keep api.security's no-store instead (owners' names): a client keeping the tag itself still gets its 304.
VERSIONED_CACHE = {"Cache-Control": "private, max-age=0, must-revalidate"}


async def versioned_response(request: Request, cache: BytesLRU, key: VersionedKey,
                             build: Callable[[], Awaitable[bytes | None]],
                             respond: Callable[[bytes | None, dict[str, str]], Response]) -> Response:
    """304 when ``If-None-Match`` names the key; else the answer from ``cache``, built and kept on a miss."""
    headers = VERSIONED_CACHE | {"ETag": key.etag}
    if key.etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    found, data = cache.get(key)
    if not found:
        data = await build()
        cache.put(key, data)
    return respond(data, headers)


def _etags(header: str | None) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared by their tag, as RFC 9110 says)."""
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
