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

__all__ = ["HOME_ENV", "digest", "user_state_dir"]

HOME_ENV = "BATCHGEN_HOME"


def user_state_dir() -> Path:
    """The per-user state directory (created with mode 0700 if missing)."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        path = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "batchgen"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def digest(*parts: str, length: int = 16) -> str:
    """A short, stable hex name for ``parts`` (e.g. base URL and token) that reveals neither."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:length]
