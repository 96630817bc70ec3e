"""The results sheet: ``results.xlsx`` and ``results.csv``, projections of the state store.

Both files hold one row per job: the user's own manifest columns first, untouched, then
``RESULT_COLUMNS``. Rows deleted from the manifest since an earlier run come last; their
``status`` reads e.g. ``downloaded (deleted from manifest)``, so the mark sits where people
look and an autofilter (or "contains deleted") isolates them. The functions take plain data
(``Job``, ``RunInfo``) and never read the state themselves, so ``batchgen report`` rebuilds
identical files from the state alone.

Decisions worth knowing:

* **Literal text.** openpyxl stores a string starting with ``=`` as a formula and one equal
  to ``#N/A`` & co. as an error. Such strings are written through a cell whose data type is
  forced back to ``"s"``; every other string already is text. Characters XML 1.0 forbids are
  stripped, lone surrogates become U+FFFD, and cells over Excel's 32,767 UTF-16 units end
  with ``TRUNCATION_MARKER``. Line breaks become LF in the XLSX (XML readers would turn a
  bare CR into LF anyway). The CSV gets the same text, neither truncated nor re-broken.
* **Name clashes.** A result column whose name a user column already has (say the manifest
  has its own ``status``) is headed ``batchgen_status``; the user's column keeps its name.
* **Dates** are naive UTC datetimes (aware ones, ours or the user's, are converted): real
  Excel dates (``yyyy-mm-dd h:mm:ss``), ISO text in the CSV. The Summary sheet says so.
* **Failed sheet**: rows still in the manifest whose status is in ``NEEDS_ATTENTION``, the
  user's columns first (typed, ready to paste back), then status, error_kind, error_message.
* **Links.** ``files`` and ``video_urls`` cells list every entry, one per line, and are a
  hyperlink to the first one (an Excel cell holds one link). File links are relative, so the
  folder can be moved; only http(s) URLs are linked. Excel allows 65,530 links per sheet, so
  past that budget cells stay plain text (files are linked before URLs, which expire
  anyway) and the Summary sheet says so. The ``Failed`` sheet has no links.
* **CSV injection.** Text fields (not numbers) starting with ``= + - @``, tab or CR get a
  leading ``'`` (OWASP) unless ``csv_escape=False``.
* **Speed.** openpyxl's write-only mode streams rows: 100,000 rows take about 50 s and
  250 MB on a small 2-vCPU VM, nearly all of it openpyxl serialising cells
  (``benchmarks/bench_results.py``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from openpyxl.compat.numbers import NUMERIC_TYPES
from openpyxl.styles import Alignment, Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from batchgen.atomic import atomic_path
from batchgen.models import NEEDS_ATTENTION, USD_PER_CREDIT, Job, JobStatus, RunInfo

__all__ = [
    "CSV_NAME",
    "DELETED_MARK",
    "MAX_CELL_CHARS",
    "MAX_HYPERLINKS",
    "RESULT_COLUMNS",
    "STATUS_TONE",
    "TRUNCATION_MARKER",
    "XLSX_NAME",
    "Summary",
    "clean_text",
    "summarise",
    "utc_naive",
    "write_results",
]

RESULT_COLUMNS: tuple[str, ...] = (
    "row",
    "key",
    "status",
    "task_id",
    "attempts",
    "consumed_credits",
    "created_at",
    "submitted_at",
    "completed_at",
    "error_kind",
    "error_message",
    "video_urls",
    "files",
)
XLSX_NAME = "results.xlsx"
CSV_NAME = "results.csv"
DELETED_MARK = " (deleted from manifest)"
MAX_CELL_CHARS = 32_767  # Excel's limit, counted in UTF-16 code units
TRUNCATION_MARKER = "…[truncated]"
MAX_HYPERLINKS = 65_530  # Excel's per-sheet limit (the figure XlsxWriter enforces too)
MAX_LINK_CHARS = 2_079  # Excel's longest hyperlink target
FAILED_COLUMNS: tuple[str, ...] = ("status", "error_kind", "error_message")

_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MIN_WIDTH, _MAX_WIDTH = 8, 60


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The figures of a manifest's runs, for the Summary sheet and the gallery header.

    ``counts`` has every status (in ``JobStatus`` order, zeros included) over the rows still
    in the manifest; ``rows`` is their number and ``deleted`` the rows kept from earlier runs.
    ``started_at``/``ended_at``/``duration_s``/``command`` describe the last run; ``credits``,
    ``requests`` and ``rate_limited`` (429s met) are totals over every run.
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

    @property
    def needs_attention(self) -> int:
        """How many rows in the manifest a person should look at."""
        return sum(n for status, n in self.counts.items() if status in NEEDS_ATTENTION)


def summarise(
    jobs: Iterable[Job], runs: Sequence[RunInfo], *, manifest: str, version: str
) -> Summary:
    """Count the jobs per status and total the runs' requests, 429s and credits."""
    counts = {status.value: 0 for status in JobStatus}
    deleted = 0
    for job in jobs:
        if job.in_manifest:
            counts[str(job.status)] = counts.get(str(job.status), 0) + 1
        else:
            deleted += 1
    last = max(runs, key=lambda run: run.run_id, default=None)
    credits = sum(run.credits for run in runs)
    return Summary(
        counts=counts,
        rows=sum(counts.values()),
        deleted=deleted,
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
) -> tuple[Path, Path]:
    """Write ``out_dir/results.xlsx`` and ``out_dir/results.csv``, each atomically.

    ``columns`` are the manifest's own header names, whose values each ``job.user`` holds;
    ``job.files`` are relative to ``out_dir``. Deleted rows are moved last if they are not.
    Returns the paths of the XLSX and the CSV.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Stable: manifest order is kept, rows no longer in the manifest go last.
    ordered = sorted(jobs, key=lambda job: not job.in_manifest)
    layout = _Layout.build(columns, ordered)
    xlsx_path, csv_path = out_dir / XLSX_NAME, out_dir / CSV_NAME
    _write_xlsx(xlsx_path, layout, ordered, summary)
    _write_csv(csv_path, layout, ordered, escape=csv_escape)
    return xlsx_path, csv_path


# --- values shared by both files ------------------------------------------------------------


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


def _status_text(job: Job) -> str:
    return str(job.status) if job.in_manifest else f"{job.status}{DELETED_MARK}"


def _lines(items: Sequence[str]) -> str | None:
    return "\n".join(items) or None


_GETTERS: dict[str, Callable[[Job], Any]] = {
    "row": lambda job: job.row,
    "key": lambda job: job.key,
    "status": _status_text,
    "task_id": lambda job: job.task_id,
    "attempts": lambda job: job.attempts,
    "consumed_credits": lambda job: job.consumed_credits,
    "created_at": lambda job: utc_naive(job.created_at),
    "submitted_at": lambda job: utc_naive(job.submitted_at),
    "completed_at": lambda job: utc_naive(job.completed_at),
    "error_kind": lambda job: job.error_kind,
    "error_message": lambda job: job.error_message,
    "video_urls": lambda job: _lines(job.video_urls),
    "files": lambda job: _lines(job.files),
}
assert tuple(_GETTERS) == RESULT_COLUMNS  # one getter per column, same order


def _result_values(job: Job) -> list[Any]:
    return [getter(job) for getter in _GETTERS.values()]


def _user_values(job: Job, columns: Sequence[str]) -> list[Any]:
    return [job.user.get(name) for name in columns]


def _unique_names(user: Sequence[str], ours: Sequence[str]) -> list[str]:
    """Our header names, prefixed with ``batchgen_`` where a user column has the name."""
    taken = {name.casefold() for name in user}
    names = []
    for name in ours:
        while name.casefold() in taken:
            name = f"batchgen_{name}"
        taken.add(name.casefold())
        names.append(name)
    return names


@dataclass(frozen=True)
class _Layout:
    """Header names, widths and wrapping of the user's columns followed by ours."""

    columns: tuple[str, ...]  # the user's columns: keys of job.user
    result_header: tuple[str, ...]  # RESULT_COLUMNS, renamed where they clash
    failed_header: tuple[str, ...]  # FAILED_COLUMNS, renamed likewise
    user_widths: tuple[float, ...]
    user_wrap: tuple[bool, ...]

    @classmethod
    def build(cls, columns: Sequence[str], jobs: Sequence[Job]) -> _Layout:
        """Size each user column on its longest line, over all rows (cheap next to writing)."""
        widths, wraps = [], []
        for name in columns:
            longest = max((_text_width(job.user.get(name)) for job in jobs), default=0)
            widths.append(float(min(max(longest, len(str(name)) + 3, _MIN_WIDTH), _MAX_WIDTH)))
            wraps.append(longest > _MAX_WIDTH)
        return cls(
            columns=tuple(columns),
            result_header=tuple(_unique_names(columns, RESULT_COLUMNS)),
            failed_header=tuple(_unique_names(columns, FAILED_COLUMNS)),
            user_widths=tuple(widths),
            user_wrap=tuple(wraps),
        )


