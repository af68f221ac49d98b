"""What a request says about its client, believed only from configured trusted proxies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are set by a reverse proxy in front of the service; a
client talking to the service directly could set them too (to dodge the login throttle with a new
address each time, or to be treated as HTTPS). So they count only when the peer that connected is
in ``Settings.trusted_proxies``. Behind a chain of proxies the client is the right-most forwarded
address that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str | None, trusted: tuple[str, ...]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in _networks(trusted))


def _trusted_setting(request: HTTPConnection) -> tuple[str, ...]:
    return tuple(request.app.state.settings.trusted_proxies)


def client_address(request: HTTPConnection) -> str | None:
    """The client's IP address: the peer's, or, when the peer is a trusted proxy, the forwarded one."""
    peer = request.client.host if request.client else None
    trusted = _trusted_setting(request)
    if not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # garbage in the header: the last trustworthy hop is all we know
                return peer
    return peer


def is_https(request: HTTPConnection) -> bool:
    """Whether the client reached us over HTTPS: directly, or as a trusted proxy says (X-Forwarded-Proto)."""
    if request.url.scheme in ("https", "wss"):
        return True
    peer = request.client.host if request.client else None
    if not _is_trusted(peer, _trusted_setting(request)):
        return False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https"
