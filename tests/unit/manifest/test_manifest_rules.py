"""Row validation, problem messages, row keys and finding manifests."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from batchgen.config import ManifestSettings
from batchgen.errors import UsageError
from batchgen.manifest.load import (
    MAX_PROMPT_CHARS,
    Manifest,
    Problem,
    find_manifests,
    read_manifest,
)

HEADER = ["prompt", "mode", "ratio", "images"]


def write(tmp_path: Path, rows: list[list[str]], name: str = "m.csv") -> Path:
    """A UTF-8 CSV of ``rows`` (a header is added unless the first row is one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if rows and rows[0] and rows[0][0] not in ("prompt", "id"):
        writer.writerow(HEADER)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def only_error(manifest: Manifest) -> Problem:
    """The single error of ``manifest``."""
    (problem,) = manifest.errors
    return problem


# --- values ---------------------------------------------------------------------------------


def test_mode_and_ratio_ignore_case_and_spaces(tmp_path: Path) -> None:
    manifest = read_manifest(write(tmp_path, [["cat", " NoRmAl ", " 3 : 2 ", ""]]))
    spec = manifest.valid[0]
    assert (spec.mode, spec.ratio, spec.images) == ("normal", "3:2", ())
    assert spec.request() == {"mode": "normal", "prompt": "cat", "ratio": "3:2"}


def test_defaults_fill_empty_cells_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt,ratio\ncat,\ndog,2:3\n", encoding="utf-8")
    manifest = read_manifest(path, ManifestSettings(default_mode="Spicy", default_ratio=" 1:1 "))
    assert [(s.mode, s.ratio) for s in manifest.valid] == [("spicy", "1:1"), ("spicy", "2:3")]


def test_no_value_and_no_default_makes_the_row_invalid(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("prompt,ratio\ncat,\n", encoding="utf-8")
    manifest = read_manifest(path)
    messages = [p.message for p in manifest.errors]
    assert messages == [
        "mode is empty and no default is set; write fun, normal or spicy or set a default "
        "(--default-mode)",
        "ratio is empty and no default is set; write 2:3, 3:2 or 1:1 or set a default "
        "(--default-ratio)",
    ]
    assert manifest.errors[0].column is None and manifest.errors[1].column == "ratio"


def test_bad_defaults_are_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, [["cat", "fun", "1:1", ""]])
    with pytest.raises(UsageError, match="default mode 'wild' is not valid"):
        read_manifest(path, ManifestSettings(default_mode="wild"))
    with pytest.raises(UsageError, match="default ratio '4:3'"):
        read_manifest(path, ManifestSettings(default_ratio="4:3"))


@pytest.mark.parametrize(
    ("mode", "ratio", "expected"),
    [
        ("funny", "1:1", "'funny' is not a GrokImagine mode; use fun, normal or spicy"),
        ("fun", "4:3", "'4:3' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1"),
        ("fun", "16/9", "'16/9' is a date"),
        ("fun", "1:1:1", "'1:1:1' is not a GrokImagine ratio"),
    ],
)
def test_bad_mode_or_ratio(tmp_path: Path, mode: str, ratio: str, expected: str) -> None:
    assert only_error(
        read_manifest(write(tmp_path, [["cat", mode, ratio, ""]]))
    ).message.startswith(expected)


def test_prompt_rules(tmp_path: Path) -> None:
    rows = [
        ["  padded prompt \r\n second line ", "fun", "1:1", ""],
        ["   ", "fun", "1:1", ""],
        ["x" * MAX_PROMPT_CHARS, "fun", "1:1", ""],
        ["x" * (MAX_PROMPT_CHARS + 1), "fun", "1:1", ""],
        ["tab\tand\nnewline are fine", "fun", "1:1", ""],
        ["bell \x07 is not", "fun", "1:1", ""],
        ["escape \x1b[2J is not", "fun", "1:1", ""],
        ["C1 \x85 is not", "fun", "1:1", ""],
    ]
    manifest = read_manifest(write(tmp_path, rows))
    assert manifest.valid[0].prompt == "padded prompt \n second line"
    bad = {p.row: p.message for p in manifest.errors}
    assert set(bad) == {3, 5, 7, 8, 9}
    assert bad[3].startswith("prompt is empty")
    assert bad[5] == "prompt is 4,001 characters long; the limit is 4,000"
    assert bad[7].startswith("prompt contains the control character U+0007 at position 6")
    assert "U+001B" in bad[8] and "U+0085" in bad[9]


def test_formula_looking_prompt_is_sent_as_text_with_a_warning(tmp_path: Path) -> None:
    manifest = read_manifest(write(tmp_path, [["=cmd|' /C calc'!A0", "fun", "1:1", ""]]))
    assert manifest.valid[0].prompt == "=cmd|' /C calc'!A0"
    (warning,) = manifest.warnings
    assert warning.row == 2 and "like a spreadsheet formula" in warning.message


def test_image_rules(tmp_path: Path) -> None:
    rows = [
        ["a", "fun", "1:1", "https://example.com/a.png, https://example.com/b.png"],
        ["b", "fun", "1:1", "https://cdn.example.com/w_100,h_80/c.png;http://example.com/d"],
        ["c", "fun", "1:1", "example.com/a.png"],
        ["d", "fun", "1:1", "ftp://example.com/a.png"],
        ["e", "fun", "1:1", "https:///nohost.png"],
        ["f", "fun", "1:1", "https://[::1/broken"],
        ["g", "fun", "1:1", "https://example.com/" + "x" * 2100],
    ]
    manifest = read_manifest(write(tmp_path, rows))
    assert [s.images for s in manifest.valid] == [
        ("https://example.com/a.png", "https://example.com/b.png"),
        ("https://cdn.example.com/w_100,h_80/c.png", "http://example.com/d"),
    ]
    bad = {p.row: p.message for p in manifest.errors}
    assert "is not a full URL" in bad[4]
    assert "is not an http(s) URL" in bad[5]
    assert "has no host name" in bad[6]
    assert "is not a valid URL" in bad[7]
    assert "the limit is 2,048" in bad[8]
    assert all(p.column == "images" for p in manifest.errors)


def test_several_image_columns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "prompt,image_1,Image 2,images\ncat,https://e.com/1.png,,https://e.com/2.png\n",
        encoding="utf-8",
    )
    spec = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1")).valid[0]
    assert spec.images == ("https://e.com/1.png", "https://e.com/2.png")


