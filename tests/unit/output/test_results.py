"""results.xlsx / results.csv: every column, typed user values, literal text, atomic writes."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from helpers.records import finished_run
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from batchgen.models import Job, JobStatus, RunInfo
from batchgen.output import results, workbook
from batchgen.output.results import (
    DELETED_MARK,
    RESULT_COLUMNS,
    Summary,
    summarise,
    write_results,
)
from batchgen.output.workbook import (
    FAILED_HEADER,
    MAX_CELL_CHARS,
    RESULT_HEADER,
    RUNS_HEADER,
    TRUNCATION_MARKER,
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
        finished_run(1, T0, 300, "old", requests=10, rate_limited=1, credits=80),
        finished_run(
            2, T0 + dt.timedelta(hours=1), 90, "batchgen run m.xlsx", requests=5, rate_limited=2,
            credits=40,
        ),
    ]  # fmt: skip
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

HUMAN = [*RESULT_HEADER, "Video 1", "Video 2"]


def test_writes_both_files_and_returns_their_paths(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path / "new" / "folder")
    assert xlsx == tmp_path / "new" / "folder" / "results.xlsx"
    assert csv_path == tmp_path / "new" / "folder" / "results.csv"
    assert load(xlsx).sheetnames == ["Results", "Summary", "Failed", "Runs"]


def test_people_get_human_headers_and_scripts_keep_machine_names(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    header = rows_of(load(xlsx)["Results"])[0]
    assert header == [*COLUMNS, *HUMAN]
    for name in ("Status", "Task ID", "Cost (USD)", "Error", "Video 1", "Video 2"):
        assert name in header
    assert not any("_" in name for name in header[len(COLUMNS) :])  # no snake_case
    assert read_csv(csv_path)[0] == [*COLUMNS, *RESULT_COLUMNS]
    assert "cost_usd" in RESULT_COLUMNS and "prompt_used" in RESULT_COLUMNS


def test_one_row_per_job_in_manifest_order_deleted_last_and_marked(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    ws = load(xlsx)["Results"]
    assert column(ws, "Row") == [2, 3, 5, 6, 7, 4]
    statuses = column(ws, "Status")
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


def test_times_are_utc_to_the_second_and_the_zone_is_said(tmp_path: Path) -> None:
    aware_paris = dt.datetime(
        2025, 3, 1, 10, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    jobs = [
        make_job(
            2,
            created_at=aware_paris,
            submitted_at=aware_paris + dt.timedelta(seconds=5),
            attempts=3,
            user=_user("p", shoot=aware_paris),
        )
    ]
    xlsx, csv_path = write(tmp_path, jobs)
    ws = load(xlsx)["Results"]
    values = dict(zip(HUMAN, rows_of(ws)[1][len(COLUMNS) :], strict=False))
    assert values["Key"] == "h_0002" and values["Task ID"] == "task-2"
    assert values["Credits"] == 40
    assert values["Submitted (UTC)"] == dt.datetime(2025, 3, 1, 9, 30, 5)  # no microseconds
    assert values["Completed (UTC)"] == dt.datetime(2025, 3, 1, 9, 32)
    assert ws.cell(row=2, column=len(COLUMNS) + HUMAN.index("Submitted (UTC)") + 1).is_date
    csv_values = dict(zip(RESULT_COLUMNS, read_csv(csv_path)[1][len(COLUMNS) :], strict=True))
    assert csv_values["created_at"] == "2025-03-01T09:30:00Z"
    assert csv_values["submitted_at"] == "2025-03-01T09:30:05Z"
    assert csv_values["attempts"] == "3" and csv_values["error_kind"] == ""
    assert ws.cell(row=2, column=COLUMNS.index("shoot") + 1).value.replace(
        microsecond=0
    ) == dt.datetime(2025, 3, 1, 9, 30)


def test_cost_per_row_in_usd(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path)
    ws = load(xlsx)["Results"]
    costs = column(ws, "Cost (USD)")
    assert costs == [0.4, 0, 0, 0, 0, 0.4]
    cell = ws.cell(row=2, column=len(COLUMNS) + HUMAN.index("Cost (USD)") + 1)
    assert "0.00" in cell.number_format and "$" in cell.number_format
    lines = read_csv(csv_path)
    index = lines[0].index("cost_usd")
    assert [line[index] for line in lines[1:]] == ["0.40", "0.00", "0.00", "0.00", "0.00", "0.40"]


def test_sheet_furniture(tmp_path: Path) -> None:
    jobs = [make_job(2, prompt="a very long prompt " * 20)]
    ws = load(write(tmp_path, jobs)[0])["Results"]
    assert ws.freeze_panes == "A2"
    last = openpyxl.utils.get_column_letter(len(COLUMNS) + len(RESULT_HEADER) + 1)
    assert ws.auto_filter.ref == f"A1:{last}2"
    assert ws.column_dimensions["A"].width == pytest.approx(60, abs=1)  # capped, wrapped
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
    cell = ws.cell(row=2, column=len(COLUMNS) + RESULT_HEADER.index("Status") + 1)
    assert cell.value == status.value
    assert cell.fill.fgColor.rgb.endswith(colour)


def _link(cell: Any) -> str | None:
    """A hyperlink's target with Excel's backslashes read back as slashes."""
    return None if cell.hyperlink is None else cell.hyperlink.target.replace("\\", "/")


def test_one_video_per_cell_each_its_own_link(tmp_path: Path) -> None:
    ws = load(write(tmp_path)[0])["Results"]
    first = len(COLUMNS) + len(RESULT_HEADER) + 1
    video1, video2 = ws.cell(row=2, column=first), ws.cell(row=2, column=first + 1)
    assert video1.value == "videos/a_1.mp4" and _link(video1) == "videos/a_1.mp4"
    assert video2.value == "videos/a 2#.mp4" and _link(video2) == "videos/a%202%23.mp4"
    assert "\n" not in video1.value and video1.data_type == video2.data_type == "s"


def test_three_videos_make_three_linked_columns(tmp_path: Path) -> None:
    files = tuple(f"videos/x_{n}.mp4" for n in (1, 2, 3))
    ws = load(write(tmp_path, [make_job(2, files=files), make_job(3)])[0])["Results"]
    assert rows_of(ws)[0][-3:] == ["Video 1", "Video 2", "Video 3"]
    first = len(COLUMNS) + len(RESULT_HEADER) + 1
    assert [_link(ws.cell(row=2, column=first + i)) for i in range(3)] == list(files)
    assert ws.cell(row=3, column=first + 1).value is None  # a one-video row leaves the rest


def test_rows_not_downloaded_link_the_vendor_url(tmp_path: Path) -> None:
    jobs = [
        make_job(2, JobStatus.DOWNLOAD_FAILED, video_urls=("javascript:alert(1)",)),
        make_job(3, JobStatus.DOWNLOAD_FAILED, video_urls=("https://x.example/a b.mp4",)),
        make_job(4, files=("/etc/passwd",)),
    ]
    ws = load(write(tmp_path, jobs)[0])["Results"]
    col = len(COLUMNS) + len(RESULT_HEADER) + 1
    assert ws.cell(row=2, column=col).hyperlink is None
    assert ws.cell(row=2, column=col).value == "javascript:alert(1)"
    assert _link(ws.cell(row=3, column=col)) == "https://x.example/a%20b.mp4"
    assert ws.cell(row=4, column=col).hyperlink is None  # absolute paths are not linked


def test_links_past_excels_limit_stay_text_files_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_HYPERLINKS", 3)
    jobs = [make_job(row) for row in range(2, 6)]
    jobs += [make_job(6, JobStatus.DOWNLOAD_FAILED, video_urls=("https://x.example/v.mp4",))]
    wb = load(write(tmp_path, jobs)[0])
    ws = wb["Results"]
    col = len(COLUMNS) + len(RESULT_HEADER) + 1
    links = [ws.cell(row=r, column=col).hyperlink for r in range(2, 7)]
    assert [link is not None for link in links] == [True, True, True, False, False]
    assert column(ws, "Video 1")[3] == "videos/h_0005_1.mp4"  # still listed as text
    summary = dict(rows_of(wb["Summary"])[1:])
    assert "Excel's limit" in summary["Links"]


def test_a_user_column_named_like_ours_keeps_its_name(tmp_path: Path) -> None:
    jobs = [make_job(2, user={"prompt": "p", "Status": "approved by Ann", "status": "x"})]
    xlsx, csv_path = write(tmp_path, jobs, columns=("prompt", "Status", "status"))
    header = rows_of(load(xlsx)["Results"])[0]
    assert header[:4] == ["prompt", "Status", "status", "Row"]
    assert "batchgen_Status" in header and header.count("Status") == 1
    assert "batchgen_status" in read_csv(csv_path)[0]


def test_no_jobs_writes_headers_only(tmp_path: Path) -> None:
    xlsx, csv_path = write(tmp_path, [])
    assert len(rows_of(load(xlsx)["Results"])) == 1
    assert len(read_csv(csv_path)) == 1


# --- prompt used ----------------------------------------------------------------------------


def test_an_edited_prompt_shows_the_prompt_the_video_was_made_from(tmp_path: Path) -> None:
    edited = make_job(2)  # job.prompt: take 2; the manifest's prompt edited since
    edited = replace(edited, request_now=replace(edited.spec(), prompt="a lighthouse at dawn"))
    same = make_job(3)  # only white space
    same = replace(same, request_now=replace(same.spec(), prompt="a   lighthouse at dusk,\ntake 3"))
    waiting = make_job(4, JobStatus.PENDING, user=_user("new text not sent yet"))
    jobs = [edited, same, waiting]
    xlsx, csv_path = write(tmp_path, jobs)
    ws = load(xlsx)["Results"]
    assert column(ws, "Prompt used") == ["a lighthouse at dusk, take 2", None, None]
    lines = read_csv(csv_path)
    index = lines[0].index("prompt_used")
    assert [line[index] for line in lines[1:]] == ["a lighthouse at dusk, take 2", "", ""]


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
        for col in ("prompt", "note"):
            assert column(ws, col) == expected, (name, col)
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (name, cell.coordinate, cell.value)
    assert column(wb["Results"], "Error") == expected
    assert column(wb["Results"], "Task ID") == expected
    assert column(wb["Failed"], "Error") == [f"permanent: {text}" for text in expected]


def test_summary_command_line_is_literal(tmp_path: Path) -> None:
    jobs = [make_job(2)]
    summary = summarise(
        jobs, [RunInfo(run_id=1, started_at=T0, command=EVIL)], manifest="=x", version="1"
    )
    xlsx, _ = write_results(tmp_path, columns=COLUMNS, jobs=jobs, summary=summary)
    wb = load(xlsx)
    cells = {row[0].value: row[1] for row in wb["Summary"].iter_rows(min_row=2)}
    assert cells["Command line"].value == EVIL and cells["Command line"].data_type == "s"
    assert cells["Manifest"].value == "=x" and cells["Manifest"].data_type == "s"
    assert column(wb["Runs"], "Command line") == [EVIL]


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
    assert column(wb["Results"], "Error") == [expected]
    assert column(wb["Failed"], "Error") == [expected]
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
    assert column(ws, "Error")[0].endswith(TRUNCATION_MARKER)
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


def test_summary_sheet_puts_business_figures_first(tmp_path: Path) -> None:
    ws = load(write(tmp_path)[0])["Summary"]
    rows = rows_of(ws)[1:]
    labels = [label for label, _ in rows]
    figures = dict(rows)
    assert labels[:9] == [
        "Manifest",
        "Rows in the manifest",
        "Takes (videos asked for: a row may ask for several)",
        "Videos downloaded",
        "Takes done",
        "Takes failed",
        "Takes needing attention (sheet Failed)",
        "Credits charged",
        "Cost (USD)",
    ]
    assert figures["Rows in the manifest"] == 5 and figures["Videos downloaded"] == 2
    assert figures["  downloaded"] == 1 and figures["  failed"] == 1
    assert figures["Takes failed"] == 1 and figures["Takes needing attention (sheet Failed)"] == 2
    assert figures["Takes whose row left the manifest (listed last)"] == 1
    assert figures["Credits charged"] == 120 and figures["Cost (USD)"] == 1.2
    cost = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "Cost (USD)")[1]
    assert cost.number_format == "$#,##0.00"
    assert figures["Requests made"] == 15 and figures["429 responses met"] == 3
    assert figures["Last run started (UTC)"] == dt.datetime(2025, 3, 1, 10, 30)
    assert figures["Last run ended (UTC)"] == dt.datetime(2025, 3, 1, 10, 31, 30)
    span = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "Last run duration")[1]
    assert span.number_format == "[h]:mm:ss" and span.value == dt.timedelta(seconds=90)
    assert figures["Command line"] == "batchgen run m.xlsx"
    assert figures["batchgen version"] == "9.9.9"
    assert "UTC" in figures["Times"]


def test_failed_sheet_says_which_row_to_fix_and_what_to_do(tmp_path: Path) -> None:
    jobs = [
        *sample_jobs(),
        make_job(8, JobStatus.FAILED, in_manifest=False, error_kind="permanent"),
        make_job(9, JobStatus.DOWNLOAD_FAILED, error_kind="download", error_message="timeout"),
        make_job(10, JobStatus.FAILED, error_kind="transient", error_message="try later"),
    ]
    ws = load(write(tmp_path, jobs)[0])["Failed"]
    rows = rows_of(ws)
    assert rows[0] == [*FAILED_HEADER, *COLUMNS]
    assert rows[0][:5] == ["Row", "Key", "Status", "Error", "What to do"]
    where = [row[:4] for row in rows[1:]]
    assert where == [
        [3, "h_0003", "failed", "permanent: @SUM(A1) refused: =cmd|' /C calc'!A0"],
        [6, "h_0006", "unknown", "ambiguous: #N/A"],
        [9, "h_0009", "download_failed", "download: timeout"],
        [10, "h_000a", "failed", "transient: try later"],
    ]
    advice = [row[4] for row in rows[1:]]
    assert "--retry-failed" in advice[0] and "--resubmit-unknown" in advice[1]
    assert "Run again" in advice[2] and "run again" in advice[3]
    assert all(text and "\n" not in text for text in advice)  # one line each
    assert [row[5] for row in rows[1:]] == [
        EVIL,
        "-2",
        *["a lighthouse at dusk, take 9"],
        "a lighthouse at dusk, take 10",
    ]
    assert rows[1][5 + COLUMNS.index("count")] == 3  # typed, ready to paste back
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref is not None


def test_failed_rows_with_long_errors_get_the_height_they_need(tmp_path: Path) -> None:
    long_error = "the vendor refused the request because " * 8  # ~5 lines at width 60
    jobs = [
        make_job(2, JobStatus.FAILED, error_kind="permanent", error_message=long_error),
        make_job(3, JobStatus.FAILED, error_kind="permanent", error_message="short"),
    ]
    ws = load(write(tmp_path, jobs)[0])["Failed"]
    assert ws.row_dimensions[2].height is not None and ws.row_dimensions[2].height >= 15 * 5
    assert ws.row_dimensions[3].height is None  # a one-line row keeps the default
    assert ws["D2"].alignment.wrap_text


def test_runs_sheet_has_one_line_per_run(tmp_path: Path) -> None:
    jobs = [make_job(2)]
    runs = [
        RunInfo(
            run_id=1,
            started_at=T0,
            ended_at=T0 + dt.timedelta(minutes=5, microseconds=5),
            command="batchgen run m.xlsx",
            exit_code=143,
            outcome="interrupted",
            requests=10,
            rate_limited=1,
            credits=80,
            submitted=2,
            downloaded=1,
        ),
        RunInfo(run_id=2, started_at=T0 + dt.timedelta(hours=1), command="batchgen run m.xlsx"),
    ]
    summary = summarise(jobs, runs, manifest="m.xlsx", version="1")
    wb = load(write_results(tmp_path, columns=COLUMNS, jobs=jobs, summary=summary)[0])
    rows = rows_of(wb["Runs"])
    assert rows[0] == list(RUNS_HEADER)
    first = dict(zip(RUNS_HEADER, rows[1], strict=True))
    assert first["Started (UTC)"] == dt.datetime(2025, 3, 1, 9, 30)
    assert first["Ended (UTC)"] == dt.datetime(2025, 3, 1, 9, 35)
    assert first["Exit code"] == 143 and first["Outcome"] == "interrupted"
    assert (first["Submitted"], first["Downloaded"]) == (2, 1)
    assert first["Credits charged"] == 80 and first["Cost (USD)"] == 0.8
    second = dict(zip(RUNS_HEADER, rows[2], strict=True))
    assert second["Ended (UTC)"] is None and "did not finish" in second["Outcome"]


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


def test_xlsx_and_csv_agree_on_the_users_columns(tmp_path: Path) -> None:
    jobs = [*sample_jobs(), make_job(8, JobStatus.DOWNLOAD_FAILED, error_kind="download")]
    xlsx, csv_path = write(tmp_path, jobs, csv_escape=False)
    xlsx_rows = rows_of(load(xlsx)["Results"])
    csv_rows = read_csv(csv_path)
    day = COLUMNS.index("day")
    n = len(COLUMNS)
    for x_row, c_row in zip(xlsx_rows[1:], csv_rows[1:], strict=True):
        x_row[day] = x_row[day].date().isoformat()  # openpyxl reads a date back as a datetime
        assert [_as_csv(x) for x in x_row[:n]] == c_row[:n]
        x = dict(zip(HUMAN, x_row[n:], strict=False))
        c = dict(zip(RESULT_COLUMNS, c_row[n:], strict=True))
        assert (str(x["Row"]), x["Key"], x["Status"]) == (c["row"], c["key"], c["status"])
        assert _as_csv(x["Error"]) == c["error_message"]
        assert [v for v in (x["Video 1"], x["Video 2"]) if v] == [
            line for line in (c["files"] or c["video_urls"]).splitlines()
        ]


def test_a_crash_mid_write_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xlsx, csv_path = write(tmp_path)
    before = (xlsx.read_bytes(), csv_path.read_bytes())

    def crash(self: Any) -> None:
        Path(self.filename).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(xlsxwriter.Workbook, "_store_workbook", crash)
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
    real = workbook._Sheets.status
    calls = 0

    def flaky(self: Any, ws: Any, row: int, col: int, job: Job) -> Any:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise MemoryError("killed mid-sheet")
        return real(self, ws, row, col, job)

    monkeypatch.setattr(workbook._Sheets, "status", flaky)
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
