"""``--notify-url``: POST a JSON summary when a run ends. A failure is logged, never fatal."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["send_notice"]

log = logging.getLogger(__name__)


async def send_notice(
    url: str, text: str, details: dict[str, Any], *, seconds: float = 10.0
) -> bool:
    """POST ``{"text": text, **details}`` (Slack-compatible); True when the server took it.

    Only the host is ever logged: webhook URLs carry their secret in the path.
    """
    host = urlsplit(url).hostname or "the notify URL"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.post(url, json={"text": text, **details}) as response,
        ):
            if response.status < 300:
                return True
            log.warning("the completion notice to %s was refused (HTTP %d)", host, response.status)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning(
            "could not send the completion notice to %s: %s", host, exc or type(exc).__name__
        )
    return False
