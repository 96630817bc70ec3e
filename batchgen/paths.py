"""Where batchgen keeps what belongs to the user rather than to one manifest.

``user_state_dir()`` holds per-user, per-machine knowledge shared by every run: the registry of
manifests' states, learned vendor latencies, the shared rate-limit window. It is
``$BATCHGEN_HOME`` when set (tests and unusual set-ups), else ``$XDG_STATE_HOME/batchgen``, else
``~/.local/state/batchgen`` (the XDG Base Directory specification's default for state data).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from batchgen.errors import UsageError

__all__ = ["HOME_ENV", "digest", "name_problem", "user_state_dir"]

HOME_ENV = "BATCHGEN_HOME"


def user_state_dir() -> Path:
    """The per-user state directory (created with mode 0700 if missing).

    Raises UsageError, naming ``BATCHGEN_HOME``, when it cannot be made or written (a HOME
    that is a file, a read-only folder, no home at all, a name this locale cannot encode).
    """
    explicit = os.environ.get(HOME_ENV)
    try:
        if explicit:
            path, source = Path(explicit).expanduser(), f"{HOME_ENV}={explicit}"
        elif os.environ.get("XDG_STATE_HOME"):
            path = Path(os.environ["XDG_STATE_HOME"]) / "batchgen"
            source = f"XDG_STATE_HOME={os.environ['XDG_STATE_HOME']}"
        else:
            path = Path.home() / ".local" / "state" / "batchgen"
            source = f"HOME={os.environ.get('HOME', Path.home())}"
    except RuntimeError as exc:  # no HOME and no home directory in the user database
        raise UsageError(
            f"batchgen cannot find a home folder for its per-user state ({exc}); "
            f"set {HOME_ENV} to a folder it may write"
        ) from exc
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
        str(path).encode("utf-8")
    except (OSError, UnicodeEncodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        if path.exists() and not path.is_dir():
            why = "it is not a folder"
        raise UsageError(
            f"the per-user state folder {_shown(path)} (from {_shown(source)}) cannot be used: "
            f"{why}; set {HOME_ENV} to a folder batchgen may write"
        ) from exc
    return path


def name_problem(path: Path) -> str | None:
    """Why the absolute name of ``path`` cannot be stored as text (None when it can).

    A name holding bytes the locale cannot decode becomes lone surrogates in Python, which no
    file batchgen writes (the state, the results, the log) can hold: with an ASCII locale and
    Python's UTF-8 mode off, any non-ASCII name; in any locale, a name that is not UTF-8.
    """
    try:
        text = str(path.absolute())
    except OSError:  # the working folder is gone
        text = str(path)
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        os.fsencode(text).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return (
            f"has a name that is not UTF-8 text ({_shown(text)}): rename it (or the folders "
            "above it) with letters this system can show"
        )
    return (
        "has a non-ASCII name and this process reads names as ASCII (locale "
        f"{os.environ.get('LC_ALL') or os.environ.get('LC_CTYPE') or os.environ.get('LANG') or 'C'}"
        ", Python's UTF-8 mode off): run batchgen with PYTHONUTF8=1 or in a UTF-8 locale "
        "(LANG=C.UTF-8)"
    )


def _shown(text: object) -> str:
    """``text`` printable whatever bytes a file name held (undecodable ones as ``\\xNN``)."""
    try:
        return os.fsencode(str(text)).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def digest(*parts: str, length: int = 16) -> str:
    """A short, stable hex name for ``parts`` (e.g. base URL and token) that reveals neither."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:length]
