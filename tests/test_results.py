"""results.xlsx / results.csv: every column, typed user values, literal text, atomic writes."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from batchgen.models import Job, JobStatus, RunInfo
from batchgen.output import results
from batchgen.output.results import (
    DELETED_MARK,
    MAX_CELL_CHARS,
    RESULT_COLUMNS,
    TRUNCATION_MARKER,
    Summary,
    summarise,
    write_results,
)

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, 9, 30, 0, tzinfo=UTC)
COLUMNS = ("prompt", "mode", "ratio", "count", "price", "approved", "shoot", "day", "slot", "note")
EVIL = '=HYPERLINK("http://evil","click")'
FORMULA_LOOKING = (EVIL, "+1", "-2", "@SUM(A1)", "=1+1", "#N/A", "\tTAB", "\rCR")


def _user(prompt: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "prompt": prompt,
        "mode": "normal",
        "ratio": "2:3",
        "count": 3,
        "price": 2.5,
        "approved": True,
        "shoot": dt.datetime(2025, 2, 14, 18, 0),
        "day": dt.date(2025, 2, 14),
        "slot": dt.time(7, 45),
        "note": None,
    }
    return values | extra


def make_job(row: int, status: JobStatus = JobStatus.DOWNLOADED, **kw: Any) -> Job:
    """A job as the state store would hand it over; keyword arguments override fields."""
    prompt = kw.pop("prompt", f"a lighthouse at dusk, take {row}")
    done = status is JobStatus.DOWNLOADED
    key = f"h_{row:04x}"
    fields: dict[str, Any] = {
        "key": key,
        "row": row,
        "prompt": prompt,
        "mode": "normal",
        "ratio": "2:3",
        "user": _user(prompt),
        "status": status,
        "task_id": f"task-{row}" if status is not JobStatus.PENDING else None,
        "attempts": 1,
        "consumed_credits": 40 if done else 0,
        "video_urls": (f"https://cdn.example.com/v/{key}_1.mp4",) if done else (),
        "files": (f"videos/{key}_1.mp4",) if done else (),
        "created_at": T0,
        "submitted_at": T0 + dt.timedelta(seconds=5) if status is not JobStatus.PENDING else None,
        "completed_at": T0 + dt.timedelta(minutes=2) if done else None,
    }
    return Job(**(fields | kw))


def sample_jobs() -> list[Job]:
    """One of each kind of row, with a deleted row deliberately not last."""
    return [
        make_job(
            2,
            video_urls=("https://cdn.example.com/v/a_1.mp4", "https://cdn.example.com/v/a_2.mp4"),
            files=("videos/a_1.mp4", "videos/a 2#.mp4"),
        ),
        make_job(
            3,
            JobStatus.FAILED,
            prompt=EVIL,
            error_kind="permanent",
            error_message="@SUM(A1) refused: =cmd|' /C calc'!A0",
        ),
        make_job(4, JobStatus.DOWNLOADED, in_manifest=False),
        make_job(5, JobStatus.PENDING, prompt="+1"),
        make_job(6, JobStatus.UNKNOWN, prompt="-2", error_kind="ambiguous", error_message="#N/A"),
        make_job(7, JobStatus.RUNNING, prompt="@SUM(A1)"),
    ]


def make_summary(jobs: Sequence[Job]) -> Summary:
    runs = [
        RunInfo(
            run_id=1,
            started_at=T0,
            ended_at=T0 + dt.timedelta(minutes=5),
            command="old",
            requests=10,
            rate_limited=1,
            credits=80,
        ),
        RunInfo(
            run_id=2,
            started_at=T0 + dt.timedelta(hours=1),
            ended_at=T0 + dt.timedelta(hours=1, seconds=90),
            command="batchgen run m.xlsx",
            requests=5,
            rate_limited=2,
            credits=40,
        ),
    ]
    return summarise(jobs, runs, manifest="m.xlsx", version="9.9.9")


def write(tmp_path: Path, jobs: Sequence[Job] | None = None, **kw: Any) -> tuple[Path, Path]:
    jobs = sample_jobs() if jobs is None else jobs
    columns = kw.pop("columns", COLUMNS)
    return write_results(tmp_path, columns=columns, jobs=jobs, summary=make_summary(jobs), **kw)


def load(path: Path) -> Workbook:
    return openpyxl.load_workbook(path)


def rows_of(ws: Worksheet) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in ws.iter_rows()]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def column(ws: Worksheet, name: str) -> list[Any]:
    header = [cell.value for cell in ws[1]]
    index = header.index(name)
    return [row[index].value for row in ws.iter_rows(min_row=2)]


# --- layout ---------------------------------------------------------------------------------


def test_writes_both_files_and_returns_their_paths(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path / "new" / "folder")
    assert xlsx == tmp_path / "new" / "folder" / "results.xlsx"
    assert csv_path == tmp_path / "new" / "folder" / "results.csv"
    assert load(xlsx).sheetnames == ["Results", "Summary", "Failed"]


def test_every_column_present_and_in_order(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    expected = [*COLUMNS, *RESULT_COLUMNS]
    assert rows_of(load(xlsx)["Results"])[0] == expected
    assert read_csv(csv_path)[0] == expected


def test_one_row_per_job_in_manifest_order_deleted_last_and_marked(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    ws = load(xlsx)["Results"]
    assert column(ws, "row") == [2, 3, 5, 6, 7, 4]
    statuses = column(ws, "status")
    assert statuses[-1] == f"downloaded{DELETED_MARK}"
    assert statuses[:-1] == ["downloaded", "failed", "pending", "unknown", "running"]
    assert [line[len(COLUMNS) + 2] for line in read_csv(csv_path)[1:]] == statuses


def test_user_columns_keep_their_order_and_types(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    ws = load(xlsx)["Results"]
    first = {name: ws.cell(row=2, column=i + 1) for i, name in enumerate(COLUMNS)}
    assert first["count"].value == 3 and first["count"].data_type == "n"
    assert first["price"].value == 2.5
    assert first["approved"].value is True and first["approved"].data_type == "b"
    assert first["shoot"].is_date and first["shoot"].value == dt.datetime(2025, 2, 14, 18, 0)
    assert first["day"].is_date and first["day"].value.date() == dt.date(2025, 2, 14)
    assert first["slot"].value == dt.time(7, 45)
    assert first["note"].value is None
    line = dict(zip(read_csv(csv_path)[0], read_csv(csv_path)[1], strict=True))
    assert line["count"] == "3" and line["price"] == "2.5" and line["approved"] == "TRUE"
    assert line["shoot"] == "2025-02-14 18:00:00" and line["day"] == "2025-02-14"
    assert line["note"] == ""


def test_result_values_and_dates_as_naive_utc(tmp_path: Path) -> None:
    aware_paris = dt.datetime(2025, 3, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    jobs = [make_job(2, created_at=aware_paris, attempts=3, user=_user("p", shoot=aware_paris))]
    xlsx, csv_path = write(tmp_path, jobs)
    ws = load(xlsx)["Results"]
    values = dict(zip(RESULT_COLUMNS, rows_of(ws)[1][len(COLUMNS) :], strict=True))
    assert values["key"] == "h_0002" and values["task_id"] == "task-2"
    assert values["attempts"] == 3 and values["consumed_credits"] == 40
    assert values["created_at"] == dt.datetime(2025, 3, 1, 9, 30)  # 10:30+01:00 is 09:30 UTC
    assert ws.cell(row=2, column=len(COLUMNS) + 7).is_date
    assert values["completed_at"] == dt.datetime(2025, 3, 1, 9, 32)
    csv_values = dict(zip(RESULT_COLUMNS, read_csv(csv_path)[1][len(COLUMNS) :], strict=True))
    assert csv_values["created_at"] == "2025-03-01 09:30:00"
    assert csv_values["submitted_at"] == "2025-03-01 09:30:05"
    assert ws.cell(row=2, column=COLUMNS.index("shoot") + 1).value == dt.datetime(2025, 3, 1, 9, 30)
    assert read_csv(csv_path)[1][COLUMNS.index("shoot")] == "2025-03-01 09:30:00"


def test_sheet_furniture(tmp_path: Path) -> None:
    jobs = [make_job(2, prompt="a very long prompt " * 20)]
    ws = load(write(tmp_path, jobs)[0])["Results"]
    assert ws.freeze_panes == "A2"
    last = openpyxl.utils.get_column_letter(len(COLUMNS) + len(RESULT_COLUMNS))
    assert ws.auto_filter.ref == f"A1:{last}2"
    assert ws.column_dimensions["A"].width == 60  # long prompts: capped, wrapped
    assert ws["A2"].alignment.wrap_text
    assert 8 <= ws.column_dimensions["B"].width < 20
    assert ws["A1"].font.bold


@pytest.mark.parametrize(
    ("status", "colour"),
    [
        (JobStatus.DOWNLOADED, "C6EFCE"),
        (JobStatus.FAILED, "FFC7CE"),
        (JobStatus.REJECTED, "FFC7CE"),
        (JobStatus.PENDING, "FFEB9C"),
        (JobStatus.RUNNING, "FFEB9C"),
        (JobStatus.UNKNOWN, "FCD5B4"),
        (JobStatus.DOWNLOAD_FAILED, "FCD5B4"),
    ],
)
def test_status_cells_are_coloured(tmp_path: Path, status: JobStatus, colour: str) -> None:
    ws = load(write(tmp_path, [make_job(2, status)])[0])["Results"]
    cell = ws.cell(row=2, column=len(COLUMNS) + RESULT_COLUMNS.index("status") + 1)
    assert cell.value == status.value
    assert cell.fill.fgColor.rgb.endswith(colour)


def test_files_and_urls_are_relative_hyperlinks_listing_every_entry(tmp_path: Path) -> None:
    ws = load(write(tmp_path)[0])["Results"]
    files = ws.cell(row=2, column=len(COLUMNS) + RESULT_COLUMNS.index("files") + 1)
    urls = ws.cell(row=2, column=len(COLUMNS) + RESULT_COLUMNS.index("video_urls") + 1)
    assert files.value == "videos/a_1.mp4\nvideos/a 2#.mp4"
    assert files.hyperlink.target == "videos/a_1.mp4"
    assert urls.value.splitlines() == [
        "https://cdn.example.com/v/a_1.mp4",
        "https://cdn.example.com/v/a_2.mp4",
    ]
    assert urls.hyperlink.target == "https://cdn.example.com/v/a_1.mp4"
    assert files.data_type == urls.data_type == "s"


def test_link_targets_are_encoded_and_only_safe_ones_linked(tmp_path: Path) -> None:
    jobs = [
        make_job(2, files=("videos/a 2#.mp4",), video_urls=("javascript:alert(1)",)),
        make_job(3, files=("/etc/passwd",), video_urls=("https://x.example/a b.mp4",)),
    ]
    ws = load(write(tmp_path, jobs)[0])["Results"]
    files_col = len(COLUMNS) + RESULT_COLUMNS.index("files") + 1
    urls_col = len(COLUMNS) + RESULT_COLUMNS.index("video_urls") + 1
    assert ws.cell(row=2, column=files_col).hyperlink.target == "videos/a%202%23.mp4"
    assert ws.cell(row=2, column=urls_col).hyperlink is None
    assert ws.cell(row=2, column=urls_col).value == "javascript:alert(1)"
    assert ws.cell(row=3, column=files_col).hyperlink is None
    assert ws.cell(row=3, column=urls_col).hyperlink.target == "https://x.example/a%20b.mp4"


def test_links_past_excels_limit_stay_text_files_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "MAX_HYPERLINKS", 3)
    jobs = [make_job(row) for row in range(2, 6)]  # 4 files + 4 URLs: 8 links wanted
    wb = load(write(tmp_path, jobs)[0])
    ws = wb["Results"]
    files = [ws.cell(row=r, column=len(COLUMNS) + 13).hyperlink for r in range(2, 6)]
    urls = [ws.cell(row=r, column=len(COLUMNS) + 12).hyperlink for r in range(2, 6)]
    assert [link is not None for link in files] == [True, True, True, False]
    assert urls == [None] * 4
    assert column(ws, "files")[3] == "videos/h_0005_1.mp4"  # still listed as text
    summary = dict(rows_of(wb["Summary"])[1:])
    assert "Excel's limit" in summary["Links"]


def test_a_user_column_named_like_ours_keeps_its_name(tmp_path: Path) -> None:
    jobs = [make_job(2, user={"prompt": "p", "status": "approved by Ann"})]
    xlsx, csv_path = write(tmp_path, jobs, columns=("prompt", "status"))
    header = rows_of(load(xlsx)["Results"])[0]
    assert header[:3] == ["prompt", "status", "row"]
    assert "batchgen_status" in header and header.count("status") == 1
    assert read_csv(csv_path)[0] == header
    failed = rows_of(load(xlsx)["Failed"])[0]
    assert failed == ["prompt", "status", "batchgen_status", "error_kind", "error_message"]


def test_no_jobs_writes_headers_only(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path, [])
    assert len(rows_of(load(xlsx)["Results"])) == 1
    assert len(read_csv(csv_path)) == 1


# --- safety ---------------------------------------------------------------------------------


def test_formula_looking_text_stays_literal_in_every_sheet(tmp_path: Path) -> None:
    jobs = [
        make_job(
            i + 2,
            JobStatus.FAILED,
            prompt=text,
            user=_user(text, note=text),
            error_kind="permanent",
            error_message=text,
            task_id=text,
        )
        for i, text in enumerate(FORMULA_LOOKING)
    ]
    wb = load(write(tmp_path, jobs, columns=COLUMNS)[0])
    # XML turns a bare CR into LF on reading, so the XLSX writes LF outright.
    expected = [text.replace("\r", "\n") for text in FORMULA_LOOKING]
    for name in ("Results", "Failed"):
        ws = wb[name]
        for col in ("prompt", "note", "error_message"):
            assert column(ws, col) == expected, (name, col)
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (name, cell.coordinate, cell.value)
    assert column(wb["Results"], "task_id") == expected


def test_summary_command_line_is_literal(tmp_path: Path) -> None:
    jobs = [make_job(2)]
    summary = summarise(
        jobs, [RunInfo(run_id=1, started_at=T0, command=EVIL)], manifest="=x", version="1"
    )
    xlsx, _ = write_results(tmp_path, columns=COLUMNS, jobs=jobs, summary=summary)
    ws = load(xlsx)["Summary"]
    cells = {row[0].value: row[1] for row in ws.iter_rows(min_row=2)}
    assert cells["Command line"].value == EVIL and cells["Command line"].data_type == "s"
    assert cells["Manifest"].value == "=x" and cells["Manifest"].data_type == "s"


def test_csv_escapes_formula_triggers_by_default(tmp_path: Path) -> None:
    jobs = [
        make_job(i + 2, prompt=text, user=_user(text, count=-5))
        for i, text in enumerate(FORMULA_LOOKING)
    ]
    lines = read_csv(write(tmp_path, jobs)[1])[1:]
    expected = {
        EVIL: "'" + EVIL,
        "+1": "'+1",
        "-2": "'-2",
        "@SUM(A1)": "'@SUM(A1)",
        "=1+1": "'=1+1",
        "#N/A": "#N/A",
        "\tTAB": "'\tTAB",
        "\rCR": "'\rCR",
    }
    assert [line[0] for line in lines] == [expected[text] for text in FORMULA_LOOKING]
    assert {line[COLUMNS.index("count")] for line in lines} == {"-5"}  # numbers are not text


def test_csv_escaping_can_be_turned_off(tmp_path: Path) -> None:
    jobs = [
        make_job(i + 2, prompt=text, user=_user(text)) for i, text in enumerate(FORMULA_LOOKING)
    ]
    lines = read_csv(write(tmp_path, jobs, csv_escape=False)[1])[1:]
    assert [line[0] for line in lines] == list(FORMULA_LOOKING)


def test_csv_is_utf8_with_bom(tmp_path: Path) -> None:
    jobs = [make_job(2, prompt="café ☕ 東京", user=_user("café ☕ 東京"))]
    csv_path = write(tmp_path, jobs)[1]
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "café ☕ 東京".encode() in raw


def test_illegal_characters_are_stripped(tmp_path: Path) -> None:
    dirty = "be\x00fo\x07re\x1b after\ufffe\ud800"
    jobs = [make_job(2, JobStatus.FAILED, prompt=dirty, user=_user(dirty), error_message=dirty)]
    xlsx, csv_path = write(tmp_path, jobs)
    expected = "before after\ufffd"
    wb = load(xlsx)
    assert column(wb["Results"], "prompt") == [expected]
    assert column(wb["Results"], "error_message") == [expected]
    assert column(wb["Failed"], "error_message") == [expected]
    assert not ILLEGAL_CHARACTERS_RE.search(expected)
    assert read_csv(csv_path)[1][0] == expected


def test_cells_over_excels_limit_are_truncated_with_a_marker(tmp_path: Path) -> None:
    huge = "x" * 40_000
    astral = "😀" * 20_000  # 40,000 UTF-16 units though only 20,000 characters
    jobs = [
        make_job(2, JobStatus.FAILED, prompt=huge, user=_user(huge), error_message=huge),
        make_job(3, prompt=astral, user=_user(astral)),
    ]
    xlsx, csv_path = write(tmp_path, jobs)
    ws = load(xlsx)["Results"]
    prompts = column(ws, "prompt")
    assert len(prompts[0]) == MAX_CELL_CHARS and prompts[0].endswith(TRUNCATION_MARKER)
    assert len(prompts[1].encode("utf-16-le")) // 2 <= MAX_CELL_CHARS
    assert prompts[1].endswith("😀" + TRUNCATION_MARKER)
    assert column(ws, "error_message")[0].endswith(TRUNCATION_MARKER)
    assert read_csv(csv_path)[1][0] == huge  # the CSV has no cell limit


# --- Summary and Failed ---------------------------------------------------------------------


def test_summarise_counts_jobs_and_totals_runs() -> None:
    jobs = sample_jobs()
    summary = make_summary(jobs)
    assert summary.counts["downloaded"] == 1  # the deleted row is not counted
    assert summary.counts["failed"] == 1 and summary.counts["pending"] == 1
    assert summary.counts["rejected"] == 0
    assert list(summary.counts) == [status.value for status in JobStatus]
    assert summary.rows == 5 and summary.deleted == 1
    assert summary.needs_attention == 2  # failed + unknown
    assert summary.credits == 120 and summary.usd == 1.2
    assert summary.requests == 15 and summary.rate_limited == 3
    assert summary.started_at == T0 + dt.timedelta(hours=1)
    assert summary.duration_s == 90.0
    assert summary.command == "batchgen run m.xlsx"
    assert summary.version == "9.9.9" and summary.manifest == "m.xlsx"


def test_summarise_without_runs() -> None:
    summary = summarise([], [], manifest="m.csv", version="1")
    assert summary.rows == 0 and summary.credits == 0 and summary.usd == 0
    assert summary.started_at is None and summary.duration_s is None and summary.command == ""


def test_summary_sheet(tmp_path: Path) -> None:
    ws = load(write(tmp_path)[0])["Summary"]
    figures = dict(rows_of(ws)[1:])
    assert figures["Manifest"] == "m.xlsx"
    assert figures["Rows in the manifest"] == 5
    assert figures["  downloaded"] == 1 and figures["  failed"] == 1
    assert figures["Needs attention"] == 2
    assert figures["Deleted from the manifest (listed last)"] == 1
    assert figures["Credits consumed"] == 120
    assert figures["Estimated cost (USD)"] == 1.2
    assert figures["Requests made"] == 15
    assert figures["429 responses met"] == 3
    assert figures["Last run started (UTC)"] == dt.datetime(2025, 3, 1, 10, 30)
    assert figures["Last run ended (UTC)"] == dt.datetime(2025, 3, 1, 10, 31, 30)
    assert figures["Last run duration (s)"] == 90
    assert figures["Command line"] == "batchgen run m.xlsx"
    assert figures["batchgen version"] == "9.9.9"
    assert "UTC" in figures["Times"]


def test_failed_sheet_lists_rows_needing_attention(tmp_path: Path) -> None:
    jobs = [
        *sample_jobs(),
        make_job(8, JobStatus.FAILED, in_manifest=False, error_kind="permanent"),
        make_job(9, JobStatus.DOWNLOAD_FAILED, error_kind="download", error_message="timeout"),
    ]
    ws = load(write(tmp_path, jobs)[0])["Failed"]
    rows = rows_of(ws)
    assert rows[0] == [*COLUMNS, "status", "error_kind", "error_message"]
    reasons = [row[len(COLUMNS) :] for row in rows[1:]]
    assert reasons == [
        ["failed", "permanent", "@SUM(A1) refused: =cmd|' /C calc'!A0"],
        ["unknown", "ambiguous", "#N/A"],
        ["download_failed", "download", "timeout"],
    ]
    assert [row[0] for row in rows[1:]] == [EVIL, "-2", "a lighthouse at dusk, take 9"]
    assert rows[1][COLUMNS.index("count")] == 3  # typed, ready to paste back
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref is not None


# --- determinism and atomicity --------------------------------------------------------------


def _all_values(path: Path) -> dict[str, list[list[Any]]]:
    wb = load(path)
    return {ws.title: rows_of(ws) for ws in wb.worksheets}


def test_same_input_gives_identical_results(tmp_path: Path) -> None:
    first = write(tmp_path / "a")
    second = write(tmp_path / "b")
    assert _all_values(first[0]) == _all_values(second[0])
    assert first[1].read_bytes() == second[1].read_bytes()


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def test_xlsx_and_csv_agree_cell_for_cell(tmp_path: Path) -> None:
    jobs = [*sample_jobs(), make_job(8, JobStatus.DOWNLOAD_FAILED, error_kind="download")]
    xlsx, csv_path = write(tmp_path, jobs, csv_escape=False)
    xlsx_rows = rows_of(load(xlsx)["Results"])
    csv_rows = read_csv(csv_path)
    day = COLUMNS.index("day")
    for x_row, c_row in zip(xlsx_rows[1:], csv_rows[1:], strict=True):
        x_row[day] = x_row[day].date().isoformat()  # openpyxl reads a date back as a datetime
        assert [_as_csv(x) for x in x_row] == c_row


def test_a_crash_mid_write_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xlsx, csv_path = write(tmp_path)
    before = (xlsx.read_bytes(), csv_path.read_bytes())

    def crash(self: Workbook, filename: str) -> None:
        Path(filename).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(Workbook, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, [make_job(2, prompt="new")])
    assert (xlsx.read_bytes(), csv_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.xlsx"]


def test_a_crash_while_writing_the_csv_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path)
    before = (tmp_path / "results.csv").read_bytes()
    calls = 0
    real = results._csv_field

    def flaky(value: Any, escape: bool) -> str:
        nonlocal calls
        calls += 1
        if calls > 30:
            raise RuntimeError("killed")
        return real(value, escape)

    monkeypatch.setattr(results, "_csv_field", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        write(tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.xlsx"]


def test_a_crash_between_rows_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path)
    before = (tmp_path / "results.xlsx").read_bytes()
    real = results._status_cell
    calls = 0

    def flaky(ws: Any, job: Job) -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise MemoryError("killed mid-sheet")
        return real(ws, job)

    monkeypatch.setattr(results, "_status_cell", flaky)
    with pytest.raises(MemoryError):
        write(tmp_path)
    assert (tmp_path / "results.xlsx").read_bytes() == before
    assert load(tmp_path / "results.xlsx")["Results"].max_row == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.xlsx"]


def test_rows_with_long_wrapped_text_get_a_height_to_show_it(tmp_path: Path) -> None:
    long_prompt = "a slow pan across a foggy harbour at dawn, gulls overhead " * 6
    jobs = [make_job(2), make_job(3, prompt=long_prompt)]
    xlsx, _ = write(tmp_path, jobs)
    sheet = load(xlsx).worksheets[0]
    assert sheet.row_dimensions[3].height is not None and sheet.row_dimensions[3].height > 15 * 3
    assert sheet.row_dimensions[2].height is None  # short rows keep the default
