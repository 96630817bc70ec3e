"""Progress for people: tqdm bars on a terminal, one heartbeat line a minute under cron."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from batchgen.config import Settings
from batchgen.engine.dispatcher import Dispatcher
from batchgen.engine.guards import human_duration
from batchgen.models import JobStatus
from batchgen.providers.base import Provider
from batchgen.providers.descriptor import format_usd

__all__ = ["Progress"]

log = logging.getLogger(__name__)


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.stdout)


_TODO = (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.COMPLETED)


class Progress:
    """Reports the run's counters while ``async with`` is open."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        api: Provider,
        settings: Settings,
        *,
        stream: TextIO | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.api = api
        self.settings = settings
        self.stream = stream or sys.stderr
        self.bars_enabled = (
            settings.output.progress
            if settings.output.progress is not None
            else self.stream.isatty()
        )
        self._task: asyncio.Task[None] | None = None
        self._logs = contextlib.ExitStack()
        self._bars: list[tqdm] = []
        self.total = 0

    async def __aenter__(self) -> Progress:
        self.total = sum(
            run.store.counts(in_manifest_only=True).get(status, 0)
            for run in self.dispatcher.runs
            for status in _TODO
        )
        if self.bars_enabled:
            self._redirect_logs()
            self._bars = [
                tqdm(total=self.total, desc=name, unit="row", file=self.stream, position=i)
                for i, name in enumerate(("submitted", "completed", "downloaded"))
            ]
            self._task = asyncio.create_task(self._loop(0.5, self._draw))
        else:
            self._task = asyncio.create_task(
                self._loop(self.settings.output.heartbeat, self._heartbeat)
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._bars:
            self._draw()
            for bar in self._bars:
                bar.close()
        self._logs.close()

    def _redirect_logs(self) -> None:
        """Log lines go through tqdm.write while bars are drawn, so they do not tear them."""
        logger = logging.getLogger("batchgen")
        levels = [h.level for h in logger.handlers if _is_console(h)]
        self._logs.enter_context(logging_redirect_tqdm(loggers=[logger]))
        for handler in logger.handlers:
            if type(handler).__name__ == "_TqdmLoggingHandler" and levels:
                handler.setLevel(levels[0])  # keep -q / -v in force

    async def _loop(self, every: float, action: object) -> None:
        while True:
            await asyncio.sleep(every)
            action()  # type: ignore[operator]

    def _totals(self) -> dict[str, int]:
        runs = self.dispatcher.runs
        fields = ("submitted", "completed", "downloaded", "failed", "credits")
        return {f: sum(getattr(r.counters, f) for r in runs) for f in fields}

    def _spent(self, amount: int) -> tuple[str, str]:
        """``("credits", "300")`` or ``("charged", "$0.30")``: what this run's finished tasks
        cost, in the provider's billing unit (``amount`` counts its units)."""
        unit = self.dispatcher.billing.unit
        if unit.credits:
            return "credits", str(amount)
        return "charged", format_usd(unit.usd(amount))

    def _draw(self) -> None:
        totals = self._totals()
        label, spent = self._spent(totals["credits"])
        for bar, name in zip(self._bars, ("submitted", "completed", "downloaded"), strict=True):
            bar.n = totals[name]
            bar.set_postfix({label: spent}, refresh=False)
            bar.refresh()

    def line(self) -> str:
        """The heartbeat text: done / failed / in flight / requests / 429s / spent / ETA,
        spent as ``credits 300`` for a provider billing credits, ``charged $0.30`` otherwise.

        While API requests keep failing it says so (host, for how long, the last error)
        instead of an ETA: a run that cannot reach the vendor has no estimate.
        """
        t = self._totals()
        in_flight = self.dispatcher.in_flight()
        left = max(0, self.total - t["downloaded"] - t["failed"])
        down = self.api.health.down_for(self.api.clock())
        eta = "unknown (the API is not answering)" if down > 0 else self._eta(left, in_flight)
        label, spent = self._spent(t["credits"])
        line = (
            f"progress: done {t['downloaded']}/{self.total}, failed {t['failed']}, "
            f"in flight {in_flight}, requests {self.api.requests}, "
            f"429s {self.api.rate_limited}, {label} {spent}, ETA {eta}"
            f"{self._shared_part()}"
        )
        if down > 0:
            line += (
                f"; WARNING: no API request has succeeded for {human_duration(down)} "
                f"({self.api.host}: {self.api.health.last_error})"
            )
        return line

    def _shared_part(self) -> str:
        """How the account's window shared with other processes holds this one back."""
        throttle = self.dispatcher.throttle
        shared = throttle.shared
        if shared is None:
            return ""
        now = "; holding a request now" if throttle.holding else ""
        return (
            f"; shared window ({shared.where}): {shared.sharers} other process(es), "
            f"held back {throttle.held_back} request(s){now}"
        )

    def _eta(self, left: int, in_flight: int) -> str:
        per_second = self.dispatcher.throttle.per_second
        if left == 0 or per_second <= 0:
            return "-"
        seconds = (2 * max(0, left - in_flight) + in_flight) / per_second
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

    def _heartbeat(self) -> None:
        log.info("%s", self.line())
