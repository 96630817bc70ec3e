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
* **Prompt used.** When the manifest's prompt of an already generated row no longer matches
  the prompt that was sent (compared as the row key compares it: NFC, runs of white space
  folded), ``prompt_used`` holds the prompt the video was made from.
* **CSV injection.** Text fields (not numbers) starting with ``= + - @``, tab or CR get a
  leading ``'`` (OWASP) unless ``csv_escape=False``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.atomic import atomic_path
from batchgen.models import NEEDS_ATTENTION, USD_PER_CREDIT, Job, JobStatus, RunInfo

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
    "video_urls",
    "files",
)
XLSX_NAME = "results.xlsx"
CSV_NAME = "results.csv"
DELETED_MARK = " (deleted from manifest)"

_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")

#: How each status reads at a glance, shared with the gallery: done / failed / waiting /
#: attention (unknown: maybe created, maybe charged; download_failed: fetch it again).
STATUS_TONE: dict[str, str] = {
    **dict.fromkeys(JobStatus, "waiting"),
    JobStatus.DOWNLOADED: "done",
    **dict.fromkeys((JobStatus.INVALID, JobStatus.REJECTED, JobStatus.FAILED), "failed"),
    **dict.fromkeys((JobStatus.UNKNOWN, JobStatus.DOWNLOAD_FAILED), "attention"),
}


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The figures of a manifest's runs, for the Summary sheet and the gallery header.

    ``counts`` has every status (in ``JobStatus`` order, zeros included) over the rows still
    in the manifest; ``rows`` is their number and ``deleted`` the rows kept from earlier runs.
    ``videos`` counts the video files on disk of those rows. ``started_at``/``ended_at``/
    ``duration_s``/``command`` describe the last run; ``credits``, ``requests`` and
    ``rate_limited`` (429s met) are totals over every run, ``runs`` every run oldest first.
    """

    counts: dict[str, int]
    rows: int
    credits: int
    usd: float
    requests: int
    rate_limited: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    command: str
    version: str
    manifest: str
    deleted: int = 0
    videos: int = 0
    runs: tuple[RunInfo, ...] = field(default=())

    @property
    def needs_attention(self) -> int:
        """How many rows in the manifest a person should look at."""
        return sum(n for status, n in self.counts.items() if status in NEEDS_ATTENTION)

    @property
    def failed(self) -> int:
        """Rows in the manifest that ended without their videos (invalid, refused, failed)."""
        return sum(n for status, n in self.counts.items() if STATUS_TONE[status] == "failed")


def summarise(
    jobs: Iterable[Job], runs: Sequence[RunInfo], *, manifest: str, version: str
) -> Summary:
    """Count the jobs per status and total the runs' requests, 429s and credits."""
    counts = {status.value: 0 for status in JobStatus}
    deleted = videos = 0
    for job in jobs:
        if job.in_manifest:
            counts[str(job.status)] = counts.get(str(job.status), 0) + 1
            videos += len(job.files)
        else:
            deleted += 1
    ordered = tuple(sorted(runs, key=lambda run: run.run_id))
    last = ordered[-1] if ordered else None
    credits = sum(run.credits for run in runs)
    return Summary(
        counts=counts,
        rows=sum(counts.values()),
        deleted=deleted,
        videos=videos,
        credits=credits,
        usd=round(credits * USD_PER_CREDIT, 2),
        requests=sum(run.requests for run in runs),
        rate_limited=sum(run.rate_limited for run in runs),
        started_at=last.started_at if last else None,
        ended_at=last.ended_at if last else None,
        duration_s=_duration(last),
        command=last.command if last else "",
        version=version,
        manifest=manifest,
        runs=ordered,
    )


def _duration(run: RunInfo | None) -> float | None:
    if run is None or run.ended_at is None:
        return None
    return (run.ended_at - run.started_at).total_seconds()


