"""The simulator's real answers, checked against the vendor's OpenAPI description.

The YAML lives beside the project (``../shared/grokimagine-openapi.yaml``) and is read from
there, never copied. Every answer the simulator gives on an API path must be a response the
contract documents for that path: status, JSON body (schema, ``$ref``s resolved, OpenAPI's
``nullable`` honoured, ``uri`` and ``date-time`` formats checked) and rate headers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from batchgen.simulator import Fault, SimConfig, Simulator

if TYPE_CHECKING:
    from conftest import FakeClock, Reply, SimClient, SimulatorFactory

OPENAPI = Path(__file__).resolve().parents[1].parent / "shared" / "grokimagine-openapi.yaml"
Client = Callable[[Simulator], "SimClient"]
VALID = {"mode": "fun", "prompt": "a beautiful landscape with mountains", "ratio": "1:1"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The vendor's OpenAPI document."""
    if not OPENAPI.is_file():
        pytest.skip(f"the vendor contract {OPENAPI} is absent; the contract tests need it")
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def resolve(node: Any, document: dict[str, Any]) -> Any:
    """``node`` with every local ``$ref`` inlined and ``nullable: true`` made JSON Schema."""
    if isinstance(node, list):
        return [resolve(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return resolve(target, document)
    out = {key: resolve(value, document) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.path))


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value and parsed.tzinfo is not None


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("uri")(_is_uri)
FORMATS.checks("date-time")(_is_date_time)


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """JSON Schema validation with the formats the contract uses."""
    jsonschema.Draft7Validator(schema, format_checker=FORMATS).validate(instance)


def check_response(spec: dict[str, Any], method: str, path: str, reply: Reply) -> None:
    """``reply`` is one of the documented responses of ``method path``."""
    documented = spec["paths"][path][method]["responses"]
    assert str(reply.status) in documented, f"{method} {path}: undocumented {reply.status}"
    response = resolve(documented[str(reply.status)], spec)
    media = response["content"]["application/json"]
    assert reply.headers["Content-Type"].startswith("application/json")
    validate(reply.json(), media["schema"])
    for name, header in response["headers"].items():
        assert name in reply.headers, f"{method} {path} {reply.status}: no {name}"
        raw = reply.headers[name]
        value: Any = int(raw) if header["schema"]["type"] == "integer" else raw
        validate(value, header["schema"])


def check_request(spec: dict[str, Any], body: Any) -> bool:
    """Whether ``body`` is a valid generate request according to the contract."""
    content = spec["paths"]["/v1/generate"]["post"]["requestBody"]["content"]
    schema = resolve(content["application/json"]["schema"], spec)
    try:
        validate(body, schema)
    except jsonschema.ValidationError:
        return False
    return True


def test_the_contract_examples_validate_against_their_own_schemas(spec: dict[str, Any]) -> None:
    # Guards the checker itself: the vendor's examples must pass it.
    for methods in spec["paths"].values():
        for operation in methods.values():
            for response in operation["responses"].values():
                media = resolve(response, spec)["content"]["application/json"]
                validate(media["example"], media["schema"])
    assert check_request(spec, {**VALID, "images": ["https://example.com/image.png"]})


async def test_generate_answers_match_the_contract(
    spec: dict[str, Any],
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
) -> None:
    config = dataclasses.replace(
        fast_sim_config, rpm=4, server_error=Fault(at={3}), body_error=Fault(at={4})
    )
    client = sim_client(await simulator_factory(config))
    replies = [
        await client.generate(VALID),  # 200
        await client.generate({"mode": "fun"}),  # 400
        await client.generate(VALID),  # 500
        await client.generate(VALID),  # 200 whose body says 500
        await client.generate(VALID),  # 429
        await client.generate(VALID, token="wrong"),  # 401
        await client.generate(raw=b"<not json>", token=None),  # 401 beats 400
    ]
    assert [r.status for r in replies] == [200, 400, 500, 200, 429, 401, 401]
    body_error = replies.pop(3)
    for reply in replies:
        check_response(spec, "post", "/v1/generate", reply)
    # The documented oddity (grokimagine-api.md, Unknowns): a 200 whose body is an error.
    validate(body_error.json(), resolve(spec["components"]["schemas"]["Error"], spec))
    assert body_error.json()["code"] == 500


async def test_status_answers_match_the_contract_through_a_lifecycle(
    spec: dict[str, Any],
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(
        fast_sim_config,
        task_permanent=Fault(at={2}),
        unknown_status=Fault(at={3}),
        server_error=Fault(at={16}),  # 3 submits, 9 polls, 2 bad polls, 1 good poll, then this
    )
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    images = ["https://example.com/image.png"]
    task_ids = [
        await client.submit(),
        await client.submit("bad"),
        await client.submit(images=images),
    ]
    replies: list[Reply] = []
    for step in (0.0, 0.01, 60.0):  # queued, processing or odd, then finished
        fake_clock.advance(step)
        replies += [await client.status(task_id) for task_id in task_ids]
    statuses = [r.json()["data"]["status"] for r in replies]
    assert {"queued", "completed", "failed"} <= set(statuses)
    replies += [
        await client.status(None),
        await client.status("task_unknown"),
        await client.status(task_ids[0], token=None),  # 401s get no api ordinal
        await client.status(task_ids[0]),
        await client.status(task_ids[0]),
    ]
    assert [r.status for r in replies[-5:]] == [400, 400, 401, 200, 500]
    for reply in replies:
        check_response(spec, "get", "/v1/status", reply)


async def test_status_429_matches_the_contract(
    spec: dict[str, Any],
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
) -> None:
    config = dataclasses.replace(fast_sim_config, rpm=1, window_kind="sliding")
    client = sim_client(await simulator_factory(config))
    await client.status("task_x")
    reply = await client.status("task_x")
    assert reply.status == 429
    check_response(spec, "get", "/v1/status", reply)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mode": "fun", "ratio": "1:1"},
        {**VALID, "prompt": ""},
        {**VALID, "prompt": 3},
        {**VALID, "mode": "FUN"},
        {**VALID, "ratio": "4:3"},
        {**VALID, "ratio": None},
        {**VALID, "images": "https://example.com/a.png"},
        {**VALID, "images": [1]},
        {**VALID, "images": ["not a uri"]},
        [VALID],
    ],
)
async def test_the_simulator_rejects_whatever_the_contract_rejects(
    spec: dict[str, Any], simulator: Simulator, sim_client: Client, body: Any
) -> None:
    assert not check_request(spec, body)
    reply = await sim_client(simulator).generate(body)
    assert reply.status == 400
    check_response(spec, "post", "/v1/generate", reply)


@pytest.mark.parametrize(
    "body",
    [
        VALID,
        {**VALID, "mode": "normal", "ratio": "2:3"},
        {**VALID, "mode": "spicy", "ratio": "3:2", "images": []},
        {**VALID, "images": ["https://example.com/image.png", "http://cdn.example.org/b.jpg"]},
        {**VALID, "prompt": "ünïcödé 🎬 prompt", "extra": True},
    ],
)
async def test_the_simulator_accepts_typical_valid_requests(
    spec: dict[str, Any], simulator: Simulator, sim_client: Client, body: Any
) -> None:
    assert check_request(spec, body)
    reply = await sim_client(simulator).generate(body)
    assert reply.status == 200
    check_response(spec, "post", "/v1/generate", reply)
