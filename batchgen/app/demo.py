"""``batchgen demo``: the example manifest, end to end, against the embedded simulator.

The demo writes only under ``<out>/demo/`` and never into the per-user registry, so a demo of
a real manifest can never be mistaken for (or block) a real run of it; its credits are
simulated and the summary says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from batchgen.app.provider import provider_of
from batchgen.app.run import run_batch
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.errors import BatchgenError
from batchgen.manifest.load import find_manifests
from batchgen.output.gallery import GALLERY_NAME
from batchgen.providers.descriptor import ProviderInfo
from batchgen.providers.token import Token
from batchgen.simulator import SimConfig, Simulator
from batchgen.state.location import OUTPUTS_FOLDER, state_path_for

__all__ = [
    "DEMO_FOLDER",
    "DEMO_SIMULATOR",
    "EXAMPLE",
    "demo_galleries",
    "demo_simulator",
    "example_manifest",
    "run_demo",
]

log = logging.getLogger("batchgen")

#: Tasks take about two seconds, as a real vendor's take a minute; no faults; xAI clips of the
#: requested length, ratio and resolution.
DEMO_SIMULATOR = SimConfig(
    latency_median=2.0, latency_sigma=0.4, seed=2026, rpm=1000, sized_clips=True
)


def demo_simulator(info: ProviderInfo) -> SimConfig:
    """The simulator of ``info``'s demo: its dialect; a vendor limited per second at its
    own limit, one limited per minute as fast as :data:`DEMO_SIMULATOR`."""
    if info.limits.window <= 1.0:
        return replace(DEMO_SIMULATOR, provider=info.name, rps=info.limits.requests)
    return replace(DEMO_SIMULATOR, provider=info.name)


def example_manifest(info: ProviderInfo) -> Path:
    """``manifests/example-<provider>.csv`` when the provider has one, else the example."""
    own = EXAMPLE.with_name(f"example-{info.name}.csv")
    return own if own.exists() else EXAMPLE


#: The example manifest (a provider may have its own beside it: ``example_manifest``).
EXAMPLE = Path("manifests/example.csv")
#: The demo's own folder under ``--out``.
DEMO_FOLDER = "demo"


async def run_demo(manifests: Sequence[Path], settings: Settings, *, command: str) -> int:
    """Start the simulator on a free loopback port, run the manifests against it, stop it."""
    out_dir = (settings.output.out_dir or Path(OUTPUTS_FOLDER)) / DEMO_FOLDER
    info = provider_of(settings)
    config = demo_simulator(info)
    async with Simulator(config) as sim:
        log.info("demo: the %s simulator listens on %s (token %r)", info.label, sim.url, DEMO_TOKEN)
        log.info("demo: money is simulated; nothing is paid. Output goes to %s", out_dir)
        # The simulator is this process's own: its limit is the run's, there is no window to
        # share with other runs, and the latency prior (12 x first_poll, see engine.polling)
        # is its known median, so the demo does not wait on a real vendor's minute.
        rate = {"rps": config.rps} if info.limits.window <= 1.0 else {"rpm": config.rpm}
        settings = settings.with_options(
            **rate,
            base_url=sim.url,
            first_poll=config.latency_median / 12,
            out_dir=out_dir,
            demo=True,
            limiter="none",
            skip_image_check=True,
        )
        log.info("demo: picture URLs are not checked (the simulator never fetches them)")
        code = await run_batch(manifests, settings, Token(DEMO_TOKEN), command=command)
    for gallery in demo_galleries(manifests, out_dir):
        log.info("demo: open %s (the gallery; results.xlsx is beside it)", gallery)
    return code


def demo_galleries(manifests: Sequence[Path], out_dir: Path) -> list[Path]:
    """The ``index.html`` the demo of ``manifests`` wrote under ``out_dir`` (those that exist)."""
    try:
        paths = find_manifests(list(manifests))
    except BatchgenError:
        return []
    pages = [state_path_for(out_dir, path).parent / GALLERY_NAME for path in paths]
    return [page for page in pages if page.is_file()]
