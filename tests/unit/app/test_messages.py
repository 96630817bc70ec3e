"""What people read: the help, validate's plan, status, --json, --dry-run, -v, the template."""

from __future__ import annotations

import argparse
import csv
import json
import os
import stat
from pathlib import Path

import openpyxl
import pytest

from batchgen.app.reporting import prompt_column, row_label
from batchgen.app.template import write_template
from batchgen.app.validate import plan_manifest, validate_paths
from batchgen.cli import EXIT_MEANINGS, build_parser, main
from batchgen.errors import ExitCode
from batchgen.manifest.load import read_manifest
from batchgen.models import JobStatus
from batchgen.state.store import StateStore, state_path_for

TOKEN = "sk-cli-test-s3cret-value"


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ("id", "prompt", "mode", "ratio", "campaign"))
        writer.writerows(rows)
    return path


def rows(n: int) -> list[list[str]]:
    return [[f"r{i}", f"prompt {i}", "fun", "1:1", "spring"] for i in range(n)]


# --- help -----------------------------------------------------------------------------------


def test_batchgen_alone_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: batchgen") and "validate" in out and "template" in out
    assert "error" not in err


def test_run_help_is_grouped_and_says_the_token_variables_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    out = out[out.index("essentials:") :]  # past the usage line
    groups = ["essentials:", "budget and deadline:", "API and token:", "tuning:"]
    assert [out.index(g) for g in groups] == sorted(out.index(g) for g in groups)
    assert out.index("--tier") < out.index("budget and deadline:")  # essentials first
    assert out.index("--max-usd") < out.index("API and token:") < out.index("--token-file")
    assert out.index("tuning:") < out.index("--max-poll-lag")
    assert "GROKIMAGINE_API_TOKEN " in out and "GROKIMAGINE_API_TOKEN_FILE" in out
    for code, meaning in EXIT_MEANINGS.items():
        assert f"{code:>3}  {meaning}" in out
    assert "tries per transient step (default: 5)" in " ".join(out.split())


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_command_has_help_and_the_exit_table_is_complete() -> None:
    codes = {v for k, v in vars(ExitCode).items() if k.isupper()}
    assert set(EXIT_MEANINGS) == codes
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, (name, action.option_strings)
        if name in ("run", "demo"):  # the commands that send requests
            assert "GROKIMAGINE_API_TOKEN_FILE" in (sub.epilog or ""), name
        assert "exit codes:\n    0  " in (sub.epilog or ""), name


# --- validate -------------------------------------------------------------------------------


def test_validate_gives_an_honest_duration(tmp_path: Path) -> None:
    manifest = read_manifest(write_csv(tmp_path / "m.csv", rows(1000)))
    report = validate_paths([tmp_path / "m.csv"], rpm=100).report
    assert "minimum time" not in report
    assert (
        "about 20 min at the free tier (100 requests/min) if generations take ~1 min each" in report
    )
    small = validate_paths([write_csv(tmp_path / "s.csv", rows(3))], rpm=1000).report
    assert "about 1 min at the pro tier" in small  # not "4 s": one generation takes a minute
    learned = plan_manifest(manifest, rpm=5000, latencies=[120.0, 180.0, 150.0])
    assert learned.latency_s == 150 and learned.estimated_minutes == pytest.approx(2.7)


def test_validate_says_one_generation_not_one_generations(tmp_path: Path) -> None:
    report = validate_paths([write_csv(tmp_path / "one.csv", rows(1))], rpm=100).report
    assert "to submit      1 generation\n" in report
    assert "40 credits" in report and "1 generations" not in report
    several = validate_paths(
        [tmp_path / "one.csv", write_csv(tmp_path / "b.csv", rows(2))], rpm=100
    )
    assert "Total: 2 manifests" in several.report and "3 generations to submit" in several.report


