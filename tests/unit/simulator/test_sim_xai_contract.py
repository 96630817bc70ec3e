"""The xAI dialect's real answers, checked against xAI's contract, under every fault.

The contract the tests use is the project's own restatement, ``tests/contract/xai.json``
(JSON Schema 2020-12 per documented response of the two video paths and ``/v1/files``, plus
what the contract says only in prose), so a fresh clone needs nothing outside its tree. Every
answer the simulator gives on an API path must be a response the contract documents for that
path, or one of the forms its prose allows (an unknown status taken as not finished; an
undocumented 5xx, transient). When ``../shared/xai-openapi.yaml`` is beside the project, one
more test checks that the restatement still agrees with it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import jsonschema
import pytest
import yaml
from helpers.paths import CONTRACTS, SHARED

from batchgen.simulator import FAULT_NAMES, Fault, SimConfig, Simulator

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, Reply, SimulatorFactory, XaiClient

CONTRACT = CONTRACTS / "xai.json"
VENDOR_OPENAPI = SHARED / "xai-openapi.yaml"
Client = Callable[[Simulator], "XaiClient"]
CREATE = ("post", "/v1/videos/generations")
STATUS = ("get", "/v1/videos/{request_id}")
UPLOAD = ("post", "/v1/files")
VALID = {"model": "grok-imagine-video", "prompt": "a red fox in the snow"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12
MODEL_15 = "grok-imagine-video-1.5"
#: The JSON Schema keywords the restatement uses; the rest of an OpenAPI schema is prose.
KEYWORDS = {
    "$ref", "type", "enum", "const", "properties", "required", "items", "oneOf", "anyOf",
    "allOf", "not", "if", "then", "else", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "format", "minItems", "maxItems", "default", "additionalProperties",
}  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The project's restatement of xAI's contract."""
    document = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for schema ``name``, its ``#/schemas/...`` references resolved."""
    assert name in spec["schemas"], name
    root = {"schemas": spec["schemas"], "$ref": f"#/schemas/{name}"}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def conforms(spec: dict[str, Any], name: str, instance: Any) -> bool:
    return validator(spec, name).is_valid(instance)


def check_answer(spec: dict[str, Any], operation: tuple[str, str], reply: Reply) -> None:
    """``reply`` is a documented response of ``operation``, or a form the prose allows."""
    method, path = operation
    documented = spec["operations"][f"{method} {path}"]["responses"]
    prose = spec["prose"]
    status = str(reply.status)
    assert not [h for h in reply.headers if h.lower().startswith("x-ratelimit")]
    assert reply.status == 429 or "Retry-After" not in reply.headers
    if status in prose["transient"]["statuses"]:
        if reply.headers["Content-Type"].startswith("text/html"):
            return
        validator(spec, prose["transient"]["schema"]).validate(reply.json())
        return
    assert status in documented, f"{method} {path}: undocumented {status}"
    if reply.status == 200 and reply.headers["Content-Type"].startswith("text/html"):
        return  # the html_body fault: a gateway's page under 200 (no JSON to check)
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    if conforms(spec, documented[status], body):
        return
    not_finished = prose["not_finished"]
    assert status in not_finished["statuses"], f"{method} {path} {status}: {body}"
    validator(spec, not_finished["schema"]).validate(body)


def valid_request(spec: dict[str, Any], body: Any) -> bool:
    """Whether ``body`` is a create request the contract accepts."""
    return conforms(spec, spec["operations"]["post /v1/videos/generations"]["request"], body)


# ---------------------------------------------------------------- the restatement itself


def test_the_contract_examples_validate_against_their_own_schemas(spec: dict[str, Any]) -> None:
    checked = 0
    for entry in spec["operations"].values():
        for status, example in entry["examples"].items():
            validator(spec, entry["responses"][status]).validate(example)
            checked += 1
        for example in entry.get("request_examples", []):
            validator(spec, entry["request"]).validate(example)
            checked += 1
    assert checked == 7
    assert not conforms(spec, "VideoStatus", {"status": "queued"})
    assert conforms(spec, "UnknownStatus", {"status": "queued", "progress": 3})
    assert not conforms(spec, "UnknownStatus", {"status": "pending"})