def _text_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0) + 2
    return len(str(value)) + 2


# --- CSV ------------------------------------------------------------------------------------


def _csv_field(value: Any, escape: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = clean_text(value)
        return "'" + text if escape and text.startswith(_CSV_TRIGGERS) else text
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"  # what Excel reads back as a boolean
    if isinstance(value, dt.datetime):
        return _naive(value).isoformat(sep=" ")  # as in the XLSX: naive UTC
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return str(value)


def _write_csv(path: Path, layout: _Layout, jobs: Sequence[Job], *, escape: bool) -> None:
    header = [*layout.columns, *layout.result_header]
    # utf-8-sig writes the BOM Excel needs to read the file as UTF-8.
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_csv_field(name, escape) for name in header])
        for job in jobs:
            values = [*_user_values(job, layout.columns), *_result_values(job)]
            writer.writerow([_csv_field(value, escape) for value in values])


# --- XLSX -----------------------------------------------------------------------------------

_HEADER, _WRAP, _LINK = "batchgen header", "batchgen wrap", "batchgen link"
#: How each status reads at a glance, shared with the gallery: done / failed / waiting /
#: attention (unknown: maybe created, maybe charged; download_failed: fetch it again).
STATUS_TONE: dict[str, str] = {
    **dict.fromkeys(JobStatus, "waiting"),
    JobStatus.DOWNLOADED: "done",
    **dict.fromkeys((JobStatus.INVALID, JobStatus.REJECTED, JobStatus.FAILED), "failed"),
    **dict.fromkeys((JobStatus.UNKNOWN, JobStatus.DOWNLOAD_FAILED), "attention"),
}
_PALETTE = {  # tone -> (fill, font colour): Excel's own Good / Bad / Neutral tones
    "done": ("C6EFCE", "006100"),
    "failed": ("FFC7CE", "9C0006"),
    "waiting": ("FFEB9C", "9C5700"),
    "attention": ("FCD5B4", "974706"),
}
# Widths of RESULT_COLUMNS, in order; status widens to fit "(deleted from manifest)".
_RESULT_WIDTHS = (7, 20, 16, 26, 11, 19, 20, 20, 20, 13, 50, 50, 36)


