"""The simulator: an aiohttp app standing in for the GrokImagine vendor (tests, demos, benchmarks).

It owns everything on the vendor's side of the wire and nothing on batchgen's: the API and CDN
routes (``server`` wires them to the state they share, ``backend``; ``api`` and ``cdn`` answer
them), the tasks and their clock-driven lifecycle (``tasks``), per-token rate windows
(``limits``), fault injection (``faults``, configured in ``config``), the answers' shapes
(``responses``, ``files``), what it saw (``stats``) and the ``batchgen simulate`` command
(``command``). It follows the vendor contract,
``../shared/grokimagine-api.md`` (restated in ``tests/contract/grokimagine.json``), and imports
only base modules (``batchgen.config``, ``models``, ``errors``), never the engine, providers,
state or the app.

``Simulator(SimConfig(...))`` serves, on a real local port:

* ``POST /v1/generate`` and ``GET /v1/status?task_id=`` as the contract describes them, with
  per-token rate limiting (fixed or sliding window), ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset`` on every API response, and tasks that go
  ``queued -> processing -> completed | failed`` as their drawn latency passes;
* ``GET /files/{task_id}/{n}.mp4``: a tiny real MP4, with ``Content-Length`` and ``Range``
  support, outside the rate limit (it stands for the vendor's CDN);
* ``GET /_sim/stats``: ``SimStats`` as JSON (``?tasks=0`` leaves out the per-task records).

Faults (see ``batchgen.simulator.sim_config``) are injected at a random rate or at exact ordinals.
Where the contract is silent the simulator decides, and says so in the module that decides:
rate windows in ``limits``, credits of failed tasks in ``tasks``, the order of checks in ``api``
and the ``refuse`` outage in ``server``.

Usage in a test::

    async with Simulator(SimConfig(time_scale=0.01, seed=1)) as sim:
        ...  # talk to sim.url; read sim.stats
"""

from __future__ import annotations

from batchgen.simulator.command import (
    DEFAULT_PORT,
    add_simulate_arguments,
    config_from_args,
    serve,
)
from batchgen.simulator.server import Simulator
from batchgen.simulator.sim_config import FAULT_NAMES, WINDOW_KINDS, Fault, SimConfig
from batchgen.simulator.stats import SimStats, TaskRecord, max_in_window, token_label
from batchgen.simulator.tasks import PERMANENT_MESSAGES, TRANSIENT_MESSAGES, UNKNOWN_STATUSES

__all__ = [
    "DEFAULT_PORT",
    "FAULT_NAMES",
    "PERMANENT_MESSAGES",
    "TRANSIENT_MESSAGES",
    "UNKNOWN_STATUSES",
    "WINDOW_KINDS",
    "Fault",
    "SimConfig",
    "SimStats",
    "Simulator",
    "TaskRecord",
    "add_simulate_arguments",
    "config_from_args",
    "max_in_window",
    "serve",
    "token_label",
]
