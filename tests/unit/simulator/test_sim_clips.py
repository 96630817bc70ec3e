"""The simulator's clips of the requested shape (``simulator/clips.py``): with ``sized_clips``
(``batchgen simulate`` and ``demo``), an xAI video lasts the seconds asked for, in the aspect
ratio and resolution asked for, as xAI's own sizes are (``848x480``, ``1280x720``,
``1920x1080`` for 16:9, ``../shared/xai-video-api.md``); without, every link serves the one
placeholder the test suite compares bytes with."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import av
import pytest
from helpers.simulators import FAST_XAI_SIM_CONFIG

from batchgen.cli import parse_args
from batchgen.engine.downloads.container import video_problem
from batchgen.simulator import Simulator
from batchgen.simulator.clips import clip_bytes, clip_size
from batchgen.simulator.command import config_from_args
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import SimulatorFactory, XaiClient

MODEL = "grok-imagine-video"


@pytest.mark.parametrize(
    ("ratio", "resolution", "size"),
    [
        ("16:9", "480p", (848, 480)),  # xAI's own sizes
        ("16:9", "720p", (1280, 720)),
        ("16:9", "1080p", (1920, 1080)),
        ("9:16", "480p", (480, 848)),  # portrait: the short side is across
        ("1:1", "720p", (720, 720)),
        ("2:3", "480p", (480, 720)),
        ("4:3", "720p", (960, 720)),
    ],
)
def test_a_clip_is_the_size_xai_makes_for_its_ratio_and_resolution(
    ratio: str, resolution: str, size: tuple[int, int]
) -> None:
    assert clip_size(ratio, resolution) == size


@pytest.mark.parametrize(
    ("ratio", "resolution"), [("wide", "480p"), ("16:9", "HD"), ("0:1", "480p")]
)
def test_a_shape_it_cannot_read_is_a_value_error(ratio: str, resolution: str) -> None:
    with pytest.raises(ValueError, match="not a clip shape"):
        clip_size(ratio, resolution)


def test_a_clip_lasts_its_seconds_and_is_whole_by_its_structure(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(clip_bytes(3, "9:16", "480p"))
    assert video_problem(video) is None  # what batchgen's own check reads
    with av.open(str(video), mode="r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        assert container.duration / av.time_base == 3.0
        assert (stream.codec_context.width, stream.codec_context.height) == (480, 848)
        assert stream.codec_context.name == "h264"


async def _video(
    factory: SimulatorFactory,
    client_of: Callable[[Simulator], XaiClient],
    body: dict[str, object],
    *,
    sized: bool,
) -> bytes:
    sim = await factory(dataclasses.replace(FAST_XAI_SIM_CONFIG, sized_clips=sized))
    client = client_of(sim)
    reply = await client.create({"model": MODEL, "prompt": "a fox", **body})
    final = await client.wait_final(reply.json()["request_id"])
    head = await client.request("HEAD", final["video"]["url"])
    got = await client.request("GET", final["video"]["url"])
    assert got.status == 200 and int(head.headers["Content-Length"]) == len(got.body)
    tail = await client.request(
        "GET",
        final["video"]["url"],
        headers={"Range": "bytes=10-", "If-Range": got.headers["ETag"]},
    )
    assert tail.status == 206 and tail.body == got.body[10:]  # a resumed download fits
    return got.body


async def test_with_sized_clips_each_request_gets_its_own_shape(
    simulator_factory: SimulatorFactory, xai_client: Callable[[Simulator], XaiClient]
) -> None:
    body = {"duration": 5, "aspect_ratio": "9:16", "resolution": "720p"}
    data = await _video(simulator_factory, xai_client, body, sized=True)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None and container.duration / av.time_base == 5.0
        assert (stream.codec_context.width, stream.codec_context.height) == (720, 1280)
    # a variant: xAI's defaults (8 s, 16:9, 480p) when the request names none
    default = await _video(simulator_factory, xai_client, {}, sized=True)
    with av.open(io.BytesIO(default), mode="r") as container:
        assert container.duration is not None and container.duration / av.time_base == 8.0
        size = container.streams.video[0].codec_context
        assert (size.width, size.height) == (848, 480)


async def test_without_sized_clips_every_link_serves_the_placeholder(
    simulator_factory: SimulatorFactory, xai_client: Callable[[Simulator], XaiClient]
) -> None:
    body = {"duration": 5, "aspect_ratio": "9:16"}
    assert await _video(simulator_factory, xai_client, body, sized=False) == video_bytes()


def test_simulate_serves_sized_clips_unless_asked_for_placeholders() -> None:
    assert config_from_args(parse_args(["simulate", "--provider", "xai"])).sized_clips
    placeholder = parse_args(["simulate", "--provider", "xai", "--placeholder-clips"])
    assert not config_from_args(placeholder).sized_clips
