"""The GrokImagine client: ``submit`` and ``status`` over one shared aiohttp session.

Every outcome is classified into the error tree of ``batchgen.errors`` by what the caller
can do about it. The one distinction that matters for money is for ``POST /v1/generate``:

* the request never reached the server (refused, DNS, TLS, connect timeout): ``NotSentError``,
  safe to send again;
* the request left but no usable answer came back (reset, disconnect, read timeout, a 200 whose
  body cannot be read): ``AmbiguousSubmitError``; the vendor may have created and charged a task,
  so the caller must never resend it silently.

The token lives only in the session's default headers; it is never part of a repr, an
exception message or a log line.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from batchgen.config import BASE_URL_ENV, DEFAULT_BASE_URL, TOKEN_ENV, TOKEN_FILE_ENV, Timeouts
from batchgen.errors import (
    AmbiguousSubmitError,
    AuthError,
    InsecureTransportError,
    NotSentError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
    UsageError,
)
from batchgen.models import JobSpec, TaskState, TaskStatus

__all__ = [
    "DEFAULT_RESET",
    "ApiClient",
    "RateInfo",
    "Token",
    "check_transport",
    "load_token",
    "parse_rate_headers",
    "parse_reset",
    "resolve_base_url",
]

log = logging.getLogger(__name__)

#: Seconds to wait after a 429 whose reset header is missing or unreadable.
DEFAULT_RESET = 60.0
_BODY_PREVIEW = 120
_DONE = frozenset({"completed", "complete", "succeeded", "success", "done", "finished"})
_FAILED = frozenset(
    {"failed", "failure", "error", "errored", "cancelled", "canceled", "rejected", "timeout"}
)
_WAITING = frozenset(
    {"pending", "queued", "processing", "running", "in_progress", "started", "starting"}
)


class Token:
    """A secret that refuses to show itself in reprs, str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.strip()

    def reveal(self) -> str:
        """The raw token, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__


def load_token(environ: Mapping[str, str] | None = None, token_file: Path | None = None) -> Token:
    """The API token from ``GROKIMAGINE_API_TOKEN``, or from a token file that only its owner
    can read (``--token-file`` or ``GROKIMAGINE_API_TOKEN_FILE``)."""
    env = os.environ if environ is None else environ
    path = token_file or (Path(env[TOKEN_FILE_ENV]) if env.get(TOKEN_FILE_ENV) else None)
    if path is not None:
        return _read_token_file(path)
    value = env.get(TOKEN_ENV, "").strip()
    if not value:
        raise UsageError(
            f"no API token: set {TOKEN_ENV}, or point --token-file at a file only you can read"
        )
    return Token(value)


def _read_token_file(path: Path) -> Token:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"the token file {path} can be read by other users; run: chmod 600 {path}")
    if not text.strip():
        raise UsageError(f"the token file {path} is empty")
    return Token(text)


def resolve_base_url(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--base-url``, else ``GROKIMAGINE_BASE_URL``, else the vendor's URL."""
    env = os.environ if environ is None else environ
    url = option or env.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


