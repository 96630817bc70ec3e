"""Issue 13 end to end: ``batchgen run`` / ``validate`` on spreadsheets as people leave them.

``run`` is the real subprocess against the in-process simulator (see ``test_cli_run``);
the configuration cases call ``batchgen.cli.main`` in-process.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import openpyxl
import pytest
from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import Cli, store_of
from helpers.simulators import MakeSim

from batchgen.cli import main
from batchgen.errors import ManifestError
from batchgen.manifest.load import read_manifest
from batchgen.models import JobStatus


def _filtered_workbook(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["id", "prompt", "mode", "ratio", "approved"])
    for index, approved in enumerate(("yes", "no", "yes", "no", "no")):
        sheet.append([f"k{index}", f"kite {index}", "fun", "1:1", approved])
    sheet.auto_filter.ref = "A1:E6"
    sheet.auto_filter.add_filter_column(4, ["yes"])
    for number in (3, 5, 6):
        sheet.row_dimensions[number].hidden = True
    workbook.save(path)
    return path


async def test_run_skips_rows_hidden_by_a_filter_and_lists_them(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    _filtered_workbook(tmp_path / "kites.xlsx")
    cli = Cli(tmp_path, sim)
    result = await cli.run("run", "kites.xlsx", "--rpm", "5000")
    assert result.code == 0, result.stderr
    assert sim.stats.tasks_created == 2  # 80 credits, not 200
    assert "3 rows hidden in the sheet" in result.stderr and "rows 3, 5, 6" in result.stderr
    assert "skipped 3" in result.stderr  # the summary line counts them
    with (tmp_path / "outputs" / "kites" / "results.csv").open(encoding="utf-8-sig") as handle:
        rows = {r["id"]: r for r in csv.DictReader(handle)}
    assert (
        rows["k1"]["status"] == "skipped" and "hidden in the sheet" in rows["k1"]["error_message"]
    )
    assert rows["k0"]["status"] == "downloaded"

    again = await cli.run("run", "kites.xlsx", "--rpm", "5000", "--include-hidden")
    assert again.code == 0, again.stderr
    assert sim.stats.tasks_created == 5
    with store_of(tmp_path, "kites") as store:
        assert store.counts(in_manifest_only=True)[JobStatus.DOWNLOADED] == 5


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def test_rows_already_generated_under_another_key_are_held(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    manifest = tmp_path / "briefs.csv"
    _write(
        manifest, ["prompt", "mode", "ratio"], [["a kite", "fun", "1:1"], ["a boat", "fun", "1:1"]]
    )
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "briefs.csv", "--rpm", "5000")).code == 0
    # a colleague adds an id column: every row gets a new key, same requests
    _write(
        manifest,
        ["id", "prompt", "mode", "ratio"],
        [["1", "a kite", "fun", "1:1"], ["2", "a boat", "fun", "1:1"], ["3", "new", "fun", "1:1"]],
    )
    checked = await cli.run("validate", "briefs.csv")
    assert "already generated in this state under another key" in checked.stdout
    assert "to submit      1 generation\n" in checked.stdout  # only the new row is paid for
    held = await cli.run("run", "briefs.csv", "--rpm", "5000")
    assert held.code == 1
    assert "row 2" in held.stderr and "--allow-regenerate sends it" in held.stderr
    assert sim.stats.tasks_created == 3  # the new row only
    sent = await cli.run("run", "briefs.csv", "--rpm", "5000", "--allow-regenerate")
    assert sent.code == 0, sent.stderr
    assert sim.stats.tasks_created == 5


async def test_run_on_a_folder_reports_spreadsheets_it_cannot_read(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "summer.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    (folder / "autumn.ods").write_bytes(b"PK\x03\x04")
    _write(folder / "winter.csv", ["prompt", "mode", "ratio"], [["snow", "fun", "1:1"]])
    _write(folder / "spring.csv", ["prompt", "mode", "ratio"], [])  # emptied after a campaign
    result = await Cli(tmp_path, sim).run("run", "manifests", "--rpm", "5000")
    assert result.code == 1
    assert "summer.xls" in result.stderr and "save it as .xlsx" in result.stderr
    assert "autumn.ods" in result.stderr and "OpenDocument" in result.stderr
    assert sim.stats.tasks_created == 1


async def test_run_on_a_folder_of_empty_manifests_is_exit_0(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    folder = tmp_path / "manifests"
    folder.mkdir()
    _write(folder / "spring.csv", ["prompt", "mode", "ratio"], [])
    result = await Cli(tmp_path, sim).run("run", "manifests", "--rpm", "5000")
    assert result.code == 0, result.stderr
    assert "no data rows: nothing to do" in result.stderr
    assert sim.stats.tasks_created == 0


@pytest.mark.parametrize("content", [None, "summer.xls"])
async def test_run_on_a_folder_with_nothing_usable_prints_one_line(
    make_sim: MakeSim, tmp_path: Path, content: str | None
) -> None:
    sim = await make_sim()
    folder = tmp_path / "manifests"
    folder.mkdir()
    if content:
        (folder / content).write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    result = await Cli(tmp_path, sim).run("run", "manifests")
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "Traceback" not in result.stderr
    if content is None:
        kinds = ".csv, .tsv, .xlsx, .xlsm"
        expected = f"no manifest to read in manifests: put {kinds} files there, or name one"
        assert lines == [f"batchgen: error: {expected}"]
    else:
        assert any("nothing to run" in line for line in lines)


# --- the configuration file -------------------------------------------------------------------

README_EXAMPLE = """tier = "pro"
max-usd = 400
budget-scope = "total"
default-ratio = "1:1"
notify-url = "https://hooks.slack.com/services/T000/B000/XXXX"
"""


@pytest.fixture
def in_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "m.csv", ["prompt", "mode"], [["a kite", "fun"]])
    return tmp_path


@pytest.mark.parametrize(
    "command", [["validate", "m.csv"], ["status", "m.csv"], ["template", "t.xlsx"]]
)
def test_the_readme_config_works_for_every_command(
    in_folder: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (in_folder / "batchgen.toml").write_text(README_EXAMPLE, encoding="utf-8")
    code = main(command)
    err = capsys.readouterr().err
    assert "unknown option" not in err
    assert code in (0, 1), err  # status of a never-run manifest is 1


def test_validate_uses_the_config_values_it_knows(
    in_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_folder / "batchgen.toml").write_text(README_EXAMPLE, encoding="utf-8")
    assert main(["validate", "m.csv"]) == 0  # default-ratio from the file fills the ratio
    out = capsys.readouterr().out
    assert "1,000 requests/min" in out  # tier = "pro"
    assert "the 40,000 left cover 1 of 1 generations" in out  # max-usd = 400, scope total


def test_report_reads_the_config_too(in_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_folder / "batchgen.toml").write_text(
        README_EXAMPLE + 'out = "elsewhere"\n', encoding="utf-8"
    )
    assert main(["report", "m.csv"]) == 2
    assert "no state in elsewhere" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('tier = "gold"', "batchgen.toml: tier = 'gold': use 'enterprise' or 'free' or 'pro'"),
        (
            'budget-scope = "forever"',
            "batchgen.toml: budget-scope = 'forever': use 'run' or 'total'",
        ),
        ('retry-failed = "yes"', "batchgen.toml: retry-failed = 'yes': use true or false"),
        (
            "max-credits = 0",
            "batchgen.toml: max-credits = 0: '0': must be a whole number above zero",
        ),
        (
            'max-runtime = "six hours"',
            "batchgen.toml: max-runtime = 'six hours': 'six hours' is not a duration",
        ),
        ("rpm = [1, 2]", "batchgen.toml: rpm = [1, 2]: expected a whole number"),
        ("colour = 1", "batchgen.toml: unknown option(s): colour"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "status", "run", "template"])
def test_a_bad_value_is_one_line_and_exit_2_for_every_command(
    in_folder: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str, command: str
) -> None:
    (in_folder / "batchgen.toml").write_text(line + "\n", encoding="utf-8")
    code = main([command, "t.xlsx" if command == "template" else "m.csv"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert not (in_folder / "t.xlsx").exists()


def test_a_flag_from_the_config_file(in_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = in_folder / "m.xlsx"
    _filtered_workbook(path)
    (in_folder / "batchgen.toml").write_text("include-hidden = true\n", encoding="utf-8")
    assert main(["validate", "m.xlsx"]) == 0
    assert "5 generations" in capsys.readouterr().out


# --- the shared-strings guard (the 454 MB case is benchmarks/bench_sheets.py) ----------------


def test_a_shared_strings_table_larger_than_the_sheets_could_use_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["prompt"])
    workbook.active.append(["a"])
    workbook.save(path)
    member = "xl/sharedStrings.xml"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>",
        f'<Override PartName="/{member}" ContentType="{content_type}"/></Types>'.encode(),
    )
    ns = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    parts[member] = b'<sst xmlns="' + ns + b'">' + b"<si><t>a</t></si>" * 600_000 + b"</sst>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    with pytest.raises(ManifestError, match="shared strings, more than its sheets could use"):
        read_manifest(path)