def test_ids_must_be_unique(tmp_path: Path) -> None:
    rows = [
        ["id", *HEADER],
        ["a1", "cat", "fun", "1:1", ""],
        [" a1 ", "dog", "fun", "1:1", ""],
        ["b", "bird", "fun", "1:1", ""],
        ["a1", "fish", "fun", "1:1", ""],
    ]
    manifest = read_manifest(write(tmp_path, rows))
    assert [s.key for s in manifest.valid] == ["id:a1", "id:b"]
    bad = manifest.errors
    assert [p.row for p in bad] == [3, 5]
    assert bad[0].message == "id 'a1' is already used by row 2; ids must be unique"
    keys = [r.key for r in manifest.rows]
    assert len(set(keys)) == len(keys)  # invalid rows get keys of their own too


def test_exact_duplicates_warn_and_get_occurrence_keys(tmp_path: Path) -> None:
    rows = [
        ["cat", "fun", "1:1", ""],
        ["dog", "fun", "1:1", ""],
        ["cat", "FUN", " 1:1", ""],
        ["cat  ", "fun", "1:1", ""],
    ]
    manifest = read_manifest(write(tmp_path, rows))
    assert len(manifest.valid) == 4
    keys = [r.key for r in manifest.rows]
    assert keys[2] == keys[0] + "#2" and keys[3] == keys[0] + "#3"
    assert [(w.row, w.message.split(" (")[0]) for w in manifest.warnings] == [
        (4, "same request as row 2"),
        (5, "same request as row 2"),
    ]


def test_invalid_rows_never_stop_valid_ones(tmp_path: Path) -> None:
    rows = [["", "fun", "1:1", ""], ["cat", "bad", "1:1", ""], ["dog", "fun", "1:1", ""]]
    manifest = read_manifest(write(tmp_path, rows))
    assert [s.row for s in manifest.valid] == [4]
    assert [r.row for r in manifest.invalid] == [2, 3]
    assert all(r.key for r in manifest.invalid)
    assert manifest.invalid[1].prompt == "cat"


# --- messages -------------------------------------------------------------------------------


def test_problem_str_names_file_row_column_value_and_remedy() -> None:
    problem = Problem(
        path="briefs.xlsx",
        row=7,
        column="ratio",
        value="4:3",
        message="'4:3' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1",
    )
    assert (
        str(problem) == "briefs.xlsx, row 7, column 'ratio': '4:3' is not a GrokImagine ratio; use "
        "2:3, 3:2 or 1:1"
    )
    warning = Problem(
        path="b.csv", row=None, column=None, value=None, message="x", severity="warning"
    )
    assert str(warning) == "b.csv: x"  # the log level (or the report) says "warning"


