"""A full disk: found before writing when a video's size is announced, or when a write fails.

:class:`~batchgen.errors.DiskFullError` names the folder, what the download still needed, how
much is free and what to do. ``RESERVE_BYTES`` stay free for the state, the log and the
results, so the run can still stop cleanly and record why.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from batchgen.errors import DiskFullError

__all__ = ["NO_SPACE", "RESERVE_BYTES", "check_space", "disk_full", "human_size"]

#: errno values that mean "no space here" (a full disk, or a quota).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Space left free for the state, the log and the results when a download is announced.
RESERVE_BYTES = 64 * 1024**2


def human_size(n: int) -> str:
    """``n`` bytes for a person: ``2.2 KB``, ``14.0 MB``, ``4.00 GB`` (powers of 1024)."""
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GB"
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n / 1024:.1f} KB"


def disk_full(folder: Path, needed: int | None) -> DiskFullError:
    """The error for a full disk, with what to do."""
    folder = folder.absolute()
    try:
        free = f"; {human_size(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = ""
    need = f"this download needed {human_size(needed)} more{free}" if needed else f"no space{free}"
    return DiskFullError(
        f"the disk holding {folder} is full ({need}). Free some space there (or point --out "
        "at a bigger disk) and run the same command again: finished videos and partial "
        "downloads are kept and the run continues where it stopped",
        path=folder,
        needed=needed,
    )


def check_space(folder: Path, needed: int | None) -> None:
    """DiskFullError before writing when the announced body cannot fit (keeping a reserve)."""
    if not needed:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed + RESERVE_BYTES:
        raise disk_full(folder, needed)
