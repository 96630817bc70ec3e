"""The review loop in the results: variant and lineage columns, the Decision drop-down, and
reading the decisions a person typed back out of ``results.xlsx``.

Columns added after the result columns (``REVIEW_COLUMNS`` in the CSV, ``REVIEW_HEADER`` in
the XLSX, after the videos): ``variant`` (1, 2...; the row's
variants share its ``row``), ``replaces`` (the key of the variant this one regenerates),
``prompt_template`` (when the prompt was filled from one), ``prompt_sent`` (the text that
template gave)
and ``decision`` (``approve`` / ``reject`` / ``regenerate``, a drop-down in the XLSX).

Reading decisions back (:func:`read_decisions`) matches rows by the ``key`` column, never by
position, and reads nothing but the key and the decision: a person may sort, filter, colour
or add columns. A file it cannot match row by row (no key or decision column, a key the state
does not know, a key twice, a decision on a row without a key) gives no decisions at all and
a warning saying why.
"""

from __future__ import annotations

import zipfile
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
    "REVIEW_COLUMNS",
    "REVIEW_HEADER",
    "DecisionsRead",
    "Review",
    "cost_per_keeper",
    "decision_validation",
    "read_decisions",
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
    "Variant",
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


@dataclass(frozen=True)
class DecisionsRead:
    """Decisions found in a results workbook: ``{key: decision or None (cleared)}``."""

    decisions: dict[str, str | None]
    warnings: list[str]
    refused: str | None = None  # why no decision was read at all


def _refuse(path: Path, why: str) -> DecisionsRead:
    return DecisionsRead({}, [], f"{path}: decisions not read: {why}")


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
    """The decisions in the workbook at ``path``, matched by key against ``known`` keys.

    A missing file reads as no decisions and no warning. Never raises for a bad file. The
    workbook is measured before it is parsed (``batchgen.xlsx_bounds``): one with more cells
    than :func:`results_cell_limit` allows for ``len(known)`` jobs is not read.
    """
    if not path.is_file():
        return DecisionsRead({}, [])
    problem = _bounds_problem(path, results_cell_limit(len(known)))
    if problem is not None:
        return _refuse(path, f"it {problem}")
    try:
        rows = _rows(path)
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
    return _match(path, rows[0], rows[1:], set(known))


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
        return f"it cannot be read as a workbook ({exc})"


def _rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row's values of the Results sheet (else the first sheet)."""
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book[_SHEET] if _SHEET in book.sheetnames else book.worksheets[0]
        return list(sheet.iter_rows(values_only=True))
    finally:
        book.close()


def _match(
    path: Path, header: Sequence[Any], rows: Sequence[Sequence[Any]], known: set[str]
) -> DecisionsRead:
    key_at, decision_at = _header_index(header, "key"), _header_index(header, "decision")
    if key_at is None or decision_at is None:
        return _refuse(path, "it has no 'key' and 'decision' columns")
    found: dict[str, str | None] = {}
    warnings: list[str] = []
    for number, values in enumerate(rows, start=2):
        key = _cell(values, key_at)
        raw = _cell(values, decision_at)
        if not key:
            if raw:
                return _refuse(path, f"row {number} has a decision but no key")
            continue
        if key not in known:
            return _refuse(path, f"row {number}'s key {key!r} is not a job of this manifest")
        if key in found:
            return _refuse(path, f"the key {key!r} appears twice (row {number})")
        decision = DECISION_SYNONYMS.get(" ".join(raw.split()).casefold()) if raw else None
        if raw and decision is None:
            warnings.append(
                f"{path}: row {number}: {raw[:40]!r} is not a decision (approve, reject, "
                "regenerate); left as it was"
            )
            continue
        found[key] = decision
    return DecisionsRead(found, warnings)


def _cell(values: Sequence[Any], index: int) -> str:
    value = values[index] if index < len(values) else None
    return "" if value is None else str(value).strip()
