"""Build the throttle of a run: its limit, and the window it shares with other processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from batchgen import paths
from batchgen.config import Settings
from batchgen.engine.pacing.window import SharedWindow
from batchgen.errors import UsageError
from batchgen.providers.descriptor import LimitModel

if TYPE_CHECKING:
    from batchgen.engine.pacing.throttle import Throttle

__all__ = [
    "LIMITER_CHOICES",
    "LIMITER_HELP",
    "check_limiter",
    "limiter_option",
    "open_throttle",
    "window_name",
]

log = logging.getLogger(__name__)

LIMITER_CHOICES = "local, none or redis://HOST:PORT/DB"


def check_limiter(value: str) -> str:
    """``value`` if it names a limiter (``local``, ``none``, ``redis://…``); else UsageError."""
    text = value.strip()
    if text.lower() in ("local", "none") or text.startswith(("redis://", "rediss://", "unix://")):
        return text
    raise UsageError(f"{text!r} is not a limiter: expected {LIMITER_CHOICES}")


LIMITER_HELP = (
    "where the rate limit is counted: local (default: every run of this user on this host "
    "with the same API and token), none (this run alone), or redis://HOST:PORT/DB"
)


def limiter_option(text: str) -> str:
    """``check_limiter`` for argparse (``--limiter`` and the configuration file's key)."""
    try:
        return check_limiter(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def window_name(settings: Settings, token: str) -> str:
    """The shared window's name: the account's (``--account``), so every token of one account
    counts in one window; without one, the API and the token (as before accounts)."""
    if settings.api.account:
        return paths.digest(settings.api.base_url, "account", settings.api.account.strip())
    return paths.digest(settings.api.base_url, token)


def _shared_window(settings: Settings, token: str) -> SharedWindow | None:
    kind = check_limiter(settings.api.limiter)
    clock = asyncio.get_running_loop().time
    digest = window_name(settings, token)
    if kind.lower() == "none":
        return None
    if kind.lower() == "local":
        from batchgen.engine.pacing.window_sqlite import LocalWindow, local_window_path

        return LocalWindow(local_window_path(paths.user_state_dir(), digest), clock=clock)
    from batchgen.engine.pacing.window_redis import RedisWindow

    return RedisWindow(kind, digest, clock=clock)


#: The limit when a caller names no provider's model (a library user's tests).
_UNSTATED = LimitModel(requests=100, window=60.0)


@asynccontextmanager
async def open_throttle(
    settings: Settings, token: str, limits: LimitModel | None = None
) -> AsyncIterator[Throttle]:
    """The run's ``Throttle``, joined to the account's shared window while open.

    The limit is the provider's model ``limits`` unless the settings override it (``--rps``,
    ``--rpm``, ``--tier``). ``token`` is only hashed (it names the window when no
    ``--account`` does). Raises ``UsageError`` when the shared window cannot be reached
    (nothing has been sent yet) or a tier is unknown.
    """
    from batchgen.engine.pacing.throttle import (
        Throttle,  # aiohttp: not needed to parse a command line
    )

    api = settings.api
    limit, window = (limits or _UNSTATED).resolve(
        rpm=api.rpm, rps=api.rps, tier=api.tier, window=api.rate_window
    )
    shared = _shared_window(settings, token)
    throttle = Throttle(limit, window=window, margin=api.safety_margin, shared=shared)
    if shared is None:
        yield throttle
        return
    try:
        await shared.start(usable=throttle.usable, window=throttle.window)
        (log.info if shared.sharers else log.debug)(
            "the rate limit is shared through %s with %d other process(es) right now",
            shared.where,
            shared.sharers,
        )
        yield throttle
    finally:
        await shared.close()
