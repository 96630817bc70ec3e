"""Issue 23, item 12, the seen cases through the real command line: a ``HOME`` that is a file
(``NotADirectoryError``) and a non-ASCII manifest name with Python's UTF-8 mode off
(``UnicodeEncodeError``) were tracebacks; now one line, exit 2, nothing sent. A non-ASCII
name in a UTF-8 locale works.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.errors import ExitCode
from batchgen.paths import HOME_ENV

TOKEN = "sk-environment-test"


def write_rows(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["prompt", "mode", "ratio"], ["a cat", "fun", "1:1"]])
    return path


def _batchgen(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=60,
        check=False,
    )


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


def few_lines(result: subprocess.CompletedProcess[str]) -> str:
    """What a refused command said: a line or two (the reason, and "nothing to run"), never
    a traceback."""
    said = (result.stdout + result.stderr).strip()
    assert "Traceback" not in said, said
    assert len([line for line in said.splitlines() if line.strip()]) <= 2, said
    return said


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["validate", "run", "status"])
async def test_the_seen_home_that_is_a_file(
    tmp_path: Path, vendor: HostileVendor, command: str
) -> None:
    write_rows(tmp_path / "briefs.csv")
    (tmp_path / "home").write_text("a file")
    env = {k: v for k, v in os.environ.items() if k not in (HOME_ENV, "XDG_STATE_HOME")}
    env |= {"HOME": str(tmp_path / "home"), "GROKIMAGINE_API_TOKEN": TOKEN}
    env["GROKIMAGINE_BASE_URL"] = vendor.url
    result = await asyncio.to_thread(_batchgen, tmp_path, env, command, "briefs.csv")
    assert result.returncode == ExitCode.USAGE
    assert HOME_ENV in few_lines(result)
    assert vendor.requests == {"generate": 0, "status": 0}


ASCII_LOCALE = {"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0"}


@pytest.mark.e2e
async def test_the_seen_non_ascii_name_with_utf8_mode_off(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "brïefs.csv")
    env = {**os.environ, **ASCII_LOCALE, "GROKIMAGINE_API_TOKEN": TOKEN}
    env["GROKIMAGINE_BASE_URL"] = vendor.url
    result = await asyncio.to_thread(_batchgen, tmp_path, env, "run", "brïefs.csv")
    assert result.returncode == ExitCode.USAGE  # was: a UnicodeEncodeError traceback
    line = few_lines(result)
    assert "PYTHONUTF8=1" in line and "UTF-8 locale" in line
    assert vendor.requests == {"generate": 0, "status": 0}
    out = await asyncio.to_thread(_batchgen, tmp_path, env, "run", "--out", "ütputs", "x.csv")
    assert out.returncode == ExitCode.USAGE and "(--out)" in few_lines(out)


@pytest.mark.e2e
def test_a_non_ascii_name_in_a_utf8_locale_works(tmp_path: Path) -> None:
    write_rows(tmp_path / "brïefs.csv")
    env = {**os.environ, "PYTHONUTF8": "1"}
    result = _batchgen(tmp_path, env, "validate", "brïefs.csv")
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    assert "1 generation" in result.stdout
