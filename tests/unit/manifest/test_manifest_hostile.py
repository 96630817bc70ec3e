"""A corpus of broken and hostile manifests: each ends in one clear message, never a traceback.

Every case is checked twice: through ``read_manifest`` (a ManifestError with the expected
words, or row problems with the expected words; no other exception type) and through
``validate_paths`` (the exit code: 2 unusable file, 1 invalid rows, 0 only warnings).
"""

from __future__ import annotations

import codecs
import os
import random
import shutil
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from batchgen.app.validate import validate_paths
from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError
from batchgen.manifest import table as manifest_table
from batchgen.manifest.load import read_manifest

GOOD_CSV = "prompt,mode,ratio\ncat,fun,1:1\n"


def text_file(name: str, content: str | bytes) -> Callable[[Path], Path]:
    """A builder writing ``content`` to ``name``."""

    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return build


def xlsx_file(
    rows: list[list[object]], edit: Callable[[Path], None] | None = None
) -> Callable[[Path], Path]:
    """A builder writing ``rows`` to an .xlsx, then ``edit`` on the saved file."""

    def build(folder: Path) -> Path:
        path = folder / "m.xlsx"
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        book.save(path)
        if edit is not None:
            edit(path)
        return path

    return build


def rewrite_sheet(path: Path, edit: Callable[[str], str]) -> None:
    """Replace the first sheet's XML with ``edit(xml)``."""
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    member = "xl/worksheets/sheet1.xml"
    parts[member] = edit(parts[member].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


def declare_huge_size(path: Path) -> None:
    """Patch the central directory so the sheet claims to unpack to 4 GB (a zip bomb's mark)."""
    data = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == name:
            struct.pack_into("<I", data, at + 24, 0xFFFF_FFF0)
            break
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut the file in half, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


LOL = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


def billion_laughs(xml: str) -> str:
    """An entity-expansion bomb in the sheet XML."""
    return LOL + xml.replace("<t>cat</t>", "<t>&lol9;</t>")


def ole2(encrypted: bool) -> bytes:
    """An OLE2 compound file header: Excel's password-protected .xlsx, or an old .xls."""
    body = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    if encrypted:
        body += "EncryptionInfo".encode("utf-16-le") + "EncryptedPackage".encode("utf-16-le")
    return bytes(body)


def random_bytes(size: int) -> bytes:
    """Reproducible garbage."""
    return random.Random(7).randbytes(size)


def columns_10k(folder: Path) -> Path:
    header = ["prompt", "mode", "ratio"] + [f"c{i}" for i in range(9_997)]
    row = ["cat", "fun", "1:1"] + ["v"] * 9_997
    path = folder / "wide.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    return path


def many_rows(folder: Path) -> Path:
    path = folder / "long.csv"
    path.write_text("prompt,mode,ratio\n" + "cat,fun,1:1\n" * 30, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Case:
    """One hostile manifest and what must come of it."""

    build: Callable[[Path], Path]
    expect: str  # words that must appear in the file error, or in a row problem
    exit_code: int  # 2: the file is unusable; 1: some row invalid; 0: warnings only
    row: int | None = None  # the row of the problem (None: a file error or file warning)
    sheet: str | None = None


CASES: dict[str, Case] = {
    "empty csv": Case(text_file("m.csv", b""), "is empty", 2),
    "empty xlsx": Case(text_file("m.xlsx", b""), "is empty", 2),
    "garbage renamed .xlsx": Case(
        text_file("m.xlsx", random_bytes(5000)), "is not an Excel workbook", 2
    ),
    "garbage renamed .csv": Case(
        text_file("m.csv", b"\x00\x01" + random_bytes(5000)), "binary data", 2
    ),
    "pdf renamed .csv": Case(text_file("m.csv", b"%PDF-1.7\n" + random_bytes(99)), "PDF", 2),
    "csv renamed .xlsx": Case(text_file("m.xlsx", GOOD_CSV), "rename it to .csv", 2),
    "xlsx renamed .csv": Case(
        lambda folder: xlsx_file([["prompt"], ["cat"]])(folder).rename(folder / "m.csv"),
        "rename it to .xlsx",
        2,
    ),
    "password-protected xlsx": Case(text_file("m.xlsx", ole2(True)), "password-protected", 2),
    "old xls renamed .xlsx": Case(text_file("m.xlsx", ole2(False)), "97-2003", 2),
    ".xls file": Case(text_file("m.xls", ole2(False)), "save it as .xlsx", 2),
    ".ods file": Case(text_file("m.ods", b"PK\x03\x04"), "OpenDocument", 2),
    ".txt file": Case(text_file("m.txt", GOOD_CSV), "use a .csv, .tsv, .xlsx or .xlsm", 2),
    "missing file": Case(lambda folder: folder / "nope.csv", "does not exist", 2),
    "folder named like a manifest": Case(
        lambda folder: _folder(folder / "dir.csv"), "is a folder", 2
    ),
    "zip that is not a workbook": Case(
        lambda folder: _plain_zip(folder), "zip file but not an Excel workbook", 2
    ),
    "truncated xlsx": Case(xlsx_file([["prompt"], ["cat"]], truncate), "damaged", 2),
    "zip bomb: sheet declares 4 GB": Case(
        xlsx_file([["prompt"], ["cat"]], declare_huge_size), "zip bomb", 2
    ),
    "xml entity bomb": Case(
        xlsx_file([["prompt"], ["cat"]], lambda p: rewrite_sheet(p, billion_laughs)),
        "cannot be read as an Excel workbook",
        2,
    ),
    "row number past Excel's limit": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["cat", "fun", "1:1"]],
            lambda p: rewrite_sheet(
                p,
                lambda x: x.replace('<row r="2">', '<row r="2000000">').replace(
                    'r="A2"', 'r="A2000000"'
                ),
            ),
        ),
        "beyond Excel's limit",
        2,
    ),
    "dimension declared past Excel's limit": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["cat", "fun", "1:1"]],
            lambda p: rewrite_sheet(
                p,
                lambda x: x.replace('<dimension ref="A1:C2" />', '<dimension ref="A1:C9999999" />'),
            ),
        ),
        "beyond what Excel allows",
        2,
    ),
    "header only": Case(text_file("m.csv", "prompt,mode,ratio\n"), "no data rows", 0),
    "header and blank rows only": Case(
        text_file("m.csv", "prompt,mode,ratio\n\n,,\n  , ,\n"), "no data rows", 0
    ),
    "header only xlsx": Case(xlsx_file([["prompt", "mode"]]), "no data rows", 0),
    "wrong headers": Case(
        text_file("m.csv", "Promt,Mode,Ratio\ncat,fun,1:1\n"),
        "no prompt column (columns found: 'Promt', 'Mode', 'Ratio'); accepted names: prompt",
        2,
    ),
    "no header at all": Case(
        text_file("m.csv", "cat,fun,1:1\ndog,fun,1:1\n"), "no prompt column", 2
    ),
    "duplicate prompt column": Case(
        text_file("m.csv", "prompt,mode,Prompt Text\ncat,fun,dog\n"),
        "more than one prompt column: 'prompt' (A) and 'Prompt Text' (C)",
        2,
    ),
    "duplicate ratio column xlsx": Case(
        xlsx_file([["prompt", "ratio", "Aspect Ratio"], ["cat", "1:1", "2:3"]]),
        "more than one ratio column",
        2,
    ),
    "no sheet with a prompt column": Case(
        xlsx_file([["title", "notes"], ["a", "b"]]), "no prompt column (columns found: 'title'", 2
    ),
    "unknown sheet": Case(
        xlsx_file([["prompt"], ["cat"]]), "has no sheet named 'Data'", 2, sheet="Data"
    ),
    "bad UTF-8 after a UTF-8 BOM": Case(
        text_file("m.csv", codecs.BOM_UTF8 + b"prompt\n\xff\xfe cat\n"), "not valid UTF-8", 2
    ),
    "neither UTF-8 nor cp1252": Case(
        text_file("m.csv", b"prompt\ncaf\x81\x8d\n"), "neither UTF-8 nor Windows-1252", 2
    ),
    "unclosed quote": Case(
        text_file("m.csv", 'prompt,mode,ratio\ncat,fun,1:1\n"dog,fun,1:1\nbird,fun,1:1\n'),
        "quoted value starting on line 3 that is never closed",
        2,
    ),
    "too many rows": Case(many_rows, "has more than 25 data rows", 2),
    "10,000 columns": Case(columns_10k, "", 0),
    "1 MB prompt csv": Case(
        text_file("m.csv", "prompt,mode,ratio\n" + "x" * 1_000_000 + ",fun,1:1\ncat,fun,1:1\n"),
        "prompt is 1,000,000 characters long; the limit is 4,000",
        1,
        row=2,
    ),
    "1 MB prompt xlsx": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["y" * 1_000_000, "fun", "1:1"], ["cat", "fun", "1:1"]]
        ),
        "characters long; the limit is 4,000",
        1,
        row=2,
    ),
    "control characters": Case(
        text_file("m.csv", "prompt,mode,ratio\ncat\x1b[2J\x07,fun,1:1\n"),
        "control character U+001B",
        1,
        row=2,
    ),
    "NUL inside a prompt": Case(
        text_file("m.csv", f"prompt,mode,ratio,notes\ncat,fun,1:1,{'n' * 5000}\nc\x00t,fun,1:1,\n"),
        "control character U+0000",
        1,
        row=3,
    ),
    "formula prompt in csv": Case(
        text_file("m.csv", 'prompt,mode,ratio\n"=HYPERLINK(""http://evil"",""x"")",fun,1:1\n'),
        "like a spreadsheet formula",
        0,
        row=2,
    ),
    "formula prompt without saved result": Case(
        xlsx_file([["prompt", "mode", "ratio"], ['=A5&"x"', "fun", "1:1"]]),
        "no saved result",
        1,
        row=2,
    ),
    "error value in ratio": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["cat", "fun", "=NA()"]],
            lambda p: rewrite_sheet(
                p,
                lambda x: x.replace(
                    '<c r="C2"><f>NA()</f><v /></c>', '<c r="C2" t="e"><f>NA()</f><v>#N/A</v></c>'
                ),
            ),
        ),
        "shows the error '#N/A'",
        1,
        row=2,
    ),
    "merged prompt cells": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["cat", "fun", "1:1"], [None, "fun", "1:1"]],
            lambda p: _merge(p, "A2:A3"),
        ),
        "cells A2:A3 are merged",
        1,
        row=2,
    ),
    "hostile hyperlink and merge ranges": Case(
        xlsx_file([["prompt", "mode", "ratio"], ["cat", "fun", "1:1"]], lambda p: _huge_ranges(p)),
        "",
        0,
    ),
    "huge declared dimension, few cells": Case(
        xlsx_file(
            [["prompt", "mode", "ratio"], ["cat", "fun", "1:1"]],
            lambda p: rewrite_sheet(
                p,
                lambda x: x.replace(
                    '<dimension ref="A1:C2" />', '<dimension ref="A1:XFD1048576" />'
                ).replace(
                    "</sheetData>",
                    '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far</t></is>'
                    "</c></row></sheetData>",
                ),
            ),
        ),
        "cells right of the last named column are ignored (the first is XFD1048576)",
        0,
    ),
    "bidi override in header": Case(
        text_file("m.csv", "pro\u202empt,mode\ncat,fun\n"), "\\u202e", 2
    ),
    "ratio typed as a date": Case(
        text_file("m.csv", "prompt,mode,ratio\ncat,fun,2/3/2024\n"),
        "format the ratio column as text",
        1,
        row=2,
    ),
}


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _plain_zip(folder: Path) -> Path:
    path = folder / "m.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def _merge(path: Path, cells: str) -> None:
    book = openpyxl.load_workbook(path)
    book.active.merge_cells(cells)
    book.save(path)


