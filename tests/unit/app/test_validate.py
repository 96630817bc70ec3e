"""The library side of ``batchgen validate`` and ``batchgen template``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import openpyxl
import pytest
from helpers.paths import REPO

from batchgen.app.template import TEMPLATE_COLUMNS, write_template
from batchgen.app.validate import (
    format_report,
    plan_manifest,
    validate_exit_code,
    validate_paths,
)
from batchgen.errors import ManifestError, UsageError
from batchgen.manifest.load import read_manifest
from batchgen.output.naming import file_names
from batchgen.state.protocol import Store

EXAMPLE = REPO / "manifests" / "example.csv"


def csv_file(tmp_path: Path, body: str, name: str = "m.csv") -> Path:
    """A manifest with the header prompt,mode,ratio and ``body``."""
    path = tmp_path / name
    path.write_text("prompt,mode,ratio\n" + body, encoding="utf-8")
    return path


def test_plan_counts_and_costs(tmp_path: Path) -> None:
    manifest = read_manifest(
        csv_file(tmp_path, "a,fun,1:1\nb,fun,1:1\nc,bad,1:1\nd,fun,2:3\ne,fun,3:2\n")
    )
    done = {manifest.valid[0].key, "id:not-in-this-file"}
    plan = plan_manifest(manifest, done_keys=done, rpm=100, max_credits=100)
    assert (plan.rows, plan.valid, plan.invalid, plan.done, plan.to_submit) == (5, 4, 1, 1, 3)
    assert (plan.credits, plan.usd) == (120, 1.2)
    assert plan.min_minutes == pytest.approx(0.06)
    assert plan.budget_covers == 2
    assert plan_manifest(manifest, rpm=5000).budget_covers is None
    assert plan_manifest(manifest, rpm=5000, max_credits=10**6).budget_covers == 4
    with pytest.raises(UsageError):
        plan_manifest(manifest, rpm=0)


def test_exit_codes(tmp_path: Path) -> None:
    good = plan_manifest(read_manifest(csv_file(tmp_path, "a,fun,1:1\n", "g.csv")), rpm=100)
    bad = plan_manifest(read_manifest(csv_file(tmp_path, "a,x,1:1\n", "b.csv")), rpm=100)
    error = ManifestError("x.csv", "is empty")
    assert validate_exit_code([good], []) == 0
    assert validate_exit_code([good, bad], []) == 1
    assert validate_exit_code([good], [error]) == 2
    assert validate_exit_code([], [error]) == 2


def test_report_lists_problems_then_the_plan(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,fun,1:1\nb,fun,4:3\na,fun,1:1\n")
    manifest = read_manifest(path)
    plan = plan_manifest(manifest, rpm=100, max_credits=40)
    report = format_report([(manifest, plan)], [ManifestError(tmp_path / "x.csv", "is empty")])
    lines = report.splitlines()
    assert lines[0] == str(path)
    assert lines[1].split() == ["row", "column", "severity", "problem"]
    assert "3  ratio   error     '4:3' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1" in report
    assert "4          warning   same request as row 2" in report
    assert "rows           3: 2 valid, 1 invalid" in report
    assert "to submit      2 generations" in report
    assert "cost           80 credits (40 each), about $0.80" in report
    assert "duration       about 1 min at the free tier (100 requests/min)" in report
    assert "(at least 2 s: 2 requests per generation)" in report
    assert "budget         40 credits cover 1 of 2 generations" in report
    assert f"Could not read:\n  {tmp_path / 'x.csv'}: is empty" in report


def test_report_caps_the_problem_list_and_totals_several_files(tmp_path: Path) -> None:
    bad = read_manifest(csv_file(tmp_path, "a,x,1:1\n" * 80, "bad.csv"))
    good = read_manifest(csv_file(tmp_path, "a,fun,1:1\n", "good.csv"))
    pairs = [(m, plan_manifest(m, rpm=1000)) for m in (bad, good)]
    report = format_report(pairs, [], max_problems=10)
    # 80 errors; identical invalid rows are not also warned about as duplicates
    assert "... and 70 more problems not listed" in report
    assert "no problems found" in report
    assert (
        report.rstrip()
        .splitlines()[-1]
        .startswith("Total: 2 manifests, 1 valid and 80 invalid rows")
    )


def test_validate_paths_one_call(tmp_path: Path) -> None:
    folder = tmp_path / "briefs"
    folder.mkdir()
    csv_file(folder, "a,fun,1:1\n", "a.csv")
    (folder / "b.xlsx").write_bytes(b"\x00\x01garbage")
    seen: list[Path] = []

    def done_keys(path: Path) -> set[str]:
        seen.append(path)
        return set()

    result = validate_paths([folder], rpm=100, done_keys=done_keys)
    assert result.exit_code == 2
    assert [m.path.name for m, _ in result.results] == ["a.csv"]
    assert seen == [folder / "a.csv"]
    assert "b.xlsx: is not an Excel workbook" in result.report
    empty = tmp_path / "empty"
    empty.mkdir()
    assert validate_paths([empty], rpm=100).exit_code == 2


def test_shipped_example_is_valid() -> None:
    manifest = read_manifest(EXAMPLE)
    assert len(manifest.rows) >= 8 and not manifest.problems
    assert {"campaign", "owner"} <= set(manifest.columns)
    # the images column is shown; a placeholder URL would be held by the picture check
    assert "images" in manifest.columns
    assert {s.mode for s in manifest.valid} >= {"fun", "normal"}
    assert len({s.ratio for s in manifest.valid}) == 3
    assert validate_paths([EXAMPLE], rpm=100).exit_code == 0


def test_template_is_a_valid_manifest_with_text_columns_and_dropdowns(tmp_path: Path) -> None:
    path = tmp_path / "new.xlsx"
    write_template(path)
    manifest = read_manifest(path)
    assert manifest.columns == list(TEMPLATE_COLUMNS)
    assert manifest.valid == [] and len(manifest.rows) == 1  # the sample row is never sent
    assert [p.column for p in manifest.problems] == ["id"]
    book = openpyxl.load_workbook(path)
    sheet = book["Manifest"]
    assert sheet["D2"].value == "2:3" and sheet["D2"].number_format == "@"
    assert all(sheet.column_dimensions[c].number_format == "@" for c in "ABCDEF")
    lists = {str(dv.sqref): dv.formula1 for dv in sheet.data_validations.dataValidation}
    assert lists == {"C2:C1048576": '"fun,normal,spicy"', "D2:D1048576": '"2:3,3:2,1:1"'}
    assert [p.name for p in tmp_path.iterdir()] == ["new.xlsx"]  # no temporary left behind


def test_template_refuses_to_overwrite_and_checks_the_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.xlsx"
    path.write_bytes(b"precious")
    with pytest.raises(UsageError, match="already exists"):
        write_template(path)
    assert path.read_bytes() == b"precious"
    with pytest.raises(UsageError, match=r"must be an \.xlsx"):
        write_template(tmp_path / "t.csv")
    with pytest.raises(UsageError, match="is not a folder"):
        write_template(tmp_path / "missing" / "t.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.xlsx"]


# ---------------------------------------------------------------- --name-template
NAMED = "id,prompt,mode,ratio,campaign\n"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{brand}/{id}", "{brand} is not a column of m.csv"),  # run's own message
        ("{Campaign}/{id}_{n}}", "Single '}'"),  # bad braces
        ("{campaign}/../{id}", "not '.' or '..' folders"),  # a path escape
        ("{}", "every {} needs a column name"),
    ],
)
def test_a_bad_name_template_is_reported_like_run_does(
    tmp_path: Path, template: str, problem: str
) -> None:
    path = tmp_path / "m.csv"
    path.write_text(NAMED + "a,p,fun,1:1,Spring\n", encoding="utf-8")
    result = validate_paths([path], rpm=100, name_template=template)
    assert result.exit_code == 2  # usage: the run would stop before sending anything
    ((manifest, plan),) = result.results
    (error,) = manifest.errors
    assert error.row is None and error.message.startswith(f"--name-template {template!r}")
    assert problem in error.message and problem in result.report
    with pytest.raises(UsageError) as raised:  # the very message ``run`` stops with
        file_names(cast(Store, _NoStore(tmp_path)), template, manifest.columns, "m.csv")
    assert str(raised.value) == error.message
    assert plan.valid == 1  # the rows themselves are still checked and planned


def test_a_name_template_column_is_checked_per_manifest(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(NAMED + "a,p,fun,1:1,Spring\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("prompt,mode,ratio\np,fun,1:1\n", encoding="utf-8")
    result = validate_paths([tmp_path], rpm=100, name_template="{campaign}/{id}")
    assert result.exit_code == 2
    errors = {m.path.name: [p.message for p in m.errors] for m, _ in result.results}
    assert errors["a.csv"] == []
    (message,) = errors["b.csv"]
    assert "{campaign} is not a column of b.csv (available: id, key, mode, ratio, n, prompt)" in (
        message
    )


def test_rows_whose_names_collide_or_are_made_safe_are_warned_per_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        NAMED
        + "a,p1,fun,1:1,Spring\n"
        + "b,p2,fun,1:1,SPRING\n"  # the same name as row 2 but for case
        + "c,p3,fun,1:1,Fall\n"  # its own name: no warning
        + "d,p4,fun,1:1,CON\n"  # a Windows device name
        + "e,p5,fun,1:1,\n",  # an empty value
        encoding="utf-8",
    )
    result = validate_paths([path], rpm=100, name_template="{campaign}/{n}")
    assert result.exit_code == 0  # the run names them all, uniquely: warnings only
    ((manifest, plan),) = result.results
    warned = {p.row: p.message for p in manifest.warnings}
    assert set(warned) == {2, 3, 5, 6} and plan.warnings == 4
    assert "the name of row 3 too (case aside)" in warned[2]
    assert "the name of row 2 too" in warned[3]
    assert "gives videos/_CON/1.mp4, a name that had to be made safe" in warned[5]
    assert "gives videos/_/1.mp4" in warned[6]
    assert all("the video is saved as videos/" in m and "~" in m for m in warned.values())
    assert re.search(r"\n +2 +warning +--name-template '\{campaign\}/\{n\}' gives", result.report)


def test_without_a_name_template_nothing_about_names_is_said(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(NAMED + "a,p1,fun,1:1,Spring\nb,p2,fun,1:1,Spring\n", encoding="utf-8")
    result = validate_paths([path], rpm=100)
    assert result.exit_code == 0 and "name-template" not in result.report


class _NoStore:  # a partial fake of the Store protocol
    """Just enough of a store for ``file_names``: its folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "state.sqlite"

    def iter_jobs(self) -> list[Any]:
        return []
