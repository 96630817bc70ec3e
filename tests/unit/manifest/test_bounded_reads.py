"""Issue 23, item 9: a manifest workbook is measured before it is parsed.

Cells with a value (inline strings, numbers, shared-string references; formatting alone is
free) are counted on the zip (``batchgen.xlsx_bounds``), and a workbook over the bound is
refused with one sentence naming the file and the limit (a small limit here; the seen
8-million-cell file is in ``tests/e2e/test_bounded_reads_runs.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.workbooks import HEAD, inline_rows, workbook_with

from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError
from batchgen.manifest import xlsx_guard
from batchgen.manifest.load import read_manifest
from batchgen.manifest.model import MAX_XLSX_CELLS


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(xlsx_guard, "MAX_XLSX_CELLS", 1_000)
    return 1_000


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
    manifest = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))
    assert [row.prompt for row in manifest.rows] == ["a cat"]


def test_the_limit_is_that_of_the_largest_manifest_at_ten_columns() -> None:
    assert MAX_XLSX_CELLS == 2_000_000
