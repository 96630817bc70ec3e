"""Pure parts of the provider seam and the retry policy: one test per table row, no network.

The POST decision table (``providers/submit_table.py``), lenient body decoding, defensive
status parsing, rate-limit headers, token files, ``retry.decide`` and the pause cap.
"""

from __future__ import annotations

import codecs
import json
import math
from pathlib import Path
from typing import Any, cast

import pytest

from batchgen.config import RetryPolicy, Settings
from batchgen.engine.guards import Guard, StopReason
from batchgen.engine.retry import Action, Outcome, Step, decide, task_error_kind
from batchgen.errors import ProtocolError, UsageError
from batchgen.models import TaskState
from batchgen.providers.answers import decode_json, parse_status, plausible_credits, task_id_of
from batchgen.providers.base import ApiHealth, Provider
from batchgen.providers.ratelimit import parse_rate_headers, parse_reset
from batchgen.providers.submit_table import SUBMIT_TABLE, Proof, SubmitAnswer, decide_submit
from batchgen.providers.token import load_token

# ---------------------------------------------------------------- the POST decision table
TABLE_CASES: list[tuple[str, SubmitAnswer, Proof]] = [
    ("task id", SubmitAnswer(status=200, vendor_json=True, code=200, task_id="t1"), Proof.CREATED),
    ("task id", SubmitAnswer(status=200, vendor_json=True, code=500, task_id="t1"), Proof.CREATED),
    ("task id", SubmitAnswer(status=504, task_id="t1"), Proof.CREATED),
    ("never sent", SubmitAnswer(sent=False), Proof.RETRY),
    ("no answer", SubmitAnswer(status=None), Proof.AMBIGUOUS),
    ("token refused", SubmitAnswer(status=401), Proof.AUTH),
    ("token refused", SubmitAnswer(status=200, vendor_json=True, code=401), Proof.AUTH),
    ("rate limited", SubmitAnswer(status=429), Proof.RETRY),
    ("rate limited", SubmitAnswer(status=200, vendor_json=True, code=429), Proof.RETRY),
    ("vendor 4xx", SubmitAnswer(status=400, vendor_json=True, code=400), Proof.REFUSED),
    ("vendor 4xx", SubmitAnswer(status=200, vendor_json=True, code=422), Proof.REFUSED),
    ("anything else", SubmitAnswer(status=400), Proof.AMBIGUOUS),  # a proxy's page
    ("anything else", SubmitAnswer(status=500, vendor_json=True, code=500), Proof.AMBIGUOUS),
    ("anything else", SubmitAnswer(status=503), Proof.AMBIGUOUS),
    ("anything else", SubmitAnswer(status=504), Proof.AMBIGUOUS),
    ("anything else", SubmitAnswer(status=200, vendor_json=True, code=500), Proof.AMBIGUOUS),
    ("anything else", SubmitAnswer(status=200, vendor_json=True, code=200), Proof.AMBIGUOUS),
    ("anything else", SubmitAnswer(status=200), Proof.AMBIGUOUS),  # HTML, cut, BOM-less junk
]


@pytest.mark.parametrize(("rule", "answer", "proof"), TABLE_CASES)
def test_each_row_of_the_submit_table(rule: str, answer: SubmitAnswer, proof: Proof) -> None:
    found = decide_submit(answer)
    assert (found.name, found.proof) == (rule, proof)


def test_every_row_of_the_table_is_tested() -> None:
    assert {rule.name for rule in SUBMIT_TABLE} == {case[0] for case in TABLE_CASES}
    # only the connection that never carried the request and a vendor-JSON 4xx (or the two
    # refusals that create nothing) prove "not created"
    assert {r.proof for r in SUBMIT_TABLE if r.proof is not Proof.AMBIGUOUS} == {
        Proof.CREATED,
        Proof.RETRY,
        Proof.REFUSED,
        Proof.AUTH,
    }


# ---------------------------------------------------------------- lenient decoding
ENVELOPE = {"code": 200, "message": "success", "data": {"task_id": "task_1"}}


@pytest.mark.parametrize(
    ("raw", "charset"),
    [
        (codecs.BOM_UTF8 + json.dumps(ENVELOPE).encode(), None),
        (codecs.BOM_UTF8 + json.dumps(ENVELOPE).encode(), "utf-8"),
        (codecs.BOM_UTF16_LE + json.dumps(ENVELOPE).encode("utf-16-le"), None),
        (b"\r\n  " + json.dumps(ENVELOPE).encode() + b"\n\n", None),
        (json.dumps(ENVELOPE).encode("latin-1"), "iso-8859-1"),
        (json.dumps(ENVELOPE).encode(), "no-such-charset"),
    ],
)
def test_bodies_are_decoded_leniently(raw: bytes, charset: str | None) -> None:
    assert decode_json(raw, charset) == ENVELOPE
    assert task_id_of(decode_json(raw, charset)) == "task_1"


