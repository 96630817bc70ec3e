"""Issue 23, item 12: an unusable per-user state folder is one ``UsageError`` naming
``BATCHGEN_HOME`` (a ``HOME`` that is a file, a ``BATCHGEN_HOME`` that is a file, a FIFO or
under a file).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchgen.errors import UsageError
from batchgen.paths import HOME_ENV, user_state_dir


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
