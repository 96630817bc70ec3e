"""Manifest rows on their way into the state (the ``incoming`` table of a sync), and small
SQL helpers. How a Job's fields are stored is :mod:`batchgen.state.job_columns`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchgen.errors import StateError
from batchgen.models import JobSpec
from batchgen.state.job_columns import REQUEST_COLUMNS, dump_user

__all__ = [
    "INCOMING_COLUMNS",
    "RowLike",
    "SyncReport",
    "dicts",
    "incoming",
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


@dataclass(slots=True)
class SyncReport:
    """What a manifest sync changed. ``deleted`` counts every state row absent from the manifest."""

    new: int = 0
    updated: int = 0
    deleted: int = 0
    warnings: list[str] = field(default_factory=list)


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


#: The ``incoming`` table's columns: a manifest row as the sync compares it with ``jobs``.
INCOMING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "TEXT PRIMARY KEY"),
    ("row_num", "INTEGER"),
    *((c.name, c.sql_type) for c in REQUEST_COLUMNS),
    ("user_values", "TEXT"),
    ("status", "TEXT"),
    ("error_kind", "TEXT"),
    ("error_message", "TEXT"),
    ("price", "INTEGER"),
)


def _request(spec: JobSpec) -> tuple[Any, ...]:
    return tuple(c.encode(getattr(spec, c.field)) for c in REQUEST_COLUMNS)


def _blank(prompt: str) -> tuple[Any, ...]:
    """The request columns of a row that has no valid request: its prompt text, else blanks."""
    return tuple(prompt if c.field == "prompt" else c.blank for c in REQUEST_COLUMNS)


def incoming(rows: Iterable[RowLike]) -> Iterator[tuple[Any, ...]]:
    """Manifest rows as ``incoming`` tuples (:data:`INCOMING_COLUMNS`); a repeated key is
    refused, not silently merged."""
    seen: set[str] = set()
    for r in rows:
        if r.key in seen:
            raise StateError(f"row {r.row}: the id {r.key!r} appears more than once")
        seen.add(r.key)
        user = dump_user(r.user)
        request = _request(r.spec) if r.spec is not None else _blank(r.prompt)
        skipped = getattr(r, "skipped", None)  # a row hidden in the sheet: kept, not sent
        price = getattr(r, "price", None)  # what the provider's price makes it cost
        if skipped:
            yield (r.key, r.row, *request, user, "skipped", "skipped", skipped, price)
        elif r.spec is None:
            why = _problem_text(r.problems)
            yield (r.key, r.row, *request, user, "invalid", "invalid", why, price)
        else:
            yield (r.key, r.row, *request, user, "pending", None, None, price)
