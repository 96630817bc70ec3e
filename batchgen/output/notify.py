"""``--notify-url``: POST a JSON summary when a run ends. A failure is logged, never fatal.

A webhook URL carries its secret in its path (Slack's ``/services/T…/B…/…``), so only its host
is ever logged, and the URL itself is registered as a secret (``batchgen.text``): no log line,
error or stored string can show it. Redirects are not followed: a redirect would send the
summary to an address nobody gave, and a loop of them once logged the whole URL; a 3xx is
reported with the host it pointed to.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from batchgen.text import register_secret

__all__ = ["send_notice"]

log = logging.getLogger(__name__)


async def send_notice(
    url: str, text: str, details: dict[str, Any], *, seconds: float = 10.0
) -> bool:
    """POST ``{"text": text, **details}`` (Slack-compatible) to ``url`` once, following no
    redirect; True when the server took it (HTTP 2xx). ``seconds`` bounds the whole call."""
    register_secret(url)
    host = _host(url) or "the notify URL"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.post(url, json={"text": text, **details}, allow_redirects=False) as response,
        ):
            if response.status < 300:
                return True
            if response.status < 400:
                location = urljoin(url, response.headers.get("Location", ""))
                target = _host(location) or "an unreadable address"
                log.warning(
                    "the completion notice to %s was redirected (HTTP %d) to %s: not followed; "
                    "give --notify-url the final address",
                    host,
                    response.status,
                    target,
                )
                return False
            log.warning("the completion notice to %s was refused (HTTP %d)", host, response.status)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("could not send the completion notice to %s: %s", host, _reason(exc, seconds))
    return False


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _reason(exc: BaseException, seconds: float) -> str:
    """Why the POST failed, in words that cannot hold the URL (aiohttp's messages may)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {seconds:.0f} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return "the URL is not usable"
    return type(exc).__name__
