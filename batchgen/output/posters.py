"""Poster frames: the first picture of each video as a small JPEG, so the gallery shows
pictures before anything plays.

PyAV (FFmpeg's libraries, shipped inside its wheel) decodes the first frame and encodes it
with FFmpeg's MJPEG encoder: no Pillow, no ffmpeg binary on the PATH. A poster is written
once, atomically, beside the other outputs (``posters/<video path>.jpg``) and kept while it
is newer than its video, so a re-run only pays for new videos (about 20 ms each).
"""

from __future__ import annotations

import logging
from pathlib import Path

from batchgen.atomic import atomic_path

__all__ = ["POSTER_DIR", "POSTER_WIDTH", "poster_for"]

log = logging.getLogger(__name__)

POSTER_DIR = "posters"
POSTER_WIDTH = 480  # pixels; wide enough for a card, small enough for 2,000 of them


def poster_path(video: str) -> str:
    """The poster's path relative to the output folder, for a video path relative to it."""
    return f"{POSTER_DIR}/{video}.jpg"


def poster_for(out_dir: Path, video: str) -> str | None:
    """Make (or reuse) the poster of ``out_dir/video``; its relative path, or None.

    None when the video is missing or cannot be decoded (the card then shows the player
    alone); never raises for a bad file.
    """
    source = out_dir / video
    target = out_dir / poster_path(video)
    try:
        if not source.is_file():
            return None
        if target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
            return poster_path(video)
        target.parent.mkdir(parents=True, exist_ok=True)
        _extract(source, target)
    except Exception as exc:  # PyAV raises its own errors for every kind of bad file
        log.debug("no poster for %s: %s", video, exc)
        return None
    return poster_path(video)


def _extract(source: Path, target: Path) -> None:
    import av  # imported here: only galleries with videos need FFmpeg loaded

    with av.open(str(source)) as container:
        frame = next(container.decode(video=0))
    width = min(POSTER_WIDTH, frame.width) // 2 * 2
    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    with atomic_path(target) as tmp, av.open(str(tmp), "w", format="image2") as out:
        stream = out.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for packet in (*stream.encode(picture), *stream.encode(None)):
            out.mux(packet)
