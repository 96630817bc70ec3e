"""The records that flow through batchgen: a manifest row, a state row, an API task status."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import StrEnum
from typing import Any

__all__ = [
    "CREDITS_PER_TASK",
    "DECISIONS",
    "MODES",
    "NEEDS_ATTENTION",
    "RATIOS",
    "REQUEST_FIELDS",
    "USD_PER_CREDIT",
    "AttemptKind",
    "AttemptOutcome",
    "ErrorKind",
    "FieldChange",
    "Job",
    "JobSpec",
    "JobStatus",
    "RunInfo",
    "TaskState",
    "TaskStatus",
    "describe_changes",
    "made_when",
    "request_changes",
    "show_value",
    "split_variant",
    "variant_key",
]

# The reseller's vocabulary and price, for the simulator (which stands for that vendor and
# imports no provider). Everything else reads them from ``providers.grokimagine.GROKIMAGINE``.
MODES: tuple[str, ...] = ("fun", "normal", "spicy")
RATIOS: tuple[str, ...] = ("2:3", "3:2", "1:1")
CREDITS_PER_TASK = 40
USD_PER_CREDIT = 0.01
#: What a reviewer may write in the results' Decision column, in the order the drop-down lists.
DECISIONS = ("approve", "reject", "regenerate")
_VARIANT_KEY = re.compile(r"^(?P<row>.+)#v(?P<n>[1-9]\d*)$")


def variant_key(row_key: str, number: int) -> str:
    """The job key of variant ``number`` (from 1) of the row keyed ``row_key``: variant 1
    keeps the row's key, variant n > 1 is ``<row key>#v<n>``."""
    return row_key if number == 1 else f"{row_key}#v{number}"


