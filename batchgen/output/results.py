"""The results sheet: ``results.xlsx`` and ``results.csv``, projections of the state store.

Both files hold one row per job: the user's own manifest columns first, untouched, then our
columns. The XLSX is for people (``Status``, ``Task ID``, ``Cost (USD)``, ``Error``,
``Video 1``, ``Video 2``…; see ``batchgen.output.workbook``); the CSV is for scripts and keeps
the stable machine names of ``RESULT_COLUMNS``. Rows deleted from the manifest since an earlier
run come last; their status reads e.g. ``downloaded (deleted from manifest)``. The functions
take plain data (``Job``, ``RunInfo``) and never read the state themselves, so
``batchgen report`` rebuilds identical files from the state alone.

Decisions worth knowing:

* **Times** are UTC to the second: ISO 8601 with ``Z`` in the CSV
  (``2025-03-01T09:30:05Z``), real Excel dates in the XLSX whose headers say ``(UTC)``.
* **Name clashes.** A result column whose name a user column already has (say the manifest
  has its own ``status``) is headed ``batchgen_status``; the user's column keeps its name.
* **Edits after sending.** When the manifest's request of an already sent row no longer
  matches the one that was sent, ``request_changed`` (XLSX: ``Changed since made``) names every
  field that differs, with the value the video was made with and the one asked now, and
  ``prompt_used`` holds the whole prompt the video was made from when the prompt is one of
  them (prompts compared as the row key compares them: NFC, runs of white space folded).
* **CSV injection.** Text fields (not numbers) starting with ``= + - @``, tab or CR get a
  leading ``'`` (OWASP) unless ``csv_escape=False``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from batchgen.atomic import atomic_path
from batchgen.models import Job
from batchgen.output.cells import (
    DELETED_MARK,
    STATUS_TONE,
    clean_text,
    csv_time,
    job_usd,
    prompt_used,
    request_changed,
    status_text,
    unique_names,
    utc_naive,
    what_to_do,
)
from batchgen.output.review import REVIEW_COLUMNS, PersonColumns, Review
from batchgen.output.summary import Summary, summarise
from batchgen.output.workbook import Measure, write_workbook
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = [
    "CSV_NAME",
    "DELETED_MARK",
    "RESULT_COLUMNS",
    "STATUS_TONE",
    "XLSX_NAME",
    "Summary",
    "clean_text",
    "csv_time",
    "job_usd",
    "prompt_used",
    "request_changed",
    "summarise",
    "utc_naive",
    "what_to_do",
    "write_results",
]


#: The CSV's own columns, after the user's: stable machine names for scripts (README).
RESULT_COLUMNS: tuple[str, ...] = (
    "row",
    "key",
    "status",
    "task_id",
    "attempts",
    "consumed_credits",
    "cost_usd",
    "created_at",
    "submitted_at",
    "completed_at",
    "error_kind",
    "error_message",
    "prompt_used",
    "request_changed",
    "video_urls",
    "files",
)
XLSX_NAME = "results.xlsx"
CSV_NAME = "results.csv"

_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def write_results(
    out_dir: Path,
    *,
    columns: Sequence[str],
    jobs: Iterable[Job],
    summary: Summary,
    csv_escape: bool = True,
    review: Review | None = None,
    person: PersonColumns | None = None,
    measure: Measure | None = None,
    attention: Iterable[Job] | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/results.xlsx`` and ``out_dir/results.csv``, each atomically.

    ``columns`` are the manifest's own header names, whose values each ``job.user`` holds
    (what a row's video was made from, when edited since, comes from the job itself: see
    :func:`~batchgen.output.cells.request_changed`); ``job.files`` are relative to
    ``out_dir``. Deleted rows are moved last if they are not. ``jobs`` may be iterated
    several times and is never held whole (a view of the state keeps memory flat: see
    :class:`batchgen.output.reports.StateJobs`); the CSV is written in the same pass as the
    workbook's Results sheet.
    ``review`` adds the variant, lineage, template and decision columns to both files;
    ``person`` the columns a person added to the XLSX (kept there only: the CSV's columns are
    stable for scripts). ``measure`` and ``attention``: the workbook's sizes, gathered in
    another pass, and the rows of its Failed sheet (see
    :func:`~batchgen.output.workbook.write_workbook`). Returns the paths of the XLSX and the
    CSV.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = DeletedLast(jobs)
    xlsx_path, csv_path = out_dir / XLSX_NAME, out_dir / CSV_NAME
    with _CsvLines(csv_path, columns, escape=csv_escape, review=review, unit=summary.unit) as lines:
        write_workbook(
            xlsx_path,
            columns=columns,
            jobs=ordered,
            summary=summary,
            used_prompt=prompt_used,
            review=review,
            person=person,
            each=lines.write,
            measure=measure,
            attention=attention,
        )
    return xlsx_path, csv_path


class DeletedLast:
    """``jobs`` with the rows no longer in the manifest moved last, manifest order kept (a
    stable partition, made again at each iteration: only the deleted rows are held)."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.jobs = jobs

    def __iter__(self) -> Iterator[Job]:
        deleted = []
        for job in self.jobs:
            if job.in_manifest:
                yield job
            else:
                deleted.append(job)
        yield from deleted


