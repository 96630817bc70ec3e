"""The run lock: one batchgen process per manifest state at a time.

An ``flock`` on ``state.lock`` beside the database, holding the holder's pid; the kernel drops
it when the process dies, even by SIGKILL, so a lock is never stale.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from batchgen.errors import LockHeldError, StateError

__all__ = ["RunLock"]


class RunLock:
    """The lock file at ``path``; ``label()`` names the manifest in a refusal."""

    def __init__(self, path: Path, label: Callable[[], str]) -> None:
        self.path = path
        self._label = label
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (a no-op when held) or raise LockHeldError naming the holder's pid;
        StateError when the lock file cannot be created."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise StateError(f"cannot create the lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(self._refusal(holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _refusal(self, holder: str) -> str:
        label = self._label()
        if holder == str(os.getpid()):
            return (
                f"{label} is being run by this same batchgen process: its output folder "
                f"{self.path.parent} is shared by two manifests of this run; give them "
                "different names or --out folders"
            )
        return (
            f"{label} is being run by another batchgen process (pid {holder}); "
            "wait for it to finish, or stop it"
        )

    def release(self) -> None:
        """Give the lock back; the file stays (deleting it would race a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
