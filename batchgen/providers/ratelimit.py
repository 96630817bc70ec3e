"""Rate-limit hints from response headers, parsed defensively into one domain value.

Sources: the vendor contract (``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` on every
response; the reset's format is undocumented, the limits are per minute) and RFC 9110:
section 10.2.3 (``Retry-After``: delay-seconds or an HTTP-date) and section 6.6.1 (``Date``:
when the origin server made the answer, on its own clock). A header that cannot be used is
ignored (None), never an error: a hint is advice, and the deadline caps whatever it asks for
(``engine/guards.py``).

Clock-proof pauses (a host clock an hour slow once turned ``Retry-After: 10`` plus an absolute
reset into "hold every request for 3,610 s"):

* ``Retry-After``, when given, says how long to wait and wins over ``X-RateLimit-Reset``
  (which describes the window, not this answer);
* a point in time (Unix seconds or milliseconds, an HTTP date) is read against the answer's
  own ``Date`` header, so the difference between the two clocks (``RateInfo.skew``) cancels
  out; only without a usable ``Date`` is this machine's clock used;
* a reset is never further away than one window (the vendor counts requests per minute), so
  a longer one is capped at the window, and so is a point in time read on this machine's
  clock; ``RateInfo.note`` says what was asked, for the log. A relative ``Retry-After`` needs
  no clock and is kept as sent: only the deadline limits it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RESET",
    "VENDOR_WINDOW",
    "RateInfo",
    "parse_rate_headers",
    "parse_remaining",
    "parse_reset",
    "retry_after_of",
    "server_clock",
]

#: Seconds to wait after a 429 whose reset header is missing or unreadable.
DEFAULT_RESET = 60.0
#: The vendor's rate-limit window in seconds (grokimagine-api.md: requests per minute).
VENDOR_WINDOW = 60.0
_MAX_HEADER = 200  # characters; a longer hint is not a number or a date


@dataclass(frozen=True, slots=True)
class RateInfo:
    """What a response said about the account's request budget.

    ``remaining`` is a request count; ``reset_after`` and ``retry_after`` are seconds from now
    (finite, >= 0; already capped as the module docstring says). Each is None when absent or
    unreadable. ``skew`` is the server's clock minus this machine's, in seconds, measured from
    the ``Date`` header (None without one); ``note`` says which hint was capped and from
    what, in words for the log (None when nothing was capped).
    """

    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None
    skew: float | None = None
    note: str | None = None

    def pause(self) -> float | None:
        """How long to hold every request back, if the server asked for a pause (seconds):
        ``Retry-After`` when given, else the reset."""
        return self.retry_after if self.retry_after is not None else self.reset_after


@dataclass(frozen=True, slots=True)
class _Hint:
    seconds: float
    absolute: bool  # a point in time, not a number of seconds


def _parse_hint(value: str | None, now: float) -> _Hint | None:
    if value is None or not value.strip() or len(value) > _MAX_HEADER:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        seconds = _seconds_until_http_date(text, now)
        return None if seconds is None else _Hint(seconds, absolute=True)
    if not math.isfinite(number) or number < 0:
        return None
    if number >= 1e11:  # Unix milliseconds
        return _Hint(max(0.0, number / 1000 - now), absolute=True)
    if number >= 1e9:  # Unix seconds
        return _Hint(max(0.0, number - now), absolute=True)
    return _Hint(number, absolute=False)


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a reset given as seconds, Unix seconds, Unix milliseconds or an HTTP date.

    ``now`` is the time (Unix seconds) a point in time is measured from: the server's, when
    known (:func:`server_clock`); default this machine's. Garbage, NaN, infinities and
    negative numbers give None (the caller then uses ``DEFAULT_RESET`` after a 429); a time
    in the past gives 0. Absurd but finite values are returned as they are: the caller caps.
    """
    hint = _parse_hint(value, time.time() if now is None else now)
    return None if hint is None else hint.seconds


def _seconds_until_http_date(text: str, now: float) -> float | None:
    when = _http_date(text)
    if when is None:
        return None
    return max(0.0, when - now)


def _http_date(text: str) -> float | None:
    """An HTTP date as Unix seconds (a date without a zone is UTC); None when unreadable."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        stamp = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return stamp if math.isfinite(stamp) else None


def server_clock(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's time (Unix seconds) when it answered, from its ``Date`` header (RFC 9110
    section 6.6.1); None when absent or unreadable. ``now`` is this machine's (default)."""
    value = headers.get("Date")
    if value is None or not value.strip() or len(value) > _MAX_HEADER:
        return None
    return _http_date(value.strip())


def retry_after_of(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from now, a date read against the answer's ``Date`` (not
    capped: the caller has its own limit); None when absent or unreadable."""
    local = time.time() if now is None else now
    server = server_clock(headers)
    return parse_reset(headers.get("Retry-After"), local if server is None else server)


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


def parse_rate_headers(
    headers: Mapping[str, str], now: float | None = None, *, window: float = VENDOR_WINDOW
) -> RateInfo:
    """Read ``X-RateLimit-Remaining``, ``X-RateLimit-Reset``, ``Retry-After`` and ``Date``
    into a :class:`RateInfo` (seconds; ``window`` is the vendor's, in seconds); never raises."""
    local = time.time() if now is None else now
    server = server_clock(headers)
    skew = None if server is None else server - local
    clock = local if server is None else server
    reset = _parse_hint(headers.get("X-RateLimit-Reset"), clock)
    retry = _parse_hint(headers.get("Retry-After"), clock)
    notes: list[str] = []
    reset_after = None if reset is None else _within(window, "X-RateLimit-Reset", reset, notes)
    retry_after = None if retry is None else retry.seconds
    if retry is not None and retry.absolute and server is None:
        retry_after = _within(window, "Retry-After", retry, notes)
    return RateInfo(
        remaining=parse_remaining(headers.get("X-RateLimit-Remaining")),
        reset_after=reset_after,
        retry_after=retry_after,
        skew=skew,
        note="; ".join(notes) or None,
    )


def _within(window: float, name: str, hint: _Hint, notes: list[str]) -> float:
    """``hint``'s seconds, at most ``window`` (noted in ``notes`` when capped)."""
    if hint.seconds <= window:
        return hint.seconds
    why = (
        "a time read on this machine's clock, the answer having no Date"
        if name == "Retry-After"
        else "a reset comes within one window"
    )
    notes.append(
        f"{name} asked for {hint.seconds:,.0f} s, more than the vendor's {window:,.0f} s "
        f"window ({why}): {window:,.0f} s taken"
    )
    return window
