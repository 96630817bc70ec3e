"""Vendor answers in, domain values out: lenient decoding, defensive field parsing.

Nothing past this module reads raw JSON. A body is decoded leniently where that is safe (a
UTF-8/16/32 byte-order mark, surrounding whitespace, the declared charset); a field of the
wrong type, or a value that cannot be used, raises :class:`ProtocolError` for that one task
(never a traceback for the run). Sources: the vendor contract (``../shared/grokimagine-api.md``:
the envelope, the status fields, "the body's code wins when it signals an error") and RFC 8259
section 8.1 (JSON text is UTF-8; a parser may ignore a leading byte-order mark).
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from batchgen.errors import ProtocolError
from batchgen.models import TaskState, TaskStatus
from batchgen.providers.descriptor import StatusWords

__all__ = [
    "GROKIMAGINE_WORDS",
    "MAX_PLAUSIBLE_CREDITS",
    "body_code",
    "body_message",
    "decode_json",
    "is_vendor_json",
    "parse_status",
    "plausible_credits",
    "preview",
    "task_id_of",
    "task_state",
]

#: The largest ``consumed_credits`` believed for one GrokImagine task (the contract says 40: a
#: hundred times that); a larger, negative or non-numeric value is ignored and the row's price
#: stands.
MAX_PLAUSIBLE_CREDITS = 4_000
_MAX_TASK_ID = 200  # characters
_MAX_MESSAGE = 2000  # characters kept of a server's message
_PREVIEW = 120

#: GrokImagine's status vocabulary: ``completed`` is documented; the rest are the contract's
#: "Unknowns" rule (pending/queued/processing/running style words wait, failed/error/cancelled
#: style words fail) plus ``expired`` and kin, which end a task without a video.
GROKIMAGINE_WORDS = StatusWords(
    done=frozenset({"completed", "complete", "succeeded", "success", "done", "finished"}),
    failed=frozenset(
        {"failed", "failure", "error", "errored", "cancelled", "canceled", "rejected", "timeout"}
    ),
    waiting=frozenset({"pending", "queued", "in_progress", "started", "starting"}),
    running=frozenset({"processing", "running"}),
    expired=frozenset({"expired", "expiry", "timed_out_expired"}),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_json(raw: bytes, charset: str | None = None) -> Any:
    """The JSON value of a body, or None when it is not JSON (HTML, cut short, garbage).

    A byte-order mark picks the encoding and is dropped; otherwise the declared ``charset``
    is used when Python knows it, else UTF-8.
    """
    text = _decode_text(raw, charset)
    if text is None:
        return None
    try:
        return json.loads(text.strip())
    except (ValueError, RecursionError):
        return None


def _decode_text(raw: bytes, charset: str | None) -> str | None:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _decode(raw[len(bom) :], encoding)
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    return _decode(raw, charset or "utf-8")


def _decode(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding).lstrip("\ufeff")
    except (UnicodeDecodeError, LookupError):
        return None


def preview(raw: bytes | str) -> str:
    """A short, one-line, printable rendering of a body for messages."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    flat = " ".join(text.split())
    cut = flat[:_PREVIEW] + ("…" if len(flat) > _PREVIEW else "")
    return repr(cut)


def is_vendor_json(body: Any) -> bool:
    """The vendor's envelope: an object with ``code``, ``message`` or ``error``."""
    return isinstance(body, dict) and any(k in body for k in ("code", "message", "error"))


def body_code(body: Any) -> int | None:
    """The envelope's ``code`` as a whole number (``500``, ``"500"``), else None."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code if 0 <= code < 1000 else None
    if isinstance(code, float) and math.isfinite(code) and code.is_integer():
        return int(code) if 0 <= code < 1000 else None
    if isinstance(code, str) and code.strip().isdigit() and len(code.strip()) <= 3:
        return int(code.strip())
    return None


def body_message(body: Any, raw: bytes) -> str:
    """The envelope's ``message`` / ``error`` text, or a preview of the raw body."""
    if isinstance(body, dict):
        parts = [_text(body.get(k)) for k in ("message", "error")]
        joined = " / ".join(p for p in parts if p)
        if joined:
            return joined
    return preview(raw)


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())[:_MAX_MESSAGE]
    return None


