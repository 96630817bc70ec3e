"""Latencies learned by earlier runs, kept per API and generation mode, not per manifest.

One small JSON file per API base URL in ``batchgen.paths.user_state_dir()``, named
``latency-<digest of the base URL>.json`` (the name reveals nothing; the token is never part
of it). Its content::

    {"version": 1, "modes": {"normal": [[lo, hi], ...], "fun": [...]}}

where each pair is one finished task's latency interval in seconds (last seen running, found
done), at most ``MAX_PER_MODE`` per mode, the most recent. The file is replaced atomically, so
two runs finishing together leave one of their files whole; a file that cannot be read is
reported and ignored (the run starts from the prior, see ``batchgen.engine.timing.latency``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

from batchgen.atomic import atomic_write_bytes
from batchgen.config import Settings
from batchgen.engine.timing.latency import Observation
from batchgen.engine.timing.poll_plan import PollPlanner
from batchgen.paths import digest, user_state_dir

__all__ = ["MAX_PER_MODE", "LatencyStore", "learned_latencies"]

log = logging.getLogger(__name__)

MAX_PER_MODE = 400
_VERSION = 1


class LatencyStore:
    """The latency history of one API (base URL)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_api(cls, base_url: str) -> LatencyStore:
        """The store of ``base_url`` in the per-user state folder."""
        name = f"latency-{digest(base_url.rstrip('/'))}.json"
        return cls(user_state_dir() / name)

    def load(self) -> dict[str, list[Observation]]:
        """Intervals per mode; empty when there is no history or it cannot be read."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the latency history %s: %s", self.path, exc)
            return {}
        fine = isinstance(data, dict) and data.get("version") == _VERSION
        modes = data.get("modes") if fine else None
        if not isinstance(modes, dict):
            log.warning("ignoring the latency history %s: not a version 1 file", self.path)
            return {}
        return {str(mode): _parse(pairs) for mode, pairs in modes.items()}

    def save(self, history: Mapping[str, Iterable[Observation]]) -> None:
        """Replace the file with ``history`` (the most recent ``MAX_PER_MODE`` per mode)."""
        modes = {
            mode: [[o.lo, o.hi] for o in list(observations)[-MAX_PER_MODE:]]
            for mode, observations in history.items()
        }
        text = json.dumps({"version": _VERSION, "modes": modes}, separators=(",", ":"))
        try:
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except OSError as exc:  # losing the history costs speed, never a row
            log.warning("could not keep the latency history in %s: %s", self.path, exc)


@contextlib.asynccontextmanager
async def learned_latencies(settings: Settings) -> AsyncIterator[PollPlanner]:
    """A poll planner that starts from what earlier runs learned of ``settings.api.base_url``,
    and keeps what this run learned when the block ends (however it ends)."""
    store = LatencyStore.for_api(settings.api.base_url)
    planner = PollPlanner(first_poll=settings.polling.first_poll, history=store.load())
    try:
        yield planner
    finally:
        store.save(planner.export())


def _parse(pairs: object) -> list[Observation]:
    """The well-formed intervals of one mode (anything else is skipped)."""
    if not isinstance(pairs, list):
        return []
    out = []
    for pair in pairs:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, int | float) and math.isfinite(x) for x in pair)
            and 0 <= pair[0] < pair[1]
        ):
            out.append(Observation(float(pair[0]), float(pair[1])))
    return out[-MAX_PER_MODE:]
