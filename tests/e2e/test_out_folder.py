"""Issue 25, item 4: the output folder does not depend on the working directory.

Without ``--out`` a manifest that has a state continues it wherever batchgen is started from
(the registry knows it); a new manifest's outputs go to ``outputs/`` beside it. Runs go
through the real CLI parsing and ``run_batch`` against the ``simulator`` fixture; the per-user
registry lives in the test's private ``BATCHGEN_HOME`` (conftest).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.records import write_briefs

from batchgen.app.demo import run_demo
from batchgen.app.report import rebuild_reports
from batchgen.app.run import run_batch
from batchgen.app.status import status_report
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN
from batchgen.errors import ExitCode, StateConflictError
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator


async def _run(url: str, *argv: str) -> int:
    """``batchgen run ARGV`` in this process, against the simulator at ``url``."""
    ns = parse_args(["run", *argv, "--first-poll", "0.05s", "--no-progress"])
    settings = settings_from_args(ns, base_url=url)
    return await run_batch(
        ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )


def _add_row(manifest: Path, n: int) -> None:
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(f"r{n},{manifest.stem} prompt {n},fun,1:1\n")


async def test_a_second_night_from_cron_without_cd_continues_the_state(
    tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    briefs = tmp_path / "briefs"
    briefs.mkdir()
    manifest = write_briefs(briefs / "spring.csv", 3)
    monkeypatch.chdir(briefs)  # the first night, by hand, beside the manifest
    assert await _run(simulator.url, "spring.csv") == ExitCode.OK
    state = briefs / "outputs" / "spring" / "state.sqlite"
    assert state.exists()
    _add_row(manifest, 3)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)  # cron starts in $HOME and the line has no cd
    assert await _run(simulator.url, str(manifest)) == ExitCode.OK
    assert not (home / "outputs").exists()  # no second output folder
    assert simulator.stats.tasks_created == 4  # only the new row was sent
    # status and report from a third folder find the same state, without --out
    monkeypatch.chdir(tmp_path)
    text, code = status_report([manifest], settings_from_args(parse_args(["status", "x"])))
    assert code == ExitCode.OK and str(state) in text and "4 rows, 4 takes" in text
    lines = rebuild_reports([manifest], settings_from_args(parse_args(["report", "x"])))
    assert str(state.parent / "results.xlsx") in lines[-1]


async def test_a_new_manifest_run_from_elsewhere_writes_beside_the_manifest(
    tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "elsewhere").mkdir()
    manifest = write_briefs(tmp_path / "team" / "autumn.csv", 2)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert await _run(simulator.url, str(manifest)) == ExitCode.OK
    assert (tmp_path / "team" / "outputs" / "autumn" / "results.xlsx").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []
    # an explicit --out elsewhere still refuses to start a second state (and names the first)
    with pytest.raises(StateConflictError) as refused:
        await _run(simulator.url, str(manifest), "--out", str(tmp_path / "other"))
    assert str(tmp_path / "team" / "outputs" / "autumn" / "state.sqlite") in str(refused.value)


def test_status_of_a_manifest_never_run_names_the_folder_beside_it(tmp_path: Path) -> None:
    manifest = write_briefs(tmp_path / "new.csv", 1)
    settings = settings_from_args(parse_args(["status", "x"]))
    text, code = status_report([manifest], settings, as_json=True)
    entry = json.loads(text)["manifests"][0]
    assert code == 1 and entry["state"] == "never run"
    assert entry["out_dir"] == str(tmp_path.resolve() / "outputs")


def test_an_out_folder_in_a_config_file_is_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "etc" / "batchgen.toml"
    config.parent.mkdir()
    config.write_text('out = "nightly"\n', encoding="utf-8")
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path / "home")
    ns = parse_args(["status", "m.csv", "--config", str(config)])
    assert settings_from_args(ns).output.out_dir == tmp_path / "etc" / "nightly"


async def test_the_demo_says_where_its_gallery_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = write_briefs(tmp_path / "my.csv", 1)
    monkeypatch.chdir(tmp_path)
    settings = settings_from_args(parse_args(["demo", str(manifest), "--first-poll", "0.05s"]))
    caplog.set_level("INFO", logger="batchgen")
    assert await run_demo([manifest], settings, command="demo") == ExitCode.OK
    gallery = Path("outputs") / "demo" / "my" / "index.html"
    assert gallery.is_file()
    lines = [r.getMessage() for r in caplog.records]
    assert f"demo: open {gallery} (the gallery; results.xlsx is beside it)" in lines
    # the run's own end line names the gallery too (run and demo alike)
    assert any(f"gallery {gallery}" in line for line in lines)
