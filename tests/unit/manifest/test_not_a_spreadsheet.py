"""Issue 23, item 12: a manifest that is not a regular spreadsheet file is refused without a
byte of it shown. Seen: a symlink to ``/etc/shadow`` had its first line printed as "columns
found". Variants: a FIFO, a folder, a long first line, a name that is not UTF-8.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from batchgen.errors import ManifestError
from batchgen.manifest.load import read_manifest

SECRET = "$6$saltsalt$SECRETHASHVALUEthatmustneverbeprinted0123456789"


def write_rows(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["prompt", "mode", "ratio"], ["a cat", "fun", "1:1"]])
    return path


def test_a_name_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"br\xefefs.csv")  # Latin-1 bytes
    try:
        with open(raw, "wb") as handle:
            handle.write(b"prompt,mode,ratio\na cat,fun,1:1\n")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(ManifestError, match="not UTF-8 text") as caught:
        read_manifest(Path(os.fsdecode(raw)))
    assert "\\xef" in str(caught.value)


def test_the_seen_link_to_a_system_file_is_refused_without_its_content(tmp_path: Path) -> None:
    system = tmp_path / "etc" / "shadow"
    system.parent.mkdir()
    system.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    link = tmp_path / "briefs.csv"
    link.symlink_to(system)
    with pytest.raises(ManifestError) as caught:
        read_manifest(link)
    message = str(caught.value)
    assert "SECRETHASH" not in message and "root:" not in message
    assert "is a link to" in message and "not a spreadsheet" in message


def test_a_long_first_line_is_not_echoed_as_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "copied.csv"
    path.write_text(f"root:{SECRET}:19000:0:99999:7:::\nother\n")
    with pytest.raises(ManifestError, match="not shown") as caught:
        read_manifest(path)
    assert "SECRETHASH" not in str(caught.value) and "$6$" not in str(caught.value)


def test_a_short_header_is_still_shown(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("promt,mode\na cat,fun\n")
    with pytest.raises(ManifestError, match="columns found: 'promt', 'mode'"):
        read_manifest(path)


@pytest.mark.timeout(20)  # before: reading the pipe waited for a writer forever
def test_a_fifo_named_like_a_manifest_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "briefs.csv"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="named pipe"):
        read_manifest(fifo)


def test_a_folder_named_like_a_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "briefs.xlsx").mkdir()
    with pytest.raises(ManifestError, match="is a folder"):
        read_manifest(tmp_path / "briefs.xlsx")


def test_a_link_to_a_spreadsheet_is_read(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    real = write_rows(tmp_path / "shared" / "briefs.csv")
    link = tmp_path / "tonight.csv"
    link.symlink_to(real)
    assert [row.prompt for row in read_manifest(link).rows] == ["a cat"]