def _huge_ranges(path: Path) -> None:
    book = openpyxl.load_workbook(path)
    book.active["D2"].hyperlink = "https://example.com/x.png"
    book.active.merge_cells("D1:E2")
    book.save(path)

    def edit(xml: str) -> str:
        xml = xml.replace('<mergeCell ref="D1:E2"', '<mergeCell ref="D1:XFD1048576"')
        return xml.replace('<hyperlink ref="D2"', '<hyperlink ref="D1:XFD1048576"')

    rewrite_sheet(path, edit)


@pytest.fixture(autouse=True)
def _small_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The row limit is exercised with a small value instead of 200,001 real rows.
    monkeypatch.setattr(manifest_table, "MAX_DATA_ROWS", 25)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_manifest(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    path = case.build(tmp_path)
    started = time.perf_counter()
    try:
        manifest = read_manifest(path, ManifestSettings(sheet=case.sheet))
    except ManifestError as exc:
        assert case.exit_code == 2, f"unexpected file error: {exc}"
        assert case.expect.casefold() in str(exc).casefold()
        assert str(exc).startswith(str(path))
        assert "Traceback" not in str(exc) and "\n" not in str(exc)
    else:
        assert case.exit_code != 2, "the file should have been refused"
        if case.expect:
            hits = [p for p in manifest.problems if case.expect.casefold() in str(p).casefold()]
            assert hits, [str(p) for p in manifest.problems]
            assert hits[0].row == case.row
        assert all("\x1b" not in str(p) and "\x00" not in str(p) for p in manifest.problems)
    assert time.perf_counter() - started < 5
    result = validate_paths([path], manifest_settings=ManifestSettings(sheet=case.sheet), rpm=100)
    assert result.exit_code == case.exit_code, result.report


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_10k_columns_are_all_carried(tmp_path: Path) -> None:
    manifest = read_manifest(columns_10k(tmp_path))
    assert len(manifest.columns) == 10_000 and len(manifest.rows[0].user) == 10_000


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        path = tmp_path / "m.csv"
        path.write_text(GOOD_CSV)
        path.chmod(0)
        with pytest.raises(ManifestError, match="cannot be read"):
            read_manifest(path)
        return
    # Root reads files whatever their mode: read as "nobody" instead (the effective uid can
    # be switched back because the real uid stays 0), from a folder anyone may enter.
    folder = Path(tempfile.mkdtemp(prefix="batchgen-unreadable-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        path = folder / "m.csv"
        path.write_text(GOOD_CSV)
        path.chmod(0o600)
        os.seteuid(65534)
        try:
            with pytest.raises(ManifestError, match="cannot be read"):
                read_manifest(path)
        finally:
            os.seteuid(0)
    finally:
        shutil.rmtree(folder)