@pytest.mark.parametrize("raw", [b"<html>502</html>", b'{"code": 200, "da', b"", b"\xff\xfe\x00"])
def test_what_is_not_json_is_none(raw: bytes) -> None:
    assert decode_json(raw) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"data": {"task_id": 123}}, "123"),
        ({"task_id": "top"}, "top"),
        ({"data": {"task_id": ""}}, None),
        ({"data": {"task_id": ["x"]}}, None),
        ({"data": {"task_id": "x" * 201}}, None),
        ({"data": {"task_id": "a\nb"}}, None),
        ({"data": "task"}, None),
    ],
)
def test_task_ids_are_taken_only_when_usable(body: dict[str, Any], expected: str | None) -> None:
    assert task_id_of(body) == expected


# ---------------------------------------------------------------- status fields
GOOD = {
    "status": "completed",
    "response": ["https://cdn.example/v.mp4"],
    "consumed_credits": 40,
    "error_message": None,
    "request": {"prompt": "p"},
    "created_at": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("response", 5, "'response' is 5"),
        ("response", {"a": 1}, "'response'"),
        ("response", ["ok", 7], "'response'"),
        ("status", ["completed"], "'status'"),
        ("error_message", {"x": 1}, "'error_message'"),
        ("response", [f"https://cdn/{i}" for i in range(21)], "21 video URLs"),
    ],
)
def test_a_field_that_cannot_be_used_is_a_protocol_error(
    field: str, value: Any, problem: str
) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_status("t1", GOOD | {field: value}, max_urls=20)


@pytest.mark.parametrize(
    ("field", "value"),
    [("request", "abc"), ("created_at", 5), ("created_at", "yesterday"), ("consumed_credits", "x")],
)
def test_a_field_nobody_relies_on_is_ignored_when_bad(field: str, value: Any) -> None:
    status, _ = parse_status("t1", GOOD | {field: value}, max_urls=20)
    assert status.state is TaskState.COMPLETED and status.urls


def test_a_lone_url_string_is_a_one_element_list() -> None:
    status, _ = parse_status("t1", GOOD | {"response": " https://cdn/v.mp4 "}, max_urls=20)
    assert status.urls == ("https://cdn/v.mp4",)


def test_completed_with_a_message_is_still_completed() -> None:
    status, _ = parse_status("t1", GOOD | {"error_message": "Network error"}, max_urls=20)
    assert status.state is TaskState.COMPLETED and status.error_message == "Network error"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(40, 40), (0, 0), ("40", 40), (40.4, 40), (-1000, None), (1e30, None)],
        *[(math.inf, None), (math.nan, None), (True, None), (None, None), ([40], None)],
        (4001, None),
    ],
)
def test_only_plausible_credits_are_believed(value: Any, expected: int | None) -> None:
    assert plausible_credits(value) == expected


# ---------------------------------------------------------------- rate-limit headers
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "nan", "x" * 300])
def test_unusable_reset_values_are_ignored(value: str) -> None:
    assert parse_reset(value, now=1_700_000_000.0) is None


def test_a_remaining_of_inf_is_ignored_not_a_crash() -> None:
    info = parse_rate_headers({"X-RateLimit-Remaining": "inf", "Retry-After": "1e400"})
    assert (info.remaining, info.retry_after) == (None, None)
    assert parse_rate_headers({"X-RateLimit-Remaining": "12.0"}).remaining == 12


def test_an_http_date_far_away_is_a_long_but_finite_pause() -> None:
    seconds = parse_reset("Fri, 31 Dec 9999 23:59:59 GMT", now=1_700_000_000.0)
    assert seconds is not None and seconds > 1e9


# ---------------------------------------------------------------- token files
def _token_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "token"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    "data",
    [b"sk-abc\n", codecs.BOM_UTF8 + b"sk-abc\n", b"  sk-abc  \r\n\r\n", b"sk-abc"],
)
def test_token_files_that_hold_one_token_line(tmp_path: Path, data: bytes) -> None:
    assert load_token({}, _token_file(tmp_path, data)).reveal() == "sk-abc"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"sk-abc\nsk-def\n", "2 lines"),
        ("sk-abc\n".encode("utf-16"), "UTF-16"),
        (b"sk-\xff\xfeabc", "not UTF-8"),
        (b"sk abc", "one word"),
        ("sk-ab\u00e9".encode(), "visible ASCII"),
        (b"\n \n", "empty"),
    ],
)
def test_any_other_token_file_is_one_clear_error(tmp_path: Path, data: bytes, problem: str) -> None:
    path = _token_file(tmp_path, data)
    with pytest.raises(UsageError, match=problem) as refused:
        load_token({}, path)
    assert str(path) in str(refused.value) and "sk-" not in str(refused.value)


