"""Atomic replacement: the old file or the new one, never half of either, no litter."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from batchgen.atomic import atomic_path, atomic_write_bytes


def _litter(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_bytes_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _litter(tmp_path) == []


def test_temp_file_lives_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "results.xlsx"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path  # same directory: os.replace never crosses devices
        assert tmp.name.startswith(".results.xlsx.")
        tmp.write_text("new")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "new"


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old, complete")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_text("new, half writ")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old, complete"
    assert _litter(tmp_path) == []


def test_failure_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "never.txt"
    with pytest.raises(KeyboardInterrupt), atomic_path(target):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_mode_follows_the_umask_not_mkstemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "shared.txt", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no" / "such" / "dir.txt", b"x")
