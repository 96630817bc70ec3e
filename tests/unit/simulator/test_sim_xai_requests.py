"""What xAI's create call accepts and how it refuses (415, 422, 400, 404), and the Files API
that feeds it ``image.file_id`` (xai-video-api.md sections 2, 4 and 6)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from batchgen.simulator import SimConfig, Simulator
from batchgen.simulator.xai_requests import Rejection, image_kind, parse_create

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, SimulatorFactory, XaiClient

Client = Callable[[Simulator], "XaiClient"]
MODEL = "grok-imagine-video"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def no_files(file_id: str) -> str | None:
    return f"no file {file_id} was found"


def rejection(body: object) -> tuple[int, str]:
    checked = parse_create(body, no_files)
    assert isinstance(checked, Rejection), checked
    return checked.status, checked.message


# ---------------------------------------------------------------- the checks, one by one


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ([MODEL], 422, "expected an object"),
        ({"prompt": "p"}, 422, "missing field `model`"),
        ({"model": 1.5, "prompt": "p"}, 422, "`model` must be a string"),
        ({"model": "grok-imagine-video-2", "prompt": "p"}, 404, "does not exist"),
        ({"model": MODEL}, 422, "missing field `prompt`"),
        ({"model": MODEL, "prompt": " \n"}, 400, "prompt is required"),
        ({"model": MODEL, "prompt": ["p"]}, 422, "`prompt` must be a string"),
        ({"model": MODEL, "prompt": "p", "duration": 16}, 400, "Invalid duration 16"),
        ({"model": MODEL, "prompt": "p", "seconds": "0"}, 400, "Invalid duration 0"),
        ({"model": MODEL, "prompt": "p", "duration": "8s"}, 422, "`duration` must be an integer"),
        ({"model": MODEL, "prompt": "p", "duration": 7.5}, 422, "`duration` must be an integer"),
        ({"model": MODEL, "prompt": "p", "duration": 2, "seconds": 2}, 400, "not both"),
        ({"model": MODEL, "prompt": "p", "resolution": "1080p"}, 400, "480p, 720p"),
        ({"model": MODEL, "prompt": "p", "resolution": 720}, 422, "`resolution` must be"),
        ({"model": MODEL, "prompt": "p", "aspect_ratio": "9:21"}, 400, "16:9, 9:16"),
        ({"model": MODEL, "prompt": "p", "user": 1}, 422, "`user` must be a string"),
    ],
)
def test_each_field_is_checked_with_xais_status(body: object, status: int, words: str) -> None:
    got_status, message = rejection(body)
    assert got_status == status
    assert words in message


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("https://example.com/a.png", "must be an object"),
        ({"url": None}, "exactly one of"),
        ({"url": "https://e.com/a.png", "image_url": "https://e.com/b.png"}, "exactly one of"),
        ({"url": 5}, "`image.url` must be a string"),
        ({"url": "file:///home/me/a.png"}, "public http(s) URL"),
        ({"url": "https://"}, "public http(s) URL"),
        ({"url": "data:image/png;base64,####"}, "data:image/(jpeg|png|webp)"),
        ({"url": "data:image/png;base64,abcde"}, "not valid base64"),
        ({"url": "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode()}, "JPEG"),
        ({"file_id": "file_nope"}, "no file file_nope was found"),
    ],
)
def test_a_bad_image_is_400(image: object, words: str) -> None:
    status, message = rejection({"model": MODEL, "image": image})
    assert status == 422 if "must be" in words else status == 400
    assert words in message


def test_image_and_input_reference_are_one_field() -> None:
    url = {"url": "https://e.com/a.png"}
    assert rejection({"model": MODEL, "image": url, "input_reference": url})[0] == 400
    aliased = parse_create({"model": MODEL, "input_reference": {"image_url": url["url"]}}, no_files)
    assert not isinstance(aliased, Rejection)
    assert aliased.image == url


@pytest.mark.parametrize(
    ("picture", "kind"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp"), (b"GIF89a", None)]
)
def test_pictures_are_told_by_their_first_bytes(picture: bytes, kind: str | None) -> None:
    assert image_kind(picture) == kind
    uri = f"data:image/{kind or 'png'};base64," + base64.b64encode(picture).decode()
    parsed = parse_create({"model": MODEL, "image": {"url": uri}}, no_files)
    assert isinstance(parsed, Rejection) == (kind is None)


def test_the_preview_alias_runs_and_bills_as_1_5() -> None:
    parsed = parse_create(
        {"model": "grok-imagine-video-1.5-preview", "prompt": "p", "resolution": "1080p"},
        no_files,
    )
    assert not isinstance(parsed, Rejection)
    assert parsed.model == "grok-imagine-video-1.5"
    assert parsed.table_ticks == 8 * 2_100_000_000


# ---------------------------------------------------------------- over the wire


async def test_a_create_without_a_json_content_type_is_415(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    body = {"model": MODEL, "prompt": "p"}
    for reply in (
        await client.create(body, content_type=None),
        await client.create(body, content_type="text/plain"),
        await client.create(raw=b""),
    ):
        assert reply.status == 415
        assert reply.json()["code"] == "Client specified an invalid argument"
    assert xai_simulator.stats.tasks_created == 0


async def test_a_body_that_is_not_json_is_422(xai_simulator: Simulator, xai_client: Client) -> None:
    reply = await xai_client(xai_simulator).create(raw=b'{"model": ')
    assert reply.status == 422
    assert set(reply.json()) == {"code", "error"}


async def test_an_unknown_model_is_404_and_creates_nothing(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    reply = await xai_client(xai_simulator).create({"model": "grok-2-video", "prompt": "p"})
    assert reply.status == 404
    assert reply.json()["code"] == "Some requested entity was not found"
    assert xai_simulator.stats.tasks_created == 0


# ---------------------------------------------------------------- uploads


async def test_an_upload_answers_the_file_object(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    reply = await client.upload(
        PNG, filename="first-frame.png", fields={"expires_after": "7200", "purpose": "assistants"}
    )
    assert reply.status == 200
    data = reply.json()
    assert data["id"].startswith("file_") and data["object"] == "file"
    assert data["bytes"] == len(PNG)
    assert data["filename"] == "first-frame.png"
    assert data["purpose"] == "assistants"
    assert data["expires_at"] == data["created_at"] + 7200
    plain = (await client.upload(JPEG)).json()
    assert plain["expires_at"] is None and plain["purpose"] == ""
    assert xai_simulator.stats.uploads == 2
    assert xai_simulator.stats.requests["upload"] == 2


async def test_an_uploaded_picture_drives_a_video_and_is_billed_as_an_image(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    file_id = (await client.upload(WEBP, filename="in.webp")).json()["id"]
    reply = await client.create({"model": MODEL, "image": {"file_id": file_id}, "duration": 2})
    assert reply.status == 200, reply.body
    final = await client.wait_final(reply.json()["request_id"])
    assert final["usage"]["cost_in_usd_ticks"] == 2 * 500_000_000 + 20_000_000


async def test_a_file_id_must_be_a_picture_of_the_same_team_and_alive(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    tokens = {"demo-token", "xai-other-team-key"}
    config = dataclasses.replace(xai_sim_config, tokens=frozenset(tokens))
    client = xai_client(await simulator_factory(config, clock=fake_clock))
    text = (await client.upload(b"hello, not a picture", filename="a.txt")).json()["id"]
    short = (await client.upload(PNG, fields={"expires_after": "3600"})).json()["id"]
    theirs = (await client.upload(PNG, token="xai-other-team-key")).json()["id"]

    async def create_with(file_id: str) -> Any:
        return await client.create({"model": MODEL, "image": {"file_id": file_id}})

    assert (await create_with(short)).status == 200
    fake_clock.advance(3600.0)
    for file_id, words in ((text, "not a JPEG"), (short, "expired"), (theirs, "no file")):
        reply = await create_with(file_id)
        assert reply.status == 400
        assert words in reply.json()["error"]


@pytest.mark.parametrize(
    ("fields", "after", "words"),
    [
        ({}, {"expires_after": "3600"}, "must come before"),
        ({"expires_after": "60"}, {}, "between 3600 and 2592000"),
        ({"expires_after": "a day"}, {}, "number of seconds"),
    ],
)
async def test_expires_after_comes_first_and_within_range(
    xai_simulator: Simulator,
    xai_client: Client,
    fields: dict[str, str],
    after: dict[str, str],
    words: str,
) -> None:
    reply = await xai_client(xai_simulator).upload(PNG, fields=fields, after=after)
    assert reply.status == 400
    assert words in reply.json()["error"]
    assert xai_simulator.stats.uploads == 0


async def test_an_upload_without_a_file_part_is_400(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    form = aiohttp.FormData()
    form.add_field("purpose", "assistants")
    form.add_field("payload", b"\x89PNG", filename="x.png")
    reply = await client.request(
        "POST", f"{xai_simulator.url}/v1/files", headers=client.auth(), data=form
    )
    assert reply.status == 400
    assert "no `file` part" in reply.json()["error"]


async def test_an_upload_over_the_limit_is_413(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    config = dataclasses.replace(xai_sim_config, upload_max_bytes=100_000)
    sim = await simulator_factory(config)
    client = xai_client(sim)
    assert (await client.upload(PNG + b"\x00" * (100_000 - len(PNG)))).status == 200
    reply = await client.upload(PNG + b"\x00" * 200_000)
    assert reply.status == 413
    assert "100000 bytes" in reply.json()["error"]
    assert sim.stats.uploads == 1


def test_the_default_upload_limit_is_50_mb() -> None:
    assert SimConfig(provider="xai").upload_max_bytes == 50_000_000
