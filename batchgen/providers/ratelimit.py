"""Rate-limit hints from response headers, parsed defensively into one domain value.

Sources: the vendor contract (``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` on every
response; the reset's format is undocumented) and RFC 9110 section 10.2.3 (``Retry-After``:
delay-seconds or an HTTP-date). A header that cannot be used is ignored (None), never an
error: a hint is advice, and the deadline caps whatever it asks for (``engine/pacing/throttle.py``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_RESET", "RateInfo", "parse_rate_headers", "parse_remaining", "parse_reset"]

#: Seconds to wait after a 429 whose reset header is missing or unreadable.
DEFAULT_RESET = 60.0
_MAX_HEADER = 200  # characters; a longer hint is not a number or a date


@dataclass(frozen=True, slots=True)
class RateInfo:
    """What a response said about the account's request budget.

    ``remaining`` is a request count; ``reset_after`` and ``retry_after`` are seconds from now
    (finite, >= 0). Each is None when absent or unreadable.
    """

    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None

    def pause(self) -> float | None:
        """How long to hold every request back, if the server asked for a pause."""
        hints = [h for h in (self.retry_after, self.reset_after) if h is not None]
        return max(hints) if hints else None


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a reset given as seconds, Unix seconds, Unix milliseconds or an HTTP date.

    Garbage, NaN, infinities and negative numbers give None (the caller then uses
    ``DEFAULT_RESET`` after a 429); a time in the past gives 0. Absurd but finite values are
    returned as they are: the deadline, not this parser, decides how long is too long.
    """
    if value is None or not value.strip() or len(value) > _MAX_HEADER:
        return None
    now = time.time() if now is None else now
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now)
    if not math.isfinite(number) or number < 0:
        return None
    if number >= 1e11:  # Unix milliseconds
        return max(0.0, number / 1000 - now)
    if number >= 1e9:  # Unix seconds
        return max(0.0, number - now)
    return number


def _seconds_until_http_date(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None


def parse_remaining(value: str | None) -> int | None:
    """``X-RateLimit-Remaining`` as a non-negative whole number; anything else is None."""
    if value is None or not value.strip() or len(value) > _MAX_HEADER:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return int(number)


def parse_rate_headers(headers: Mapping[str, str], now: float | None = None) -> RateInfo:
    """Read ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` and ``Retry-After``; never raises."""
    return RateInfo(
        remaining=parse_remaining(headers.get("X-RateLimit-Remaining")),
        reset_after=parse_reset(headers.get("X-RateLimit-Reset"), now),
        retry_after=parse_reset(headers.get("Retry-After"), now),
    )
