"""How a :class:`~batchgen.models.Job` is stored: one ``jobs`` column per field, by name.

The columns are not written out here: they are derived from the dataclass declarations in
:mod:`batchgen.models` (the request's fields in ``JobSpec``, the row's history in ``Job``).
Each field is stored in the column of the same name (two older names are kept: ``row`` is
``row_num`` and ``user`` is ``user_values``), encoded by its type:

====================  =========================  ==================================
field type            stored as                  read back as
====================  =========================  ==================================
``str``, ``int``      itself                     itself
``bool``              0 / 1                      ``bool``
``tuple[...]``        a JSON list                a tuple
``dict``              JSON, datetimes tagged     a dict (:func:`load_user`)
``datetime``          ISO-8601 UTC (:func:`iso`) an aware ``datetime``
``JobStatus``         its value                  ``JobStatus``
``JobSpec | None``    JSON of its columns        a ``JobSpec`` (``{}``: None)
====================  =========================  ==================================

Adding a request field is therefore one edit (a field with a default on ``JobSpec``) plus a
migration that adds its column (``ALTER TABLE jobs ADD COLUMN ... DEFAULT`` the encoded
default) to :data:`batchgen.state.schema.MIGRATIONS`; ``tests/test_state_columns.py`` fails
until both are there. How a new field affects a row's key: see ``JobSpec``.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from typing import Any

from batchgen.models import REQUEST_FIELDS, Job, JobSpec, JobStatus
from batchgen.text import clean_text

__all__ = [
    "COLUMNS",
    "JOB_COLUMNS",
    "REQUEST_COLUMNS",
    "SETTABLE",
    "SPEC_JSON_SQL",
    "Column",
    "columns_of",
    "dump_list",
    "dump_spec",
    "dump_user",
    "iso",
    "job_from",
    "load_spec",
    "load_user",
    "parse_ts",
    "spec_from",
]


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
dump_user: Callable[[Any], str] = _ENCODER.encode
load_user: Callable[[str], Any] = _USER_DECODER.decode


def dump_list(values: Iterable[Any]) -> str:
    return _ENCODER.encode(list(values)) if values else "[]"


def _load_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text)) if text != "[]" else ()


def _same(value: Any) -> Any:
    return value


def _value(value: JobStatus) -> str:
    return JobStatus(value).value


#: (encode, decode, SQL type) by the field's type, as ``typing.get_type_hints`` gives it.
_CODECS: dict[Any, tuple[Callable[[Any], Any], Callable[[Any], Any], str]] = {
    str: (_same, _same, "TEXT"),
    str | None: (_same, _same, "TEXT"),
    int: (int, _same, "INTEGER"),
    int | None: (_same, _same, "INTEGER"),
    float: (float, _same, "REAL"),
    bool: (int, bool, "INTEGER"),
    dict[str, Any]: (dump_user, load_user, "TEXT"),
    dt.datetime | None: (_ts, parse_ts, "TEXT"),
    JobStatus: (_value, JobStatus, "TEXT"),
}
#: Older column names, kept so existing state files read unchanged.
_RENAMED = {"row": "row_num", "user": "user_values"}


@dataclass(frozen=True, slots=True)
class Column:
    """One ``jobs`` column: the Job field it stores and how."""

    field: str
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    sql_type: str
    blank: Any  # what a row without this value stores (an invalid row's request)


def _column(name: str, hint: Any, default: Any) -> Column:
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    if typing.get_origin(hint) is tuple:
        encode, decode, sql_type = dump_list, _load_tuple, "TEXT"
    elif hint in _CODECS:
        encode, decode, sql_type = _CODECS[hint]
    else:
        raise TypeError(f"Job.{name}: no storage rule for {hint!r}; add one to _CODECS")
    blank = encode(default) if default is not MISSING else ("" if sql_type == "TEXT" else 0)
    return Column(name, _RENAMED.get(name, name), encode, decode, sql_type, blank)


def columns_of(record: type) -> tuple[Column, ...]:
    """The columns that store the dataclass ``record`` (``Job``, or a test's subclass of it),
    one per field in declaration order; TypeError for a field type without a storage rule."""
    hints = typing.get_type_hints(record)
    return tuple(
        _column(f.name, hints[f.name], f.default if f.default_factory is MISSING else MISSING)
        for f in fields(record)
    )


_SPEC_COLUMNS = columns_of(JobSpec)


def dump_spec(spec: JobSpec | None) -> str:
    """A request as one JSON object, ``{column name: stored value}`` over ``JobSpec``'s
    columns (what SQL's ``json_object`` over those columns gives); ``{}`` for None."""
    if spec is None:
        return "{}"
    return _ENCODER.encode({c.name: c.encode(getattr(spec, c.field)) for c in _SPEC_COLUMNS})


def load_spec(text: str | None) -> JobSpec | None:
    """The request :func:`dump_spec` stored (None for ``{}``); a field the object lacks (one
    declared after it was written) takes its default."""
    stored = json.loads(text) if text and text != "{}" else None
    if not stored:
        return None
    return JobSpec(**{c.field: c.decode(stored[c.name]) for c in _SPEC_COLUMNS if c.name in stored})


# The row's current request (``Job.request_now``) is stored by the columns' own codecs.
_CODECS[JobSpec | None] = (dump_spec, load_spec, "TEXT")

#: Every Job field's column, in the dataclass's order (``JobSpec``'s fields first).
COLUMNS: tuple[Column, ...] = columns_of(Job)
_BY_FIELD = {c.field: c for c in COLUMNS}
#: The columns of the request's own fields (``prompt``, ``mode``, ``ratio``, ``images``, ...).
REQUEST_COLUMNS: tuple[Column, ...] = tuple(_BY_FIELD[f.name] for f in REQUEST_FIELDS)
#: ``SELECT {JOB_COLUMNS} FROM jobs`` gives the tuples :func:`job_from` reads.
JOB_COLUMNS = ", ".join(c.name for c in COLUMNS)

_NAMES = tuple(c.field for c in COLUMNS)
_DECODE = tuple(c.decode for c in COLUMNS)

#: Longest error message kept in the state (characters); a server may send megabytes.
MAX_MESSAGE_CHARS = 2000


def _clean(value: Any) -> Any:
    """Server text, stored: token masked, control characters escaped, length bounded."""
    return clean_text(str(value), limit=MAX_MESSAGE_CHARS) if value is not None else None


_MAY_SET = (
    "task_id",
    "consumed_credits",
    "price",
    "error_kind",
    "error_message",
    "video_urls",
    "files",
    "file_sizes",
    "submitted_at",
    "completed_at",
)
#: The fields ``transition`` may set, and how each is stored (server text is cleaned).
SETTABLE: dict[str, Callable[[Any], Any]] = {
    name: _clean if name == "error_message" else _BY_FIELD[name].encode for name in _MAY_SET
}


def job_from(r: tuple[Any, ...]) -> Job:
    """A Job from a ``SELECT {JOB_COLUMNS}`` tuple (plain tuples: sqlite3.Row is 2x slower)."""
    return Job(**{name: decode(v) for name, decode, v in zip(_NAMES, _DECODE, r, strict=True)})


def spec_columns() -> str:
    """``key, row_num, prompt, ...``: the columns :func:`spec_from` reads, in order."""
    return ", ".join(c.name for c in _SPEC_COLUMNS)


def spec_from(r: tuple[Any, ...]) -> JobSpec:
    """A JobSpec from a ``SELECT {spec_columns()}`` tuple."""
    values = zip(_SPEC_COLUMNS, r, strict=True)
    return JobSpec(**{c.field: c.decode(v) for c, v in values})


def spec_json_sql(table: str) -> str:
    """SQL giving the request of ``table``'s row (an ``incoming`` or ``jobs`` alias) as
    :func:`dump_spec` writes it: ``json_object('key', i.key, 'row_num', i.row_num, ...)``."""
    return "json_object(" + ", ".join(f"'{c.name}', {table}.{c.name}" for c in _SPEC_COLUMNS) + ")"


#: The current request of an ``incoming`` row ``i``, as ``jobs.request_now`` stores it.
SPEC_JSON_SQL = spec_json_sql("i")