def test_a_missing_folder_is_not_called_not_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "briefs")]) == 2
    out = capsys.readouterr().out
    assert "does not exist" in out and "not a manifest" not in out
    assert main(["validate", str(tmp_path / "gone.csv")]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_validate_json_has_stable_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "m.csv", [*rows(2), ["bad", "p", "loud", "1:1", "x"]])
    assert main(["validate", str(path), str(tmp_path / "gone.csv"), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"version", "exit_code", "manifests", "unreadable", "totals", "budget"}
    assert doc["version"] == 2 and doc["exit_code"] == 2
    plan = doc["manifests"][0]
    assert {
        "path", "sheet", "rows", "valid", "invalid", "already_done", "to_submit", "credits",
        "usd", "requests_per_minute", "minimum_minutes", "estimated_minutes",
        "generation_seconds", "generation_seconds_learned_from", "budget_credits",
        "budget_usd", "budget_covers", "problems", "warnings", "takes", "regenerate",
    } == set(plan)  # fmt: skip
    assert (plan["rows"], plan["valid"], plan["invalid"], plan["to_submit"]) == (3, 2, 1, 2)
    assert plan["problems"][0]["row"] == 4 and plan["problems"][0]["column"] == "mode"
    assert doc["unreadable"][0]["path"].endswith("gone.csv")
    assert doc["totals"]["credits"] == 80


def test_run_dry_run_does_what_validate_does_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROKIMAGINE_API_TOKEN", raising=False)
    monkeypatch.delenv("GROKIMAGINE_API_TOKEN_FILE", raising=False)
    good = write_csv(tmp_path / "m.csv", rows(2))
    args = [str(good), "--out", str(tmp_path / "o"), "--tier", "pro"]
    assert main(["validate", *args]) == 0
    expected = capsys.readouterr().out
    assert main(["run", *args, "--dry-run"]) == 0
    assert capsys.readouterr().out == expected
    assert not (tmp_path / "o").exists()  # nothing run, nothing written
    bad = write_csv(tmp_path / "bad.csv", [["a", "p", "loud", "1:1", "x"]])
    assert main(["run", str(bad), "--dry-run"]) == 1


def _generated_state(tmp_path: Path, manifest_path: Path, out: Path) -> None:
    """A state whose row spring-01 was generated (task id, downloaded)."""
    manifest = read_manifest(manifest_path)
    with StateStore.open(state_path_for(out, manifest_path), manifest=manifest_path) as store:
        store.sync_manifest(manifest.columns, manifest.rows)
        key = "id:spring-01"
        store.transition(key, JobStatus.SUBMITTING)
        store.transition(key, JobStatus.SUBMITTED, task_id="task-1")
        store.transition(key, JobStatus.COMPLETED, video_urls=["https://cdn.example/1.mp4"])
        store.transition(key, JobStatus.DOWNLOADED, files=["videos/1.mp4"], file_sizes=[1])


def test_validate_warns_when_a_generated_rows_prompt_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "m.csv", [["spring-01", "a fox", "fun", "1:1", "s"]])
    out = tmp_path / "o"
    _generated_state(tmp_path, path, out)
    assert main(["validate", str(path), "--out", str(out)]) == 0
    assert "prompt changed" not in capsys.readouterr().out
    write_csv(path, [["spring-01", "a  fox\n", "fun", "1:1", "s"]])  # white space only
    main(["validate", str(path), "--out", str(out)])
    assert "prompt changed" not in capsys.readouterr().out
    write_csv(path, [["spring-01", "a wolf", "fun", "1:1", "s"]])
    assert main(["validate", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "warning: row 2 (id spring-01): prompt was 'a fox' when its video was made, now 'a wolf'"
        in text
    )
    main(["validate", str(path), "--out", str(out), "--json"])
    assert (
        "row 2 (id spring-01)" in json.loads(capsys.readouterr().out)["manifests"][0]["warnings"][0]
    )


def test_row_labels_name_the_id_once() -> None:
    assert row_label(2, "id:spring-01") == "row 2 (id spring-01)"
    assert row_label(7, "h:0123456789abcdef") == "row 7"
    assert prompt_column(["id", "Video Prompt", "campaign"]) == "Video Prompt"


# --- status ---------------------------------------------------------------------------------


def test_status_tells_a_missing_file_from_a_manifest_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    never = write_csv(tmp_path / "never.csv", rows(1))
    out = str(tmp_path / "o")
    assert main(["status", str(never), "--out", out]) == 1
    assert "never.csv: never run" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "typo.csv"), "--out", out]) == 2
    text = capsys.readouterr().out
    assert "typo.csv: no such file" in text and "never run" not in text
    assert main(["status", str(tmp_path / "typo.csv"), "--out", out, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["manifests"][0]["state"] == "missing"


def test_status_json_has_stable_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "m.csv", [["spring-01", "a fox", "fun", "1:1", "s"], *rows(1)])
    out = tmp_path / "o"
    _generated_state(tmp_path, path, out)
    assert main(["status", str(path), "--out", str(out), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"version", "exit_code", "manifests"}
    entry = doc["manifests"][0]
    assert set(entry) == {
        "manifest", "name", "state", "state_file", "rows", "takes", "counts", "complete", "credits",
        "credits_committed", "credits_possibly_charged", "usd", "last_run", "needs_attention",
        "provider", "billing", "usd_charged", "usd_committed", "usd_possibly_charged",
    }  # fmt: skip
    assert entry["counts"]["downloaded"] == 1 and entry["counts"]["pending"] == 1
    assert entry["rows"] == 2 and entry["takes"] == 2
    assert entry["complete"] is False and entry["last_run"] is None


# --- a real run: -v, SIGTERM ----------------------------------------------------------------


# --- template -------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_the_template_gets_the_users_normal_permissions(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_template(tmp_path / "t.xlsx")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.xlsx").stat().st_mode) == 0o666 & ~umask


def test_the_templates_sample_row_is_never_sent_and_validate_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path)
    manifest = read_manifest(path)
    assert manifest.valid == [] and len(manifest.rows) == 1
    assert main(["validate", str(path)]) == 1
    text = capsys.readouterr().out
    assert "sample row, which is never sent" in text and "to submit      0 generations" in text
    book = openpyxl.load_workbook(path)
    book["Manifest"].append(["spring-01", "a fox", "fun", "1:1", None, "spring"])
    book.save(path)
    assert len(read_manifest(path).valid) == 1  # the user's own row goes; the sample never


def test_the_sync_warning_names_the_id_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["spring-01", "a fox", "fun", "1:1", "s"]])
    out = tmp_path / "o"
    _generated_state(tmp_path, path, out)
    write_csv(path, [["spring-01", "a wolf", "fun", "1:1", "s"]])
    manifest = read_manifest(path)
    with StateStore.open(state_path_for(out, path), manifest=path) as store:
        warnings = store.sync_manifest(manifest.columns, manifest.rows).warnings
    assert warnings and warnings[0].startswith("row 2 (id spring-01): prompt was 'a fox'")


