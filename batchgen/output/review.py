"""The review loop in the results: variant and lineage columns, the Decision drop-down, and
reading the decisions a person typed back out of ``results.xlsx``.

Columns added after the result columns (``REVIEW_COLUMNS`` in the CSV, ``REVIEW_HEADER`` in
the XLSX, after the videos): ``variant`` (1, 2...; the row's
variants share its ``row``), ``replaces`` (the key of the variant this one regenerates),
``prompt_template`` (when the prompt was filled from one), ``prompt_sent`` (the text that
template gave)
and ``decision`` (``approve`` / ``reject`` / ``regenerate``, a drop-down in the XLSX).

Reading the review back (:func:`read_review`) matches rows by the ``key`` column, never by
position: a person may sort, filter, colour or add columns. It reads the decisions and the
columns a person added (:class:`PersonColumns`: every header that is not one batchgen wrote,
with its values by key and the column to its left, so the next rewrite puts it back in its
place). A file it cannot match row by row (no key or decision column, a key the state does
not know, a key twice, a decision or a note on a row without a key) gives nothing at all and
a warning saying why; the caller keeps that file aside before anything overwrites it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zipfile
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from batchgen.models import DECISIONS, Job, JobStatus, split_variant
from batchgen.xlsx_bounds import READ_ERRORS, workbook_problem

__all__ = [
    "DECISION_SYNONYMS",
    "RESULTS_SHEETS",
    "REVIEW_COLUMNS",
    "REVIEW_HEADER",
    "DecisionsRead",
    "PersonColumns",
    "Review",
    "cost_per_keeper",
    "decision_validation",
    "read_decisions",
    "read_review",
    "results_cell_limit",
    "review_values",
]

REVIEW_COLUMNS: tuple[str, ...] = (
    "variant",
    "replaces",
    "prompt_template",
    "prompt_sent",
    "decision",
)
#: The same columns in results.xlsx, headed for people (the reader looks for Key and Decision).
REVIEW_HEADER: tuple[str, ...] = (
    "Take",
    "Replaces",
    "Prompt template",
    "Prompt sent",
    "Decision",
)
#: What a person may type in the Decision column (case and spaces ignored).
DECISION_SYNONYMS: dict[str, str] = {
    **{d: d for d in DECISIONS},
    "approved": "approve",
    "ok": "approve",
    "keep": "approve",
    "rejected": "reject",
    "regen": "regenerate",
    "redo": "regenerate",
}
_SHEET = "Results"
#: The sheets batchgen writes in results.xlsx; any other one is a person's.
RESULTS_SHEETS: tuple[str, ...] = ("Results", "Summary", "Failed", "Runs")


@dataclass(frozen=True, kw_only=True)
class Review:
    """What the results need from the state to fill ``REVIEW_COLUMNS`` and the Summary.

    ``origins`` maps a key to ``(template, replaces)``; ``decisions`` a key to its decision.
    """

    origins: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    decisions: Mapping[str, str] = field(default_factory=dict)

    def values(self, key: str, prompt: str) -> list[Any]:
        """The ``REVIEW_COLUMNS`` values of the job ``key`` whose sent prompt is ``prompt``.

        ``prompt_sent`` is filled only when a template made it: otherwise it is the prompt
        column itself, and a copy would only make every row of the sheet taller.
        """
        template, replaces = self.origins.get(key, (None, None))
        sent = prompt if template else None
        return [split_variant(key)[1], replaces, template, sent, self.decisions.get(key)]


def review_values(review: Review | None, job: Job) -> list[Any]:
    """``review.values`` of ``job``, or nothing without a review (XlsxWriter writes them as
    plain values: the workbook turns no string into a formula)."""
    return [] if review is None else review.values(job.key, job.prompt)


def cost_per_keeper(
    credits: int, statuses: Mapping[str, JobStatus], decisions: Mapping[str, str]
) -> tuple[int, float | None]:
    """(approved videos, credits per approved video) over every credit spent.

    An approved job counts once it is downloaded; ``None`` when nothing is approved yet.
    """
    keepers = sum(
        1
        for key, decision in decisions.items()
        if decision == "approve" and statuses.get(key) is JobStatus.DOWNLOADED
    )
    return keepers, (round(credits / keepers, 1) if keepers else None)


def decision_validation(column: int, rows: int) -> tuple[int, int, int, int, dict[str, Any]]:
    """XlsxWriter ``data_validation`` arguments for the Decision drop-down: 0-based
    ``column``, over ``rows`` data rows under the header."""
    options: dict[str, Any] = {
        "validate": "list",
        "source": list(DECISIONS),
        "ignore_blank": True,
        "input_title": "Decision",
        "input_message": "approve: keep it; reject: drop it; regenerate: one more take",
        "error_title": "Decision",
        "error_message": "Choose approve, reject or regenerate (or leave it empty).",
    }
    return 1, column, max(rows, 1), column, options


@dataclass(frozen=True, kw_only=True)
class PersonColumns:
    """The columns a person added to the Results sheet, kept across rewrites.

    ``names`` are their headers, left to right (``""`` for a column with values and no
    header); ``after[i]`` the header of the column left of ``names[i]`` when it was read
    (None: it was the first), which is where a rewrite puts it back; ``values`` each job
    key's cells in those columns (text, numbers, booleans, dates and times as typed; a
    formula as the value it last showed). Stored in the state as JSON (:meth:`to_json`).
    """

    names: tuple[str, ...] = ()
    after: tuple[str | None, ...] = ()
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def cells(self, key: str) -> tuple[Any, ...]:
        """The person's cells of job ``key`` (Nones when the row has none)."""
        return self.values.get(key, (None,) * len(self.names))

    def filled(self) -> int:
        """How many cells hold a value."""
        return sum(v is not None for row in self.values.values() for v in row)

    def describe(self) -> str:
        """``Notes, Owner (12 values)``, for the log."""
        names = ", ".join(name or "(no header)" for name in self.names)
        return f"{names} ({self.filled():,} value{'' if self.filled() == 1 else 's'})"

    def to_json(self) -> str:
        """The columns as JSON text (values tagged by type: see :meth:`from_json`)."""
        columns = [{"name": n, "after": a} for n, a in zip(self.names, self.after, strict=True)]
        rows = {key: [_encode(v) for v in row] for key, row in self.values.items()}
        return json.dumps({"columns": columns, "rows": rows}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> PersonColumns:
        """The columns :meth:`to_json` wrote; none for None or a damaged text."""
        try:
            data = json.loads(text) if text else {}
            columns = data.get("columns", [])
            names = tuple(str(c["name"]) for c in columns)
            after = tuple(None if c["after"] is None else str(c["after"]) for c in columns)
            rows = {
                str(key): tuple(_decode(v) for v in row)
                for key, row in data.get("rows", {}).items()
                if isinstance(row, list) and len(row) == len(names)
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()
        return cls(names=names, after=after, values=rows)


def _encode(value: Any) -> Any:
    """A cell value as JSON: plain for text, numbers and booleans, tagged for the rest."""
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"seconds": value.total_seconds()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "datetime" in value:
        return dt.datetime.fromisoformat(value["datetime"])
    if "date" in value:
        return dt.date.fromisoformat(value["date"])
    if "time" in value:
        return dt.time.fromisoformat(value["time"])
    if "seconds" in value:
        return dt.timedelta(seconds=float(value["seconds"]))
    return None


@dataclass(frozen=True)
class DecisionsRead:
    """What a results workbook holds of the review: ``decisions`` (``{key: decision or None
    (cleared)}``), ``columns`` a person added (None when not asked for, or refused), and
    ``sheets`` a person added (their contents are not carried over)."""

    decisions: dict[str, str | None]
    warnings: list[str]
    refused: str | None = None  # why nothing was read at all
    columns: PersonColumns | None = None
    sheets: tuple[str, ...] = ()


def _refuse(path: Path, why: str) -> DecisionsRead:
    return DecisionsRead({}, [], f"{path}: decisions and notes not read: {why}")


def _header_index(header: Sequence[Any], name: str) -> int | None:
    """Our column ``name`` (or ``batchgen_name``...): the last header that is it."""
    found = None
    for index, cell in enumerate(header):
        text = str(cell or "").strip().casefold()
        while text.startswith("batchgen_"):
            text = text.removeprefix("batchgen_")
        if text == name:
            found = index
    return found


def read_decisions(path: Path, known: Collection[str]) -> DecisionsRead:
    """The decisions in the workbook at ``path``, matched by key against ``known`` keys
    (:func:`read_review` without the person's columns)."""
    return read_review(path, known)


def read_review(
    path: Path, known: Collection[str], owned: Sequence[str] | None = None
) -> DecisionsRead:
    """The decisions, and with ``owned`` the columns a person added, in the workbook at
    ``path``, matched by key against ``known`` keys.

    ``owned`` lists the Results headers batchgen wrote (each one consumed once, left to
    right); every other header is a person's column. A missing file reads as nothing and no
    warning. Never raises for a bad file. The workbook is measured before it is parsed
    (``batchgen.xlsx_bounds``): one with more cells than :func:`results_cell_limit` allows
    for ``len(known)`` jobs is not read.
    """
    if not path.is_file():
        return DecisionsRead({}, [])
    problem = _bounds_problem(path, results_cell_limit(len(known)))
    if problem is not None:
        return _refuse(path, f"it {problem}")
    try:
        rows, sheets = _rows(path)
    except (
        OSError,
        InvalidFileException,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        TypeError,
        SyntaxError,
    ) as exc:  # SyntaxError: XML ParseError
        return _refuse(path, f"it cannot be read as a workbook ({exc})")
    if not rows:
        return _refuse(path, "its first sheet is empty")
    added = tuple(name for name in sheets if name not in RESULTS_SHEETS)
    person = None if owned is None else _person_positions(rows[0], owned)
    read = _match(path, rows[0], rows[1:], set(known), person)
    return DecisionsRead(read.decisions, read.warnings, read.refused, read.columns, added)


#: Cells a results workbook may hold whatever its size (the Summary and Runs sheets, notes).
RESULTS_CELLS_FLOOR = 100_000
#: Cells per job: a row in the Results sheet and one in Failed, up to 100 columns each (the
#: manifest's columns, ``RESULT_COLUMNS`` and ``REVIEW_COLUMNS``).
RESULTS_CELLS_PER_JOB = 200
#: Unpacked bytes a results workbook may hold (the manifest's zip-bomb guard).
RESULTS_MAX_UNPACKED = 512 * 1024 * 1024


def results_cell_limit(jobs: int) -> int:
    """Cells with a value ``results.xlsx`` may hold for a state of ``jobs`` jobs."""
    return RESULTS_CELLS_FLOOR + (jobs + 1) * RESULTS_CELLS_PER_JOB


def _bounds_problem(path: Path, max_cells: int) -> str | None:
    """Why the workbook at ``path`` is too big to read (or not a workbook at all), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            return workbook_problem(archive, max_unpacked=RESULTS_MAX_UNPACKED, max_cells=max_cells)
    except READ_ERRORS as exc:
        return f"cannot be read as a workbook ({exc})"


def _rows(path: Path) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Every row's values of the Results sheet (else the first sheet), and every sheet's
    name."""
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book[_SHEET] if _SHEET in book.sheetnames else book.worksheets[0]
        return list(sheet.iter_rows(values_only=True)), list(book.sheetnames)
    finally:
        book.close()


def _header_text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


def _person_positions(header: Sequence[Any], owned: Sequence[str]) -> list[int]:
    """The positions of ``header`` that are not batchgen's: each name of ``owned`` claims
    one header of that name, left to right; trailing empty headers are no column."""
    left = Counter(owned)
    found = []
    for index, cell in enumerate(header):
        name = _header_text(cell)
        if left[name] > 0:
            left[name] -= 1
        else:
            found.append(index)
    return found


def _match(
    path: Path,
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    known: set[str],
    person: Sequence[int] | None = None,
) -> DecisionsRead:
    key_at, decision_at = _header_index(header, "key"), _header_index(header, "decision")
    if key_at is None or decision_at is None:
        return _refuse(path, "it has no 'key' and 'decision' columns")
    found: dict[str, str | None] = {}
    notes: dict[str, tuple[Any, ...]] = {}
    warnings: list[str] = []
    for number, values in enumerate(rows, start=2):
        key = _cell(values, key_at)
        raw = _cell(values, decision_at)
        mine = tuple(_value(values, at) for at in person or ())
        if not key:
            if raw:
                return _refuse(path, f"row {number} has a decision but no key")
            if any(v is not None for v in mine):
                return _refuse(path, f"row {number} has values in a column you added but no key")
            continue
        if key not in known:
            return _refuse(path, f"row {number}'s key {key!r} is not a job of this manifest")
        if key in found or key in notes:
            return _refuse(path, f"the key {key!r} appears twice (row {number})")
        if any(v is not None for v in mine):
            notes[key] = mine
        decision = DECISION_SYNONYMS.get(" ".join(raw.split()).casefold()) if raw else None
        if raw and decision is None:
            warnings.append(
                f"{path}: row {number}: {raw[:40]!r} is not a decision (approve, reject, "
                "regenerate); left as it was"
            )
            continue
        found[key] = decision
    columns = None if person is None else _columns(header, person, notes)
    return DecisionsRead(found, warnings, columns=columns)


def _columns(
    header: Sequence[Any], person: Sequence[int], notes: dict[str, tuple[Any, ...]]
) -> PersonColumns:
    """The person's columns at ``person`` positions; a column without a header and without
    a value is no column (the sheet's empty cells past its end)."""
    keep = [
        i
        for i, at in enumerate(person)
        if _header_text(header[at]) or any(row[i] is not None for row in notes.values())
    ]
    names = tuple(_header_text(header[person[i]]) for i in keep)
    after = tuple(_header_text(header[person[i] - 1]) if person[i] > 0 else None for i in keep)
    values = {
        key: tuple(row[i] for i in keep)
        for key, row in notes.items()
        if any(row[i] is not None for i in keep)
    }
    return PersonColumns(names=names, after=after, values=values)


def _value(values: Sequence[Any], index: int) -> Any:
    """A person's cell as typed: None for empty (or only spaces)."""
    value = values[index] if index < len(values) else None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _cell(values: Sequence[Any], index: int) -> str:
    value = values[index] if index < len(values) else None
    return "" if value is None else str(value).strip()
