"""Memory and time of ``batchgen validate`` on workbooks whose size is formatting, not data.

Usage: ``python benchmarks/bench_sheets.py [--keep DIR] [--smoke]``

Three files, each validated by the real ``batchgen validate`` in a fresh subprocess (peak RSS
from ``wait4``, wall time from the parent):

* ``formatted.xlsx``: 3 data rows, every row down to 1,048,576 formatted (a ``<row>`` with a
  style and four styled empty cells), as Excel writes a sheet whose columns were formatted
  row by row. Goal: peak RSS under 200 MB.
* ``strings_bomb.xlsx``: 3 data rows and a shared-strings table of about 450 MB of tiny
  strings (under the 512 MB zip-bomb guard; about 1 MB on disk). Goal: refused (or read)
  within 10 s and 500 MB.
* ``inline_bomb.xlsx``: 8 million inline-string cells (400,000 rows of 20; about 3.5 MB on
  disk, 300 MB unpacked), as issue 23 saw. Goal: refused (or read) within 10 s and 500 MB.

``--smoke`` writes every file a thousand times smaller (the figures mean nothing; the test
suite checks that way that the benchmark still runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

EXCEL_ROWS = 1_048_576
BOMB_STRINGS = 27_000_000  # 17 bytes each ("<si><t>a</t></si>"): about 450 MB
INLINE_CELLS, INLINE_PER_ROW = 8_000_000, 20  # 400,000 rows of 20 inline-string cells


def _base_workbook(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Manifest"
    sheet.append(["id", "prompt", "mode", "ratio"])
    for index in range(1, 4):
        sheet.append([f"r{index}", f"a lighthouse at dusk, take {index}", "normal", "1:1"])
    workbook.save(path)


def _rewrite_member(source: Path, target: Path, name: str, chunks: object) -> None:
    """Copy ``source`` to ``target`` with member ``name`` replaced by the streamed chunks."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename == name:
                with new.open(name, "w", force_zip64=True) as handle:
                    for chunk in chunks:  # type: ignore[attr-defined]
                        handle.write(chunk)
            else:
                new.writestr(info, old.read(info.filename))


def write_formatted(path: Path, last_row: int = EXCEL_ROWS) -> None:
    """3 data rows; every row of the sheet formatted down to ``last_row`` (Excel's last)."""
    base = path.with_suffix(".base.xlsx")
    _base_workbook(base)
    with zipfile.ZipFile(base) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    head, _, tail = xml.partition("</sheetData>")

    def chunks() -> object:
        yield head.encode("utf-8")
        block: list[str] = []
        for number in range(5, last_row + 1):
            cells = "".join(f'<c r="{c}{number}" s="0"/>' for c in "ABCD")
            block.append(f'<row r="{number}" spans="1:4" s="0" customFormat="1">{cells}</row>')
            if len(block) == 10_000:
                yield "".join(block).encode("ascii")
                block.clear()
        yield "".join(block).encode("ascii")
        yield ("</sheetData>" + tail).encode("utf-8")

    _rewrite_member(base, path, "xl/worksheets/sheet1.xml", chunks())
    base.unlink()


def write_strings_bomb(path: Path, strings: int = BOMB_STRINGS) -> None:
    """3 data rows (inline strings) and a huge table of ``strings`` tiny shared strings
    nobody uses."""
    base = path.with_suffix(".base.xlsx")
    _base_workbook(base)
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

    def chunks() -> object:
        yield (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{ns}" '
            f'count="{strings}" uniqueCount="{strings}">'
        ).encode("ascii")
        per_block = min(strings, 100_000)
        block = b"<si><t>a</t></si>" * per_block
        for _ in range(strings // per_block):
            yield block
        yield b"</sst>"

    member = "xl/sharedStrings.xml"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    override = f'<Override PartName="/{member}" ContentType="{content_type}"/>'
    with_part = path.with_suffix(".part.xlsx")
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(with_part, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", override.encode("ascii") + b"</Types>")
            new.writestr(info, data)
        new.writestr(member, b"<sst/>")
    _rewrite_member(with_part, path, member, chunks())
    with_part.unlink()
    base.unlink()


def write_inline_bomb(path: Path, cells: int = INLINE_CELLS) -> None:
    """The header, then rows of ``INLINE_PER_ROW`` inline-string cells (``cells`` in all):
    an id, a prompt, a mode, a ratio, and more text right of the named columns."""
    base = path.with_suffix(".base.xlsx")
    _base_workbook(base)
    with zipfile.ZipFile(base) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    head, _, tail = xml.partition("</sheetData>")

    def cell(text: str) -> str:
        return f'<c t="inlineStr"><is><t>{text}</t></is></c>'

    rest = cell("x") * (INLINE_PER_ROW - 4)

    def chunks() -> object:
        yield head.encode("utf-8")
        rows = cells // INLINE_PER_ROW
        for start in range(5, rows + 5, 10_000):
            yield "".join(
                f'<row r="{n}">{cell(f"i{n}")}{cell("a cat")}{cell("fun")}{cell("1:1")}{rest}</row>'
                for n in range(start, min(start + 10_000, rows + 5))
            ).encode("ascii")
        yield ("</sheetData>" + tail).encode("utf-8")

    _rewrite_member(base, path, "xl/worksheets/sheet1.xml", chunks())
    base.unlink()


def measure(path: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MB, exit code, last output line) of ``batchgen validate path``."""
    command = [sys.executable, "-m", "batchgen", "validate", str(path)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=path.parent
    )
    assert process.stdout is not None
    output = process.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    lines = [line for line in output.splitlines() if line.strip()]
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), lines[-1][:160]


def main() -> None:
    """Write the files, then validate each in its own process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--smoke", action="store_true", help="files 1,000 times smaller")
    args = parser.parse_args()
    shrink = 1000 if args.smoke else 1
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        cases = {
            "formatted": (folder / "formatted.xlsx", write_formatted, EXCEL_ROWS, 200),
            "strings_bomb": (folder / "strings_bomb.xlsx", write_strings_bomb, BOMB_STRINGS, 500),
            "inline_bomb": (folder / "inline_bomb.xlsx", write_inline_bomb, INLINE_CELLS, 500),
        }
        for name, (path, writer, size, goal_mb) in cases.items():
            if not path.exists():
                writer(path, size // shrink)
            seconds, peak, code, last = measure(path)
            size = path.stat().st_size / 1024 / 1024
            in_time = name == "formatted" or seconds < 10  # only the bomb has a time goal
            verdict = "ok" if peak < goal_mb and in_time else "GOAL MISSED"
            print(
                f"{name:<13} ({size:.1f} MB): {seconds:.1f} s, peak RSS {peak:,.0f} MB "
                f"(goal < {goal_mb} MB{'' if name == 'formatted' else ', < 10 s'}) "
                f"exit {code}: {verdict}\n    {last}"
            )


if __name__ == "__main__":
    main()
