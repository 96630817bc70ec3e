"""The other commands: validate, template, report, status, simulate, demo; and the entry points."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import openpyxl
import pytest

from batchgen.cli import build_parser, main, parse_duration, settings_from_args


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "prompt", "mode", "ratio"], *rows])
    return path


@pytest.mark.parametrize(
    ("text", "seconds"), [("6h", 21600), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("0", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_polling_and_window_options_reach_the_settings() -> None:
    args = build_parser().parse_args(
        ["run", "x.csv", "--max-poll-lag", "5m", "--rate-window", "1.5s", "--first-poll", "2s"]
    )
    settings = settings_from_args(args)
    assert (
        settings.polling.max_poll_lag,
        settings.api.rate_window,
        settings.polling.first_poll,
    ) == (300, 1.5, 2)
    defaults = settings_from_args(build_parser().parse_args(["run", "x.csv"]))
    # no window given: the provider's own (GrokImagine: a minute; xAI: a second)
    assert (defaults.polling.max_poll_lag, defaults.api.rate_window) == (600, None)


def test_a_bad_option_is_exit_2_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "x.csv", "--max-runtime", "soon"])
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_validate_exit_codes_and_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_csv(
        tmp_path / "good.csv", [["a", "a cat", "fun", "1:1"], ["b", "a dog", "normal", "2:3"]]
    )
    assert main(["validate", str(good), "--out", str(tmp_path / "o"), "--max-credits", "40"]) == 0
    out = capsys.readouterr().out
    assert "80" in out and "0.80" in out  # two generations: 80 credits, ~$0.80
    bad = write_csv(tmp_path / "bad.csv", [["a", "a cat", "fun", "4:3"]])
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    expected = r"^\s+2\s+ratio\s+error\s+'4:3' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1"
    assert re.search(expected, out, re.M)
    missing = tmp_path / "nope.csv"
    assert main(["validate", str(missing)]) == 2


def test_validate_and_dry_run_check_the_name_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_csv(tmp_path / "good.csv", [["a", "a cat", "fun", "1:1"]])
    bad = ["--name-template", "{brand}/{id}"]
    assert main(["validate", str(good), *bad, "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2
    (problem,) = document["manifests"][0]["problems"]
    assert problem["row"] is None and problem["severity"] == "error"
    message = "--name-template '{brand}/{id}': {brand} is not a column of good.csv"
    assert problem["message"].startswith(message)
    for command in (["validate"], ["run", "--dry-run"]):
        assert main([*command, str(good), *bad]) == 2
        assert message in capsys.readouterr().out
        assert main([*command, str(good), "--name-template", "{id}_{n}"]) == 0
        assert "no problems found" in capsys.readouterr().out


def test_validate_needs_no_token_and_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROKIMAGINE_API_TOKEN", raising=False)
    good = write_csv(tmp_path / "good.csv", [["a", "a cat", "fun", "1:1"]])
    assert main(["validate", str(good)]) == 0


def test_template_writes_a_starter_manifest_that_validates(tmp_path: Path) -> None:
    path = tmp_path / "starter.xlsx"
    assert main(["template", str(path)]) == 0
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    assert sheet.data_validations.dataValidation  # drop-downs for mode and ratio
    assert main(["validate", str(path)]) == 1  # its sample row is never sent
    sheet["A2"] = "my-first"  # the user's own id: the row goes
    book.save(path)
    assert main(["validate", str(path)]) == 0
    assert main(["template", str(path)]) == 2  # never overwrites


def test_report_without_a_state_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_csv(tmp_path / "never.csv", [["a", "a cat", "fun", "1:1"]])
    assert main(["report", str(manifest), "--out", str(tmp_path / "o")]) == 2
    assert "run it first" in capsys.readouterr().err


def test_status_of_a_manifest_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_csv(tmp_path / "never.csv", [["a", "a cat", "fun", "1:1"]])
    assert main(["status", str(manifest), "--out", str(tmp_path / "o")]) == 1
    assert "never run" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()  # status created nothing
