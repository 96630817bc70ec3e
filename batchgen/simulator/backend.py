"""What the simulator's routes share, whatever the dialect: its config, stats, fault injector,
task book, clock and random generator."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from batchgen.simulator.faults import FaultInjector
from batchgen.simulator.sim_config import SimConfig
from batchgen.simulator.stats import SimStats
from batchgen.simulator.tasks import TaskBook

__all__ = ["Backend"]


@dataclass(frozen=True, slots=True)
class Backend:
    """The vendor's side of one simulator, as the API and the CDN routes see it.

    ``clock`` gives the simulator's time in seconds (task lifecycles, rate windows, link ages);
    ``rng`` is the one seeded generator that faults and task fates draw from.
    """

    config: SimConfig
    stats: SimStats
    faults: FaultInjector
    tasks: TaskBook
    clock: Callable[[], float]
    rng: random.Random

    @classmethod
    def create(cls, config: SimConfig, stats: SimStats, clock: Callable[[], float]) -> Backend:
        """A back end whose faults and tasks draw from one generator seeded by ``config.seed``,
        in request order (so a seed replays the same faults and fates)."""
        rng = random.Random(config.seed)
        faults = FaultInjector(config, rng, stats)
        return cls(config, stats, faults, TaskBook(config, stats, rng), clock, rng)
