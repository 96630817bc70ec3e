"""The simulator's real answers, checked against the vendor's API contract.

The contract the tests use is the project's own restatement, ``tests/contract/grokimagine.json``
(JSON Schema draft 7 per documented response, plus the rate headers), so a fresh clone needs
nothing outside its tree. Every answer the simulator gives on an API path must be a response the
contract documents for that path: status, JSON body (schema, ``uri`` and ``date-time`` formats
checked) and rate headers. When the vendor's OpenAPI YAML is beside the project
(``../shared/grokimagine-openapi.yaml``), one more test checks that the restatement still agrees
with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from helpers.paths import CONTRACTS, SHARED

from batchgen.simulator import Fault, SimConfig, Simulator

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, Reply, SimClient, SimulatorFactory

CONTRACT = CONTRACTS / "grokimagine.json"
VENDOR_OPENAPI = SHARED / "grokimagine-openapi.yaml"
Client = Callable[[Simulator], "SimClient"]
VALID = {"mode": "fun", "prompt": "a beautiful landscape with mountains", "ratio": "1:1"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The project's restatement of the vendor contract."""
    document = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The contract's entry for ``method path``."""
    entry = spec["operations"][f"{method} {path}"]
    assert isinstance(entry, dict)
    return entry


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The JSON Schema called ``name``."""
    found = spec["schemas"][name]
    assert isinstance(found, dict)
    return found


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
    documented = operation(spec, method, path)["responses"]
    assert str(reply.status) in documented, f"{method} {path}: undocumented {reply.status}"
    assert reply.headers["Content-Type"].startswith("application/json")
    validate(reply.json(), schema(spec, documented[str(reply.status)]))
    for name, header in spec["rate_headers"].items():
        assert name in reply.headers, f"{method} {path} {reply.status}: no {name}"
        raw = reply.headers[name]
        value: Any = int(raw) if header["type"] == "integer" else raw
        validate(value, header)


def check_request(spec: dict[str, Any], body: Any) -> bool:
    """Whether ``body`` is a valid generate request according to the contract."""
    request = schema(spec, operation(spec, "post", "/v1/generate")["request"])
    try:
        validate(body, request)
    except jsonschema.ValidationError:
        return False
    return True


def test_the_contract_examples_validate_against_their_own_schemas(spec: dict[str, Any]) -> None:
    # Guards the checker itself: the vendor's examples must pass it.
    checked = 0
    for entry in spec["operations"].values():
        for status, example in entry["examples"].items():
            validate(example, schema(spec, entry["responses"][status]))
            checked += 1
    assert checked == 6
    assert check_request(spec, operation(spec, "post", "/v1/generate")["request_example"])
    assert not check_request(spec, {"mode": "fun"})


def _openapi_resolved(node: Any, document: dict[str, Any]) -> Any:
    """An OpenAPI node with local ``$ref``s inlined and ``nullable: true`` made JSON Schema."""
    if isinstance(node, list):
        return [_openapi_resolved(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _openapi_resolved(target, document)
    out = {k: _openapi_resolved(v, document) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def test_the_restatement_agrees_with_the_vendor_openapi(spec: dict[str, Any]) -> None:
    if not VENDOR_OPENAPI.is_file():
        pytest.skip(f"{VENDOR_OPENAPI} is not beside the project; nothing to compare with")
    vendor = yaml.safe_load(VENDOR_OPENAPI.read_text(encoding="utf-8"))
    for key, entry in spec["operations"].items():
        method, path = key.split(" ")
        documented = vendor["paths"][path][method]
        assert set(documented["responses"]) == set(entry["responses"]), key
        for status, name in entry["responses"].items():
            response = _openapi_resolved(documented["responses"][status], vendor)
            media = response["content"]["application/json"]
            assert media["schema"] == schema(spec, name), f"{key} {status}"
            assert {h: v["schema"] for h, v in response["headers"].items()} == spec["rate_headers"]
            if status in entry["examples"]:
                assert media["example"] == entry["examples"][status], f"{key} {status}"
        if "request" in entry:
            body = documented["requestBody"]["content"]["application/json"]
            assert _openapi_resolved(body["schema"], vendor) == schema(spec, entry["request"])


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
    validate(body_error.json(), schema(spec, "Error"))
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
