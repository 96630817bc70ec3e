"""The commands as subprocesses: ``python -m batchgen``, ``simulate``, ``report`` rebuilding the
results from the state alone, the demo.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
from helpers.gallery_pages import page_config, records
from helpers.paths import REPO
from helpers.sheets import write_rows

from batchgen.cli import main
from batchgen.models import MODES


def test_python_dash_m_and_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "batchgen", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("batchgen ")


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

    manifest = write_rows(
        tmp_path / "briefs.csv",
        [["a", '=HYPERLINK("http://evil")', "fun", "1:1"], ["b", "a dog", "normal", "9:9"]],
        ["id", "prompt", "mode", "ratio"],
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
    # each card shows its mode and ratio once, in its top line (the example has mode and
    # ratio columns: the page knows them, and leaves them out of the card's list)
    config = page_config((out / "index.html").read_text(encoding="utf-8"))
    assert config["columns"][config["modeCol"]] == "mode"
    assert config["columns"][config["ratioCol"]] == "ratio"
    cards = records(out)
    assert cards
    for card in cards:
        assert card["mode"] in MODES and re.fullmatch(r"\d+:\d+", card["ratio"]), card
