"""The one error tree of batchgen, arranged by what the caller can do about each error.

::

    BatchgenError                      anything batchgen raises on purpose (exit 1)
    ├── UsageError                     bad option, config or environment; nothing sent (exit 2)
    │   └── InsecureTransportError     the token would travel over plain http to a remote host
    ├── ManifestError                  a manifest cannot be read at all (exit 2)
    ├── StateError                     the state file is unusable, or a transition was illegal
    │   ├── TransitionError            a guarded UPDATE changed no row: a bug, raised loudly
    │   └── StateConflictError         this manifest's state lives elsewhere, is missing, or
    │                                  was made against another API base URL (exit 2)
    ├── LockHeldError                  another process runs this manifest (exit 4)
    │   └── StateBusyError             another program held a write lock on the state past
    │                                  the run's deadline (exit 4 before anything was sent;
    │                                  a run that had sent stops early instead: exit 5)
    ├── ApiError                       the vendor API said no, or could not be reached
    │   ├── AuthError                  401: the token was refused; stop the whole run (exit 3)
    │   ├── PermanentApiError          400 and kin: this row will never succeed as it is
    │   │   ├── TaskGoneError          a vendor 4xx naming the task: it no longer knows it
    │   │   └── ProtocolError          an answer that cannot be used (bad field, too big)
    │   ├── TransientApiError          429, 5xx, garbage body: worth a retry after a pause
    │   │   ├── RateLimitedError       429 (carries the server's reset hint)
    │   │   └── NotSentError           the request never reached the server: safe to resend
    │   └── AmbiguousSubmitError       a POST was sent but its outcome is unknown: never resend
    │       └── NoSuchEndpointError    ... and it met a 404/405 page: wrong URL or provider
    ├── DownloadError                  a video could not be fetched or was cut short
    └── DiskFullError                  the disk (or quota) is full: the run stops cleanly (exit 7)

Third-party exceptions (aiohttp, sqlite3, openpyxl) are translated at the module boundary
with ``raise ... from exc``; nothing else escapes into the dispatcher or the CLI.
"""

from __future__ import annotations

from typing import ClassVar

from batchgen.text import clean_text

__all__ = [
    "AmbiguousSubmitError",
    "ApiError",
    "AuthError",
    "BatchgenError",
    "DiskFullError",
    "DownloadError",
    "InsecureTransportError",
    "LockHeldError",
    "ManifestError",
    "NoSuchEndpointError",
    "NotSentError",
    "PermanentApiError",
    "ProtocolError",
    "RateLimitedError",
    "StateBusyError",
    "StateConflictError",
    "StateError",
    "TaskGoneError",
    "TransientApiError",
    "TransitionError",
    "UsageError",
]


class BatchgenError(Exception):
    """Root of every error batchgen raises on purpose; ``exit_code`` is what the CLI returns.

    Its text is clean (``batchgen.text.clean_text``): a server's words quoted in a message
    cannot carry the token or terminal escapes into a log, a file or the terminal.
    """

    exit_code: ClassVar[int] = 1

    def __str__(self) -> str:
        return clean_text(super().__str__())


class UsageError(BatchgenError):
    """A bad option, configuration or environment: nothing was sent."""

    exit_code = 2


class InsecureTransportError(UsageError):
    """The token would be sent over plain http to a host that is not loopback."""


class ManifestError(BatchgenError):
    """A manifest that cannot be read at all (missing, not a spreadsheet, no prompt column...)."""

    exit_code = 2

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class StateError(BatchgenError):
    """The state file cannot be opened, is from a newer batchgen, or is corrupt."""

    exit_code = 2


class TransitionError(StateError):
    """A guarded status transition matched no row: the caller's view of the job was stale."""

    exit_code = 1


class StateConflictError(StateError):
    """A run would start a second state for a manifest, or use one made for another API."""


class LockHeldError(BatchgenError):
    """Another batchgen process holds the lock on this manifest's state."""

    exit_code = 4


class StateBusyError(LockHeldError):
    """Another program (a SQLite viewer with unsaved changes, a backup tool) held a write
    lock on the state for longer than the run may wait (its deadline)."""


class ApiError(BatchgenError):
    """The vendor API refused a request or could not be reached.

    ``status`` is the HTTP status (None when no response arrived), ``code`` the body's
    ``code`` field when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthError(ApiError):
    """401: the token is missing, wrong or revoked. Fatal for the whole run."""

    exit_code = 3


class PermanentApiError(ApiError):
    """The request itself is wrong (400): resending it would fail the same way."""


class TaskGoneError(PermanentApiError):
    """The vendor answered a status request with its own 4xx naming the task: it no longer
    knows this task id. Polling it again is pointless; ``--resubmit-unknown`` sends the row."""


class ProtocolError(PermanentApiError):
    """An answer that cannot be used: a field of the wrong type, an implausible value, a body
    over the size limit. Confined to its row; the run goes on."""


class TransientApiError(ApiError):
    """A failure worth retrying after a pause: 5xx, an unreadable body, a network hiccup.

    ``retry_after`` is the server's hint in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class RateLimitedError(TransientApiError):
    """429: the account's request budget is spent until the window resets."""


class NotSentError(TransientApiError):
    """The request never reached the server (refused, DNS, TLS, connect timeout)."""


class AmbiguousSubmitError(ApiError):
    """A POST left this process but no answer came back: the task may or may not exist."""


class NoSuchEndpointError(AmbiguousSubmitError):
    """A POST met a 404 or 405 page that is not the vendor's JSON: the base URL or the
    provider is likely wrong. A page proves nothing about the vendor, so the row is still
    unknown (maybe charged); the run sends no more, as every POST would meet the same."""


class DownloadError(BatchgenError):
    """A video download failed or was cut short; the URL stays in the state for a retry."""


class DiskFullError(BatchgenError):
    """No space left where a video, its sidecar or the state is written.

    ``path`` is where the write failed, ``needed`` the bytes the download still needed (None
    when unknown). Credits may have been spent, so the exit code is not USAGE's "nothing was
    sent"; finished videos and ``.part`` files are kept for the next run.
    """

    exit_code = 7

    def __init__(self, message: str, *, path: object = None, needed: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.needed = needed


class ExitCode:
    """Every exit code batchgen returns, in one place (documented in docs/reference.md)."""

    OK = 0
    ATTENTION = 1
    USAGE = 2
    AUTH = 3
    LOCKED = 4
    STOPPED_EARLY = 5
    OUTAGE = 6  # the API could not be reached; a re-run continues
    DISK_FULL = 7  # stopped: no space left; credits may have been spent; re-run after freeing
    SIGINT = 130
    SIGTERM = 143
    READER_GONE = 141  # 128 + SIGPIPE: the reader of standard output went away (`| head`)
