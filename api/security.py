"""Browser-facing response headers, set in one place (``SecurityHeaders``, an ASGI middleware).

- Every HTML page gets a Content-Security-Policy: everything from this service only (the maps' Leaflet and
  the API docs' Swagger UI are served under ``/static/vendor``), plus the configured basemap's tile host
  for images. Inline scripts and styles stay allowed ('unsafe-inline'): folium writes each map as an
  inline script, Swagger UI starts from one, and the pages carry inline styles; what CSP adds here is
  that nothing loads or is sent anywhere else (``connect-src``/``form-action`` 'self'), no plugin runs and
  no page can be framed. A page that sets a stricter policy of its own (the reports) keeps it.
- Every response: ``X-Frame-Options: DENY`` (with ``frame-ancestors 'none'`` in the policy, for browsers
  that read only one of them) and ``X-Content-Type-Options: nosniff``.
- Caching, the rule: on any route that needs a credential, JSON responses (``application/json`` and every
  ``+json`` type, GeoJSON included) and file downloads (``Content-Disposition: attachment``) are sent with
  ``Cache-Control: no-store``, replacing whatever the route set: parcel records, lists, map layers and
  exports carry owners' names, ID numbers and phones (masked or not), and no browser or proxy cache may
  keep them. Images, vector tiles, static assets and HTML pages keep their own caching (tiles carry no
  personal fields; the map pages fetch their personal data as JSON). Public paths are left alone.
- The session cookie gets ``Secure`` whenever the request came over HTTPS: directly, or through a
  trusted proxy saying ``X-Forwarded-Proto: https`` (``api.proxy``; ``Settings.trusted_proxies``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import SESSION_COOKIE, is_public_path
from api.proxy import is_https
from gis.platform.config import Settings

_JSON = re.compile(rb"^application/([\w.-]+\+)?json\b", re.IGNORECASE)
_COOKIE = SESSION_COOKIE.encode() + b"="


def _basemap_source(url: str | None) -> str | None:
    """The CSP source of a basemap template (``https://t{s}.tianditu.gov.cn/...`` → ``https://*.tianditu.gov.cn``)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    labels = parts.netloc.split(".")
    if "{" in labels[0]:  # a subdomain placeholder: any subdomain of the rest
        labels[0] = "*"
    return f"{parts.scheme}://{'.'.join(labels)}"


def content_security_policy(settings: Settings) -> str:
    """The pages' policy: this service only, the basemap's host for images."""
    images = " ".join(filter(None, ("'self' data: blob:", _basemap_source(settings.basemap_url))))
    return ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src {images}; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.csp = content_security_policy(settings).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded = not is_public_path(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(scope, list(message.get("headers", [])), guarded)
            await send(message)

        await self.app(scope, receive, with_headers)

    def _headers(self, scope: Scope, headers: list[tuple[bytes, bytes]], guarded: bool) -> list[tuple[bytes, bytes]]:
        names = {k.lower() for k, _ in headers}
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        disposition = next((v for k, v in headers if k.lower() == b"content-disposition"), b"")
        if content_type.lower().startswith(b"text/html") and b"content-security-policy" not in names:
            headers.append((b"content-security-policy", self.csp))
        if b"x-frame-options" not in names:
            headers.append((b"x-frame-options", b"DENY"))
        if b"x-content-type-options" not in names:
            headers.append((b"x-content-type-options", b"nosniff"))
        if guarded and (_JSON.match(content_type) or disposition.lower().startswith(b"attachment")):
            headers = [(k, v) for k, v in headers if k.lower() not in (b"cache-control", b"expires", b"pragma")]
            headers.append((b"cache-control", b"no-store"))
        cookies = [i for i, (k, v) in enumerate(headers) if k.lower() == b"set-cookie" and v.startswith(_COOKIE)]
        if cookies and is_https(HTTPConnection(scope)):
            for i in cookies:
                k, v = headers[i]
                if b"secure" not in [p.strip().lower() for p in v.split(b";")]:
                    headers[i] = (k, v + b"; Secure")
        return headers