def _add_styles(wb: Workbook) -> None:
    """Named styles: one lookup per styled cell, and they show in Excel's style gallery."""
    top = Alignment(vertical="top")
    wrap = Alignment(wrap_text=True, vertical="top")
    wb.add_named_style(
        NamedStyle(name=_HEADER, font=Font(bold=True), fill=PatternFill("solid", "D9D9D9"))
    )
    wb.add_named_style(NamedStyle(name=_WRAP, alignment=wrap))
    link_font = Font(color="0563C1", underline="single")
    wb.add_named_style(NamedStyle(name=_LINK, font=link_font, alignment=wrap))
    for tone, (fill, colour) in _PALETTE.items():
        style = NamedStyle(name=f"batchgen {tone}", font=Font(color=colour), alignment=top)
        style.fill = PatternFill("solid", fill)
        wb.add_named_style(style)


def _fit_cell(text: str) -> str:
    """Truncate to Excel's cell limit, counted in UTF-16 units as Excel counts."""
    if len(text) <= MAX_CELL_CHARS // 2:  # cannot be over the limit even if all astral
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= MAX_CELL_CHARS:
        return text
    keep = (MAX_CELL_CHARS - len(TRUNCATION_MARKER)) * 2
    # "ignore" drops half a surrogate pair cut at the boundary rather than corrupting it.
    return encoded[:keep].decode("utf-16-le", errors="ignore") + TRUNCATION_MARKER


def _one_newline(text: str) -> str:
    """XML readers turn a bare CR into LF anyway; do it here so what is written is read."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _literal(ws: WriteOnlyWorksheet, text: str, style: str | None = None) -> Any:
    """A cell value Excel shows as exactly ``text``: never a formula, never an error code."""
    text = _fit_cell(_one_newline(clean_text(text)))
    # Plain strings are appended as they are (much faster); openpyxl only re-types these two.
    if style is None and not text.startswith("=") and text not in ERROR_CODES:
        return text
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    if style is not None:
        cell.style = style
    return cell


def _xlsx_value(ws: WriteOnlyWorksheet, value: Any, style: str | None = None) -> Any:
    """A user or server value as an XLSX cell, keeping numbers, booleans and dates typed."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _literal(ws, value, style)
    if isinstance(value, dt.datetime):
        return _naive(value)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel times have no zone
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        return value
    if isinstance(value, NUMERIC_TYPES):
        return value if math.isfinite(value) else None  # NaN would corrupt the file
    return _literal(ws, str(value), style)