# --- values shared by both files and the gallery -------------------------------------------


# --- CSV ------------------------------------------------------------------------------------


def _lines(items: Sequence[str]) -> str | None:
    return "\n".join(items) or None


def _getters(unit: BillingUnit = CREDIT) -> list[Callable[[Job], Any]]:
    return [
        lambda job: job.row,
        lambda job: job.key,
        status_text,
        lambda job: job.task_id,
        lambda job: job.attempts,
        lambda job: job.consumed_credits if unit.credits else None,
        lambda job: f"{job_usd(job, unit):.2f}" if unit.credits else f"{job_usd(job, unit):g}",
        lambda job: csv_time(job.created_at),
        lambda job: csv_time(job.submitted_at),
        lambda job: csv_time(job.completed_at),
        lambda job: job.error_kind,
        lambda job: job.error_message,
        prompt_used,
        request_changed,
        lambda job: _lines(job.video_urls),
        lambda job: _lines(job.files),
    ]


def _csv_field(value: Any, escape: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = clean_text(value)
        return "'" + text if escape and text.startswith(_CSV_TRIGGERS) else text
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"  # what Excel reads back as a boolean
    if isinstance(value, dt.datetime):
        return (utc_naive(value) or value).isoformat(
            sep=" "
        )  # the user's own dates: as in the XLSX
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return str(value)


class _CsvLines:
    """``results.csv`` written line by line, atomically: ``with _CsvLines(...) as lines:``,
    then ``lines.write(job)`` for each row in order."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        *,
        escape: bool,
        review: Review | None,
        unit: BillingUnit = CREDIT,
    ) -> None:
        self.path, self.columns, self.escape, self.review = path, columns, escape, review
        self.getters = _getters(unit)

    def __enter__(self) -> _CsvLines:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        # utf-8-sig writes the BOM Excel needs to read the file as UTF-8.
        self._handle = tmp.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._handle)
        ours = RESULT_COLUMNS + (REVIEW_COLUMNS if self.review is not None else ())
        header = [*self.columns, *unique_names(self.columns, ours)]
        self._writer.writerow([_csv_field(name, self.escape) for name in header])
        return self

    def write(self, job: Job) -> None:
        """The line of ``job``."""
        values = [job.user.get(name) for name in self.columns]
        values += [getter(job) for getter in self.getters]
        if self.review is not None:
            values += self.review.values(job.key, job.prompt)
        self._writer.writerow([_csv_field(value, self.escape) for value in values])

    def __exit__(self, *exc_info: Any) -> None:
        self._handle.close()
        self._atomic.__exit__(*exc_info)
