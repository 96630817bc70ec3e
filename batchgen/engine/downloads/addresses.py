"""Which video URLs batchgen fetches: http(s) only, and only from public addresses.

A video URL comes from the API's answer, so a bad or compromised answer could point
batchgen at ``http://169.254.169.254/`` (a cloud's metadata service), ``http://10.0.0.7/admin``
or ``file:///etc/passwd`` and have the answer saved as a "video" (server-side request
forgery). So:

* the scheme must be ``http`` or ``https``;
* an address written in the URL must be public (``ipaddress``'s ``is_global``: not loopback,
  private, link-local, shared/CGN, multicast, reserved or unspecified; an IPv4-mapped IPv6
  address is judged by its IPv4 address);
* a host name must resolve to public addresses only: :class:`PublicResolver` is the CDN
  session's resolver, so the check holds for the address actually connected to (no DNS
  rebinding between check and use) and for every redirect.

Private addresses are allowed when the API itself is on a loopback or private address (the
simulator, a test, an on-premises gateway) or with ``--allow-private-urls``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from batchgen.errors import DownloadError

__all__ = [
    "PrivateAddressError",
    "PublicResolver",
    "cdn_connector",
    "check_url",
    "host_is_private",
    "is_public",
]

SCHEMES = ("http", "https")


class PrivateAddressError(OSError):
    """A host name that resolves to no public address."""


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP address as text) is a public, routable unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def host_is_private(url: str) -> bool:
    """Whether ``url`` names ``localhost`` or a non-public address literal (the simulator)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    literal = _ip_literal(host)
    return literal is not None and not is_public(literal)


def check_url(url: str, *, allow_private: bool) -> None:
    """DownloadError unless ``url`` is http(s) with a host (and a public one if required)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise DownloadError(f"the video URL {url!r} is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise DownloadError(f"the video URL {url!r} is not http or https; it was not fetched")
    if not host:
        raise DownloadError(f"the video URL {url!r} names no host; it was not fetched")
    literal = _ip_literal(host)
    if not allow_private and literal is not None and not is_public(literal):
        raise DownloadError(
            f"the video URL {url!r} points at the non-public address {literal}; it was not "
            "fetched (--allow-private-urls allows it)"
        )


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping public addresses only; PrivateAddressError if none is left."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public(r["host"])]
        if not public:
            shown = ", ".join(sorted({r["host"] for r in found})) or "nothing"
            raise PrivateAddressError(
                f"{host} resolves to {shown}, not a public address; it was not fetched "
                "(--allow-private-urls allows it)"
            )
        return public

    async def close(self) -> None:
        await self._inner.close()


def cdn_connector(*, allow_private: bool) -> aiohttp.TCPConnector:
    """The connector of the CDN session: public addresses only unless ``allow_private``."""
    if allow_private:
        return aiohttp.TCPConnector()
    return aiohttp.TCPConnector(resolver=PublicResolver())
