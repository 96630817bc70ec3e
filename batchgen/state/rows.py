"""Rows between Python and SQLite: timestamps, JSON cells, ``Job`` tuples, manifest rows.

:mod:`batchgen.state.store` is the only user.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from batchgen.errors import StateError
from batchgen.models import Job, JobSpec, JobStatus
from batchgen.text import clean_text

__all__ = [
    "FIELDS",
    "RowLike",
    "dicts",
    "incoming",
    "iso",
    "job_from",
    "parse_ts",
    "qmarks",
]


class RowLike(Protocol):
    """What :meth:`StateStore.sync_manifest` needs of a manifest row (``ManifestRow``)."""

    @property
    def row(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def user(self) -> dict[str, Any]: ...
    @property
    def spec(self) -> JobSpec | None: ...
    @property
    def prompt(self) -> str: ...
    @property
    def problems(self) -> tuple[Any, ...]: ...


def iso(value: dt.datetime) -> str:
    """ISO-8601 UTC with fixed-width microseconds, so text order is time order."""
    if value.tzinfo is None:  # naive datetimes are taken to be UTC already
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else iso(value)


def parse_ts(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _encode_value(value: Any) -> Any:
    """json ``default``: tag the cell types JSON lacks so they come back as themselves."""
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if callable(getattr(value, "item", None)):  # numpy scalars from pandas
        return value.item()
    return str(value)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$dt": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$td": lambda parts: dt.timedelta(*parts),
}


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:  # user values are scalars, so a one-key object is always a tag
        ((tag, value),) = obj.items()
        if tag in _DECODERS:
            return _DECODERS[tag](value)
    return obj


# Built once: json.dumps/loads with options would build a new coder per call (2x slower).
_ENCODER = json.JSONEncoder(default=_encode_value, ensure_ascii=False, separators=(",", ":"))
_USER_DECODER = json.JSONDecoder(object_hook=_decode_object)
_dump_user = _ENCODER.encode
_load_user = _USER_DECODER.decode


def _dump_list(values: Iterable[Any]) -> str:
    return _ENCODER.encode(list(values)) if values else "[]"


def _load_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text)) if text != "[]" else ()


def _same(value: Any) -> Any:
    return value


#: Longest error message kept in the state (characters); a server may send megabytes.
MAX_MESSAGE_CHARS = 2000


def _clean(value: Any) -> Any:
    """Server text, stored: token masked, control characters escaped, length bounded."""
    return clean_text(str(value), limit=MAX_MESSAGE_CHARS) if value is not None else None


#: The fields ``transition`` may set, and how each is stored.
FIELDS: dict[str, Callable[[Any], Any]] = {
    "task_id": _same,
    "consumed_credits": int,
    "error_kind": _same,
    "error_message": _clean,
    "video_urls": _dump_list,
    "files": _dump_list,
    "file_sizes": _dump_list,
    "submitted_at": _ts,
    "completed_at": _ts,
}


def job_from(r: tuple[Any, ...]) -> Job:
    """A Job from a ``SELECT {JOB_COLUMNS}`` tuple (plain tuples: sqlite3.Row is 2x slower)."""
    return Job(
        key=r[0],
        row=r[1],
        prompt=r[2],
        mode=r[3],
        ratio=r[4],
        images=_load_tuple(r[5]),
        user=_load_user(r[6]),
        status=JobStatus(r[7]),
        in_manifest=bool(r[8]),
        task_id=r[9],
        attempts=r[10],
        consumed_credits=r[11],
        error_kind=r[12],
        error_message=r[13],
        video_urls=_load_tuple(r[14]),
        files=_load_tuple(r[15]),
        file_sizes=_load_tuple(r[16]),
        created_at=parse_ts(r[17]),
        submitted_at=parse_ts(r[18]),
        completed_at=parse_ts(r[19]),
        updated_at=parse_ts(r[20]),
    )


def dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor]


def qmarks(n: int) -> str:
    return ", ".join("?" * n)


def _problem_text(problems: tuple[Any, ...]) -> str:
    """The row's error problems joined; warnings (``severity``/``level`` "warning") left out."""
    errors = [
        str(p)
        for p in problems
        if str(getattr(p, "severity", getattr(p, "level", "error"))).lower()
        not in {"warning", "warn", "info"}
    ]
    return "; ".join(errors or map(str, problems)) or "the row is invalid"


def incoming(rows: Iterable[RowLike]) -> Iterator[tuple[Any, ...]]:
    """Manifest rows as ``incoming`` tuples; a repeated key is refused, not silently merged."""
    seen: set[str] = set()
    for r in rows:
        if r.key in seen:
            raise StateError(f"row {r.row}: the id {r.key!r} appears more than once")
        seen.add(r.key)
        user = _dump_user(r.user)
        skipped = getattr(r, "skipped", None)  # a row hidden in the sheet: kept, not sent
        if skipped:
            s = r.spec
            request = (
                (s.prompt, s.mode, s.ratio, _dump_list(s.images)) if s else (r.prompt, "", "", "[]")
            )
            yield (r.key, r.row, *request, user, "skipped", "skipped", skipped)
        elif r.spec is None:
            why = _problem_text(r.problems)
            yield (r.key, r.row, r.prompt, "", "", "[]", user, "invalid", "invalid", why)
        else:
            s = r.spec
            images = _dump_list(s.images)
            yield (r.key, r.row, s.prompt, s.mode, s.ratio, images, user, "pending", None, None)