def write_results(
    out_dir: Path,
    *,
    columns: Sequence[str],
    jobs: Iterable[Job],
    summary: Summary,
    csv_escape: bool = True,
    prompt_column: str | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/results.xlsx`` and ``out_dir/results.csv``, each atomically.

    ``columns`` are the manifest's own header names, whose values each ``job.user`` holds;
    ``prompt_column`` is the one among them holding the prompt (for ``prompt_used``);
    ``job.files`` are relative to ``out_dir``. Deleted rows are moved last if they are not.
    Returns the paths of the XLSX and the CSV.
    """
    from batchgen.output.workbook import write_workbook

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Stable: manifest order is kept, rows no longer in the manifest go last.
    ordered = sorted(jobs, key=lambda job: not job.in_manifest)
    xlsx_path, csv_path = out_dir / XLSX_NAME, out_dir / CSV_NAME
    write_workbook(
        xlsx_path, columns=columns, jobs=ordered, summary=summary, prompt_column=prompt_column
    )
    _write_csv(csv_path, columns, ordered, escape=csv_escape, prompt_column=prompt_column)
    return xlsx_path, csv_path


# --- values shared by both files and the gallery -------------------------------------------


def clean_text(text: str) -> str:
    """Drop characters an XLSX cannot hold; make lone surrogates encodable (U+FFFD)."""
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


def job_usd(job: Job) -> float:
    """What the row's task cost, in USD (credits x 0.01, the vendor's price)."""
    return round(job.consumed_credits * USD_PER_CREDIT, 2)


def _folded(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def prompt_used(job: Job, prompt_column: str | None) -> str | None:
    """The prompt a generated row was made from, when the manifest's prompt now differs.

    None for rows not sent yet (their request follows the manifest) and when the prompts
    match once white space is folded (as the row key compares them).
    """
    if prompt_column is None or job.status in (JobStatus.PENDING, JobStatus.INVALID):
        return None
    current = job.user.get(prompt_column)
    if current is None or _folded(str(current)) == _folded(job.prompt):
        return None
    return job.prompt


_WHAT_TO_DO = {
    JobStatus.INVALID: "Fix the cell the error names in the manifest, then run again.",
    JobStatus.REJECTED: "The API refused the request: change it, then run with --retry-failed.",
    JobStatus.UNKNOWN: (
        "Maybe charged: check the vendor's dashboard; if no task exists, "
        "run with --resubmit-unknown."
    ),
    JobStatus.DOWNLOAD_FAILED: "Run again: the download is retried (vendor links expire).",
}


def what_to_do(job: Job) -> str:
    """One line telling a person what to do about a row that needs attention."""
    if job.status is JobStatus.FAILED:
        if job.error_kind == "transient":
            return "A passing failure: run again, it is retried automatically."
        return "The task failed for good: change the prompt, then run with --retry-failed."
    return _WHAT_TO_DO.get(job.status, "")


# --- CSV ------------------------------------------------------------------------------------


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


def _lines(items: Sequence[str]) -> str | None:
    return "\n".join(items) or None


def _getters(prompt_column: str | None) -> list[Callable[[Job], Any]]:
    return [
        lambda job: job.row,
        lambda job: job.key,
        status_text,
        lambda job: job.task_id,
        lambda job: job.attempts,
        lambda job: job.consumed_credits,
        lambda job: f"{job_usd(job):.2f}",
        lambda job: csv_time(job.created_at),
        lambda job: csv_time(job.submitted_at),
        lambda job: csv_time(job.completed_at),
        lambda job: job.error_kind,
        lambda job: job.error_message,
        lambda job: prompt_used(job, prompt_column),
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
        return _naive(value).isoformat(sep=" ")  # the user's own dates: as in the XLSX
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return str(value)


def _write_csv(
    path: Path,
    columns: Sequence[str],
    jobs: Sequence[Job],
    *,
    escape: bool,
    prompt_column: str | None,
) -> None:
    header = [*columns, *unique_names(columns, RESULT_COLUMNS)]
    getters = _getters(prompt_column)
    # utf-8-sig writes the BOM Excel needs to read the file as UTF-8.
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_csv_field(name, escape) for name in header])
        for job in jobs:
            values = [job.user.get(name) for name in columns]
            values += [getter(job) for getter in getters]
            writer.writerow([_csv_field(value, escape) for value in values])
