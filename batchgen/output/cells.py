"""Values shared by the results sheets and the gallery: cleaned text, UTC times, the
status as shown and its tone, per-row cost, the prompt a video was made from and the other
fields edited since, advice."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from batchgen.models import ErrorKind, Job, JobStatus, describe_changes
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = [
    "DELETED_MARK",
    "MAX_CELL_CHARS",
    "MAX_LINK_CHARS",
    "STATUS_TONE",
    "TRUNCATION_MARKER",
    "clean_text",
    "csv_time",
    "file_target",
    "fit_cell",
    "job_usd",
    "prompt_used",
    "request_changed",
    "status_text",
    "text_width",
    "unique_names",
    "url_target",
    "utc_naive",
    "what_to_do",
    "wrapped",
]

DELETED_MARK = " (deleted from manifest)"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./~-]+")  # nothing to percent-encode
MAX_CELL_CHARS = 32_767  # Excel's limit, counted in UTF-16 code units
TRUNCATION_MARKER = "…[truncated]"
MAX_LINK_CHARS = 2_079  # Excel's longest hyperlink target
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")

#: How each status reads at a glance, shared with the gallery: done / failed / waiting /
#: attention (unknown: maybe created, maybe charged; download_failed: fetch it again).
STATUS_TONE: dict[str, str] = {
    **dict.fromkeys(JobStatus, "waiting"),
    JobStatus.DOWNLOADED: "done",
    **dict.fromkeys((JobStatus.INVALID, JobStatus.REJECTED, JobStatus.FAILED), "failed"),
    **dict.fromkeys((JobStatus.UNKNOWN, JobStatus.LOST, JobStatus.DOWNLOAD_FAILED), "attention"),
}


def clean_text(text: str) -> str:
    """Drop characters an XLSX cannot hold; make lone surrogates encodable (U+FFFD)."""
    if text.isascii() and text.isprintable():  # the common case, without a regex
        return text
    if _XML_ILLEGAL.search(text):
        text = _XML_ILLEGAL.sub("", text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def utc_naive(value: dt.datetime | None) -> dt.datetime | None:
    """Excel dates have no zone: aware datetimes become naive UTC, naive ones are UTC already."""
    return None if value is None else _naive(value)


def _naive(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)


def csv_time(value: dt.datetime | None) -> str:
    """A time of ours as the CSV writes it: ISO 8601 UTC to the second, ``Z`` for the zone."""
    return "" if value is None else _naive(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_text(job: Job) -> str:
    """The status as shown: ``failed``, or ``downloaded (deleted from manifest)``."""
    return str(job.status) if job.in_manifest else f"{job.status}{DELETED_MARK}"


def job_usd(job: Job, unit: BillingUnit = CREDIT) -> float:
    """What the row's task cost as the vendor reported it, in USD (``unit``: the state's
    billing unit)."""
    return round(unit.usd(job.consumed_credits), 6)


def prompt_used(job: Job) -> str | None:
    """The prompt a sent row was made from, when the manifest's prompt (its template filled)
    now differs, compared as the row key compares it (white space folded); else None (rows
    not sent yet follow the manifest). See :meth:`batchgen.models.Job.changes`."""
    return job.prompt if any(c.name == "prompt" for c in job.changes()) else None


def request_changed(job: Job) -> str | None:
    """Which request fields of a sent row were edited in the manifest since, with the value
    it was made with and the one asked now (``ratio was 1:1, now 2:3; mode was fun, now
    normal``); None when none was (or the row was not sent yet)."""
    return describe_changes(job.changes(), when="") or None


_WHAT_TO_DO = {
    JobStatus.INVALID: "Fix the cell the error names in the manifest, then run again.",
    JobStatus.REJECTED: "The API refused the request: change it, then run with --retry-failed.",
    JobStatus.UNKNOWN: (
        "Maybe charged: check the vendor's dashboard; if no task exists, "
        "run with --resubmit-unknown."
    ),
    JobStatus.LOST: (
        "The vendor no longer knows this task (charged): run with --resubmit-unknown "
        "to generate it again."
    ),
    JobStatus.DOWNLOAD_FAILED: "Run again: the download is retried (vendor links expire).",
}


def what_to_do(job: Job) -> str:
    """One line telling a person what to do about a row that needs attention."""
    if job.status is JobStatus.FAILED:
        if job.error_kind == ErrorKind.TRANSIENT:
            return "A passing failure: run again, it is retried automatically."
        return "The task failed for good: change the prompt, then run with --retry-failed."
    return _WHAT_TO_DO.get(job.status, "")


def unique_names(user: Sequence[str], ours: Sequence[str]) -> list[str]:
    """Our header names, prefixed with ``batchgen_`` where a user column has the name."""
    taken = {name.casefold() for name in user}
    names = []
    for name in ours:
        while name.casefold() in taken:
            name = f"batchgen_{name}"
        taken.add(name.casefold())
        names.append(name)
    return names


def fit_cell(text: str) -> str:
    """Literal text as a cell holds it: XML-clean, LF line breaks, at most Excel's limit."""
    text = clean_text(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) <= MAX_CELL_CHARS // 2:  # cannot be over the limit even if all astral
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= MAX_CELL_CHARS:
        return text
    keep = (MAX_CELL_CHARS - len(TRUNCATION_MARKER)) * 2
    # "ignore" drops half a surrogate pair cut at the boundary rather than corrupting it.
    return encoded[:keep].decode("utf-16-le", errors="ignore") + TRUNCATION_MARKER


def file_target(path: str) -> str | None:
    """The link to a file relative to the sheet, as a URI reference (RFC 3986): forward
    slashes, every character but letters, digits, ``_.-~`` and ``/`` percent-encoded (a
    ``#`` in a file name is ``%23``, not a fragment; a space ``%20``), so that Excel on
    Windows and on a Mac and LibreOffice all follow it; None for an absolute path (only
    links relative to the results file survive moving the folder) or one over Excel's
    length."""
    path = path.replace("\\", "/")
    head = path.split("/", 1)[0]
    if not path or path.startswith("/") or ":" in head:
        return None
    target = path if _PLAIN_PATH.fullmatch(path) else quote(path, safe="/")
    return target if len(target) <= MAX_LINK_CHARS else None


def url_target(url: str) -> str | None:
    """A percent-encoded http(s) link target, or None for any other scheme or too long."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what a URI may not contain (spaces, quotes, non-ASCII); keep the rest.
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%~")
    return target if len(target) <= MAX_LINK_CHARS else None


def text_width(value: Any) -> int:
    """The width a value needs in characters: its longest line plus a margin."""
    if value is None:
        return 0
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0) + 2
    return len(str(value)) + 2


def wrapped(value: Any, width: float) -> int:
    """How many lines a value takes when wrapped at ``width`` characters."""
    if not isinstance(value, str) or not value:
        return 1
    per_line = max(1, int(width) - 2)
    return sum(max(1, -(-len(part) // per_line)) for part in value.split("\n"))
