"""The vendor's CDN, for both dialects: which answer each video download gets.

The paths are the dialect's (the reseller's ``/files/{task_id}/{n}.mp4``, xAI's
``/xai-vidgen-bucket/xai-video-{task_id}.mp4``, its one video); the answers are the same.
Outside the rate limit, and no key is needed. A URL serves only once its task has succeeded and
only for the videos it lists (else 404); ``HEAD`` always gets the honest answer; a link older
than ``SimConfig.video_link_ttl`` has expired; otherwise the ``file`` faults (``expired``,
``truncated``, ``wrong_type``, ``unsized_cut``, ``short_copy``) may replace the video, in
that order of precedence. Every URL serves the one placeholder MP4 (``files.video_bytes``)
unless ``SimConfig.sized_clips``: then an xAI request's video is a clip of its own duration,
aspect ratio and resolution (``clips``).
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from batchgen.simulator.backend import Backend
from batchgen.simulator.clips import sized_clip
from batchgen.simulator.files import (
    expired_response,
    login_page,
    ranged_response,
    truncated_response,
    unsized_cut,
    video_bytes,
    video_etag,
)
from batchgen.simulator.stats import TaskRecord

__all__ = ["Cdn"]


class Cdn:
    """The file route's handler."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """The answer to one video request (HEAD or GET)."""
        backend = self._backend
        backend.stats.requests["files"] += 1
        now = backend.clock()
        task_id, n = request.match_info["task_id"], int(request.match_info.get("n", "1"))
        record = backend.tasks.video(task_id, n, now)
        if record is None:
            return web.Response(status=404, text="Not found", content_type="text/plain")
        video, etag = await self._video_of(record)
        if request.method == "HEAD":  # faults are for downloads only
            return ranged_response(request, video, etag=etag)
        ttl = backend.config.video_link_ttl
        if ttl is not None and now > record.finished + ttl:
            return expired_response(1)
        faults = backend.faults
        fired = faults.fire("file")
        if "expired" in fired:
            faults.mark("expired")
            return expired_response(faults.alternate("expired"))
        whole = ranged_response(request, video, etag=etag)
        fraction = backend.config.truncate_fraction
        if "truncated" in fired:
            faults.mark("truncated")
            return await truncated_response(request, whole, fraction)
        if "wrong_type" in fired:
            faults.mark("wrong_type")
            return login_page()
        if "unsized_cut" in fired:
            faults.mark("unsized_cut")
            return await unsized_cut(request, whole, fraction)
        if "short_copy" in fired:  # a cache that kept part of the file serves it as whole
            faults.mark("short_copy")
            return ranged_response(request, video[: int(len(video) * fraction)])
        return whole

    async def _video_of(self, record: TaskRecord) -> tuple[bytes, str]:
        """The bytes ``record``'s video URLs serve, and their strong ETag (for ``If-Range``)."""
        request = record.request
        if not self._backend.config.sized_clips or "aspect_ratio" not in request:
            return video_bytes(), video_etag()
        clip = await sized_clip(
            int(request["duration"]), str(request["aspect_ratio"]), str(request["resolution"])
        )
        return clip, '"' + hashlib.sha256(clip).hexdigest()[:16] + '"'