def test_a_missing_manifest_is_named_once_by_run_and_report(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROKIMAGINE_API_TOKEN", "sk-cli-test-s3cret-value")
    assert main(["report", "nosuch.csv"]) == ExitCode.USAGE
    assert "nosuch.csv: no such file or folder" in capsys.readouterr().err
    code = main(["run", "nosuch.csv", "--base-url", "http://127.0.0.1:9", "--no-progress"])
    err = capsys.readouterr().err
    assert code != ExitCode.OK and "nosuch.csv" in err
    skipped = next(line for line in err.splitlines() if "skipped" in line)
    assert skipped.count("nosuch.csv") == 1, skipped


def test_the_xai_templates_help_says_which_values_need_which_model(tmp_path: Path) -> None:
    """A new user's trial: the help row offered 1080p, which validate then refused for the
    default model. A value some models lack says which models take it; others say nothing."""
    from batchgen.providers.xai import XAI

    path = tmp_path / "x.xlsx"
    write_template(path, provider=XAI)
    lines = [row[0] for row in openpyxl.load_workbook(path)["Help"].iter_rows(values_only=True)]
    (resolution,) = [line for line in lines if str(line).startswith("resolution:")]
    assert "1080p only with grok-imagine-video-1.5" in resolution
    assert "720p only" not in resolution  # every model takes it
    (ratio,) = [line for line in lines if str(line).startswith("ratio:")]
    assert "only with" not in ratio  # a field without models' lists
