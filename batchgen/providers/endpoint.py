"""Where the API is, and whether the token may travel there."""

from __future__ import annotations

import ipaddress
import os
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


def check_transport(base_url: str) -> None:
    """Refuse to send the token in clear text anywhere but this machine."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {base_url!r} is not an http(s) URL")
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
