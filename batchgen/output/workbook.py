"""``results.xlsx`` for people: sheets ``Results``, ``Summary``, ``Failed`` and ``Runs``.

Written with XlsxWriter in constant-memory mode (rows stream to disk as they are written):
100,000 rows take about a quarter of openpyxl's write-only time (``benchmarks/
bench_results.py`` measures both on the same cells). Decisions worth knowing:

* **Headers for people**: ``Row``, ``Key``, ``Status``, ``Task ID``, ``Credits``,
  ``Cost (USD)``, ``Submitted (UTC)``, ``Completed (UTC)``, ``Error``, ``Prompt used``,
  ``Changed since made`` (the request fields edited in the manifest after the row was sent,
  with the values its video was made with), then ``Video 1``, ``Video 2``… The engineering
  columns (attempts, error kind, when the row was added) and the machine names stay in the
  CSV (``batchgen.output.results.RESULT_COLUMNS``).
* **One video per cell, one link per cell**: the downloaded file (a link relative to the
  sheet, so the folder can be moved), else the vendor URL. Excel allows 65,530 links per
  sheet: files are linked first, then URLs; past that cells stay text and Summary says so.
* **Literal text**: every string is written as a string, never a formula or an error code;
  characters XML forbids are dropped, cells over Excel's 32,767 UTF-16 units end with
  ``TRUNCATION_MARKER``, line breaks become LF.
* **Times** are real Excel dates in UTC to the second; the headers say ``(UTC)`` once.
* **Row heights** are estimated from the wrapped cells (Excel does not grow a row for
  wrapped text on its own when the file gives a height-less row), capped at Excel's 409 pt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
import xlsxwriter.exceptions
from xlsxwriter.format import Format
from xlsxwriter.url import Url
from xlsxwriter.worksheet import Worksheet

from batchgen.atomic import atomic_path
from batchgen.models import NEEDS_ATTENTION, Job, RunInfo
from batchgen.output.cells import (
    MAX_CELL_CHARS,
    MAX_LINK_CHARS,
    STATUS_TONE,
    TRUNCATION_MARKER,
    file_target,
    fit_cell,
    job_usd,
    request_changed,
    status_text,
    text_width,
    unique_names,
    url_target,
    utc_naive,
    what_to_do,
    wrapped,
)
from batchgen.output.review import (
    REVIEW_HEADER,
    PersonColumns,
    Review,
    decision_validation,
    review_values,
)
from batchgen.output.summary import Summary
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = [
    "FAILED_HEADER",
    "MAX_CELL_CHARS",
    "MAX_HYPERLINKS",
    "RESULT_HEADER",
    "RUNS_HEADER",
    "TRUNCATION_MARKER",
    "Measure",
    "RelativeFileLink",
    "results_header",
    "video_columns",
    "write_workbook",
]

#: The Results sheet's own columns after the user's, then ``Video 1``… as many as needed.
RESULT_HEADER: tuple[str, ...] = (
    "Row",
    "Key",
    "Status",
    "Task ID",
    "Credits",
    "Cost (USD)",
    "Submitted (UTC)",
    "Completed (UTC)",
    "Error",
    "Prompt used",
    "Changed since made",
)
FAILED_HEADER: tuple[str, ...] = ("Row", "Key", "Status", "Error", "What to do")
RUNS_HEADER: tuple[str, ...] = (
    "Run",
    "Started (UTC)",
    "Ended (UTC)",
    "Duration",
    "Exit code",
    "Outcome",
    "Submitted",
    "Downloaded",
    "Credits charged",
    "Cost (USD)",
    "Requests",
    "429s",
    "Command line",
)
MAX_HYPERLINKS = 65_530  # Excel's per-sheet limit (the figure XlsxWriter enforces too)
_RESULT_WIDTHS = (6, 18, 14, 24, 9, 11, 20, 20, 50, 50, 40)
_FAILED_WIDTHS = (6, 18, 16, 60, 95)
_VIDEO_WIDTH = 34
_MIN_WIDTH, _MAX_WIDTH = 8, 60
_LINE_HEIGHT, _MAX_ROW_HEIGHT = 15.0, 409.0
_PALETTE = {  # tone -> (fill, font colour): Excel's own Good / Bad / Neutral tones
    "done": ("#C6EFCE", "#006100"),
    "failed": ("#FFC7CE", "#9C0006"),
    "waiting": ("#FFEB9C", "#9C5700"),
    "attention": ("#FCD5B4", "#974706"),
}
_OPTIONS = {
    "constant_memory": True,
    "strings_to_numbers": False,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    # Top-aligned by default: tall rows read from the top, and a plain cell needs no style
    # of its own (a style on every cell cost a fifth of the writing time).
    "default_format_properties": {"font_name": "Calibri", "font_size": 11, "valign": "top"},
}


def video_columns(jobs: Iterable[Job]) -> int:
    """How many ``Video n`` columns the Results sheet has for ``jobs`` (at least one)."""
    return max(1, max((max(len(j.files), len(j.video_urls)) for j in jobs), default=0))


def results_header(columns: Sequence[str], videos: int, *, review: bool) -> list[str]:
    """The Results sheet's header as batchgen writes it, before any column a person added:
    the manifest's ``columns``, ours (``batchgen_``-prefixed where a manifest column has the
    name), ``videos`` video columns, then (``review``) the review columns."""
    ours = [*RESULT_HEADER, *(f"Video {i}" for i in range(1, max(videos, 1) + 1))]
    if review:
        ours += REVIEW_HEADER
    return [*columns, *unique_names(columns, ours)]


def write_workbook(
    path: Path,
    *,
    columns: Sequence[str],
    jobs: Iterable[Job],
    summary: Summary,
    used_prompt: Callable[[Job], str | None] = lambda job: None,
    review: Review | None = None,
    person: PersonColumns | None = None,
    each: Callable[[Job], None] | None = None,
    measure: Measure | None = None,
    attention: Iterable[Job] | None = None,
) -> None:
    """Write the four sheets to ``path`` atomically (``jobs`` in sheet order; ``used_prompt``
    gives a row's ``Prompt used``, see :func:`batchgen.output.cells.prompt_used`).

    ``jobs`` is iterated up to three times (sizes, the Results sheet, the Failed sheet) and
    never held whole: a view of the state (:class:`batchgen.output.reports.StateJobs`) keeps
    memory flat whatever the rows. ``measure``: the sizes, already gathered over ``jobs`` in
    another pass (the summary's), so ``jobs`` is not read for them; ``attention``: the rows
    of the Failed sheet (in the manifest, in ``NEEDS_ATTENTION``, in sheet order), when the
    caller can ask for them alone. ``each`` is called with every job as its Results row is
    written (``write_results`` writes the CSV line then, in the same pass).

    ``person``: columns a person added to the Results sheet, written back with their values
    (matched by key), each after the column it followed (at the end when that one is gone).
    """
    with atomic_path(path) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), _OPTIONS)
        try:
            sheets = _Sheets(wb, columns, jobs, used_prompt, measure)
            sheets.attention = attention
            sheets.unit = summary.unit
            sheets.review = review  # REVIEW_HEADER after the videos, the Decision drop-down last
            sheets.person = person or PersonColumns()
            sheets.results(wb.add_worksheet("Results"), each)
            sheets.summary(wb.add_worksheet("Summary"), summary)
            sheets.failed(wb.add_worksheet("Failed"))
            sheets.runs(wb.add_worksheet("Runs"), summary.runs)
        except BaseException:
            with contextlib.suppress(Exception):
                wb.close()  # removes its temporary row files; atomic_path drops the output
            raise
        try:
            wb.close()
        except xlsxwriter.exceptions.FileCreateError as exc:  # disk full, permissions...
            cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else None
            raise (cause or OSError(str(exc))) from exc


def _money_rows(summary: Summary) -> list[tuple[str, Any]]:
    """Charged, committed and possibly charged: in credits and USD for a provider that bills
    credits, in USD for one that bills dollars."""
    unit = summary.unit
    if unit.credits:
        return [
            ("Credits charged", summary.credits),
            ("Cost (USD)", summary.usd),
            ("Credits committed (tasks in flight)", summary.committed),
            ("Credits possibly charged (unknown submits)", summary.possible),
        ]
    return [
        ("Charged (USD)", round(unit.usd(summary.credits), 6)),
        ("Cost (USD, charged + committed + possibly charged)", summary.usd),
        ("Committed, tasks in flight (USD)", round(unit.usd(summary.committed), 6)),
        ("Possibly charged, unknown submits (USD)", round(unit.usd(summary.possible), 6)),
    ]


def _layout(ours: Sequence[str], person: PersonColumns) -> tuple[list[int], list[int], list[str]]:
    """Where each column goes when a person added some: (the final column of each of
    ``ours``, the final column of each of the person's, the final header). A person's
    column follows the header it followed when read (the rightmost of that name; a
    person's column read before it counts too), else it goes last."""
    slots: list[tuple[str, int]] = [(name, index) for index, name in enumerate(ours)]
    for number, after in enumerate(person.after):
        names = [name for name, _ in slots]
        at = 0 if after is None else len(slots)
        if after is not None and after in names:
            at = len(names) - names[::-1].index(after)
        slots.insert(at, (person.names[number], -1 - number))
    place, person_at = [0] * len(ours), [0] * len(person.names)
    for col, (_, index) in enumerate(slots):
        if index >= 0:
            place[index] = col
        else:
            person_at[-1 - index] = col
    return place, person_at, [name for name, _ in slots]


class RelativeFileLink(Url):
    """A hyperlink to a file relative to the workbook, written as a URI reference.

    XlsxWriter's documented ``external:`` links are Windows paths: it turns ``/`` into ``\\``
    and cuts the target at the first ``#`` (a location in the other file). A relationship
    target of ``videos\\a.mp4`` is what Excel for Windows writes; Excel for Mac and other
    readers expect a URI (ECMA-376 Part 2, 9.3: relationship targets are URIs). So the
    ``Url`` XlsxWriter parses is given the percent-encoded, forward-slash target of
    :func:`~batchgen.output.cells.file_target` as written (``videos/a%23b.mp4``), still an
    external link. (``xlsxwriter.url.Url`` is the type ``write_url`` accepts since 3.2.3;
    ``tests/test_workbook_links.py`` reads the relationships back and opens the workbook in
    LibreOffice, so a change of XlsxWriter's parsing cannot go unnoticed.)
    """

    def __init__(self, target: str) -> None:
        self._uri = target
        super().__init__("external:" + target)

    def _parse_url(self) -> None:
        super()._parse_url()  # an external link, with XlsxWriter's bookkeeping
        self._link = self._relationship_link = self._uri
        self._anchor = ""


class Measure:
    """What the sheets need of every row before their first: the video columns, the link
    budgets, each user column's longest line, the widest status, how many rows each sheet
    lists. Gathered by :meth:`add` in any pass over the rows, in any order (the summary's
    pass carries it, so the workbook need not read the state once more for it)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.videos = self.files = self.urls = self.rows = self.todo = self.status = 0
        self.longest = [0] * len(self.columns)

    def add(self, job: Job) -> None:
        """Count ``job`` in."""
        self.rows += 1
        self.videos = max(self.videos, len(job.files), len(job.video_urls))
        self.files += len(job.files)
        self.urls += 0 if job.files else len(job.video_urls)
        self.status = max(self.status, len(status_text(job)))
        self.todo += job.in_manifest and job.status in NEEDS_ATTENTION
        for index, name in enumerate(self.columns):
            self.longest[index] = max(self.longest[index], text_width(job.user.get(name)))


class _Sheets:
    """The formats, column layout and link budget shared by the sheets of one workbook."""

    def __init__(
        self,
        wb: xlsxwriter.Workbook,
        columns: Sequence[str],
        jobs: Iterable[Job],
        used_prompt: Callable[[Job], str | None],
        measure: Measure | None = None,
    ) -> None:
        self.columns, self.jobs, self.used_prompt = tuple(columns), jobs, used_prompt
        self.attention: Iterable[Job] | None = None  # the Failed sheet's rows, when given
        self.review: Review | None = None
        self.unit: BillingUnit = CREDIT
        self.person = PersonColumns()
        top = {"valign": "top"}
        self.header = wb.add_format({"bold": True, "bg_color": "#D9D9D9", "valign": "top"})
        self.top: Format | None = None  # the workbook's default: top-aligned
        self.wrap = wb.add_format({**top, "text_wrap": True})
        self.link = wb.add_format({**top, "font_color": "#0563C1", "underline": 1})
        self.when = wb.add_format({**top, "num_format": "yyyy-mm-dd hh:mm:ss"})
        self.day = wb.add_format({**top, "num_format": "yyyy-mm-dd"})
        self.clock = wb.add_format({**top, "num_format": "hh:mm:ss"})
        self.span = wb.add_format({**top, "num_format": "[h]:mm:ss"})
        self.usd = wb.add_format({**top, "num_format": "$#,##0.00"})
        self.tones = {
            tone: wb.add_format({**top, "bg_color": fill, "font_color": font})
            for tone, (fill, font) in _PALETTE.items()
        }
        self._measure(measure)

    def _measure(self, measure: Measure | None) -> None:
        """The sizes of :class:`Measure`, in one pass over the rows unless already gathered."""
        if measure is None or measure.columns != self.columns:
            measure = Measure(self.columns)
            for job in self.jobs:
                measure.add(job)
        self.videos, self.rows, self.todo = max(measure.videos, 1), measure.rows, measure.todo
        self.status_width = measure.status
        files, urls = measure.files, measure.urls
        self.file_budget = min(files, MAX_HYPERLINKS)
        self.url_budget = MAX_HYPERLINKS - self.file_budget
        self.links_capped = files + urls > MAX_HYPERLINKS
        widths, wraps = [], []
        for name, most in zip(self.columns, measure.longest, strict=True):
            widths.append(float(min(max(most, len(str(name)) + 3, _MIN_WIDTH), _MAX_WIDTH)))
            wraps.append(most > _MAX_WIDTH)
        self.user_widths, self.user_wrap = widths, wraps
        self.wrapping = [(n, w) for n, w, on in zip(self.columns, widths, wraps, strict=True) if on]

    # --- cells ------------------------------------------------------------------------------

    def text(self, ws: Worksheet, row: int, col: int, text: str, fmt: Format | None) -> None:
        """Literal text: never a formula, never an error code."""
        ws.write_string(row, col, fit_cell(text), fmt or self.top)

    def value(self, ws: Worksheet, row: int, col: int, value: Any, wrap: bool = False) -> None:
        """A user or server value, keeping numbers, booleans and dates typed."""
        if value is None:
            return
        if isinstance(value, str):
            ws.write_string(row, col, fit_cell(value), self.wrap if wrap else self.top)
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value, self.top)
        elif isinstance(value, dt.datetime):
            ws.write_datetime(row, col, utc_naive(value), self.when)
        elif isinstance(value, dt.date):
            ws.write_datetime(row, col, value, self.day)
        elif isinstance(value, dt.time):
            ws.write_datetime(row, col, value.replace(tzinfo=None), self.clock)
        elif isinstance(value, dt.timedelta):
            ws.write_datetime(row, col, value, self.span)
        elif isinstance(value, int | float):
            if math.isfinite(value):  # NaN would corrupt the file
                ws.write_number(row, col, value, self.top)
        else:
            ws.write_string(row, col, fit_cell(str(value)), self.top)

    def moment(self, ws: Worksheet, row: int, col: int, value: dt.datetime | None) -> None:
        """One of our times: UTC, to the second."""
        if value is not None:
            naive = utc_naive(value)
            assert naive is not None
            ws.write_datetime(row, col, naive.replace(microsecond=0), self.when)

    def video(self, ws: Worksheet, row: int, col: int, job: Job, index: int) -> None:
        """``Video n``: the downloaded file, else the vendor URL; linked while links last."""
        if job.files:
            if index >= len(job.files):
                return
            text, target = job.files[index], None
            if self.file_budget > 0 and (target := file_target(text)):
                self.file_budget -= 1
        else:
            if index >= len(job.video_urls):
                return
            text, target = job.video_urls[index], None
            if self.url_budget > 0 and (target := url_target(text)):
                self.url_budget -= 1
        if target is None:
            self.text(ws, row, col, text, None)
        elif job.files:
            link = RelativeFileLink(target)
            link.text = fit_cell(text)[:MAX_LINK_CHARS]
            ws.write_url(row, col, link, self.link)
        else:
            ws.write_url(row, col, target, self.link, fit_cell(text)[:MAX_LINK_CHARS])

    def user_cells(
        self, ws: Worksheet, row: int, first: int, job: Job, place: Sequence[int] = ()
    ) -> None:
        """The user's columns of ``job``, from column ``first`` (through ``place``, the final
        column of each column of batchgen's layout, when a person added some)."""
        for offset, (name, wrap) in enumerate(zip(self.columns, self.user_wrap, strict=True)):
            col = place[first + offset] if place else first + offset
            self.value(ws, row, col, job.user.get(name), wrap)

    def heading(
        self, ws: Worksheet, names: Sequence[str], widths: Sequence[float], rows: int
    ) -> None:
        """Column widths, the bold header row, frozen panes and a filter over ``rows`` rows
        (before any other row)."""
        for col, width in enumerate(widths):
            ws.set_column(col, col, width)
        ws.freeze_panes(1, 0)
        for col, name in enumerate(names):
            self.text(ws, 0, col, name, self.header)
        ws.autofilter(0, 0, max(rows, 1), max(len(names) - 1, 0))

    def fit_height(self, ws: Worksheet, row: int, cells: Sequence[tuple[Any, float]]) -> None:
        """Give the row the height its wrapped cells need (Excel would clip them)."""
        lines = max((wrapped(value, width) for value, width in cells), default=1)
        if lines > 1:
            ws.set_row(row, min(_MAX_ROW_HEIGHT, _LINE_HEIGHT * lines))

    def wrapped_user(self, job: Job) -> list[tuple[Any, float]]:
        """The user cells that wrap, with their widths (for ``fit_height``)."""
        return [(job.user.get(name), width) for name, width in self.wrapping]

    # --- sheets -----------------------------------------------------------------------------

    def results(self, ws: Worksheet, each: Callable[[Job], None] | None = None) -> None:
        """One row per job: the user's columns, ours, one column per video, the review
        columns; the columns a person added in their places (``each(job)`` after each row)."""
        n = len(self.columns)
        ours = results_header(self.columns, self.videos, review=self.review is not None)
        widths = [*self.user_widths, *_RESULT_WIDTHS, *(_VIDEO_WIDTH,) * self.videos]
        if self.review is not None:
            widths += [9, 22, 40, 40, 14]
        widths[n + 2] = max(widths[n + 2], self.status_width + 3)
        place, person_at, names = _layout(ours, self.person)
        final = [0.0] * len(names)
        for col, width in zip(place, widths, strict=True):
            final[col] = width
        for col, width in zip(person_at, self._person_widths(), strict=True):
            final[col] = width
        review_at = n + len(RESULT_HEADER) + self.videos
        if self.review is not None:
            ws.data_validation(*decision_validation(place[review_at + 4], self.rows))
        self.heading(ws, names, final, self.rows)
        ours_at = [place[n + i] for i in range(len(RESULT_HEADER))]
        for row, job in enumerate(self.jobs, start=1):
            used, changed = self.used_prompt(job), request_changed(job)
            wraps = [(job.error_message, 50), (used, 50), (changed, 40)]
            self.fit_height(ws, row, [*self.wrapped_user(job), *wraps])
            self.user_cells(ws, row, 0, job, place)
            self._result_cells(ws, row, ours_at, job, used)
            self.value(ws, row, ours_at[10], changed, wrap=True)
            for index in range(self.videos):
                self.video(ws, row, place[n + len(RESULT_HEADER) + index], job, index)
            for offset, value in enumerate(review_values(self.review, job)):
                self.value(ws, row, place[review_at + offset], value)  # never a formula
            for col, value in zip(person_at, self.person.cells(job.key), strict=True):
                self.value(ws, row, col, value)
            if each is not None:
                each(job)

    def _person_widths(self) -> list[float]:
        """Each person column's width: its header or longest value, within the limits."""
        widths = []
        for index, name in enumerate(self.person.names):
            values = self.person.values.values()
            longest = max((text_width(row[index]) for row in values), default=0)
            widths.append(float(min(max(longest, len(name) + 3, _MIN_WIDTH), _MAX_WIDTH)))
        return widths

    def _result_cells(
        self, ws: Worksheet, row: int, cols: Sequence[int], job: Job, used: str | None
    ) -> None:
        """``RESULT_HEADER``'s cells of ``job`` but ``Changed since made``, in ``cols``."""
        ws.write_number(row, cols[0], job.row, self.top)
        self.text(ws, row, cols[1], job.key, None)
        self.status(ws, row, cols[2], job)
        self.value(ws, row, cols[3], job.task_id)
        if self.unit.credits:  # a vendor billing dollars has no credits to show
            ws.write_number(row, cols[4], job.consumed_credits, self.top)
        ws.write_number(row, cols[5], job_usd(job, self.unit), self.usd)
        self.moment(ws, row, cols[6], job.submitted_at)
        self.moment(ws, row, cols[7], job.completed_at)
        self.value(ws, row, cols[8], job.error_message, wrap=True)
        self.value(ws, row, cols[9], used, wrap=True)

    def status(self, ws: Worksheet, row: int, col: int, job: Job) -> None:
        """The status, coloured by how it reads at a glance."""
        tone = STATUS_TONE.get(str(job.status))
        self.text(ws, row, col, status_text(job), self.tones.get(tone or ""))

    def failed(self, ws: Worksheet) -> None:
        """Rows to fix: where they are, why, what to do, then their cells to paste back."""
        todo = self.attention
        if todo is None:
            todo = (j for j in self.jobs if j.in_manifest and j.status in NEEDS_ATTENTION)
        names = [*FAILED_HEADER, *self.columns]
        self.heading(ws, names, [*_FAILED_WIDTHS, *self.user_widths], self.todo)
        n = len(FAILED_HEADER)
        for row, job in enumerate(todo, start=1):
            advice = what_to_do(job)
            error = ": ".join(filter(None, (job.error_kind, job.error_message)))
            self.fit_height(ws, row, [(error, 60), (advice, 95), *self.wrapped_user(job)])
            ws.write_number(row, 0, job.row, self.top)
            self.text(ws, row, 1, job.key, None)
            self.status(ws, row, 2, job)
            self.value(ws, row, 3, error or None, wrap=True)
            self.value(ws, row, 4, advice, wrap=True)
            self.user_cells(ws, row, n, job)

    def summary(self, ws: Worksheet, summary: Summary) -> None:
        """Business figures first, engineering figures after."""
        ws.set_column(0, 0, 40)
        ws.set_column(1, 1, 70)
        for col, name in enumerate(("Figure", "Value")):
            self.text(ws, 0, col, name, self.header)
        for row, (label, value) in enumerate(self._summary_rows(summary), start=1):
            self.text(ws, row, 0, label, None)
            if label.startswith("Cost"):
                ws.write_number(row, 1, value, self.usd)
            elif isinstance(value, float) and label.startswith("Last run duration"):
                ws.write_datetime(row, 1, dt.timedelta(seconds=round(value)), self.span)
            elif isinstance(value, dt.datetime):
                self.moment(ws, row, 1, value)
            else:
                self.value(ws, row, 1, value)

    def _summary_rows(self, summary: Summary) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("Manifest", summary.manifest),
            ("Rows in the manifest", summary.rows),
            ("Takes (videos asked for: a row may ask for several)", summary.takes),
            ("Videos downloaded", summary.videos),
            ("Takes done", summary.counts.get("downloaded", 0)),
            ("Takes failed", summary.failed),
            ("Takes needing attention (sheet Failed)", summary.needs_attention),
            *_money_rows(summary),
            ("Approved videos (Decision: approve)", summary.approved),
            (
                "Credits per approved video (cost per keeper)"
                if summary.unit.credits
                else "USD per approved video (cost per keeper)",
                summary.credits_per_keeper
                if summary.unit.credits or summary.credits_per_keeper is None
                else round(summary.unit.usd(round(summary.credits_per_keeper)), 6),
            ),
            ("Takes by status", None),
            *((f"  {status}", n) for status, n in summary.counts.items()),
            ("Takes whose row left the manifest (listed last)", summary.deleted),
            ("Requests made", summary.requests),
            ("429 responses met", summary.rate_limited),
            ("Last run started (UTC)", summary.started_at),
            ("Last run ended (UTC)", summary.ended_at),
            ("Last run duration", summary.duration_s),
            ("Command line", summary.command),
            ("batchgen version", summary.version),
            ("Times", "All dates and times in these sheets are UTC."),
        ]
        if self.links_capped:
            note = f"Only the first {MAX_HYPERLINKS:,} links are clickable (Excel's limit)."
            rows.append(("Links", note))
        return rows

    def runs(self, ws: Worksheet, runs: Sequence[RunInfo]) -> None:
        """One line per run, oldest first; ``Credits charged`` is left blank for a provider
        that bills dollars (``run.credits`` then counts micro-dollars), ``Cost (USD)`` is
        filled for every provider."""
        widths = (6, 20, 20, 10, 9, 30, 10, 11, 15, 11, 10, 8, 80)
        for col, width in enumerate(widths):
            ws.set_column(col, col, width)
        ws.freeze_panes(1, 0)
        for col, name in enumerate(RUNS_HEADER):
            self.text(ws, 0, col, name, self.header)
        for row, run in enumerate(runs, start=1):
            ws.write_number(row, 0, run.run_id, self.top)
            self.moment(ws, row, 1, run.started_at)
            self.moment(ws, row, 2, run.ended_at)
            if run.ended_at is not None:
                span = dt.timedelta(seconds=round((run.ended_at - run.started_at).total_seconds()))
                ws.write_datetime(row, 3, span, self.span)
            self.value(ws, row, 4, run.exit_code)
            self.value(ws, row, 5, run.outcome or "did not finish (killed or still running)")
            ws.write_number(row, 6, run.submitted, self.top)
            ws.write_number(row, 7, run.downloaded, self.top)
            if self.unit.credits:  # a vendor billing dollars has no credits to show
                ws.write_number(row, 8, run.credits, self.top)
            ws.write_number(row, 9, round(self.unit.usd(run.credits), 6), self.usd)
            ws.write_number(row, 10, run.requests, self.top)
            ws.write_number(row, 11, run.rate_limited, self.top)
            self.text(ws, row, 12, run.command, None)
