"""Reading CSV/TSV manifests as spreadsheet programs really write them."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from batchgen.config import ManifestSettings
from batchgen.manifest.load import read_manifest

ROWS = [
    ["id", "Prompt", "Mode", "Ratio", "Images", "campaign"],
    ["0007", "A café terrace at dusk, neon reflections", "normal", "2:3", "", "Été"],
    ["NA", "None", "fun", "1:1", "https://example.com/a.png", "spring"],
]


def render(rows: list[list[str]], delimiter: str) -> str:
    """CSV text with every cell quoted (so delimiters and line breaks inside are safe)."""
    lines = []
    for row in rows:
        lines.append(delimiter.join('"' + cell.replace('"', '""') + '"' for cell in row))
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("cp1252", b""),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_encodings_and_delimiters(
    tmp_path: Path, encoding: str, bom: bytes, delimiter: str
) -> None:
    path = tmp_path / "briefs.csv"
    path.write_bytes(bom + render(ROWS, delimiter).encode(encoding))
    manifest = read_manifest(path)
    assert manifest.columns == ROWS[0]
    first, second = manifest.rows
    assert first.row == 2 and second.row == 3
    assert first.user == dict(zip(ROWS[0], ROWS[1], strict=True))
    assert first.spec is not None and first.spec.prompt == ROWS[1][1]
    assert first.key == "id:0007"
    assert second.spec is not None and second.spec.prompt == "None"
    assert second.spec.images == ("https://example.com/a.png",)
    assert not manifest.errors
    fallback = [p for p in manifest.warnings if "Windows-1252" in p.message]
    assert bool(fallback) == (encoding == "cp1252")


def test_utf16_without_bom_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "briefs.tsv"
    path.write_bytes(render(ROWS, "\t").encode("utf-16-le"))
    manifest = read_manifest(path)
    assert manifest.rows[0].user["campaign"] == "Été"


def test_unquoted_plain_csv_keeps_text_values(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,prompt,mode,ratio\n0007,NA,fun,1:1\n00,null,fun,1:1\n", encoding="utf-8")
    manifest = read_manifest(path)
    assert [r.user["id"] for r in manifest.rows] == ["0007", "00"]
    assert [r.spec.prompt for r in manifest.rows if r.spec] == ["NA", "null"]


def test_multiline_cells_and_blank_lines_keep_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    text = (
        "prompt,mode,ratio\n"
        '"line one\nline two\nline three",fun,1:1\n'
        "\n"
        ",,\n"
        '"second\r\nprompt",fun,4:3\n'
        "third,fun,2:3\n"
    )
    path.write_bytes(text.encode())
    manifest = read_manifest(path)
    assert [r.row for r in manifest.rows] == [2, 5, 6]
    assert manifest.rows[0].spec is not None
    assert manifest.rows[0].spec.prompt == "line one\nline two\nline three"
    assert [p.row for p in manifest.errors] == [5]
    assert "'4:3' is not a GrokImagine ratio" in manifest.errors[0].message


def test_header_may_follow_a_title_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("Q3 briefs (do not edit),,\n\nprompt,mode,ratio\ncat,fun,1:1\n")
    manifest = read_manifest(path)
    assert manifest.rows[0].row == 4


def test_header_matching_ignores_case_spaces_nbsp_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    header = "\ufeff\ufeffPROMPT ,\u00a0Aspect\u00a0Ratio,video_mode,Image URL 1,image-2,Job ID\n"
    row = "cat,2:3,Spicy,https://example.com/1.png,https://example.com/2.png, A-1 \n"
    path.write_text(header + row, encoding="utf-8")
    manifest = read_manifest(path)
    spec = manifest.valid[0]
    assert (spec.mode, spec.ratio) == ("spicy", "2:3")
    assert spec.images == ("https://example.com/1.png", "https://example.com/2.png")
    assert spec.key == "id:A-1"
    # the BOM that decoding keeps (a doubled one) is dropped, other characters stay
    assert manifest.columns[0] == "PROMPT "


def test_semicolon_file_with_commas_inside_values(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt;mode;ratio\nA cat, a dog, a bird;fun;1:1\n", encoding="utf-8")
    assert read_manifest(path).valid[0].prompt == "A cat, a dog, a bird"


def test_time_looking_ratios_from_excel_csv_export(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "prompt,ratio\na,01:01:00\nb,1:01:00 AM\nc,2:03:00\nd,3:02:00\ne,3-Feb\n",
        encoding="utf-8",
    )
    manifest = read_manifest(path, ManifestSettings(default_mode="fun"))
    assert [s.ratio for s in manifest.valid] == ["1:1", "1:1", "2:3", "3:2"]
    (problem,) = manifest.errors
    assert problem.row == 6 and "Format the ratio column as Text" in problem.message


def test_short_rows_are_padded_and_extra_cells_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "prompt,mode,ratio,notes\ncat,fun,1:1\nA cat, a dog,fun,1:1,x\nok,fun,1:1,n,,\n",
        encoding="utf-8",
    )
    manifest = read_manifest(path)
    assert manifest.rows[0].user["notes"] == ""
    assert manifest.rows[1].spec is None
    assert "double quotes" in manifest.rows[1].problems[0].message
    assert manifest.rows[2].spec is not None  # trailing empty cells are harmless


def test_repeated_and_missing_user_headers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt,notes,notes,,\ncat,a,b,c,\n", encoding="utf-8")
    manifest = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))
    assert manifest.columns == ["prompt", "notes", "notes (2)", "column D"]
    assert manifest.rows[0].user == {
        "prompt": "cat",
        "notes": "a",
        "notes (2)": "b",
        "column D": "c",
    }
    messages = " ".join(p.message for p in manifest.warnings)
    assert "repeats the header 'notes'" in messages and "column D has no header" in messages


def test_stray_quote_is_read_like_excel(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('prompt,mode,ratio\n"a cat" on a mat,fun,1:1\n', encoding="utf-8")
    assert read_manifest(path).valid[0].prompt == "a cat on a mat"


def test_sheet_option_is_ignored_for_csv(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt,mode,ratio\ncat,fun,1:1\n", encoding="utf-8")
    manifest = read_manifest(path, ManifestSettings(sheet="Sheet9"))
    assert manifest.sheet is None and len(manifest.valid) == 1


def test_one_column_file_with_commas_in_prompts(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt\nA cat, a dog\nA bird, a fish, a frog\n", encoding="utf-8")
    manifest = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))
    assert [s.prompt for s in manifest.valid] == ["A cat, a dog", "A bird, a fish, a frog"]


@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"])
def test_line_endings_and_stray_carriage_returns(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "m.csv"
    text = newline.join(["prompt,mode,ratio", '"a\r\nb",fun,1:1', "c,fun,1:1", ""])
    path.write_bytes(text.encode())
    manifest = read_manifest(path)
    assert [s.prompt for s in manifest.valid] == ["a\nb", "c"]
    assert [r.row for r in manifest.rows] == [2, 3]


def test_bare_carriage_return_in_an_lf_file_ends_the_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"prompt,mode,ratio\na,fun,1:1\rb,fun,1:1\n")
    assert [s.prompt for s in read_manifest(path).valid] == ["a", "b"]
