"""Where a manifest's state lives: one folder per manifest, never shared.

A manifest's identity is its resolved real path (symlinks and ``..`` followed). Its folder
under the output directory is, in this order of preference:

1. a folder whose state already belongs to this manifest (so existing states keep their
   folder, including the ones older versions named), or to a manifest of the same file name
   that no longer exists (the manifest was moved);
2. ``<stem>`` when the file name is a clean folder name as it is (``briefs.csv`` ->
   ``briefs``); ``<cleaned stem>-<8 hex>`` when cleaning changed it (``a b.csv`` and
   ``a+b.csv`` -> ``a_b-1c3f...`` and ``a_b-9e20...``: the hex is a hash of the original stem);
3. ``<stem>-<extension>`` (``briefs.xlsx`` beside ``briefs.csv``), then
   ``<stem>-<8 hex of the real path>`` when another manifest of the same name owns the first
   choices (two teams' ``briefs.csv`` in different folders).

A state file that names no manifest and holds no row (a first run was killed while making
it) is taken up by the manifest whose folder it is in (:func:`unfinished`), so a kill at that
instant never sends the next night to ``<stem>-<extension>``. A folder holding results or
videos but no state is never adopted silently: see
:func:`state_path_for` and ``StateConflictError``.

Without ``--out`` (:func:`default_out_dir`), the output directory of a manifest that has no
state yet is ``outputs/`` beside the manifest: it depends on where the manifest is, never on
the working directory, so a run by hand and a cron line without ``cd`` meet the same folder
(a manifest that has a state continues it wherever the registry says it is).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from batchgen.paths import digest
from batchgen.state.schema import EVER_SUBMITTED_SQL

__all__ = [
    "OUTPUTS_FOLDER",
    "STATE_FILE",
    "default_out_dir",
    "has_outputs",
    "manifest_identity",
    "never_sent",
    "owner_of",
    "recorded",
    "state_path_for",
    "unfinished",
]

STATE_FILE = "state.sqlite"
#: The output directory's name beside a manifest, when ``--out`` is not given.
OUTPUTS_FOLDER = "outputs"
_OUTPUTS = ("results.csv", "results.xlsx", "index.html", "videos")


def manifest_identity(manifest: Path) -> str:
    """The manifest's resolved real path, as text (the key of the registry)."""
    return str(Path(manifest).resolve())


def default_out_dir(manifest: Path) -> Path:
    """The output directory of a manifest run without ``--out``: ``outputs/`` in the
    manifest's own folder (absolute, so that no later ``chdir`` moves it)."""
    return Path(manifest).resolve().parent / OUTPUTS_FOLDER


def _safe_name(text: str) -> str:
    """A folder name that works in every shell and filesystem."""
    return re.sub(r"[^\w.-]+", "_", text, flags=re.ASCII).strip(" ._-")[:100]


def owner_of(state: Path) -> str | None:
    """The manifest path recorded in an existing state file, without creating or changing it."""
    return recorded(state, "manifest_path")


def recorded(state: Path, key: str) -> str | None:
    """The meta value ``key`` of an existing state file (``provider``, ``manifest_path``...),
    read-only; None when the file, the value or a readable table is missing."""
    if not state.is_file():
        return None
    try:
        with _reading(state) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None  # let StateStore.open report the damaged file
    return None if row is None else str(row[0])


@contextlib.contextmanager
def _reading(state: Path) -> Iterator[sqlite3.Connection]:
    """A connection to read ``state`` (an existing file) without writing it; but a file a
    killed process left with a hot rollback journal (``state.sqlite-journal``: killed inside
    its first transaction) cannot be read read-only, so it is opened as any run would open
    it, which rolls the unfinished transaction back (SQLite's own recovery)."""
    uri = f"{state.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=10.0)
    try:
        conn.execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.Error:
        conn.close()
        if not Path(f"{state}-journal").exists():
            raise
        conn = sqlite3.connect(state, timeout=10.0)
    with closing(conn):
        yield conn


def never_sent(state: Path) -> bool:
    """True when the state file at ``state`` exists and never sent a submit anywhere (its
    nights were refused before any request: a wrong token, an unreachable API); read-only.
    A state that cannot be read counts as one that sent (the caller keeps its caution)."""
    if not state.is_file():
        return False
    try:
        with _reading(state) as conn:
            return conn.execute(EVER_SUBMITTED_SQL).fetchone() is None
    except sqlite3.Error:
        return False


def has_outputs(folder: Path) -> bool:
    """True when ``folder`` holds results or videos of some earlier run."""
    return any((folder / name).exists() for name in _OUTPUTS)


def _candidates(manifest: Path) -> tuple[list[str], list[str]]:
    """(folders an older version may have used, folders to choose from, in order)."""
    stem = manifest.stem
    safe = _safe_name(stem) or "manifest"
    identity = digest(manifest_identity(manifest), length=8)
    suffix = _safe_name(manifest.suffix.lstrip(".")) or "noext"
    legacy = [safe, f"{safe}-{suffix}"]
    if safe == stem:
        return legacy, [safe, f"{safe}-{suffix}", f"{safe}-{identity}"]
    lossy = f"{safe}-{digest(stem, length=8)}"
    return legacy, [lossy, f"{lossy}-{suffix}", f"{safe}-{identity}"]


def _mine(owner: str | None, manifest: Path) -> bool:
    if owner is None:
        return False
    if owner == manifest_identity(manifest):
        return True
    moved = Path(owner).name == manifest.name and not Path(owner).exists()
    return moved


def state_path_for(out_dir: Path, manifest: Path) -> Path:
    """The state file this manifest uses under ``out_dir`` (see the module docs).

    Never creates anything. The folder returned may hold outputs without a state; the
    caller refuses to start there (:func:`has_outputs`).
    """
    manifest = Path(manifest)
    legacy, choices = _candidates(manifest)
    for name in dict.fromkeys([*choices, *legacy]):
        state = Path(out_dir) / name / STATE_FILE
        if _mine(owner_of(state), manifest):
            return state
    for name in choices:
        state = Path(out_dir) / name / STATE_FILE
        if not state.exists() or unfinished(state):
            return state
    return Path(out_dir) / choices[-1] / STATE_FILE


def unfinished(state: Path) -> bool:
    """True when the state file at ``state`` is one a first run left before it was whole
    (killed between creating the file and recording its manifest): it names no manifest and
    holds no row, so nothing in it can be lost or paid twice, and its folder is taken up
    instead of being passed over for a second one. Read-only; a file that cannot be read,
    or that holds tables batchgen did not make, is not unfinished."""
    if not state.is_file():
        return False
    try:
        with _reading(state) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                return True  # created, then killed before its schema
            if not {"meta", "jobs"} <= tables:
                return False
            owned = conn.execute("SELECT 1 FROM meta WHERE key = 'manifest_path'").fetchone()
            return owned is None and conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is None
    except sqlite3.Error:
        return False
