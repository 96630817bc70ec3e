"""``batchgen demo``: the example manifest, end to end, against the embedded simulator."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from batchgen.app.run import run_batch
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.providers.grokimagine import Token
from batchgen.simulator import SimConfig, Simulator

__all__ = ["DEMO_SIMULATOR", "run_demo"]

log = logging.getLogger("batchgen")

#: Tasks take about two seconds, as a real vendor's take a minute; no faults.
DEMO_SIMULATOR = SimConfig(latency_median=2.0, latency_sigma=0.4, seed=2026, rpm=1000)


async def run_demo(manifests: Sequence[Path], settings: Settings, *, command: str) -> int:
    """Start the simulator on a free loopback port, run the manifests against it, stop it."""
    async with Simulator(DEMO_SIMULATOR) as sim:
        log.info("demo: the GrokImagine simulator listens on %s (token %r)", sim.url, DEMO_TOKEN)
        # the simulator is this process's own: no window to share with other runs
        settings = dataclasses.replace(settings, base_url=sim.url, first_poll=1.0, limiter="none")
        code = await run_batch(manifests, settings, Token(DEMO_TOKEN), command=command)
    for manifest in manifests:
        folder = settings.out_dir / manifest.stem
        log.info("demo: open %s and %s", folder / "results.xlsx", folder / "index.html")
    return code
