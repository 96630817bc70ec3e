"""The docs stay true: the generated reference matches the code, its ``--json`` keys match what
the commands print, the site builds strictly, the README's walk-through and cron line run as
written, and every ``batchgen.toml`` example is accepted by the configuration reader.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers.paths import REPO

from batchgen.cli import main, parse_args

DOCS = REPO / "docs"
BIN = Path(sys.executable).parent
EXAMPLE = REPO / "manifests" / "example.csv"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block(text: str, marker: str) -> str:
    """The fenced code block that follows the ``<!-- marker`` comment."""
    after = text.split(f"<!-- {marker}", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def _keys(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted key paths of a JSON document; ``[]`` for the items of a list. ``counts`` (one key
    per status) is a leaf: its keys are the statuses, listed in their own table."""
    if isinstance(value, dict) and not prefix.endswith("counts"):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _keys(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, f"{prefix}[]")


def test_the_reference_page_is_what_the_code_generates() -> None:
    committed = (DOCS / "reference.md").read_text(encoding="utf-8")
    assert committed == _generator().render(), "run: python docs/gen_reference.py"


def test_the_reference_names_every_command_and_option() -> None:
    page = (DOCS / "reference.md").read_text(encoding="utf-8")
    for command in ("run", "demo", "validate", "template", "report", "status", "simulate"):
        assert f"### `batchgen {command}`" in page
    for option in ("--max-usd", "--max-runtime", "--token-file", "--ledger", "--json"):
        assert f"`{option}`" in page


def test_every_json_key_is_documented_and_every_documented_key_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    manifest = tmp_path / "manifests" / "example.csv"
    # one row the vendor cannot take (an unknown mode), so problems and needs_attention fill
    manifest.write_text(EXAMPLE.read_text(encoding="utf-8") + 'bad-01,x,y,"a fox",bogus,1:1,\n')
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")
    assert main(["demo", "manifests/example.csv", "-q"]) == 1
    capsys.readouterr()
    out = ["--out", "outputs/demo"]
    main(["validate", "manifests/example.csv", "broken.xlsx", "--json", "--max-usd", "4", *out])
    validate = json.loads(capsys.readouterr().out)
    main(["status", "manifests/example.csv", "--json", *out])
    status = json.loads(capsys.readouterr().out)
    generator = _generator()
    for document, documented in (
        (validate, generator.VALIDATE_JSON),
        (status, generator.STATUS_JSON),
    ):
        assert set(_keys(document)) == set(documented)


@pytest.mark.e2e
def test_the_site_builds_with_strict_links(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "index.html").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_simulator(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``batchgen simulate`` and wait for its banner (the line with its URL)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "http://127.0.0.1" in line:
            return proc
    raise AssertionError(f"the simulator did not start (exit {proc.wait()})")


def _user_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "BATCHGEN_HOME": str(tmp_path / "home"), "PATH": f"{BIN}:/usr/bin:/bin"}


@pytest.mark.e2e
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for line in _block(readme, "walkthrough").splitlines()]
    (tmp_path / "manifests").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "manifests")
    port = str(_free_port())
    env = _user_env(tmp_path)
    background: list[subprocess.Popen[str]] = []
    try:
        for line in filter(None, lines):
            words = shlex.split(line.replace("8089", port))
            if words[0] == "source":  # the test already runs batchgen from this environment
                continue
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                env[name] = value
            elif words[-1] == "&":
                background.append(_start_simulator(words[:-1], env))
            else:
                done = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True)
                assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    finally:
        for proc in background:
            proc.terminate()
            proc.wait()
    results = tmp_path / "manifests" / "outputs" / "example"  # beside the manifest
    for name in ("index.html", "results.xlsx", "ledger.csv", "claims.csv"):
        assert (results / name).exists(), name
    assert (tmp_path / "briefs.xlsx").exists()


@pytest.mark.e2e
def test_the_readme_cron_line_runs_under_cron_s_empty_environment(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = _block(readme, "cron").strip()
    command = line.split(None, 5)[5]  # after the five schedule fields
    folder = tmp_path / "briefs"
    (folder / "manifests").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "manifests")
    cron_home = tmp_path / "cron-home"  # where cron starts the line: no cd in it
    cron_home.mkdir()
    token = folder / ".token"
    token.write_text("demo-token\n")
    token.chmod(0o600)
    (folder / ".venv").symlink_to(BIN.parent)
    command = command.replace("/srv/briefs", str(folder))
    port = _free_port()
    sim = _start_simulator(
        [str(BIN / "batchgen"), "simulate", "--port", str(port), "--tier", "pro"],
        _user_env(tmp_path),
    )
    try:
        done = subprocess.run(
            [
                "env",
                "-i",
                f"HOME={cron_home}",
                "PATH=/usr/bin:/bin",
                "SHELL=/bin/sh",
                f"GROKIMAGINE_BASE_URL=http://127.0.0.1:{port}",
                "sh",
                "-c",
                command,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=cron_home,
        )
    finally:
        sim.terminate()
        sim.wait()
    log = (folder / "cron.log").read_text(encoding="utf-8")
    assert done.returncode == 0, log
    assert (folder / "manifests" / "outputs" / "example" / "results.xlsx").exists()
    assert not (cron_home / "outputs").exists()  # no second output folder where cron stood
    assert "Traceback" not in log


def _toml_examples() -> list[tuple[str, str]]:
    found = []
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```toml\n(.*?)```", text, flags=re.S):
            found.append((page.name, block))
    return found


@pytest.mark.parametrize(("page", "example"), _toml_examples())
def test_every_toml_example_is_accepted_by_the_configuration_reader(
    page: str, example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batchgen.toml").write_text(example, encoding="utf-8")
    args = parse_args(["run", "x.csv"])
    assert args.command == "run"


def test_there_are_toml_examples_to_check() -> None:
    assert len(_toml_examples()) >= 1
