"""The other commands: validate, template, report, status, simulate, demo; and the entry points."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from test_gallery import card_texts

from batchgen.cli import build_parser, main, parse_duration, settings_from_args
from batchgen.models import MODES

REPO = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "prompt", "mode", "ratio"], *rows])
    return path


def test_python_dash_m_and_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "batchgen", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("batchgen ")


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


def test_simulate_prints_its_url_and_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "simulate", "--port", "0", "--tier", "free"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:
            if "http://127.0.0.1:" in line:
                break
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        import urllib.request

        with urllib.request.urlopen(url.group(0) + "/_sim/stats") as response:
            assert response.status == 200
    finally:
        proc.terminate()
        proc.wait(10)


async def test_report_rebuilds_identical_results_from_the_state_alone(tmp_path: Path) -> None:
    from batchgen.simulator import SimConfig, Simulator

    manifest = write_csv(
        tmp_path / "briefs.csv",
        [["a", '=HYPERLINK("http://evil")', "fun", "1:1"], ["b", "a dog", "normal", "9:9"]],
    )
    async with Simulator(SimConfig(tokens=frozenset({"t0k"}), time_scale=0.01, seed=1)) as sim:
        env = {**os.environ, "GROKIMAGINE_API_TOKEN": "t0k", "GROKIMAGINE_BASE_URL": sim.url}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "batchgen", "run", str(manifest), "--first-poll", "0.05s",
            cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await proc.communicate()
    assert proc.returncode == 1  # one invalid row
    out = tmp_path / "outputs" / "briefs"
    before = _cells(out / "results.xlsx")
    csv_before = (out / "results.csv").read_bytes()
    (out / "results.xlsx").unlink()
    (out / "results.csv").unlink()
    (out / "index.html").unlink()
    assert main(["report", str(manifest), "--out", str(tmp_path / "outputs")]) == 0
    assert _cells(out / "results.xlsx") == before
    assert (out / "results.csv").read_bytes() == csv_before
    assert (out / "index.html").exists()
    sheet = openpyxl.load_workbook(out / "results.xlsx").worksheets[0]
    prompt = next(c for c in sheet[2] if str(c.value).startswith("=HYPERLINK"))
    assert prompt.data_type == "s"  # literal text, never a formula


def _cells(path: Path) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(path)
    return {ws.title: [tuple(c.value for c in row) for row in ws.iter_rows()] for ws in book}


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


def test_the_demo_runs_the_example_manifest(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    done = subprocess.run(
        [sys.executable, "-m", "batchgen", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "outputs" / "demo" / "example"  # the demo's own folder, never outputs/<name>
    assert (out / "results.xlsx").exists() and (out / "index.html").exists()
    assert not (tmp_path / "outputs" / "example").exists()
    assert "simulated" in done.stderr
    assert list((out / "videos").glob("*.mp4"))
    # each card shows its mode and ratio once (the example has mode and ratio columns)
    cards = card_texts((out / "index.html").read_text(encoding="utf-8"))
    assert cards
    for texts in cards:
        assert "mode" not in texts and "ratio" not in texts, texts  # no list entry of them
        assert sum(t in MODES for t in texts) == 1, texts
        assert sum(re.fullmatch(r"\d+:\d+", t) is not None for t in texts) == 1, texts
