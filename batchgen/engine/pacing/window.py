"""The account's window shared by every process that uses the same API and token.

The vendor's limit is per token; a ``Throttle`` is per process. A ``SharedWindow`` keeps the
one count that every process of the account agrees on, in a store they all reach: a SQLite
file in the per-user state directory (``window_local``, the default: one host, nothing to
install) or a Redis server (``window_redis``, ``--limiter redis://HOST:PORT/DB``: many hosts).

What the store holds, and the rule (the same in both stores):

* ``answered``: the time each request of the account was answered. It counts until
  ``window`` seconds after that, exactly as in the in-process throttle.
* per process (a *member*): when it was last seen (``seen``, refreshed by every exchange and
  by a heartbeat every ``beat`` seconds), how many of its requests are in flight, and the
  deadline of the request it has waiting (its *head*, or none).
* A request is let through while ``answered in the last window + in flight + heads ahead <
  usable``, where *heads ahead* counts the other live members whose waiting request has an
  earlier deadline. So when there is room for everyone, everyone goes; when one slot is left,
  the earliest deadline of the account takes it, whichever process it belongs to (submits,
  whose deadline is "now", before polls, whose deadline is "due + lag").
* A member that stops (killed, or its host gone) leaks nothing beyond the window: its in-flight
  requests count only while ``seen`` is within the window, and its head only while ``seen``
  is within ``stale`` seconds (2 s), so the others get its share of the window within two
  seconds. A member that finishes cleanly removes itself at once.

Times cross process (and host) boundaries only as *offsets*: a process sends "this deadline is
in 3.2 s", "this request was answered 0.1 s ago"; the store turns them into its own clock (the
wall clock of the host for SQLite; the Redis server's ``TIME`` for Redis), so no two hosts'
clocks are ever compared. Answers are not written one by one: the next exchange, or the
heartbeat, carries them (an answer counts as in flight until then, which is the same count).

Slots may be asked for several at a time (``count``: the requests of the process that are due
now): the store grants as many as fit (``used + ahead + granted <= usable``) and counts them
all as in flight at once, so a process with a burst to send makes one exchange, not one per
request. Slots the process did not use within a heartbeat go back (``returned``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BEAT", "KEEP", "STALE", "SharedWindow", "Verdict", "WindowRequest"]

log = logging.getLogger(__name__)

#: Seconds between heartbeats (at most; a shorter window beats faster).
BEAT = 0.5
#: Seconds after its last heartbeat that a member's waiting request stops being reserved for.
STALE = 2.0
#: Seconds of answers and silent members kept in the store (at least the window).
KEEP = 60.0


@dataclass(frozen=True, slots=True)
class WindowRequest:
    """One exchange with the store. Times are offsets in seconds from the store's "now".

    ``want``: the deadline of the request asking for a slot (None: only a heartbeat);
    ``after``: the deadline of this process's next waiting request, published as its head if
    this one is let through (None: nothing else waits); ``answered``: how long ago each request
    answered since the last exchange came back (seconds, >= 0); ``count``: slots wanted (at
    most); ``returned``: slots granted earlier and never used (they were not sent).
    """

    usable: int
    window: float
    want: float | None = None
    after: float | None = None
    answered: tuple[float, ...] = ()
    count: int = 1
    returned: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The store's answer: ``granted`` (slots now counted for this process, 0 to ``count``),
    ``used`` (slots of the account's window in use, before these), ``sharers`` (other live
    processes) and
    ``retry_in`` (seconds until the oldest answer leaves the window: a refused request's next
    chance; 0 when there is nothing to expect)."""

    granted: int
    used: int
    sharers: int
    retry_in: float


def member_name() -> str:
    """A name for this process among the members: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


class SharedWindow(ABC):
    """Client side of one store: batches answers, beats, and asks for slots.

    ``clock`` is the local clock the offsets are measured on (the throttle's).
    """

    #: Shown in logs and the heartbeat line ("this host" or the Redis address).
    where: str = "this host"

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self.owner = member_name()
        self.sharers = 0
        self._clock = clock
        self._answered: list[float] = []  # local clock times of answers not yet sent
        self._returned = 0  # granted slots given back, not yet sent
        self._lease = 0  # granted slots not used yet ...
        self._lease_until = 0.0  # ... until this local time, then given back
        self._beat_task: asyncio.Task[None] | None = None
        self._usable = 1
        self._window = 60.0
        self._lock = asyncio.Lock()  # one exchange at a time: answers are sent exactly once

    @abstractmethod
    async def _exchange(self, request: WindowRequest) -> Verdict:
        """One atomic read-modify-write at the store."""

    @abstractmethod
    async def _leave(self) -> None:
        """Remove this member (its answers stay: they still count)."""

    async def acquire(
        self, *, usable: int, window: float, want: float, after: float | None, count: int = 1
    ) -> Verdict:
        """Ask for up to ``count`` slots, the first for a request whose deadline is ``want``
        seconds from now."""
        self._usable, self._window = usable, window
        return await self._send(want=want, after=after, count=count)

    def take_lease(self) -> bool:
        """Use one slot granted by an earlier exchange (False: none left, or too old)."""
        if self._lease and self._clock() < self._lease_until:
            self._lease -= 1
            return True
        return False

    def answered(self) -> None:
        """A request of this process has been answered (sent with the next exchange)."""
        self._answered.append(self._clock())

    async def beat(self) -> Verdict:
        """Refresh this member and send the answers gathered since the last exchange."""
        return await self._send(want=None, after=None, count=0)

    async def _send(self, *, want: float | None, after: float | None, count: int) -> Verdict:
        async with self._lock:
            return await self._send_locked(want, after, count)

    async def _send_locked(self, want: float | None, after: float | None, count: int) -> Verdict:
        now = self._clock()
        if self._lease and (now >= self._lease_until or count):
            self._returned += self._lease  # unused for a beat (or asked for anew): not sent
            self._lease = 0
        sent, returned = len(self._answered), self._returned
        answered = tuple(max(0.0, now - t) for t in self._answered[:sent])
        verdict = await self._exchange(
            WindowRequest(self._usable, self._window, want, after, answered, count, returned)
        )
        del self._answered[:sent]  # only once the store has them (a failure keeps them)
        self._returned -= returned
        if verdict.granted > 1:
            self._lease = verdict.granted - 1
            self._lease_until = now + self.beat_every(self._window)
        self.sharers = verdict.sharers
        return verdict

    def beat_every(self, window: float) -> float:
        """Seconds between heartbeats for ``window``: ``BEAT``, or faster for short windows."""
        return min(BEAT, window / 4)

    async def start(self, *, usable: int, window: float) -> None:
        """Join the store (raises ``UsageError`` if it cannot be reached) and start beating."""
        self._usable, self._window = usable, window
        await self.beat()
        self._beat_task = asyncio.create_task(self._beat_loop(self.beat_every(window)))

    async def _beat_loop(self, every: float) -> None:
        warned = False
        while True:
            await asyncio.sleep(every)
            try:
                await self.beat()
                warned = False
            except Exception as exc:  # the store hiccuped: requests wait, the next beat retries
                if not warned:
                    log.warning("%s; trying again", exc)
                    warned = True

    async def close(self) -> None:
        """Stop beating, send the last answers, leave the store."""
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task
            self._beat_task = None
        with contextlib.suppress(Exception):
            await self.beat()
            await self._leave()