def split_variant(key: str) -> tuple[str, int]:
    """``(row key, variant number)`` of a job key: ``"id:a#v3"`` -> ``("id:a", 3)``."""
    match = _VARIANT_KEY.match(key)
    return (key, 1) if match is None else (match["row"], int(match["n"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """One valid manifest row, normalised: exactly what will be asked of the provider.

    ``row`` is the row number as the user sees it in the spreadsheet (the header is row 1).
    ``key`` is the row's stable identity across runs (see ``batchgen.manifest.row_checks``).

    This class is the one declaration of the request's fields: every field after ``key`` and
    ``row`` (:data:`REQUEST_FIELDS`) is stored by the state (one column each, derived from
    this declaration in :mod:`batchgen.state.job_columns`), compared when a row is re-read, and
    shown in the sidecar. A field added later must have a default; rows that leave it at the
    default keep their key (:meth:`request`), so adding a field changes no existing identity.

    A field's ``metadata`` may say how an edit to it is compared and shown
    (:func:`request_changes`): ``"folded": True`` compares text NFC-normalised with runs of
    white space folded (as the row key compares the prompt); ``"label"`` names it in messages
    (default: the field's name).
    """

    key: str
    row: int
    prompt: str = field(metadata={"folded": True})
    mode: str
    ratio: str
    images: tuple[str, ...] = ()  # URLs, or absolute paths of local pictures
    duration: int | None = None  # seconds; None: the provider's default
    resolution: str | None = None  # e.g. "720p"; None: the provider's default
    model: str | None = None  # None: the provider's default
    #: SHA-256 (hex) of each local picture in ``images``, "" for a URL; empty when none is
    #: local. The key hashes these instead of the paths (``manifest.values.identity_request``).
    image_digests: tuple[str, ...] = ()

    def request(self) -> dict[str, Any]:
        """The request's fields by name, in declaration order, leaving out every field that
        is at its default (``images`` when empty): ``{"prompt": ..., "mode": ..., ...}``.
        Tuples become lists. The provider turns this into its own wire body."""
        body: dict[str, Any] = {}
        for f in REQUEST_FIELDS:
            value = getattr(self, f.name)
            if f.default is MISSING or value != f.default:
                body[f.name] = list(value) if isinstance(value, tuple) else value
        return body


#: The request's own fields (``JobSpec``'s fields after ``key`` and ``row``), in order.
REQUEST_FIELDS: tuple[Field[Any], ...] = tuple(
    f for f in fields(JobSpec) if f.name not in ("key", "row")
)


_MADE = "when its video was made"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One request field whose value differs between the request that was sent (``was``)
    and the one the manifest asks for now (``now``); values as ``JobSpec`` holds them."""

    name: str
    label: str
    was: Any
    now: Any

    def describe(self, when: str = _MADE) -> str:
        """``ratio was 1:1 when its video was made, now 2:3``."""
        when = f" {when}" if when else ""
        return f"{self.label} was {show_value(self.was)}{when}, now {show_value(self.now)}"


def _compared(f: Field[Any], value: Any) -> Any:
    if f.metadata.get("folded") and isinstance(value, str):
        return " ".join(unicodedata.normalize("NFC", value).split())
    return value


def request_changes(sent: JobSpec, now: JobSpec | None) -> tuple[FieldChange, ...]:
    """Every request field (``sent``'s own fields after ``key`` and ``row``, so a subclass's
    added fields too) whose value in ``now`` differs from ``sent``'s, in declaration order;
    ``()`` when ``now`` is None. Fields whose metadata says ``folded`` ignore white space and
    Unicode normalisation, as the row key does."""
    if now is None:
        return ()
    found = []
    for f in fields(sent):
        if f.name in ("key", "row"):
            continue
        was, new = getattr(sent, f.name), getattr(now, f.name, f.default)
        if new is MISSING or _compared(f, was) != _compared(f, new):
            found.append(FieldChange(f.name, f.metadata.get("label", f.name), was, new))
    return tuple(found)


def describe_changes(changes: tuple[FieldChange, ...], when: str = _MADE) -> str:
    """``ratio was 1:1 when its video was made, now 2:3; mode was fun, now normal``: the
    first change says ``when``, the others leave it understood."""
    return "; ".join(c.describe(when if i == 0 else "") for i, c in enumerate(changes))


def made_when(status: str) -> str:
    """How a message dates a sent row's request: ``when its video was made`` once the task
    finished with videos, else ``when it was sent``."""
    done = (JobStatus.COMPLETED, JobStatus.DOWNLOADED, JobStatus.DOWNLOAD_FAILED)
    return _MADE if status in done else "when it was sent"


_SHOWN_CHARS = 80
_HEX = re.compile(r"[0-9a-f]+")


def show_value(value: Any) -> str:
    """A request value for a message: text quoted and cut to 80 characters with control
    characters escaped (``repr``), a list as its items (``none`` when empty), a long hex
    digest (a picture's content hash) by its first 12 digits."""
    if isinstance(value, tuple | list):
        return ", ".join(show_value(v) for v in value) if value else "none"
    if isinstance(value, str):
        if len(value) >= 32 and _HEX.fullmatch(value):
            return value[:12] + "…"
        text = value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…"
        plain = text and text.isprintable() and not any(c.isspace() for c in text)
        return text if plain else repr(text)
    return str(value)


class JobStatus(StrEnum):
    """Where a row stands. Only ``batchgen.state.store`` moves a row from one status to another."""

    PENDING = "pending"  # known, nothing sent yet
    SUBMITTING = "submitting"  # intent committed; the POST may be in flight
    SUBMITTED = "submitted"  # the vendor gave a task id; waiting for the video
    RUNNING = "running"  # the vendor reports the task as processing
    COMPLETED = "completed"  # the task finished; videos not yet all on disk
    DOWNLOADED = "downloaded"  # every video is on disk, length verified: done
    INVALID = "invalid"  # the manifest row is wrong; never sent
    REJECTED = "rejected"  # the API refused the request (400); not resent
    FAILED = "failed"  # the task failed (error_kind says transient or permanent)
    UNKNOWN = "unknown"  # a POST whose outcome was lost: maybe created, maybe charged
    LOST = "lost"  # the vendor answered that it does not know this task id (any more)
    DOWNLOAD_FAILED = "download_failed"  # videos exist but could not be fetched (yet)
    SKIPPED = "skipped"  # hidden in the sheet; never sent (``--include-hidden`` sends it)
    EXPIRED = "expired"  # the vendor let the task expire before a video could be fetched
    MODERATED = "moderated"  # the vendor's moderation withheld the finished video


class ErrorKind(StrEnum):
    """Why a row needs a look (``jobs.error_kind``; the stored strings are these values)."""

    TRANSIENT = "transient"  # worth trying again on its own
    PERMANENT = "permanent"  # the vendor refused it; the same request would fail again
    GONE = "gone"  # the vendor no longer knows the task
    NOTE = "note"  # a completed task's message, kept for the results
    DOWNLOAD = "download"  # the videos could not be fetched (yet)
    AMBIGUOUS = "ambiguous"  # a submit whose outcome is unknown: maybe created, maybe charged
    INVALID = "invalid"  # the manifest row is wrong (set by the manifest sync)
    SKIPPED = "skipped"  # hidden in the sheet (set by the manifest sync)


class AttemptKind(StrEnum):
    """The step an entry of a row's history records (``attempts.kind``; stored as these values).

    The retry policy names its steps with the same words (``batchgen.engine.retry.Step``).
    """

    SUBMIT = "submit"  # the POST that creates a task
    POLL = "poll"  # a status request about the row's task
    DOWNLOAD = "download"  # fetching the task's videos


class AttemptOutcome(StrEnum):
    """How one step of a row ended (``attempts.outcome``; the stored strings are these values,
    so state files written by older versions read the same)."""

    OK = "ok"  # a submit that returned a task id
    RATE_LIMITED = "rate limited"  # a submit refused with 429 before any work: sent again
    TRANSIENT = "transient"  # a submit that created nothing (written by older versions only)
    AMBIGUOUS = "ambiguous"  # a submit that may have created (and charged) a task
    INTERRUPTED = "interrupted"  # the process died mid-POST (``recover_interrupted``)
    REJECTED = "rejected"  # the vendor refused the request itself
    UNAUTHORIZED = "unauthorized"  # the token was refused: the run stops
    GONE = "gone"  # a poll: the vendor no longer knows the task
    PROTOCOL_ERROR = "protocol error"  # a poll's answer could not be used
    FAILED = "failed"  # a download that could not be completed


#: Statuses of rows a person should look at in the morning.
NEEDS_ATTENTION = frozenset(
    {
        JobStatus.INVALID,
        JobStatus.REJECTED,
        JobStatus.FAILED,
        JobStatus.UNKNOWN,
        JobStatus.LOST,
        JobStatus.DOWNLOAD_FAILED,
        JobStatus.EXPIRED,
        JobStatus.MODERATED,
    }
)


class TaskState(StrEnum):
    """What a vendor status string means for batchgen."""

    WAITING = "waiting"  # queued, processing, or a status string nobody told us about
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"  # final: the vendor let the task expire; no video will come
    MODERATED = "moderated"  # final: done, but moderation withheld the video


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStatus:
    """One answer of a provider's status request, typed.

    ``consumed_credits`` is the vendor's reported cost in the provider's billing unit
    (``providers.descriptor.BillingUnit``: credits, or micro-dollars), None when not reported
    or not a plausible number. ``running`` is True when the vendor says the task is being
    worked on (not only queued).
    """

    task_id: str
    status: str  # the vendor's raw status string
    state: TaskState
    consumed_credits: int | None = None  # None: not reported, or not a plausible number
    created_at: dt.datetime | None = None
    error_message: str | None = None
    urls: tuple[str, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)
    running: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Job(JobSpec):
    """One row of the state store: its request (the :class:`JobSpec` fields) and everything
    that happened to it."""

    user: dict[str, Any] = field(default_factory=dict)  # the user's own columns, in order
    status: JobStatus = JobStatus.PENDING
    in_manifest: bool = True  # False: deleted from the manifest since an earlier run
    task_id: str | None = None
    attempts: int = 0
    consumed_credits: int = 0  # what the task cost, in the provider's billing unit
    price: int | None = None  # what the row is expected to cost (None: not priced yet)
    error_kind: str | None = None  # an ErrorKind value (a str: older state files may hold others)
    error_message: str | None = None
    video_urls: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # paths relative to the manifest's output folder
    file_sizes: tuple[int, ...] = ()
    created_at: dt.datetime | None = None  # when the row first entered the state
    submitted_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    #: The row's request as the manifest asks for it now, when it differs from the one that
    #: was sent (set by the manifest sync on rows already sent; None otherwise).
    request_now: JobSpec | None = None

    def spec(self) -> JobSpec:
        """The request this row sends, or sent (a plain :class:`JobSpec`)."""
        return JobSpec(**{name: getattr(self, name) for name in _SPEC_NAMES})

    def changes(self) -> tuple[FieldChange, ...]:
        """The request fields edited in the manifest since this row was sent (see
        :func:`request_changes`); ``()`` for a row whose request follows the manifest."""
        return request_changes(self.spec(), self.request_now)


_SPEC_NAMES = tuple(f.name for f in fields(JobSpec))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """One run of batchgen over a manifest, as recorded in its state."""

    run_id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    command: str = ""  # the command line, secrets removed
    version: str = ""
    outcome: str | None = None  # e.g. "complete", "needs attention", "budget", "interrupted"
    exit_code: int | None = None
    requests: int = 0
    rate_limited: int = 0  # 429s met
    credits: int = 0  # credits consumed during this run
    submitted: int = 0  # tasks created during this run
    downloaded: int = 0  # rows whose videos this run downloaded
