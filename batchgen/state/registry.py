"""The per-user registry: which state each manifest (by resolved real path) uses.

One JSON file, ``registry.json`` in :func:`batchgen.paths.user_state_dir`, maps a manifest's
real path to the absolute path of its state file. It is what lets a run started from another
working directory, through a symlink, or with another ``--out`` notice that the manifest
already has a state (and has paid for its rows) instead of starting a second one. Writes are
atomic (:mod:`batchgen.atomic`) under an ``flock``, so concurrent runs never lose an entry.
The registry holds no token and no request: only paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from batchgen.atomic import atomic_write_bytes
from batchgen.errors import StateConflictError
from batchgen.paths import user_state_dir
from batchgen.state.location import (
    OUTPUTS_FOLDER,
    default_out_dir,
    has_outputs,
    manifest_identity,
    never_sent,
    owner_of,
    state_path_for,
)

__all__ = ["REGISTRY_FILE", "Registry", "locate_state"]

REGISTRY_FILE = "registry.json"

log = logging.getLogger("batchgen")


class Registry:
    """Manifest real path -> state file path, kept in ``directory`` (default: per-user)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or user_state_dir()
        self.path = self.directory / REGISTRY_FILE

    def lookup(self, manifest: Path) -> Path | None:
        """The state recorded for ``manifest``, whether or not the file still exists."""
        entry = self._read().get(manifest_identity(manifest))
        return Path(entry) if isinstance(entry, str) else None

    def record(self, manifest: Path, state: Path) -> None:
        """Remember that ``manifest`` uses ``state`` (replacing any earlier entry)."""
        with self._locked():
            entries = self._read()
            key, value = manifest_identity(manifest), str(Path(state).resolve())
            if entries.get(key) == value:
                return
            entries[key] = value
            data = json.dumps({"version": 1, "manifests": entries}, indent=1, sort_keys=True)
            atomic_write_bytes(self.path, data.encode("utf-8"))

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or damaged: it is rebuilt as runs record their states
        manifests = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(manifests, dict):
            return {}
        return {k: v for k, v in manifests.items() if isinstance(k, str) and isinstance(v, str)}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "registry.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _unregistered_state(manifest: Path) -> Path | None:
    """A state of exactly this manifest under ``./outputs`` (where versions before the default
    moved beside the manifest put it) that the registry does not list; never adopts
    another manifest's folder."""
    state = state_path_for(Path(OUTPUTS_FOLDER), manifest)
    return state if owner_of(state) == manifest_identity(manifest) else None


def locate_state(
    out_dir: Path | None, manifest: Path, *, registry: Registry | None, new_state: bool = False
) -> Path:
    """The state file a run of ``manifest`` with ``--out out_dir`` uses, or a refusal.

    ``out_dir`` None (no ``--out``): the state the registry knows for the manifest, wherever
    the run is started from; else a new one under :func:`default_out_dir` (``outputs/``
    beside the manifest). Raises StateConflictError (exit 2) when the run would start a
    fresh state although the registry knows one elsewhere that has sent requests (one that
    never sent any binds nothing), or knows one that has since disappeared, or in a folder
    that already holds results or videos without a state; ``new_state`` (``--new-state``)
    overrides both. ``registry`` None skips the registry (the demo).
    """
    if out_dir is None:
        known = registry.lookup(manifest) if registry is not None else None
        if known is None and not new_state:
            known = _unregistered_state(manifest)
        if known is not None and known.exists() and not new_state:
            return known
        out_dir = default_out_dir(manifest) if known is None or new_state else known.parent.parent
    chosen = state_path_for(out_dir, manifest)
    if chosen.exists() or new_state:
        return chosen
    known = registry.lookup(manifest) if registry is not None else None
    override = (
        "--new-state starts another one (every row it had sent is submitted, and paid for, again)"
    )
    if known is not None and known.exists():
        if known.parent.parent.resolve() == Path(out_dir).resolve():
            return known  # the same output folder, reached under another name
        if never_sent(known):
            # its nights were all refused before any request (a wrong token, say): it holds
            # no task to lose, so it does not bind the manifest to that night's --out
            log.info(
                "%s: the state at %s never sent a request; starting under %s instead",
                manifest.name,
                known,
                out_dir,
            )
            return _fresh(chosen, manifest, override)
        raise StateConflictError(
            f"{manifest} already has a state at {known}, not under {out_dir}. Run with "
            f"--out {known.parent.parent} to continue it; {override}"
        )
    if known is not None:
        raise StateConflictError(
            f"the state of {manifest} was at {known} and is gone (deleted or moved?). Restore "
            f"it to continue; {override}"
        )
    return _fresh(chosen, manifest, override)


def _fresh(chosen: Path, manifest: Path, override: str) -> Path:
    """``chosen`` for a new state, unless its folder holds outputs without a state."""
    if has_outputs(chosen.parent):
        raise StateConflictError(
            f"{chosen.parent} holds results or videos but no state file: the state of "
            f"{manifest.name} may have been deleted. Restore {chosen}; {override}"
        )
    return chosen