# ---------------------------------------------------------------- retry.decide
POLICY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=60.0, jitter=0.5)


@pytest.mark.parametrize(
    ("outcome", "attempt", "action"),
    [
        (Outcome.AMBIGUOUS, 1, Action.ASK_USER),
        (Outcome.PERMANENT, 1, Action.GIVE_UP),
        (Outcome.PROTOCOL, 1, Action.GIVE_UP),
        (Outcome.GONE, 1, Action.GIVE_UP),
        (Outcome.TRANSIENT, 2, Action.RETRY),
        (Outcome.TRANSIENT, 3, Action.GIVE_UP),
        (Outcome.NOT_SENT, 50, Action.RETRY),  # not counted: the outage rule bounds it
        (Outcome.RATE_LIMITED, 11, Action.RETRY),
        (Outcome.RATE_LIMITED, 12, Action.LEAVE),  # a 429 storm never marks a row failed
    ],
)
def test_decide(outcome: Outcome, attempt: int, action: Action) -> None:
    assert decide(Step.SUBMIT, outcome, attempt, None, policy=POLICY).action is action


def test_decide_honours_the_hint_and_the_deadline() -> None:
    assert decide(Step.POLL, Outcome.TRANSIENT, 1, 20.0, policy=POLICY).delay == 20.0
    late = decide(Step.POLL, Outcome.TRANSIENT, 1, 20.0, policy=POLICY, time_left=5.0)
    assert late.action is Action.LEAVE and "deadline" in late.reason


def test_only_the_contracts_transient_messages_are_retried_on_their_own() -> None:
    assert task_error_kind("Network error, please try again later.") == "transient"
    assert task_error_kind("grok imagine build failed") == "transient"
    for message in ("Service unavailable", "timeout", "Inappropriate content", None):
        assert task_error_kind(message) == "permanent"


# ---------------------------------------------------------------- the pause cap
class _Api:
    host = "api.example"
    health = ApiHealth()

    def clock(self) -> float:
        return 0.0


def _guard(now: list[float], **settings: Any) -> tuple[Guard, list[tuple[StopReason, bool]]]:
    stops: list[tuple[StopReason, bool]] = []
    guard = Guard(
        Settings.from_options(**settings),
        cast(Provider, _Api()),  # a partial fake: the guard reads host, health and clock
        lambda: now[0],
        lambda r, h: stops.append((r, h)),
    )
    guard.start()
    return guard, stops


def test_a_pause_past_deadline_and_grace_halts_at_once() -> None:
    now = [100.0]
    guard, stops = _guard(now, max_runtime=10.0, grace=5.0)
    assert guard.cap_pause(86400.0) == 15.0
    assert stops == [(StopReason.DEADLINE, True)] and "86400" in (guard.message or "")


def test_a_pause_into_the_grace_only_stops_submissions() -> None:
    now = [100.0]
    guard, stops = _guard(now, max_runtime=10.0, grace=5.0)
    assert guard.cap_pause(12.0) == 12.0
    assert stops == [(StopReason.DEADLINE, False)]
    assert guard.cap_pause(3.0) == 3.0 and len(stops) == 1


def test_without_a_deadline_the_outage_timeout_caps_a_pause() -> None:
    now = [0.0]
    guard, stops = _guard(now, outage_timeout=600.0)
    assert guard.cap_pause(30.0) == 30.0 and not stops
    assert guard.cap_pause(86400.0) == 600.0 and stops == [(StopReason.DEADLINE, True)]


def test_a_bad_token_file_stops_the_cli_before_any_row_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batchgen.cli import main

    manifest = tmp_path / "m.csv"
    manifest.write_text("prompt,mode,ratio\na fox,fun,1:1\n", encoding="utf-8")
    token = _token_file(tmp_path, b"sk-abc\nsk-second-line\n")
    out = tmp_path / "outputs"
    code = main(["run", str(manifest), "--out", str(out), "--token-file", str(token)])
    err = capsys.readouterr().err
    assert code == 2 and str(token) in err and "Traceback" not in err
    assert "sk-second-line" not in err
    assert not out.exists()  # no state was even opened
