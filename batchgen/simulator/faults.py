"""Fault injection: which configured faults fire on each request, and how often each fired.

Every kind of fault (``api``, ``submit``, ``task``, ``file``; see ``config``) has its own
ordinal, advanced once per request that could carry it, so ``at=`` ordinals count requests of
that kind. Random rates draw from the simulator's one seeded generator, in request order.
"""

from __future__ import annotations

import random

from batchgen.simulator.sim_config import (
    API_FAULTS,
    FILE_FAULTS,
    SUBMIT_FAULTS,
    TASK_FAULTS,
    SimConfig,
)
from batchgen.simulator.stats import SimStats

__all__ = ["FaultInjector"]

_KINDS = (
    ("api", API_FAULTS),
    ("submit", SUBMIT_FAULTS),
    ("task", TASK_FAULTS),
    ("file", FILE_FAULTS),
)


class FaultInjector:
    """Decides the faults of each request from ``config``, and counts them in ``stats.faults``.

    Besides the fault kinds it keeps the ordinals of faults whose answers alternate between
    two shapes (``html``, ``expired``): see ``alternate``.
    """

    def __init__(self, config: SimConfig, rng: random.Random, stats: SimStats) -> None:
        self._rng = rng
        self._stats = stats
        self._ordinals = dict.fromkeys(("api", "submit", "task", "file", "html", "expired"), 0)
        self._active = {
            kind: [(name, config.fault(name)) for name in names if config.fault(name).active]
            for kind, names in _KINDS
        }

    def fire(self, kind: str) -> list[str]:
        """Advance ``kind``'s ordinal and list the faults of that kind that fire on it."""
        active = self._active[kind]
        ordinal = self._ordinals[kind] = self._ordinals[kind] + 1
        if not active:
            return []
        rng = self._rng
        return [name for name, fault in active if fault.fires(ordinal, rng)]

    def mark(self, name: str) -> None:
        """Count one firing of fault ``name``."""
        self._stats.faults[name] += 1

    def alternate(self, name: str) -> int:
        """The next ordinal (from 1) of ``name``'s answers, for answers that take turns."""
        self._ordinals[name] += 1
        return self._ordinals[name]
