"""The simulator's aiohttp app and its life: routes, listening, the ``refuse`` outage, the clock.

The routes' answers are decided elsewhere: the vendor API in ``api``, the CDN in ``cdn``; this
module wires them to one ``Backend`` (config, stats, faults, tasks, clock), counts every answer sent
by HTTP status, and serves ``GET /_sim/stats``.

``refuse`` answers its request normally, with ``Connection: close``, and closes the listening
socket at once; ``refuse_duration`` seconds later it listens again on the same port. In between,
new connections are refused by the kernel (ECONNREFUSED); open keep-alive connections live on.
It needs the listener that ``start`` opens, so it does nothing for an app run by other means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web

from batchgen.simulator.api import VendorApi
from batchgen.simulator.backend import Backend
from batchgen.simulator.cdn import Cdn
from batchgen.simulator.responses import Handler, NeverSent
from batchgen.simulator.sim_config import SimConfig
from batchgen.simulator.stats import SimStats
from batchgen.simulator.xai_api import XaiApi

__all__ = ["Simulator"]

_ACCESS_LOG = logging.getLogger("batchgen.simulator.access")
_SHUTDOWN_GRACE = 0.25  # seconds in-flight requests get when the simulator stops


class Simulator:
    """A faithful fake of the vendor's API on a real local port, in the dialect that
    ``config.provider`` names (the GrokImagine reseller's, or xAI's).

    ``clock`` replaces the event loop's clock for task lifecycles and rate windows (tests use
    it to step time); ``access_log`` turns on aiohttp's per-request log (off: it is slow).
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: Callable[[], float] | None = None,
        access_log: bool = False,
    ) -> None:
        self.config = config
        self.stats = SimStats(tick=_tick(config))
        self.url = ""
        self._clock = clock
        self._access_log = access_log
        backend = Backend.create(config, self.stats, self.now)
        dialect = XaiApi if config.provider == "xai" else VendorApi
        self._api = dialect(backend, on_refuse=self._refuse_for_a_while)
        self._cdn = Cdn(backend)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.app = self._build_app()

    # ----------------------------------------------------------------- lifecycle

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=_body_limit(self.config))
        for method, path, handler in self._api.routes(self._cdn):
            if method == "GET":  # with HEAD, as aiohttp's add_get does
                app.router.add_get(path, self._counted(handler))
            else:
                app.router.add_route(method, path, self._counted(handler))
        app.router.add_get("/_sim/stats", self._stats_json)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port); returns the base URL, also in ``url``."""
        self._runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=_ACCESS_LOG if self._access_log else None,
            shutdown_timeout=_SHUTDOWN_GRACE,
        )
        await self._runner.setup()
        self._host = host
        self._listener = await self._listen(port)
        self._port = self._listener.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self._port}"
        return self.url

    async def _listen(self, port: int) -> asyncio.Server:
        assert self._runner is not None and self._runner.server is not None
        return await asyncio.get_running_loop().create_server(
            self._runner.server, self._host, port, reuse_address=True, backlog=1024
        )

    async def stop(self) -> None:
        """Stop listening, close every connection, forget the port. Idempotent."""
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
            self._relisten = None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- outages

    def _refuse_for_a_while(self) -> None:
        """Close the listening socket now; listen again after ``refuse_duration``."""
        if self._listener is None:  # already refusing, or not started by ``start``
            return
        self._listener.close()
        self._listener = None
        self.stats.refused_windows += 1
        self._relisten = asyncio.create_task(self._listen_again())

    async def _listen_again(self) -> None:
        await asyncio.sleep(self.config.refuse_duration)
        while self._listener is None:
            try:
                self._listener = await self._listen(self._port)
            except OSError:  # the port is briefly in use by someone else: keep trying
                await asyncio.sleep(0.01)
        self._relisten = None

    # ----------------------------------------------------------------- helpers

    def now(self) -> float:
        """The simulator's clock: the injected one, or the running event loop's."""
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    def _counted(self, handler: Handler) -> Handler:
        """``handler`` whose answers are counted by status, unless never sent. (Counting here
        rather than in an ``on_response_prepare`` signal is measurably cheaper per request.)"""

        async def counted(request: web.Request) -> web.StreamResponse:
            response = await handler(request)
            if not isinstance(response, NeverSent):
                self.stats.responses[response.status] += 1
            return response

        return counted

    # ----------------------------------------------------------------- observability

    async def _stats_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json(with_tasks=request.query.get("tasks") != "0"))


def _tick(config: SimConfig) -> float:
    """The stats timeline's tick: a 60th of the reseller's minute window, xAI's second."""
    limit_window = config.rate_limit[1]
    return limit_window if config.provider == "xai" else limit_window / 60


def _body_limit(config: SimConfig) -> int:
    """The largest request body read whole: aiohttp's 1 MiB for the reseller; for xAI, whose
    JSON may carry an image as a data URI (its REST limit is not documented), the upload
    limit."""
    return config.upload_max_bytes if config.provider == "xai" else 1024**2
