"""Atomic file replacement: a reader sees the old file or the new one, never half of either.

The recipe is the classic one (pip's downloader, ``git``'s lock files): write a temporary
file *in the same directory* (so the rename never crosses a file system), flush and fsync it,
``os.replace`` it onto the target, then fsync the directory so the rename itself survives a
power cut. On any failure the temporary file is removed and the old target is left as it was.

``atomic_path`` hands out a path rather than an open file, because some writers (openpyxl's
``Workbook.save``, ``zipfile``) insist on opening the file themselves.

``durable=False`` keeps the rename (a reader still sees the old file or the new one) but skips
both fsyncs: for files batchgen can rebuild from the state and the video (sidecars, poster
frames), where two syncs per file would cost more than the whole rest of writing it. After a
power cut such a file may be missing or empty; ``batchgen report`` writes it again.

batchgen never writes through a symbolic link: a link planted where it writes (a results
file, a sidecar, a video's ``.part``, a log) would carry its bytes outside the output folder.
``atomic_path`` refuses a target that is a link, and :func:`open_own` opens a file to append
or write with ``O_NOFOLLOW``; both raise :class:`LinkRefusedError`, which names the path.
:func:`check_inside` refuses a path whose folders lead out of the output folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "LinkRefusedError",
    "atomic_path",
    "atomic_write_bytes",
    "check_inside",
    "fsync_dir",
    "open_own",
    "refuse_link",
]


class LinkRefusedError(OSError):
    """A path batchgen writes is a symbolic link, or leads outside the folder it owns."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(errno.ELOOP, why, str(path))
        self.path = path

    def __str__(self) -> str:
        return f"{self.filename} {self.strerror}"


_LINK = (
    "is a symbolic link: batchgen does not write through links (one planted in the output "
    "folder would carry its bytes elsewhere); remove it and run again"
)


def refuse_link(path: Path) -> None:
    """LinkRefusedError when ``path`` is a symbolic link (a missing path is fine)."""
    if path.is_symlink():
        raise LinkRefusedError(path, _LINK)


def open_own(path: Path, *, append: bool) -> BinaryIO:
    """Open ``path`` to write (``append``: at its end; else truncated), never following a
    symbolic link (``O_NOFOLLOW``): LinkRefusedError names it. Other OSErrors pass through."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():
            raise LinkRefusedError(path, _LINK) from exc
        raise
    return os.fdopen(fd, "ab" if append else "wb")


def check_inside(path: Path, root: Path) -> None:
    """LinkRefusedError unless ``path``'s folder, links resolved, lies inside ``root``'s (the
    output folder): a sub-folder that is a link to elsewhere is refused, naming it."""
    base = Path(root).resolve()
    folder = Path(path).parent
    if folder.resolve() != base and base not in folder.resolve().parents:
        raise LinkRefusedError(
            folder,
            f"leads outside the output folder {base} (a symbolic link?): batchgen writes only "
            "inside it; remove the link and run again",
        )


#: Temporary files look like ``.results.xlsx.3f9a1c2b.tmp``: hidden, and easy to spot.
_TMP_SUFFIX = ".tmp"


def _temp_open(path: Path) -> tuple[Path, int]:
    """Create an exclusive temporary file next to ``path``: its path and an open descriptor
    (write only)."""
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
        try:
            # 0o666 and the process umask give the file the mode a plain open() would, unlike
            # tempfile.mkstemp's 0o600, which would make results unreadable to colleagues.
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return candidate, fd


def _temp_sibling(path: Path) -> Path:
    """Create an empty, exclusive temporary file next to ``path`` and return its path."""
    candidate, fd = _temp_open(path)
    os.close(fd)
    return candidate


def _fsync_file(path: Path) -> None:
    """Flush a written file's data to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename still happened
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Write the complete new content to the yielded path inside the ``with`` block. When the
    block ends normally the file is fsynced (unless not ``durable``) and renamed onto
    ``path`` (replacing any old file), and the folder is fsynced (unless not ``durable``);
    when it raises, the temporary file is deleted and ``path`` is untouched.
    The parent directory must exist. A ``path`` that is a symbolic link is refused
    (LinkRefusedError), never replaced nor followed.
    """
    target = Path(path)
    refuse_link(target)
    tmp = _temp_sibling(target)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_path``; ``durable=False``:
    without the fsyncs, for a file batchgen can rebuild). A ``path`` that is a symbolic link
    is refused (LinkRefusedError)."""
    target = Path(path)
    refuse_link(target)
    tmp, fd = _temp_open(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)