def test_messages_escape_control_characters_and_shorten_values(tmp_path: Path) -> None:
    rows = [["cat", "\x1b[31mred\u202e" + "m" * 300, "1:1", ""]]
    manifest = read_manifest(write(tmp_path, rows))
    text = str(only_error(manifest))
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mred\\u202e" in text and "…" in text
    assert len(only_error(manifest).message) < 120
    assert only_error(manifest).value is not None and len(only_error(manifest).value or "") <= 200


# --- keys ------------------------------------------------------------------------------------

BASE = [
    ["id", *HEADER],
    ["", "cat on a mat", "fun", "1:1", ""],
    ["x-1", "dog in fog", "normal", "2:3", ""],
    ["", "bird on a wire", "spicy", "3:2", "https://example.com/b.png"],
    ["", "cat on a mat", "fun", "1:1", ""],
    ["", "", "fun", "1:1", ""],
]


def keys_by_prompt(tmp_path: Path, rows: list[list[str]], name: str) -> dict[tuple[str, int], str]:
    """Each row's key, by (prompt, occurrence of that prompt)."""
    manifest = read_manifest(write(tmp_path, rows, name))
    result: dict[tuple[str, int], str] = {}
    for row in manifest.rows:
        occurrence = sum(1 for prompt, _ in result if prompt == row.prompt)
        result[(row.prompt, occurrence)] = row.key
    return result


def test_keys_survive_insert_delete_and_reorder(tmp_path: Path) -> None:
    base = keys_by_prompt(tmp_path, BASE, "base.csv")
    assert base[("cat on a mat", 0)].startswith("h:") and len(base[("cat on a mat", 0)]) == 18
    assert base[("cat on a mat", 1)] == base[("cat on a mat", 0)] + "#2"
    assert base[("dog in fog", 0)] == "id:x-1"
    inserted = keys_by_prompt(
        tmp_path, [BASE[0], ["", "new row", "fun", "1:1", ""], *BASE[1:]], "inserted.csv"
    )
    deleted = keys_by_prompt(tmp_path, [BASE[0], *BASE[2:]], "deleted.csv")
    reordered = keys_by_prompt(tmp_path, [BASE[0], *reversed(BASE[1:])], "reordered.csv")
    for variant in (inserted, deleted, reordered):
        for identity, key in variant.items():
            if identity in base:
                assert key == base[identity], identity
    assert ("cat on a mat", 1) not in deleted  # the remaining copy is now the first


def test_editing_the_request_changes_the_key_editing_user_columns_does_not(tmp_path: Path) -> None:
    def key(row: list[str], name: str, header: list[str] | None = None) -> str:
        return read_manifest(write(tmp_path, [header or [*HEADER, "owner"], row], name)).rows[0].key

    original = key(["cat", "fun", "1:1", "", "ana"], "a.csv")
    assert key(["cat", "fun", "1:1", "", "ben"], "b.csv") == original
    assert key(["  cat ", "FUN", "1:1", "", "ana"], "c.csv") == original
    assert key(["cat!", "fun", "1:1", "", "ana"], "d.csv") != original
    assert key(["cat", "normal", "1:1", "", "ana"], "e.csv") != original
    assert key(["cat", "fun", "2:3", "", "ana"], "f.csv") != original
    assert key(["cat", "fun", "1:1", "https://e.com/a.png", "ana"], "g.csv") != original
    # a default counts as the row's value
    assert key(["cat", "", "1:1", "", "ana"], "h.csv", None) != original


def test_default_applied_key_matches_explicit_value(tmp_path: Path) -> None:
    explicit = read_manifest(write(tmp_path, [["cat", "fun", "1:1", ""]], "a.csv")).rows[0].key
    path = tmp_path / "b.csv"
    path.write_text("prompt,ratio\ncat,1:1\n", encoding="utf-8")
    assert read_manifest(path, ManifestSettings(default_mode="fun")).rows[0].key == explicit


# --- finding manifests -----------------------------------------------------------------------


def test_find_manifests_expands_folders(tmp_path: Path) -> None:
    folder = tmp_path / "briefs"
    folder.mkdir()
    for name in ("b.xlsx", "A.csv", "c.tsv", "d.xlsm", "notes.txt", ".hidden.csv", "~$b.xlsx"):
        (folder / name).write_text("x")
    (folder / "sub").mkdir()
    (folder / "sub" / "e.csv").write_text("x")
    single = tmp_path / "single.CSV"
    single.write_text("x")
    missing = tmp_path / "missing.csv"
    found = find_manifests([folder, single, missing, folder / "A.csv"])
    assert [p.name for p in found] == [
        "A.csv",
        "b.xlsx",
        "c.tsv",
        "d.xlsm",
        "single.CSV",
        "missing.csv",
    ]
