"""A reader that stops reading (``batchgen status | head``) never shows a traceback.

Seen in a new user's trial: ``batchgen status clips.csv | head -3`` and ``batchgen validate
... | head -3`` ended in a ``BrokenPipeError`` traceback. Now: exit 141 (128 + SIGPIPE, as a
shell reports it), nothing on standard error but what the command itself said.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", str(ROOT / "manifests" / "example.csv")],
        ["validate", str(ROOT / "manifests")],  # a folder: several manifests' reports
        ["--help"],
        ["run", "--help"],
    ],
    ids=["validate", "validate-folder", "help", "run-help"],
)
def test_a_closed_output_pipe_is_not_a_traceback(argv: list[str], tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before batchgen writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "batchgen", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "BATCHGEN_HOME": str(tmp_path / "home")},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    said = done.stderr.decode()
    assert "Traceback" not in said and "BrokenPipeError" not in said, said
    # a help text fits the pipe's buffer and its write fails only at exit, quietly
    assert done.returncode == (0 if "--help" in argv else 141), said