def _keywords(node: Any) -> Any:
    """An OpenAPI schema with only the JSON Schema keywords the restatement keeps (prose,
    examples and ``x-`` notes dropped) and component references renamed."""
    if isinstance(node, list):
        return [_keywords(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _keywords(sub) for name, sub in value.items()}
        elif key == "$ref":
            out[key] = value.replace("#/components/schemas/", "#/schemas/")
        elif key in KEYWORDS:
            out[key] = _keywords(value)
    return out


def _media_schema(response: dict[str, Any], vendor: dict[str, Any]) -> str | None:
    """The component schema name of a response's JSON body (None without a JSON body)."""
    if "$ref" in response:
        response = vendor["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    media = response.get("content", {}).get("application/json")
    if media is None:
        return None
    ref: str = media["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def _vendor() -> dict[str, Any]:
    if not VENDOR_OPENAPI.is_file():
        pytest.skip(f"{VENDOR_OPENAPI} is not beside the project; nothing to compare with")
    document = yaml.safe_load(VENDOR_OPENAPI.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_restatement_agrees_with_xais_openapi(spec: dict[str, Any]) -> None:
    vendor = _vendor()
    components = vendor["components"]["schemas"]
    prose_only = {spec["prose"]["not_finished"]["schema"]}
    assert set(spec["schemas"]) == set(components) | prose_only
    for name, schema in spec["schemas"].items():
        if name not in prose_only:
            assert _keywords(components[name]) == schema, name
    for key, entry in spec["operations"].items():
        method, path = key.split(" ")
        documented = vendor["paths"][path][method]
        responses = documented["responses"]
        assert set(responses) == set(entry["responses"]), key
        for status, name in entry["responses"].items():
            assert _media_schema(responses[status], vendor) == name, f"{key} {status}"
        body = documented["requestBody"]["content"] if "requestBody" in documented else {}
        if "request" in entry:
            media = body.get("application/json") or body["multipart/form-data"]
            assert media["schema"]["$ref"].endswith("/" + entry["request"]), key


def test_every_vendor_example_fits_the_restatement(spec: dict[str, Any]) -> None:
    vendor = _vendor()
    checked = 0
    for key, entry in spec["operations"].items():
        method, path = key.split(" ")
        documented = vendor["paths"][path][method]
        for status, response in documented["responses"].items():
            if "$ref" in response:
                response = vendor["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            media = response.get("content", {}).get("application/json", {})
            examples = [e["value"] for e in media.get("examples", {}).values()]
            examples += [media["example"]] if "example" in media else []
            for example in examples:
                validator(spec, entry["responses"][status]).validate(example)
                checked += 1
        body = documented.get("requestBody", {}).get("content", {}).get("application/json", {})
        for example in body.get("examples", {}).values():
            assert valid_request(spec, example["value"]), example
            checked += 1
    assert checked >= 10


def test_the_prose_keeps_what_the_vendor_leaves_undocumented(spec: dict[str, Any]) -> None:
    vendor = _vendor()
    too_many = vendor["components"]["responses"]["TooManyRequests"]["headers"]
    headers = vendor["components"]["headers"]
    named = [ref["$ref"].rsplit("/", 1)[1] for ref in too_many.values()]
    assert all(headers[name].get("x-not-documented") for name in named)
    assert sorted(named) == sorted(spec["prose"]["rate_headers"]["third_party"])
    operations = [op for p in vendor["paths"].values() for op in p.values() if "responses" in op]
    codes = {status for op in operations for status in op["responses"]}
    assert not codes & set(spec["prose"]["transient"]["statuses"])  # 5xx stay undocumented


# ---------------------------------------------------------------- the simulator's answers


def data_uri(content: bytes = PNG, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(content).decode()


async def test_create_answers_match_the_contract(
    spec: dict[str, Any], simulator_factory: SimulatorFactory, xai_client: Client,
    xai_sim_config: SimConfig, fake_clock: FakeClock,
) -> None:  # fmt: skip
    config = dataclasses.replace(
        xai_sim_config, rps=9, server_error=Fault(at={2}), body_error=Fault(at={3})
    )
    client = xai_client(await simulator_factory(config, clock=fake_clock))
    replies = [
        await client.create(VALID),  # 200
        await client.create(VALID),  # 500
        await client.create(VALID),  # 200 whose body is an error
        await client.create({**VALID, "duration": 16}),  # 400
        await client.create({**VALID, "model": "grok-imagine-video-9"}),  # 404
        await client.create(VALID, content_type=None),  # 415
        await client.create(raw=b""),  # 415
        await client.create({"prompt": "no model"}),  # 422
        await client.create(raw=b"{not json"),  # 422
        await client.create(VALID),  # 429
        await client.create(VALID, token="xai-wrong-token-value"),  # 400: wrong key
        await client.create(VALID, token=None),  # 401
    ]
    assert [r.status for r in replies] == [
        200,
        500,
        200,
        400,
        404,
        415,
        415,
        422,
        422,
        429,
        400,
        401,
    ]
    body_error = replies.pop(2)
    for reply in replies:
        check_answer(spec, CREATE, reply)
    # Not in the contract: a 200 whose body is an error. It fits Error, never a created request.
    validator(spec, "Error").validate(body_error.json())
    assert not conforms(spec, "CreateVideoResponse", body_error.json())


async def test_status_answers_match_the_contract_through_every_outcome(
    spec: dict[str, Any], simulator_factory: SimulatorFactory, xai_client: Client,
    xai_sim_config: SimConfig, fake_clock: FakeClock,
) -> None:  # fmt: skip
    config = dataclasses.replace(
        xai_sim_config,
        task_permanent=Fault(at={2}),
        task_transient=Fault(at={3}),
        task_expired=Fault(at={4}),
        moderated=Fault(at={5}),
        unknown_status=Fault(at={6}),
        pending_200=Fault(at={7}),
        cost_mismatch=Fault(at={8}),
    )
    sim = await simulator_factory(config, clock=fake_clock)
    client = xai_client(sim)
    ids = [await client.start(f"prompt {n}") for n in range(8)]
    replies: list[Reply] = []
    for step in (0.0, 0.01, 60.0):  # pending, perhaps still pending, then final
        fake_clock.advance(step)
        replies += [await client.video(request_id) for request_id in ids]
    finals = [r.json()["status"] for r in replies[-8:]]
    assert finals == ["done", "failed", "failed", "expired", "done", "done", "done", "done"]
    assert {r.json()["status"] for r in replies[:8]} <= {"pending", "queued", "processing"}
    assert [r.status for r in replies[:8]] == [202] * 6 + [200, 202]  # pending_200: the 7th
    replies += [
        await client.video("no-such-request"),  # 404
        await client.video(ids[0], token="xai-wrong-token-value"),  # 400
        await client.video(ids[0], token=None),  # 401
    ]
    assert [r.status for r in replies[-3:]] == [404, 400, 401]
    for reply in replies:
        check_answer(spec, STATUS, reply)


async def test_upload_answers_match_the_contract(
    spec: dict[str, Any], simulator_factory: SimulatorFactory, xai_client: Client,
    xai_sim_config: SimConfig, fake_clock: FakeClock,
) -> None:  # fmt: skip
    config = dataclasses.replace(xai_sim_config, rps=5, upload_max_bytes=1000)
    client = xai_client(await simulator_factory(config, clock=fake_clock))
    replies = [
        await client.upload(PNG),  # 200
        await client.upload(PNG, fields={"expires_after": "3600", "purpose": "assistants"}),
        await client.upload(PNG, after={"expires_after": "3600"}),  # 400: after the file
        await client.upload(b"\xff" * 1001),  # 413
        await client.request(
            "POST", f"{client.sim.url}/v1/files", headers=client.auth(), json={"file": "x"}
        ),  # 400: not multipart
        await client.upload(PNG),  # 429
        await client.upload(PNG, token="xai-wrong-token-value"),  # 400
        await client.upload(PNG, token=None),  # 401
    ]
    assert [r.status for r in replies] == [200, 200, 400, 413, 400, 429, 400, 401]
    for reply in replies:
        check_answer(spec, UPLOAD, reply)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {**VALID, "model": 3},
        {**VALID, "prompt": 3},
        {"model": "grok-imagine-video"},
        {**VALID, "prompt": "  "},
        {**VALID, "duration": 0},
        {**VALID, "duration": 16},
        {**VALID, "duration": "16"},
        {**VALID, "duration": "eight"},
        {**VALID, "duration": 8.5},
        {**VALID, "duration": True},
        {**VALID, "seconds": 20},
        {**VALID, "duration": 5, "seconds": 5},
        {**VALID, "resolution": "1080p"},
        {**VALID, "resolution": "4k"},
        {**VALID, "aspect_ratio": "21:9"},
        {**VALID, "aspect_ratio": 1.77},
        {**VALID, "image": "https://example.com/a.png"},
        {**VALID, "image": {}},
        {**VALID, "image": {"url": "ftp://example.com/a.png"}},
        {**VALID, "image": {"url": "data:image/gif;base64,R0lGODlh"}},
        {**VALID, "image": {"url": "https://example.com/a.png", "file_id": "file_1"}},
        {**VALID, "image": {"url": "https://e.com/a.png"}, "input_reference": {"url": "https://e.com/b.png"}},
        {**VALID, "user": 7},
        [VALID],
    ],
)  # fmt: skip
async def test_the_simulator_rejects_whatever_the_contract_rejects(
    spec: dict[str, Any], xai_simulator: Simulator, xai_client: Client, body: Any
) -> None:
    assert not valid_request(spec, body)
    reply = await xai_client(xai_simulator).create(body)
    assert reply.status in (400, 404, 422), reply.body
    check_answer(spec, CREATE, reply)
    assert xai_simulator.stats.tasks_created == 0


@pytest.mark.parametrize(
    "body",
    [
        VALID,
        {**VALID, "duration": 1, "resolution": "720p", "aspect_ratio": "9:16"},
        {**VALID, "duration": "15", "aspect_ratio": "1:1", "user": "team-7"},
        {**VALID, "seconds": 3, "aspect_ratio": "3:2"},
        {"model": "grok-imagine-video", "image": {"url": "https://example.com/a.jpg"}},
        {"model": "grok-imagine-video", "image": {"image_url": data_uri()}},
        {"model": "grok-imagine-video", "input_reference": {"url": data_uri(JPEG, "jpeg")}},
        {"model": MODEL_15, "image": {"url": "https://e.com/a.webp"}, "resolution": "1080p"},
        {**VALID, "model": "grok-imagine-video-1.5-preview", "aspect_ratio": "4:3"},
        {**VALID, "prompt": "ünïcödé 🎬 prompt", "extra": True},
    ],
)  # fmt: skip
async def test_the_simulator_accepts_typical_valid_requests(
    spec: dict[str, Any], xai_simulator: Simulator, xai_client: Client, body: Any
) -> None:
    assert valid_request(spec, body)
    reply = await xai_client(xai_simulator).create(body)
    assert reply.status == 200, reply.body
    check_answer(spec, CREATE, reply)


# ---------------------------------------------------------------- every fault


async def _session(client: XaiClient, clock: FakeClock) -> list[tuple[tuple[str, str], Reply]]:
    """A short client session: an upload, three creates, polls until final. Answers lost to
    a reset connection are left out."""
    answers: list[tuple[tuple[str, str], Reply]] = []

    async def call(operation: tuple[str, str], coro: Any) -> Reply | None:
        try:
            reply: Reply = await coro
        except aiohttp.ClientError:
            return None
        answers.append((operation, reply))
        return reply

    upload = await call(UPLOAD, client.upload(PNG))
    is_json = upload is not None and upload.headers["Content-Type"] == "application/json"
    file_id = upload.json().get("id") if upload and is_json and upload.status == 200 else None
    bodies: list[dict[str, Any]] = [VALID, {**VALID, "duration": 3, "resolution": "720p"}]
    if isinstance(file_id, str):
        bodies.append({"model": "grok-imagine-video", "image": {"file_id": file_id}})
    ids = []
    for body in bodies:
        reply = await call(CREATE, client.create(body))
        if reply and reply.status == 200 and reply.body.startswith(b'{"request_id"'):
            ids.append(reply.json()["request_id"])
    for step in (0.0, 60.0):
        clock.advance(step)
        for request_id in ids:
            await call(STATUS, client.video(request_id))
    return answers


@pytest.mark.parametrize("fault", FAULT_NAMES)
async def test_every_answer_under_each_fault_matches_the_contract(
    spec: dict[str, Any], simulator_factory: SimulatorFactory, xai_client: Client,
    xai_sim_config: SimConfig, fake_clock: FakeClock, fault: str,
) -> None:  # fmt: skip
    faults: dict[str, Any] = {fault: Fault(at={2, 4})}  # one field named at run time
    config = dataclasses.replace(xai_sim_config, **faults, refuse_duration=0.0, slow_delay=0.0)
    sim = await simulator_factory(config, clock=fake_clock)
    answers = await _session(xai_client(sim), fake_clock)
    assert answers
    for operation, reply in answers:
        is_json = reply.headers["Content-Type"].startswith("application/json")
        if reply.status == 200 and is_json and "code" in reply.json():
            assert fault == "body_error"  # a 200 whose body is an error: not in the contract
            validator(spec, "Error").validate(reply.json())
            continue
        check_answer(spec, operation, reply)
    if fault not in ("truncated", "expired", "unsized_cut", "wrong_type", "short_copy"):  # CDN
        assert sim.stats.faults[fault] >= 1, fault
