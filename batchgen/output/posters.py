"""Poster frames: the first picture of each video as a small JPEG, so the gallery shows
pictures before anything plays.

PyAV (FFmpeg's libraries, shipped inside its wheel) decodes the first frame and encodes it
with FFmpeg's MJPEG encoder: no Pillow, no ffmpeg binary on the PATH. A poster is written
once, atomically, beside the other outputs (``posters/<video path>.jpg``) and kept while it
is newer than its video, so a re-run only pays for new videos (about 10 ms each for the
simulator's small videos; more for big ones). The gallery bounds the time it spends making
new posters per write (``POSTER_SECONDS``): past it, a card's player shows the browser's own
first frame once its metadata loads, and the next write (``batchgen report``) continues.
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


def poster_for(out_dir: Path, video: str, *, make: bool = True) -> str | None:
    """Reuse, or with ``make`` make, the poster of ``out_dir/video``; its relative path.

    None when the video is missing or cannot be decoded (the card then shows the player
    alone), or when there is no poster yet and ``make`` is False; never raises for a bad
    file.
    """
    source = out_dir / video
    target = out_dir / poster_path(video)
    try:
        if not source.is_file():
            return None
        if target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
            return poster_path(video)
        if not make:
            return None
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