class _Links:
    """Hands out Excel's 65,530 links per sheet: files first, then URLs, in row order."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        file_rows = sum(1 for job in jobs if job.files)
        url_rows = sum(1 for job in jobs if job.video_urls)
        self.file_budget = min(file_rows, MAX_HYPERLINKS)
        self.url_budget = MAX_HYPERLINKS - self.file_budget
        self.capped = file_rows + url_rows > MAX_HYPERLINKS

    def file(self, path: str) -> str | None:
        """The relative link target of a downloaded file, or None past the budget."""
        target = _file_target(path) if self.file_budget > 0 else None
        self.file_budget -= target is not None
        return target

    def url(self, url: str) -> str | None:
        """The link target of a video URL, or None past the budget or if not http(s)."""
        target = _url_target(url) if self.url_budget > 0 else None
        self.url_budget -= target is not None
        return target


def _file_target(path: str) -> str | None:
    path = path.replace("\\", "/")
    head = path.split("/", 1)[0]
    if not path or path.startswith("/") or ":" in head:
        return None  # only links relative to the results file survive moving the folder
    target = quote(path, safe="/")
    return target if len(target) <= MAX_LINK_CHARS else None


def _url_target(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what a URI may not contain (spaces, quotes, non-ASCII); keep the rest.
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%~")
    return target if len(target) <= MAX_LINK_CHARS else None


def _link_cell(ws: WriteOnlyWorksheet, text: str | None, target: str | None) -> Any:
    if text is None:
        return None
    cell = _literal(ws, text, _LINK if target else _WRAP)
    if target:
        cell.hyperlink = target  # the write-only sheet sets the link's cell reference
    return cell


def _status_cell(ws: WriteOnlyWorksheet, job: Job) -> Any:
    # StrEnum members hash as their value, so a plain status string finds its tone too.
    tone = STATUS_TONE.get(str(job.status))
    return _literal(ws, _status_text(job), tone and f"batchgen {tone}")


def _prepare(ws: WriteOnlyWorksheet, widths: Sequence[float]) -> None:
    """Sheet settings that write-only mode needs before the first row."""
    ws.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def _finish(ws: WriteOnlyWorksheet, n_columns: int, n_rows: int) -> None:
    ws.auto_filter.ref = f"A1:{get_column_letter(max(n_columns, 1))}{n_rows + 1}"


def _user_cells(ws: WriteOnlyWorksheet, layout: _Layout, job: Job) -> list[Any]:
    return [
        _xlsx_value(ws, value, _WRAP if wrap else None)
        for value, wrap in zip(_user_values(job, layout.columns), layout.user_wrap, strict=True)
    ]


def _result_cells(ws: WriteOnlyWorksheet, job: Job, links: _Links) -> list[Any]:
    """The XLSX cells of ``RESULT_COLUMNS``, in order (a test holds them equal to the CSV's)."""
    first_url = links.url(job.video_urls[0]) if job.video_urls else None
    first_file = links.file(job.files[0]) if job.files else None
    return [
        job.row,
        _literal(ws, job.key),
        _status_cell(ws, job),
        _xlsx_value(ws, job.task_id),
        job.attempts,
        job.consumed_credits,
        utc_naive(job.created_at),
        utc_naive(job.submitted_at),
        utc_naive(job.completed_at),
        _xlsx_value(ws, job.error_kind),
        _message_cell(ws, job.error_message),
        _link_cell(ws, _lines(job.video_urls), first_url),
        _link_cell(ws, _lines(job.files), first_file),
    ]


def _header_cells(ws: WriteOnlyWorksheet, names: Iterable[str]) -> list[Any]:
    return [_literal(ws, str(name), _HEADER) for name in names]


def _write_results_sheet(
    ws: WriteOnlyWorksheet, layout: _Layout, jobs: Sequence[Job], links: _Links
) -> None:
    status_width = max((len(_status_text(job)) + 3 for job in jobs), default=0)
    widths = list(_RESULT_WIDTHS)
    status = RESULT_COLUMNS.index("status")
    widths[status] = max(widths[status], status_width)
    _prepare(ws, [*layout.user_widths, *widths])
    ws.append(_header_cells(ws, [*layout.columns, *layout.result_header]))
    message_width = widths[RESULT_COLUMNS.index("error_message")]
    for index, job in enumerate(jobs, start=2):
        lines = _row_lines(layout, job, message_width)
        if lines > 1:
            # Excel and LibreOffice do not grow a row for wrapped text on their own when the
            # file says nothing; an estimate keeps long prompts readable and unclipped.
            ws.row_dimensions[index].height = min(_MAX_ROW_HEIGHT, _LINE_HEIGHT * lines)
        ws.append([*_user_cells(ws, layout, job), *_result_cells(ws, job, links)])
    _finish(ws, len(layout.columns) + len(RESULT_COLUMNS), len(jobs))


_LINE_HEIGHT = 15.0
_MAX_ROW_HEIGHT = 409.0  # Excel's limit, in points


def _row_lines(layout: _Layout, job: Job, message_width: float) -> int:
    """How many text lines the row's wrapped cells need at their column widths."""
    lines = max(1, len(job.files), len(job.video_urls), _wrapped(job.error_message, message_width))
    for name, wrap, width in zip(layout.columns, layout.user_wrap, layout.user_widths, strict=True):
        if wrap:
            lines = max(lines, _wrapped(job.user.get(name), width))
    return lines


def _wrapped(value: Any, width: float) -> int:
    if not isinstance(value, str) or not value:
        return 1
    per_line = max(1, int(width) - 2)
    return sum(max(1, -(-len(part) // per_line)) for part in value.split("\n"))


def _message_cell(ws: WriteOnlyWorksheet, message: str | None) -> Any:
    return None if message is None else _literal(ws, message, _WRAP)


def _reason_cells(ws: WriteOnlyWorksheet, job: Job) -> list[Any]:
    return [
        _status_cell(ws, job),
        _xlsx_value(ws, job.error_kind),
        _message_cell(ws, job.error_message),
    ]


def _write_failed_sheet(ws: WriteOnlyWorksheet, layout: _Layout, jobs: Sequence[Job]) -> None:
    """Rows to fix, user columns first so they can be pasted back into the manifest."""
    _prepare(ws, [*layout.user_widths, 18, 13, 60])
    ws.append(_header_cells(ws, [*layout.columns, *layout.failed_header]))
    count = 0
    for job in jobs:
        if not job.in_manifest or job.status not in NEEDS_ATTENTION:
            continue  # a deleted row needs nobody's attention any more
        ws.append([*_user_cells(ws, layout, job), *_reason_cells(ws, job)])
        count += 1
    _finish(ws, len(layout.columns) + len(FAILED_COLUMNS), count)


def _summary_rows(summary: Summary, links_capped: bool) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("Manifest", summary.manifest),
        ("Rows in the manifest", summary.rows),
        *((f"  {status}", n) for status, n in summary.counts.items()),
        ("Needs attention", summary.needs_attention),
        ("Deleted from the manifest (listed last)", summary.deleted),
        ("Credits consumed", summary.credits),
        ("Estimated cost (USD)", summary.usd),
        ("Requests made", summary.requests),
        ("429 responses met", summary.rate_limited),
        ("Last run started (UTC)", utc_naive(summary.started_at)),
        ("Last run ended (UTC)", utc_naive(summary.ended_at)),
        ("Last run duration (s)", summary.duration_s),
        ("Command line", summary.command),
        ("batchgen version", summary.version),
        ("Times", "All dates and times in these sheets are UTC."),
    ]
    if links_capped:
        note = f"Only the first {MAX_HYPERLINKS:,} links are clickable (Excel's limit)."
        rows.append(("Links", note))
    return rows


def _write_summary_sheet(ws: WriteOnlyWorksheet, summary: Summary, links_capped: bool) -> None:
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 70
    ws.append(_header_cells(ws, ["Figure", "Value"]))
    for label, value in _summary_rows(summary, links_capped):
        ws.append([_literal(ws, label), _xlsx_value(ws, value)])


def _write_xlsx(path: Path, layout: _Layout, jobs: Sequence[Job], summary: Summary) -> None:
    wb = Workbook(write_only=True)
    _add_styles(wb)
    links = _Links(jobs)
    try:
        _write_results_sheet(wb.create_sheet("Results"), layout, jobs, links)
        _write_summary_sheet(wb.create_sheet("Summary"), summary, links.capped)
        _write_failed_sheet(wb.create_sheet("Failed"), layout, jobs)
        with atomic_path(path) as tmp:
            wb.save(tmp)
    except BaseException:
        _abandon(wb)
        raise


def _abandon(wb: Workbook) -> None:
    """Close a failed workbook's streaming sheets now, not noisily at garbage collection."""
    for ws in wb.worksheets:
        if not ws.closed:
            with contextlib.suppress(Exception):
                ws.close()
