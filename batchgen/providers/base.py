"""The provider seam: what the engine needs of a video vendor, in domain terms.

The engine speaks only to :class:`Provider`; a vendor's wire details (URLs, JSON envelopes,
headers) live in its own module (``providers/grokimagine.py``). A provider raises the error
tree of :mod:`batchgen.errors` by what the caller can do:

* ``submit`` returns a task id, or raises ``AuthError`` (stop the run), ``PermanentApiError``
  (the row is refused; nothing was created), ``NotSentError`` / ``RateLimitedError`` (nothing
  was created; send again after any pause) or ``AmbiguousSubmitError`` (maybe created: never
  resend without the user). ``providers/submit_table.py`` is the table behind that choice.
* ``status`` returns a :class:`~batchgen.models.TaskStatus`, or raises ``AuthError``,
  ``TaskGoneError`` (the vendor does not know the task), ``ProtocolError`` (an answer that
  cannot be used, confined to the task) or ``TransientApiError`` (ask again later).

Every answer's rate-limit hints reach the throttle through the ``on_response`` hook, and
:class:`ApiHealth` says whether the vendor has been reachable lately (the outage rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from batchgen.models import JobSpec, TaskStatus

__all__ = ["ApiHealth", "Provider", "SendMark"]


@dataclass(slots=True)
class SendMark:
    """Set by the provider the moment a request's headers have left this process: a caller
    whose request is cancelled knows whether the vendor may have seen it."""

    sent: bool = False


@dataclass(slots=True)
class ApiHealth:
    """Whether requests reach the vendor. Times are on the provider's monotonic clock.

    A request *succeeds* when any answer below 500 comes back; a 5xx, a connection that
    fails or an answer that never completes is a failure. ``failing_since`` is when the
    first failure after the last success happened (None while things work).
    """

    ever_reached: bool = False
    last_success: float | None = None
    failing_since: float | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive

    def succeeded(self, now: float) -> None:
        """One request got a usable answer."""
        self.ever_reached = True
        self.last_success = now
        self.failing_since = None
        self.failures = 0

    def failed(self, now: float, reason: str) -> None:
        """One request failed for ``reason`` (plain words, no secrets)."""
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        self.last_error = reason

    def down_for(self, now: float) -> float:
        """Seconds since requests started failing without a success since (0: not failing)."""
        return 0.0 if self.failing_since is None else max(0.0, now - self.failing_since)


class Provider(Protocol):
    """A video vendor as the engine sees it."""

    requests: int  # requests sent by this process
    rate_limited: int  # 429s met
    token_accepted: bool  # True once any answer other than 401 came back
    health: ApiHealth

    @property
    def host(self) -> str:
        """The vendor's host (for messages; never the token)."""
        ...

    def clock(self) -> float:
        """The monotonic clock ``health`` is measured on."""
        ...

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        """Start one generation; the vendor's task id (see the module docs for errors).

        ``mark.sent`` becomes True once the request has left (for a cancelled submit)."""
        ...

    async def status(self, task_id: str) -> TaskStatus:
        """The state of one task (see the module docs for errors)."""
        ...
