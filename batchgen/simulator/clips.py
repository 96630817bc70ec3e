"""Clips the shape a request asked for: its length in seconds, its aspect ratio, its resolution.

By default every video URL of the simulator serves one tiny placeholder MP4 (``files.
video_bytes``: one second, 64 x 64), which keeps the test suite fast and lets a test compare
bytes. With ``SimConfig.sized_clips`` (on in ``batchgen simulate`` and ``batchgen demo``) the
xAI dialect serves instead a clip of the request's ``duration``, ``aspect_ratio`` and
``resolution``, so a user trying the quick start sees what the vendor would send: a 9:16 clip
of 6 s is 480 x 848 pixels and lasts 6 s.

The frame size follows xAI's own sizes (``848x480``, ``1280x720``, ``1920x1080`` for 16:9;
``../shared/xai-video-api.md``, the deprecated ``size`` field): the short side is the
resolution's height, the long side that times the ratio, rounded to a multiple of 16. The
clip is H.264 in MP4, two frames a second, a colour that drifts frame by frame (PyAV encodes
it; FFmpeg ships in PyAV's wheels). Each shape is encoded once per process and kept.
"""

from __future__ import annotations

import asyncio
import colorsys
import functools
import io
from fractions import Fraction

__all__ = ["FPS", "clip_bytes", "clip_size", "sized_clip"]

FPS = 2  # frames a second: enough for a player, cheap to encode
_MACRO = 16  # H.264 macroblock: sides are multiples of it, as xAI's own sizes are


def clip_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height in pixels of a clip of ``aspect_ratio`` (``"9:16"``) at
    ``resolution`` (``"720p"``). Raises ValueError for a shape it cannot read."""
    try:
        across, down = (int(part) for part in aspect_ratio.split(":"))
        short = int(resolution.removesuffix("p"))
    except ValueError:
        raise ValueError(f"not a clip shape: {aspect_ratio!r} at {resolution!r}") from None
    if across <= 0 or down <= 0 or short <= 0:
        raise ValueError(f"not a clip shape: {aspect_ratio!r} at {resolution!r}")
    wide = across >= down
    ratio = Fraction(across, down) if wide else Fraction(down, across)
    long = max(_MACRO, round(short * ratio / _MACRO) * _MACRO)
    return (long, short) if wide else (short, long)


@functools.cache
def clip_bytes(seconds: int, aspect_ratio: str, resolution: str) -> bytes:
    """An MP4 of ``seconds`` seconds (at least 1) shaped as ``clip_size`` says, encoded once
    per shape. Raises ValueError for a shape it cannot read."""
    import av  # imported here: only the simulator's sized clips need FFmpeg loaded
    import numpy as np

    width, height = clip_size(aspect_ratio, resolution)
    frames = max(1, seconds) * FPS
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        for index in range(frames):
            red, green, blue = colorsys.hsv_to_rgb(index / frames, 0.6, 0.9)
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = (int(red * 255), int(green * 255), int(blue * 255))
            image[:, : width * (index + 1) // frames] //= 2  # a bar that grows: time passes
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


async def sized_clip(seconds: int, aspect_ratio: str, resolution: str) -> bytes:
    """:func:`clip_bytes` from a worker thread (the first request for a shape encodes it, and a
    1080p clip of 15 s takes a moment): the event loop serving other requests never waits on
    FFmpeg."""
    return await asyncio.to_thread(clip_bytes, seconds, aspect_ratio, resolution)
