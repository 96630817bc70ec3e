"""The simulator: an aiohttp app standing in for a video vendor (tests, demos, benchmarks), in
one of two dialects (``SimConfig.provider``): the GrokImagine reseller's (the default) or xAI's.

It owns everything on the vendor's side of the wire and nothing on batchgen's. Shared by both
dialects: the server (``server`` wires the routes to the state they share, ``backend``), the way
in to the API (``gateway``: token, per-account rate windows from ``limits``, api faults), fault
injection (``faults``, configured in ``sim_config``), the task book (``tasks``), the CDN
(``cdn``, ``files``), what it saw (``stats``) and the ``batchgen simulate`` command
(``command``). Each dialect's wire format is its own: the reseller's in ``api`` (and the
request checks and status bodies in ``tasks``), following ``../shared/grokimagine-api.md``
(restated in ``tests/contract/grokimagine.json``); xAI's in ``xai_api``, ``xai_requests``,
``xai_videos`` and ``xai_uploads``, following ``../shared/xai-video-api.md`` (restated in
``tests/contract/xai.json``). It imports only base modules (``batchgen.config``, ``models``,
``errors``), never the engine, providers, state or the app.

``Simulator(SimConfig(...))`` serves, on a real local port:

* ``POST /v1/generate`` and ``GET /v1/status?task_id=`` as the contract describes them, with
  per-token rate limiting (fixed or sliding window), ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset`` on every API response, and tasks that go
  ``queued -> processing -> completed | failed`` as their drawn latency passes;
* ``GET /files/{task_id}/{n}.mp4``: a tiny real MP4, with ``Content-Length`` and ``Range``
  support, outside the rate limit (it stands for the vendor's CDN);
* ``GET /_sim/stats``: ``SimStats`` as JSON (``?tasks=0`` leaves out the per-task records).

With ``SimConfig(provider="xai")`` it serves instead ``POST /v1/videos/generations``,
``GET /v1/videos/{request_id}`` (202 while pending), ``POST /v1/files`` and the CDN's
``GET /xai-vidgen-bucket/xai-video-{request_id}.mp4`` (links live 24 h), with ``rps`` requests
per second per team and xAI's flat error bodies (see ``xai_api``).

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
from batchgen.simulator.sim_config import (
    FAULT_NAMES,
    PROVIDERS,
    WINDOW_KINDS,
    XAI_LINK_TTL,
    XAI_ONLY_FAULTS,
    Fault,
    SimConfig,
)
from batchgen.simulator.stats import SimStats, TaskRecord, max_in_window, token_label
from batchgen.simulator.tasks import PERMANENT_MESSAGES, TRANSIENT_MESSAGES, UNKNOWN_STATUSES
from batchgen.simulator.xai_api import mask_key
from batchgen.simulator.xai_requests import TICKS_PER_USD, price_ticks
from batchgen.simulator.xai_videos import PERMANENT_ERRORS, TRANSIENT_ERRORS, XAI_UNKNOWN_STATUSES

__all__ = [
    "DEFAULT_PORT",
    "FAULT_NAMES",
    "PERMANENT_ERRORS",
    "PERMANENT_MESSAGES",
    "PROVIDERS",
    "TICKS_PER_USD",
    "TRANSIENT_ERRORS",
    "TRANSIENT_MESSAGES",
    "UNKNOWN_STATUSES",
    "WINDOW_KINDS",
    "XAI_LINK_TTL",
    "XAI_ONLY_FAULTS",
    "XAI_UNKNOWN_STATUSES",
    "Fault",
    "SimConfig",
    "SimStats",
    "Simulator",
    "TaskRecord",
    "add_simulate_arguments",
    "config_from_args",
    "mask_key",
    "max_in_window",
    "price_ticks",
    "serve",
    "token_label",
]
