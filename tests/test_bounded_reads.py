"""Issue 23, item 9: every workbook batchgen reads is measured before it is parsed.

Seen: an XLSX of 8 million inline-string cells (974 KB zipped) kept ``validate`` busy past 4
minutes; a 6-million-cell ``results.xlsx`` kept ``report`` busy past 3 minutes while reading
decisions back. The kind: cells (inline strings, numbers, shared-string references) and shared
strings, in a manifest or in the results, are counted on the zip (``batchgen.xlsx_bounds``)
and a workbook over the bound is refused with one sentence naming the file and the limit.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import write_briefs

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN
from batchgen.errors import ManifestError
from batchgen.manifest import xlsx_guard
from batchgen.manifest.load import read_manifest
from batchgen.manifest.model import MAX_XLSX_CELLS
from batchgen.output.review import read_decisions, results_cell_limit
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEAD = '<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'


def inline_rows(first: int, rows: int, per_row: int, prefix: str = "") -> Iterator[bytes]:
    """``rows`` rows of ``per_row`` inline-string cells each, from row ``first``."""
    c = f"{prefix}c"
    block: list[str] = []
    for number in range(first, first + rows):
        cells = "".join(
            f'<{c} t="inlineStr"><{prefix}is><{prefix}t>x</{prefix}t></{prefix}is></{c}>'
            for _ in range(per_row)
        )
        block.append(f'<{prefix}row r="{number}">{cells}</{prefix}row>')
        if len(block) == 2_000:
            yield "".join(block).encode()
            block.clear()
    yield "".join(block).encode()


def workbook_with(path: Path, body: Iterator[bytes], *, header: str = HEAD) -> Path:
    """A real workbook (openpyxl's parts) whose first sheet's ``<sheetData>`` is ``header``
    followed by the streamed ``body``."""
    base = path.with_suffix(".base.xlsx")
    book = openpyxl.Workbook()
    book.active.append(["prompt"])
    book.save(base)
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                new.writestr(info, old.read(info.filename))
                continue
            xml = old.read(info.filename).decode()
            start = xml.index("<sheetData")
            end = xml.index("</sheetData>") if "</sheetData>" in xml else None
            before = xml[:start] + "<sheetData>" + header
            after = "</sheetData>" + (xml[end + len("</sheetData>") :] if end else "</worksheet>")
            with new.open(info.filename, "w", force_zip64=True) as handle:
                handle.write(before.encode())
                for chunk in body:
                    handle.write(chunk)
                handle.write(after.encode())
    base.unlink()
    return path


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(xlsx_guard, "MAX_XLSX_CELLS", 1_000)
    return 1_000


# ---------------------------------------------------------------- manifests (fast, in process)
def test_inline_string_cells_past_the_limit_are_refused_naming_file_and_limit(
    tmp_path: Path, small_limit: int
) -> None:
    path = workbook_with(tmp_path / "m.xlsx", inline_rows(2, 200, 10))
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "1,000 cells" in message
    assert "inline strings" in message and "\n" not in message


def test_number_cells_count_too(tmp_path: Path, small_limit: int) -> None:
    numbers = (
        "".join(f'<row r="{n}">' + '<c t="n"><v>7</v></c>' * 10 + "</row>" for n in range(2, 202))
    ).encode()
    path = workbook_with(tmp_path / "n.xlsx", iter([numbers]))
    with pytest.raises(ManifestError, match="more than 1,000 cells with a value"):
        read_manifest(path)


def test_a_namespace_prefix_does_not_hide_cells(tmp_path: Path, small_limit: int) -> None:
    body = inline_rows(2, 200, 10, prefix="x:")
    path = workbook_with(tmp_path / "p.xlsx", body, header=HEAD)
    with pytest.raises(ManifestError, match="1,000 cells"):
        read_manifest(path)


def test_formatting_only_cells_are_free(tmp_path: Path, small_limit: int) -> None:
    data = '<row r="2"><c t="inlineStr"><is><t>a cat</t></is></c></row>' + "".join(
        f'<row r="{n}"><c r="A{n}" s="0"/><c r="B{n}" s="0"/></row>' for n in range(3, 3_003)
    )
    path = workbook_with(tmp_path / "f.xlsx", iter([data.encode()]))
    manifest = read_manifest(path, default_mode="fun", default_ratio="1:1")
    assert [row.prompt for row in manifest.rows] == ["a cat"]


def test_the_limit_is_that_of_the_largest_manifest_at_ten_columns() -> None:
    assert MAX_XLSX_CELLS == 2_000_000


# ---------------------------------------------------------------- results read back (fast)
def test_a_results_workbook_far_larger_than_its_state_is_not_read(tmp_path: Path) -> None:
    known = {"id:r0", "id:r1", "id:r2"}
    limit = results_cell_limit(len(known))
    header = (
        '<row r="1"><c t="inlineStr"><is><t>key</t></is></c>'
        '<c t="inlineStr"><is><t>decision</t></is></c></row>'
    )
    path = workbook_with(
        tmp_path / "results.xlsx", inline_rows(2, limit // 20 + 10, 20), header=header
    )
    found = read_decisions(path, known)
    assert found.decisions == {} and found.refused is not None
    assert found.refused.startswith(f"{path}: decisions not read: it holds more than {limit:,}")


def test_a_results_workbook_with_a_strings_bomb_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["key", "decision"])
    book.save(path)
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    parts["xl/sharedStrings.xml"] = (
        f'<sst xmlns="{NS}">'.encode() + b"<si><t>a</t></si>" * 600_000 + b"</sst>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    found = read_decisions(path, {"id:r0"})
    assert found.refused is not None and "shared strings" in found.refused


def test_a_results_workbook_batchgen_could_have_written_is_read(tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Results"
    book.active.append(["key", "prompt", *[f"col{i}" for i in range(40)], "decision"])
    book.active.append(["id:r0", "a cat", *range(40), "approve"])
    book.save(path)
    assert read_decisions(path, {"id:r0"}).decisions == {"id:r0": "approve"}


# ---------------------------------------------------------------- the seen cases, real size
def _batchgen(cwd: Path, *args: str, limit: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": DEMO_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "batchgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )


@pytest.mark.e2e
def test_the_seen_8_million_inline_string_cells_are_refused_in_seconds(tmp_path: Path) -> None:
    path = workbook_with(tmp_path / "bomb.xlsx", inline_rows(2, 400_000, 20))
    assert path.stat().st_size < 3 * 1024 * 1024  # a small file on disk
    started = time.monotonic()
    done = _batchgen(tmp_path, "validate", "bomb.xlsx", limit=60)  # was: past 4 minutes
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "bomb.xlsx" in said and f"{MAX_XLSX_CELLS:,} cells" in said
    assert "Traceback" not in said and time.monotonic() - started < 60


@pytest.mark.e2e
async def test_the_seen_6_million_cell_results_do_not_hold_report(
    tmp_path: Path, simulator: Simulator
) -> None:
    write_briefs(tmp_path / "briefs.csv", 3)
    ns = parse_args(["run", str(tmp_path / "briefs.csv"), "--out", str(tmp_path / "outputs")])
    settings = settings_from_args(ns, base_url=simulator.url)
    assert await run_batch(ns.manifests, settings, Token(DEMO_TOKEN), command="test") == 0
    results = tmp_path / "outputs" / "briefs" / "results.xlsx"
    header = (
        '<row r="1"><c t="inlineStr"><is><t>key</t></is></c>'
        '<c t="inlineStr"><is><t>decision</t></is></c></row>'
    )
    workbook_with(results.with_name("big.xlsx"), inline_rows(2, 300_000, 20), header=header)
    os.replace(results.with_name("big.xlsx"), results)
    done = await asyncio.to_thread(
        _batchgen, tmp_path, "report", "briefs.csv", "--out", "outputs", limit=60
    )  # was: past 3 minutes
    assert done.returncode == 0, done.stderr
    assert "decisions not read" in done.stderr and "results.xlsx" in done.stderr
    assert f"{results_cell_limit(3):,}" in done.stderr
