"""A bad budget scope, on the command line or in the config file, is exit 2 with a clear line
(a real ``python -m batchgen`` subprocess).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("value", ["forever", "TOTAL", ""])
def test_a_bad_budget_scope_is_exit_2_with_a_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    command = [sys.executable, "-m", "batchgen", "validate", "m.csv"]
    cli = subprocess.run([*command, "--budget-scope", value], capture_output=True, text=True)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert f"argument --budget-scope: invalid choice: '{value}'" in cli.stderr
    assert "'run', 'total'" in cli.stderr
    (tmp_path / "batchgen.toml").write_text(f'budget-scope = "{value}"\n', encoding="utf-8")
    toml = subprocess.run(command, capture_output=True, text=True)
    assert toml.returncode == 2 and "Traceback" not in toml.stderr
    assert toml.stderr.strip() == (
        f"batchgen: error: batchgen.toml: budget-scope = '{value}': use 'run' or 'total'"
    )
