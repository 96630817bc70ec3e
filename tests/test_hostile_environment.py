"""Issue 23, item 12: no traceback for a hostile environment, before anything is sent.

Seen: a ``HOME`` that points at a file (``NotADirectoryError``); a non-ASCII manifest name with
Python's UTF-8 mode off (``UnicodeEncodeError``); a manifest that is a symlink to a system file
(``/etc/shadow`` as root) had its first line printed as "columns found". The kind: an unusable
per-user state folder is one line naming ``BATCHGEN_HOME``; a name the locale cannot read is
one line saying what to do (a UTF-8 name in a UTF-8 locale works); a manifest that is not a
regular spreadsheet file is refused without a byte of it shown.
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
from hostile_vendor import HostileVendor

from batchgen.errors import ExitCode, ManifestError, UsageError
from batchgen.manifest.load import read_manifest
from batchgen.paths import HOME_ENV, user_state_dir

TOKEN = "sk-environment-test"
SECRET = "$6$saltsalt$SECRETHASHVALUEthatmustneverbeprinted0123456789"


def write_rows(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["prompt", "mode", "ratio"], ["a cat", "fun", "1:1"]])
    return path


# ---------------------------------------------------------------- the per-user state folder
@pytest.mark.parametrize("kind", ["file", "fifo", "under_a_file"])
def test_an_unusable_batchgen_home_is_one_usage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    target = tmp_path / "home"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_text("a file, not a folder")
    if kind == "under_a_file":
        target = target / "batchgen"
    monkeypatch.setenv(HOME_ENV, str(target))
    with pytest.raises(UsageError) as caught:
        user_state_dir()
    message = str(caught.value)
    assert HOME_ENV in message and str(target) in message and "\n" not in message


def test_a_home_that_is_a_file_is_one_usage_error_naming_batchgen_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.write_text("a file")
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UsageError, match=f"HOME={home}.*set {HOME_ENV}"):
        user_state_dir()


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


# ---------------------------------------------------------------- names and locales
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


def test_a_name_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"br\xefefs.csv")  # Latin-1 bytes
    try:
        with open(raw, "wb") as handle:
            handle.write(b"prompt,mode,ratio\na cat,fun,1:1\n")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    with pytest.raises(ManifestError, match="not UTF-8 text") as caught:
        read_manifest(Path(os.fsdecode(raw)))
    assert "\\xef" in str(caught.value)


# ---------------------------------------------------------------- not a spreadsheet file
def test_the_seen_link_to_a_system_file_is_refused_without_its_content(tmp_path: Path) -> None:
    system = tmp_path / "etc" / "shadow"
    system.parent.mkdir()
    system.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    link = tmp_path / "briefs.csv"
    link.symlink_to(system)
    with pytest.raises(ManifestError) as caught:
        read_manifest(link)
    message = str(caught.value)
    assert "SECRETHASH" not in message and "root:" not in message
    assert "is a link to" in message and "not a spreadsheet" in message


def test_a_long_first_line_is_not_echoed_as_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "copied.csv"
    path.write_text(f"root:{SECRET}:19000:0:99999:7:::\nother\n")
    with pytest.raises(ManifestError, match="not shown") as caught:
        read_manifest(path)
    assert "SECRETHASH" not in str(caught.value) and "$6$" not in str(caught.value)


def test_a_short_header_is_still_shown(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("promt,mode\na cat,fun\n")
    with pytest.raises(ManifestError, match="columns found: 'promt', 'mode'"):
        read_manifest(path)


@pytest.mark.timeout(20)  # before: reading the pipe waited for a writer forever
def test_a_fifo_named_like_a_manifest_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "briefs.csv"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="named pipe"):
        read_manifest(fifo)


def test_a_folder_named_like_a_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "briefs.xlsx").mkdir()
    with pytest.raises(ManifestError, match="is a folder"):
        read_manifest(tmp_path / "briefs.xlsx")


def test_a_link_to_a_spreadsheet_is_read(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    real = write_rows(tmp_path / "shared" / "briefs.csv")
    link = tmp_path / "tonight.csv"
    link.symlink_to(real)
    assert [row.prompt for row in read_manifest(link).rows] == ["a cat"]