def check_transport(base_url: str) -> None:
    """Refuse to send the token in clear text anywhere but this machine."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL {base_url!r} is not an http(s) URL")
    if parts.scheme == "https" or _is_loopback(parts.hostname):
        return
    raise InsecureTransportError(
        f"refusing to send the API token over plain http to {parts.hostname}; use https"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RateInfo:
    """What a response said about the account's request budget.

    ``reset_after`` and ``retry_after`` are seconds from now; None when absent or unreadable.
    """

    remaining: int | None = None
    reset_after: float | None = None
    retry_after: float | None = None

    def pause(self) -> float | None:
        """How long to hold every request back, if the server asked for a pause."""
        hints = [h for h in (self.retry_after, self.reset_after) if h is not None]
        return max(hints) if hints else None


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a reset given as seconds, Unix seconds, Unix milliseconds or an HTTP date.

    Garbage gives None (the caller then uses ``DEFAULT_RESET``); a time in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    now = time.time() if now is None else now
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now)
    if number != number or number < 0:  # NaN or negative
        return None
    if number >= 1e11:  # Unix milliseconds
        return max(0.0, number / 1000 - now)
    if number >= 1e9:  # Unix seconds
        return max(0.0, number - now)
    return number


def _seconds_until_http_date(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def parse_rate_headers(headers: Mapping[str, str], now: float | None = None) -> RateInfo:
    """Read ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` and ``Retry-After``; never raises."""
    return RateInfo(
        remaining=_parse_remaining(headers.get("X-RateLimit-Remaining")),
        reset_after=parse_reset(headers.get("X-RateLimit-Reset"), now),
        retry_after=parse_reset(headers.get("Retry-After"), now),
    )


def _parse_remaining(value: str | None) -> int | None:
    try:
        number = int(float(value.strip())) if value else None
    except ValueError:
        return None
    return None if number is None or number < 0 else number


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any  # parsed JSON, or None when the body was not JSON
    text: str
    rate: RateInfo


#: Called with every response's rate information and HTTP status (the throttle listens).
ResponseHook = Callable[[RateInfo, int], None]


class ApiClient:
    """Talks to the vendor. Use as ``async with ApiClient(...) as api``.

    ``requests`` and ``rate_limited`` count what this client sent and how many 429s it met.
    """

    def __init__(
        self,
        base_url: str,
        token: Token,
        *,
        timeouts: Timeouts | None = None,
        on_response: ResponseHook | None = None,
        max_connections: int = 64,
    ) -> None:
        check_transport(base_url)
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeouts = timeouts or Timeouts()
        self._on_response = on_response
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.rate_limited = 0
        self.token_accepted = False  # True once any answer other than 401 came back
        self._unknown_statuses: set[str] = set()

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"Authorization": f"Bearer {self._token.reveal()}"},
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (also used, without its auth header, by nobody else)."""
        if self._session is None:
            raise RuntimeError("ApiClient used outside 'async with'")
        return self._session

    async def submit(self, spec: JobSpec) -> str:
        """Start one generation; returns the vendor's task id."""
        try:
            reply = await self._send("POST", "/v1/generate", json_body=spec.payload())
        except TransientApiError as exc:
            if isinstance(exc, NotSentError) or exc.status is not None:
                raise
            raise AmbiguousSubmitError(
                f"the generate request was sent but no answer came back ({exc}); "
                "the vendor may have created and charged a task",
            ) from exc
        data = _data(reply)
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise AmbiguousSubmitError(
                f"the vendor accepted the request (HTTP {reply.status}) but sent no task id: "
                f"{_preview(reply.text)}",
                status=reply.status,
            )
        return task_id

    async def status(self, task_id: str) -> TaskStatus:
        """The current state of one task."""
        reply = await self._send("GET", "/v1/status", params={"task_id": task_id})
        data = _data(reply)
        if not isinstance(data, dict):
            raise TransientApiError(
                f"status answer without data (HTTP {reply.status}): {_preview(reply.text)}",
                status=reply.status,
            )
        return self._task_status(task_id, data)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> _Reply:
        is_post = method == "POST"
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._timeouts.connect,
            connect=self._timeouts.connect * 2,
            sock_read=self._timeouts.submit_read if is_post else self._timeouts.status_read,
        )
        self.requests += 1
        try:
            async with self.session.request(
                method, self.base_url + path, json=json_body, params=params, timeout=timeout
            ) as response:
                text = await response.text(errors="replace")
                reply = _Reply(
                    response.status, _json_or_none(text), text, parse_rate_headers(response.headers)
                )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSentError(f"could not connect to {self._host()}: {_reason(exc)}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientApiError(
                f"{method} {path}: connection lost after sending: {_reason(exc)}"
            ) from exc
        if self._on_response is not None:
            self._on_response(reply.rate, reply.status)
        if reply.status != 401 and _body_code(reply.body) != 401:
            self.token_accepted = True
        self._raise_for_outcome(reply, method, path)
        return reply

    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _raise_for_outcome(self, reply: _Reply, method: str, path: str) -> None:
        code = _body_code(reply.body)
        effective = code if code is not None and code >= 400 else reply.status
        if effective < 400 and reply.body is not None:
            return
        message = _message(reply)
        where = f"{method} {path}"
        if effective == 401 or reply.status == 401:
            raise AuthError(
                f"the API refused the token (HTTP 401: {message}); check {TOKEN_ENV}",
                status=reply.status,
                code=code,
            )
        if effective == 429:
            self.rate_limited += 1
            raise RateLimitedError(
                f"{where}: rate limited (HTTP 429)",
                status=reply.status,
                code=code,
                retry_after=reply.rate.pause(),
            )
        if reply.body is None:
            raise TransientApiError(
                f"{where}: HTTP {reply.status} with a body that is not JSON: "
                f"{_preview(reply.text)}",
                status=reply.status,
            )
        if 400 <= effective < 500:
            raise PermanentApiError(f"{message} (HTTP {effective})", status=reply.status, code=code)
        raise TransientApiError(
            f"{where}: server error {effective}: {message}", status=reply.status, code=code
        )

    def _task_status(self, task_id: str, data: Mapping[str, Any]) -> TaskStatus:
        raw = str(data.get("status") or "").strip()
        error = data.get("error_message")
        error_text = str(error) if error not in (None, "") else None
        urls = tuple(u for u in data.get("response") or () if isinstance(u, str) and u)
        state = self._interpret(raw, error_text)
        if state is TaskState.COMPLETED and not urls:
            state, error_text = TaskState.FAILED, "the task completed without any video URL"
        return TaskStatus(
            task_id=str(data.get("task_id") or task_id),
            status=raw,
            state=state,
            consumed_credits=_int(data.get("consumed_credits")),
            created_at=_iso(data.get("created_at")),
            error_message=error_text,
            urls=urls,
            request=dict(data.get("request") or {}),
        )

    def _interpret(self, raw: str, error: str | None) -> TaskState:
        status = raw.lower()
        if error is not None or status in _FAILED:
            return TaskState.FAILED
        if status in _DONE:
            return TaskState.COMPLETED
        if status not in _WAITING and status not in self._unknown_statuses:
            self._unknown_statuses.add(status)
            log.warning("the API reported an unknown task status %r; treating it as not done", raw)
        return TaskState.WAITING


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _body_code(body: Any) -> int | None:
    code = body.get("code") if isinstance(body, dict) else None
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _data(reply: _Reply) -> Any:
    return reply.body.get("data") if isinstance(reply.body, dict) else None


def _message(reply: _Reply) -> str:
    if isinstance(reply.body, dict):
        parts = [str(reply.body.get(k)) for k in ("message", "error") if reply.body.get(k)]
        if parts:
            return " / ".join(parts)
    return _preview(reply.text)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:_BODY_PREVIEW] + ("…" if len(flat) > _BODY_PREVIEW else ""))


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
