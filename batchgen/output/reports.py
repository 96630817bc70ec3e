"""Write every output of a manifest from its state: results sheets and the gallery.

A new output format is one more call in :func:`write_reports`.

results.xlsx is a shared document: batchgen owns the columns it writes, a person owns the
Decision column and any column they add. Before anything rewrites the workbook, what the
person typed is read back into the state (``app.review_loop.absorb_review``): decisions, and
the added columns with their values by key (``PERSON_COLUMNS_META``), which every rewrite
puts back in their places with a line in the log. ``RESULTS_HEADER_META`` remembers the
header batchgen wrote, so the next read tells its columns from the person's. A workbook that
cannot be matched row by row is first copied aside (:func:`keep_aside`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import shutil
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from batchgen import __version__
from batchgen.atomic import atomic_path
from batchgen.config import Settings
from batchgen.models import NEEDS_ATTENTION, Job, JobStatus, RunInfo, split_variant
from batchgen.output.gallery import write_gallery
from batchgen.output.results import XLSX_NAME, summarise, write_results
from batchgen.output.review import PersonColumns, Review, cost_per_keeper
from batchgen.output.workbook import Measure, results_header
from batchgen.providers.descriptor import unit_named
from batchgen.state.protocol import Store

__all__ = [
    "PERSON_COLUMNS_META",
    "RESULTS_HEADER_META",
    "WORKBOOK_STAMP_META",
    "keep_aside",
    "owned_header",
    "record_run_counts",
    "reports_current",
    "workbook_stamp",
    "write_reports",
]

log = logging.getLogger("batchgen")

#: Meta key: size and mtime of results.xlsx as written; another value means a person saved it.
WORKBOOK_STAMP_META = "results_xlsx_stamp"
#: Meta key: the columns a person added to results.xlsx (``PersonColumns.to_json``).
PERSON_COLUMNS_META = "results_xlsx_person_columns"
#: Meta key: the Results header batchgen last wrote (JSON list), before the person's columns.
RESULTS_HEADER_META = "results_xlsx_header"
#: Video columns assumed for a workbook written before the header was remembered.
_OLD_VIDEO_COLUMNS = 100
#: Headers older versions wrote that batchgen no longer does (never a person's column).
_OLD_NAMES = ("Variant",)


def workbook_stamp(out_dir: Path) -> str:
    """``size:mtime_ns`` of ``out_dir/results.xlsx`` ("" when there is none)."""
    try:
        info = (out_dir / XLSX_NAME).stat()
    except OSError:
        return ""
    return f"{info.st_size}:{info.st_mtime_ns}"


def _display_order(job: Job) -> tuple[bool, int, int, str]:
    row_key, variant = split_variant(job.key)
    return (not job.in_manifest, job.row, variant, row_key)


class StateJobs:
    """A state's jobs in display order, read from it page by page at each iteration, never
    held whole: by row, each row's takes by number (``#v2`` before ``#v10``), rows no longer
    in the manifest last. Every output of a 100,000-row manifest is written through it, so
    memory follows the rows of one page, not the state (each pass reads about 100,000 rows a
    second). ``statuses`` and ``in_manifest_only`` narrow it as ``iter_jobs`` does (in SQL:
    the rows left out are never built)."""

    def __init__(
        self,
        store: Store,
        statuses: Collection[JobStatus] | None = None,
        *,
        in_manifest_only: bool = False,
    ) -> None:
        self.store = store
        self.statuses, self.in_manifest_only = statuses, in_manifest_only

    def __iter__(self) -> Iterator[Job]:
        group: list[Job] = []
        rows = self.store.iter_jobs(self.statuses, in_manifest_only=self.in_manifest_only)
        for job in rows:  # by (in manifest, row, key): sort each row's takes
            if group and (job.in_manifest, job.row) != (group[0].in_manifest, group[0].row):
                yield from sorted(group, key=_display_order)
                group = []
            group.append(job)
        yield from sorted(group, key=_display_order)


@dataclasses.dataclass
class _Tally:
    """What the outputs need to know of every row before writing one, gathered in the pass
    that makes the summary: the status of each decided key, and the workbook's
    :class:`~batchgen.output.workbook.Measure` (its video columns among them)."""

    decided: Collection[str]
    measure: Measure
    statuses: dict[str, JobStatus] = dataclasses.field(default_factory=dict)

    def watch(self, jobs: Iterable[Job]) -> Iterator[Job]:
        for job in jobs:
            self.measure.add(job)
            if job.key in self.decided:
                self.statuses[job.key] = job.status
            yield job


_RUN_COUNTS = "run_counts:{}"


def record_run_counts(store: Store, run_id: int, *, submitted: int, downloaded: int) -> None:
    """Keep what one run submitted and downloaded, for the ``Runs`` sheet."""
    counts = {"submitted": submitted, "downloaded": downloaded}
    store.set_meta(_RUN_COUNTS.format(run_id), json.dumps(counts))


def _runs(store: Store) -> list[RunInfo]:
    runs = []
    for run in store.runs():
        raw = store.get_meta(_RUN_COUNTS.format(run.run_id))
        counts = json.loads(raw) if raw else {}
        runs.append(
            dataclasses.replace(
                run,
                submitted=int(counts.get("submitted", 0)),
                downloaded=int(counts.get("downloaded", 0)),
            )
        )
    return runs


def write_reports(
    store: Store,
    out_dir: Path,
    *,
    name: str,
    settings: Settings,
    prompt_column: str | None = None,
    mode_column: str | None = None,
    ratio_column: str | None = None,
    make_posters: bool = True,
) -> None:
    """Rebuild results.xlsx, results.csv and index.html from the state alone.

    ``prompt_column`` names the manifest column holding the prompt (None: unknown), which
    the gallery shows apart; rows edited after they were sent show what their video was made
    with from the state itself (``Job.request_now``, kept by the manifest sync);
    ``mode_column`` and ``ratio_column`` the ones the gallery shows in a card's top line;
    ``make_posters``: whether the gallery may make missing poster frames (within its time
    bound; ``batchgen run`` passes False, see :func:`~batchgen.output.gallery.write_gallery`).
    Jobs are listed by row, each row's variants after it by number (``#v2`` before ``#v10``),
    read from the state as each file is written (:class:`StateJobs`): memory does not grow
    with the rows.
    """
    jobs = StateJobs(store)
    unit = unit_named(store.get_meta("billing_unit"))
    review = Review(origins=store.origins(), decisions=store.decisions())
    columns = store.columns()
    tally = _Tally(review.decisions, Measure(columns))
    summary = summarise(
        tally.watch(jobs), _runs(store), manifest=name, version=__version__, unit=unit
    )
    spend = store.spend()  # charged / committed / possibly charged, in the provider's unit
    summary = dataclasses.replace(
        summary,
        credits=spend.charged,
        committed=spend.committed,
        possible=spend.possible,
        usd=round(unit.usd(spend.total), 6),
    )
    person = PersonColumns.from_json(store.get_meta(PERSON_COLUMNS_META))
    keepers, per_keeper = cost_per_keeper(summary.credits, tally.statuses, review.decisions)
    summary = dataclasses.replace(summary, approved=keepers, credits_per_keeper=per_keeper)
    write_results(
        out_dir,
        columns=columns,
        jobs=jobs,
        summary=summary,
        csv_escape=settings.output.csv_escape,
        review=review,
        person=person,
        measure=tally.measure,  # carried by the summary's pass: not one more read
        attention=StateJobs(store, NEEDS_ATTENTION, in_manifest_only=True),  # its few rows
    )
    if person.names:
        log.info(
            "%s: %s rewritten, keeping the column(s) a person added: %s",
            name,
            XLSX_NAME,
            person.describe(),
        )
    header = results_header(columns, max(tally.measure.videos, 1), review=True)
    store.set_meta(RESULTS_HEADER_META, json.dumps(header, ensure_ascii=False))
    write_gallery(
        out_dir,
        jobs=jobs,
        summary=summary,
        prompt_column=prompt_column,
        mode_column=mode_column,
        ratio_column=ratio_column,
        review=review,
        make_posters=make_posters,
    )
    store.set_meta(WORKBOOK_STAMP_META, workbook_stamp(out_dir))
    store.set_meta(_REPORTS_META, _fingerprint(store))


_REPORTS_META = "reports_fingerprint"
_REPORT_FILES = ("results.xlsx", "results.csv", "index.html")


def reports_current(store: Store, out_dir: Path) -> bool:
    """True when the reports on disk were written from exactly this state of the rows.

    A no-op re-run of a 100,000-row manifest then costs seconds instead of the time that
    rewriting the sheets takes; the Summary sheet keeps the last run that changed something.
    """
    if not all((out_dir / name).exists() for name in _REPORT_FILES):
        return False
    return store.get_meta(_REPORTS_META) == _fingerprint(store)


def _fingerprint(store: Store) -> str:
    """The rows' fingerprint and the review's: a decision or a note typed since the last
    write changes the results (and the gallery) even when no row did."""
    review = hashlib.sha256()
    for key, decision in sorted(store.decisions().items()):
        review.update(f"{key}\0{decision}\0".encode("utf-8", "surrogatepass"))
    review.update((store.get_meta(PERSON_COLUMNS_META) or "").encode("utf-8", "surrogatepass"))
    return f"{store.fingerprint()}|{review.hexdigest()[:16]}"


def owned_header(store: Store) -> list[str]:
    """The Results headers batchgen wrote last time (every other header is a person's):
    remembered at each write; for a workbook written before that, the header batchgen would
    write for the manifest's columns (with many video columns)."""
    try:
        remembered = json.loads(store.get_meta(RESULTS_HEADER_META) or "null")
    except ValueError:
        remembered = None
    if isinstance(remembered, list) and all(isinstance(n, str) for n in remembered):
        return remembered
    return [*results_header(store.columns(), _OLD_VIDEO_COLUMNS, review=True), *_OLD_NAMES]


def keep_aside(path: Path, *, now: dt.datetime | None = None) -> Path:
    """Copy ``path`` (a workbook a person edited) to a dated name beside it, never
    overwriting one: ``results-kept-2025-06-01-093012.xlsx`` (local time), ``-2``... on a
    clash. Returns the copy's path; OSError passes through."""
    moment = (now or dt.datetime.now().astimezone()).strftime("%Y-%m-%d-%H%M%S")
    for number in range(1, 1000):
        suffix = "" if number == 1 else f"-{number}"
        aside = path.with_name(f"{path.stem}-kept-{moment}{suffix}{path.suffix}")
        if not aside.exists():
            break
    with atomic_path(aside) as tmp:
        shutil.copy2(path, tmp)
    return aside