def task_id_of(body: Any) -> str | None:
    """The task id an answer carries (``data.task_id``, or a top-level ``task_id``), if any.

    Only a non-empty printable string of at most 200 characters (or a whole number) counts.
    """
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    candidates = [data.get("task_id")] if isinstance(data, dict) else []
    candidates.append(body.get("task_id"))
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
            if 0 < len(value) <= _MAX_TASK_ID and value.isprintable():
                return value
    return None


def plausible_credits(value: Any) -> int | None:
    """``consumed_credits`` when it is a believable number (0..MAX_PLAUSIBLE_CREDITS)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or not 0 <= number <= MAX_PLAUSIBLE_CREDITS:
        return None
    return round(number)


def task_state(
    raw: str, error: str | None, has_urls: bool, words: StatusWords = GROKIMAGINE_WORDS
) -> TaskState | None:
    """What a status string means in ``words``; None for a string nobody told us about.

    A done status with at least one URL is a success even beside an error message (kept as a
    note); an expired word ends the task without video; otherwise an error message or a
    failed status means the task ended without video. A done status without URLs stays
    COMPLETED: the caller reports it as needing a person.
    """
    status = raw.lower()
    if status in words.done:
        return TaskState.COMPLETED
    if status in words.expired:
        return TaskState.EXPIRED
    if error is not None or status in words.failed:
        return TaskState.FAILED
    if status in words.waiting or status in words.running:
        return TaskState.WAITING
    return None


def parse_status(
    task_id: str, data: Any, *, max_urls: int, words: StatusWords = GROKIMAGINE_WORDS
) -> tuple[TaskStatus, bool]:
    """One status answer's ``data`` as a :class:`TaskStatus`; ``(status, recognised)``.

    ``recognised`` is False for a status string nobody documented (treated as waiting).
    Raises ProtocolError naming the field when a value cannot be used: ``status`` not text,
    ``response`` not a URL list (a lone URL string is a one-element list), more than
    ``max_urls`` URLs. ``consumed_credits`` that is not plausible becomes None (the caller
    keeps its estimate); ``request`` and ``created_at`` of the wrong type are ignored.
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"task {task_id}: the status answer has no 'data' object")
    raw = _field_text(data, "status", task_id) or ""
    error = _error_message(data, task_id)
    urls = _urls(data.get("response"), task_id, max_urls)
    state = task_state(raw, error, bool(urls), words)
    status = TaskStatus(
        task_id=task_id,
        status=raw,
        state=state or TaskState.WAITING,
        consumed_credits=plausible_credits(data.get("consumed_credits")),
        created_at=_iso(data.get("created_at")),
        error_message=error,
        urls=urls,
        request=dict(data["request"]) if isinstance(data.get("request"), dict) else {},
        running=raw.lower() in words.running,
    )
    return status, state is not None


def _field_text(data: Mapping[str, Any], name: str, task_id: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(
            f"task {task_id}: the status answer's {name!r} is {_shown(value)}, not text"
        )
    return value.strip()[:_MAX_MESSAGE]


def _error_message(data: Mapping[str, Any], task_id: str) -> str | None:
    value = data.get("error_message")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(
            f"task {task_id}: the status answer's 'error_message' is {_shown(value)}, not text"
        )
    return _text(value)


def _urls(value: Any, task_id: str, max_urls: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value] if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(u, str) and u.strip() for u in value):
        raise ProtocolError(
            f"task {task_id}: the status answer's 'response' is {_shown(value)}, "
            "not a list of video URLs"
        )
    if len(value) > max_urls:
        raise ProtocolError(
            f"task {task_id}: the vendor returned {len(value)} video URLs for one task "
            f"(the limit is {max_urls}, --max-urls-per-task); none were downloaded"
        )
    return tuple(u.strip() for u in value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
