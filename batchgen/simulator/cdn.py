"""The vendor's CDN: ``GET /files/{task_id}/{n}.mp4``, which answer each download gets.

Outside the rate limit. A URL serves only once its task has completed and only for the videos
it lists (else 404); ``HEAD`` always gets the honest answer; a link older than ``link_ttl``
has expired; otherwise the ``file`` faults (``expired``, ``truncated``, ``wrong_type``,
``unsized_cut``) may replace the video, in that order of precedence.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from batchgen.simulator.config import SimConfig
from batchgen.simulator.faults import FaultInjector
from batchgen.simulator.files import (
    expired_response,
    login_page,
    ranged_response,
    truncated_response,
    unsized_cut,
    video_bytes,
    video_etag,
)
from batchgen.simulator.stats import SimStats
from batchgen.simulator.tasks import TaskBook

__all__ = ["Cdn"]


class Cdn:
    """The file route's handler; ``clock`` is the simulator's."""

    def __init__(
        self,
        config: SimConfig,
        stats: SimStats,
        faults: FaultInjector,
        tasks: TaskBook,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._stats = stats
        self._faults = faults
        self._tasks = tasks
        self._clock = clock

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """The answer to one video request (HEAD or GET)."""
        self._stats.requests["files"] += 1
        now = self._clock()
        task_id, n = request.match_info["task_id"], int(request.match_info["n"])
        record = self._tasks.video(task_id, n, now)
        if record is None:
            return web.Response(status=404, text="Not found", content_type="text/plain")
        if request.method == "HEAD":  # faults are for downloads only
            return _video(request)
        ttl = self._config.link_ttl
        if ttl is not None and now > record.finished + ttl:
            return expired_response(1)
        faults = self._faults
        fired = faults.fire("file")
        if "expired" in fired:
            faults.mark("expired")
            return expired_response(faults.alternate("expired"))
        fraction = self._config.truncate_fraction
        if "truncated" in fired:
            faults.mark("truncated")
            return await truncated_response(request, _video(request), fraction)
        if "wrong_type" in fired:
            faults.mark("wrong_type")
            return login_page()
        if "unsized_cut" in fired:
            faults.mark("unsized_cut")
            return await unsized_cut(request, _video(request), fraction)
        return _video(request)


def _video(request: web.Request) -> web.Response:
    """The video, whole or the ``Range`` asked for, with its ETag (``If-Range`` honoured)."""
    return ranged_response(request, video_bytes(), etag=video_etag())
