"""Where the API is, and whether the token may travel there."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from batchgen.errors import InsecureTransportError, UsageError

__all__ = ["check_transport", "normalise_base_url", "resolve_base_url"]


def resolve_base_url(
    option: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    env_var: str,
    default: str,
) -> str:
    """``--base-url``, else the provider's base-URL variable ``env_var``, else ``default``
    (the provider's own address: ``ProviderInfo.base_url_env`` / ``default_base_url``)."""
    env = os.environ if environ is None else environ
    url = option or env.get(env_var) or default
    return url.rstrip("/")


#: A base URL that ends in an API version (``https://api.x.ai/v1``, as OpenAI-style SDKs
#: write it): batchgen adds ``/v1/...`` itself, so every request would go to ``/v1/v1/...``.
_VERSION_AT_END = re.compile(r"/v\d+$", re.IGNORECASE)


def check_transport(base_url: str) -> None:
    """Refuse to send the token in clear text anywhere but this machine, and a base URL that
    cannot reach the API's paths. Raises InsecureTransportError or UsageError (exit 2,
    before anything is sent)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {base_url!r} is not an http(s) URL")
    version = _VERSION_AT_END.search(parts.path.rstrip("/"))
    if version:
        # every POST would meet a 404 that proves nothing about money: each row would end
        # "unknown", possibly charged, until a person checked the vendor's dashboard
        bare = base_url.rstrip("/")[: -len(version.group())]
        raise UsageError(
            f"the API URL {base_url} ends in {version.group()}: batchgen adds the API's "
            f"paths (/v1/...) itself; use {bare}"
        )
    if parts.scheme == "https" or _is_loopback(parts.hostname):
        return
    raise InsecureTransportError(
        f"refusing to send the API token over plain http to {parts.hostname}; use https"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_base_url(url: str) -> str:
    """The base URL as a state records it: scheme and host lower-cased, no trailing slash,
    no user info, query or fragment (so a token in a URL could never be stored)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"
