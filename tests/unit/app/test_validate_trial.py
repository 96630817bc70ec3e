"""What a new user's trial of ``validate`` found: regenerations left out of the plan, takes
counted as rows, image cells split at some commas only, and the wording of two warnings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openpyxl
import pytest
from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it

from batchgen.app.validate import validate_manifests, validate_paths
from batchgen.config import ManifestSettings, Settings
from batchgen.manifest.load import read_manifest

# ---------------------------------------------------------------- regenerate decisions


# ---------------------------------------------------------------- rows and takes


def test_rows_and_takes_are_counted_apart(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("prompt,mode,ratio,variants\na,fun,1:1,3\nb,fun,1:1,2\nc,fun,1:1,2\n")
    result = validate_paths([path], rpm=100)
    assert "rows           3: 3 valid, 0 invalid; 7 takes" in result.report, result.report
    assert "to submit      7 generations" in result.report
    settings = Settings()
    document = json.loads(validate_manifests([path], settings, as_json=True)[0])
    (plan,) = document["manifests"]
    assert (plan["rows"], plan["valid"], plan["invalid"], plan["takes"]) == (3, 3, 0, 7)
    assert plan["to_submit"] == 7


def test_an_invalid_row_with_variants_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("prompt,mode,ratio,variants\na,fun,1:1,3\nb,nope,1:1,4\nc,fun,1:1,1\n")
    ((_, plan),) = validate_paths([path], rpm=100).results
    assert (plan.rows, plan.valid, plan.invalid, plan.takes) == (3, 2, 1, 4)
    assert plan.to_submit == 4


# ---------------------------------------------------------------- image cells


@pytest.mark.parametrize(
    ("cell", "bad"),
    [
        (
            "not-a-url, ftp://x/y.png, www.example.com/a.png",
            ["not-a-url", "ftp://x/y.png", "www.example.com/a.png"],
        ),
        ("https://a.example/x.png,www.example.com/b.png", ["www.example.com/b.png"]),
        ("https://a.example/x.png, b.png", ["b.png"]),
    ],
)
def test_image_cells_split_at_every_comma_between_values(
    tmp_path: Path, cell: str, bad: list[str]
) -> None:
    path = tmp_path / "i.csv"
    path.write_text(f'prompt,mode,ratio,image\ncat,fun,1:1,"{cell}"\n', encoding="utf-8")
    manifest = read_manifest(path)
    problems = [p for p in manifest.problems if p.is_error]
    assert [p.value for p in problems] == bad
    for problem, value in zip(problems, bad, strict=True):
        assert (Path(problem.path).name, problem.row, problem.column) == ("i.csv", 2, "image")
        assert repr(value) in problem.message


def test_a_comma_inside_one_url_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    url = "https://cdn.example/w_100,h_80/a.png"
    path.write_text(f'prompt,mode,ratio,image\ncat,fun,1:1,"{url}"\n', encoding="utf-8")
    assert read_manifest(path).valid[0].images == (url,)


# ---------------------------------------------------------------- warnings' wording


def _hidden(path: Path, hidden: list[int]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Shots"
    for row in [["prompt", "mode", "ratio"], ["a", "fun", "1:1"], ["b", "fun", "1:1"], ["c"]]:
        sheet.append(row)
    for number in hidden:
        sheet.row_dimensions[number].hidden = True
    book.save(path)
    return path


def test_one_hidden_row_is_said_in_the_singular_naming_the_sheet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = read_manifest(_hidden(tmp_path / "ts.xlsx", [3]))
    (note,) = [p for p in manifest.warnings if "hidden" in p.message]
    assert note.message.startswith("1 row hidden in the sheet 'Shots' (by a filter or by hand) ")
    assert "was skipped, not sent: row 3;" in note.message and "sends it" in note.message
    with caplog.at_level(logging.WARNING):
        logging.getLogger("batchgen").warning("%s", note)  # as run logs it
    assert caplog.records[0].levelname == "WARNING"
    assert "warning" not in caplog.records[0].getMessage().casefold()


def test_several_hidden_rows_are_said_in_the_plural(tmp_path: Path) -> None:
    manifest = read_manifest(_hidden(tmp_path / "ts.xlsx", [2, 4]))
    (note,) = [p.message for p in manifest.warnings if "hidden" in p.message]
    assert note.startswith("2 rows hidden in the sheet 'Shots'") and "were skipped" in note
    assert "rows 2, 4;" in note and "sends them" in note
    included = read_manifest(
        _hidden(tmp_path / "in.xlsx", [3]), ManifestSettings(include_hidden=True)
    )
    assert any(
        "1 row hidden in the sheet 'Shots' is included" in p.message for p in included.warnings
    )


def test_identical_names_are_not_said_to_differ_by_case(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text(
        "prompt,mode,ratio,owner\na,fun,1:1,ann\nb,fun,1:1,bob\nc,fun,1:1,ann\nd,fun,1:1,Bob\n",
        encoding="utf-8",
    )
    ((manifest, _),) = validate_paths([path], rpm=100, name_template="{owner}").results
    warned = {p.row: p.message for p in manifest.warnings}
    assert "gives videos/ann_1.mp4, the name of row 2 too;" in warned[4]
    assert "gives videos/Bob_1.mp4, the name of row 3 too (case aside);" in warned[5]
