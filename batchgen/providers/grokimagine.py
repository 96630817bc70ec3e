"""The GrokImagine client: ``submit`` and ``status`` over one shared aiohttp session.

This is the only module that knows GrokImagine's URLs, JSON envelope and headers; it turns
every answer into the domain values and errors of :mod:`batchgen.providers.base`. What a
``POST /v1/generate`` answer proves (created / not created / ambiguous) is decided by the table
in :mod:`batchgen.providers.submit_table`, never here. Bodies are read incrementally up to
``max_answer_bytes`` and every request has a total time limit (capped by the run's time left),
so neither a huge nor a trickling answer can hold a run past its deadline.

The token lives only in the session's default headers; it is never part of a repr, an
exception message or a log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from batchgen.config import TOKEN_ENV, Timeouts
from batchgen.errors import (
    AmbiguousSubmitError,
    AuthError,
    NotSentError,
    PermanentApiError,
    ProtocolError,
    RateLimitedError,
    TaskGoneError,
    TransientApiError,
)
from batchgen.models import JobSpec, TaskStatus
from batchgen.providers.answers import (
    parse_status,
    task_id_of,
)
from batchgen.providers.base import ApiHealth, SendMark
from batchgen.providers.endpoint import check_transport, resolve_base_url
from batchgen.providers.ratelimit import (
    DEFAULT_RESET,
    RateInfo,
    parse_rate_headers,
    parse_reset,
)
from batchgen.providers.submit_table import Proof, Rule, SubmitAnswer, decide_submit
from batchgen.providers.token import Token, load_token
from batchgen.providers.wire import (
    NoAnswer,
    NotSent,
    Reply,
    detail,
    headers_sent,
    read_reply,
    reason,
)

__all__ = [
    "DEFAULT_RESET",
    "MAX_ANSWER_BYTES",
    "MAX_PICTURE_BYTES",
    "MAX_URLS_PER_TASK",
    "PICTURE_FORMATS",
    "ApiClient",
    "RateInfo",
    "Token",
    "check_transport",
    "generate_body",
    "load_token",
    "parse_rate_headers",
    "parse_reset",
    "resolve_base_url",
]

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1_000_000  # a status answer is a few hundred bytes
MAX_URLS_PER_TASK = 20
#: The picture formats a row may send. GrokImagine's contract names none (its example is a
#: PNG; a rejected task says "File type not supported"); the model's maker documents JPEG,
#: PNG and WebP for video input (xai-video-api.md section 6), so those three, no more.
PICTURE_FORMATS = ("JPEG", "PNG", "WebP")
#: The largest picture a row may send, bytes. Undocumented by GrokImagine and by xAI for
#: video input; 10 MB is the limit a reseller of the same model states (xai-video-api.md
#: section 6), the strictest figure known.
MAX_PICTURE_BYTES = 10 * 1024 * 1024


#: Called with every response's rate information and HTTP status (the throttle listens).
ResponseHook = Callable[[RateInfo, int], None]


def generate_body(spec: JobSpec) -> dict[str, Any]:
    """The JSON body of ``POST /v1/generate`` for ``spec`` (contract: ``GenerateRequest`` in
    ``tests/contract/grokimagine.json``): ``mode``, ``prompt``, ``ratio``, and ``images``
    only when there are some. A request field the vendor has no word for is not sent."""
    body: dict[str, Any] = {"mode": spec.mode, "prompt": spec.prompt, "ratio": spec.ratio}
    if spec.images:
        body["images"] = list(spec.images)
    return body


class ApiClient:
    """Talks to the vendor (a :class:`~batchgen.providers.base.Provider`).

    Use as ``async with ApiClient(...) as api``. ``time_left`` returns the seconds the run
    may still spend (None: no deadline); every request's total time limit is capped by it.
    """

    def __init__(
        self,
        base_url: str,
        token: Token,
        *,
        timeouts: Timeouts | None = None,
        on_response: ResponseHook | None = None,
        max_connections: int = 64,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        max_urls: int = MAX_URLS_PER_TASK,
        time_left: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_transport(base_url)
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeouts = timeouts or Timeouts()
        self._on_response = on_response
        self._max_connections = max_connections
        self._max_answer = max_answer_bytes
        self._max_urls = max_urls
        self._time_left = time_left
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.rate_limited = 0
        self.token_accepted = False  # True once any answer other than 401 came back
        self.health = ApiHealth()
        self._unknown_statuses: set[str] = set()

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    @property
    def host(self) -> str:
        """The API's host[:port]."""
        return urlsplit(self.base_url).netloc

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_sent)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"Authorization": f"Bearer {self._token.reveal()}"},
            raise_for_status=False,
            trace_configs=[trace],
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (it carries the token: never use it for the CDN)."""
        if self._session is None:
            raise RuntimeError("ApiClient used outside 'async with'")
        return self._session

    # ------------------------------------------------------------------ submit
    def _cannot_connect(self, exc: Exception) -> str:
        # aiohttp names its TLS context ("ssl:default") even for plain http: noise to a reader
        return f"could not connect to {self.host}: {str(exc).replace(' ssl:default', '')}"

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        """Start one generation; returns the vendor's task id (errors: ``providers.base``)."""
        where = "POST /v1/generate"
        try:
            reply = await self._exchange(
                "POST", "/v1/generate", json_body=generate_body(spec), mark=mark
            )
        except NotSent as exc:
            self._proved(SubmitAnswer(sent=False))
            raise NotSentError(self._cannot_connect(exc)) from None
        except NoAnswer as exc:
            rule = self._proved(SubmitAnswer(status=None))
            raise AmbiguousSubmitError(f"{where}: {exc}; {rule.why}") from None
        answer = SubmitAnswer(
            status=reply.status,
            vendor_json=reply.vendor_json,
            code=reply.code,
            task_id=task_id_of(reply.body) if reply.complete else None,
        )
        rule = self._proved(answer)
        if rule.proof is Proof.CREATED:
            assert answer.task_id is not None
            if reply.status >= 400 or (answer.code or 0) >= 400:
                log.warning(
                    "%s answered HTTP %d (code %s) but named task %s: recorded, not resent",
                    where,
                    reply.status,
                    answer.code,
                    answer.task_id,
                )
            return answer.task_id
        if rule.proof is Proof.AUTH:
            raise self._auth_error(reply)
        if rule.proof is Proof.RETRY:
            raise self._rate_limited(reply, where)
        if rule.proof is Proof.REFUSED:
            raise PermanentApiError(
                f"{reply.message} (HTTP {answer.effective})", status=reply.status, code=answer.code
            )
        raise AmbiguousSubmitError(
            f"{where}: HTTP {reply.status}{detail(reply)}; {rule.why}", status=reply.status
        )

    @staticmethod
    def _proved(answer: SubmitAnswer) -> Rule:
        rule = decide_submit(answer)
        log.debug("submit answer %s: %s (%s)", answer, rule.proof, rule.name)
        return rule

    # ------------------------------------------------------------------ status
    async def status(self, task_id: str) -> TaskStatus:
        """The current state of one task (errors: ``providers.base``)."""
        where = "GET /v1/status"
        try:
            reply = await self._exchange("GET", "/v1/status", params={"task_id": task_id})
        except NotSent as exc:
            raise NotSentError(self._cannot_connect(exc)) from None
        except NoAnswer as exc:
            raise TransientApiError(f"{where}: {exc}") from None
        code = reply.code or 0
        if reply.status == 401 or code == 401:
            raise self._auth_error(reply)
        if reply.status == 429 or code == 429:
            raise self._rate_limited(reply, where)
        if reply.status >= 500 or code >= 500:
            raise TransientApiError(
                f"{where}: HTTP {max(reply.status, code)}{detail(reply)}",
                status=reply.status,
                code=reply.code,
                retry_after=reply.rate.retry_after,
            )
        if reply.over_limit:
            raise ProtocolError(f"task {task_id}: {reply.problem}")
        if not reply.complete or reply.body is None:
            raise TransientApiError(
                f"{where}: HTTP {reply.status}{detail(reply)}",
                status=reply.status,
                retry_after=reply.rate.retry_after,
            )
        effective = code if code >= 400 else reply.status
        if 400 <= effective < 500 and reply.vendor_json:
            self._raise_refused(task_id, reply, effective)
        if effective >= 300:
            raise TransientApiError(
                f"{where}: HTTP {effective}: {reply.message}",
                status=reply.status,
                code=reply.code,
                retry_after=reply.rate.retry_after,
            )
        data = reply.body.get("data") if isinstance(reply.body, dict) else None
        status, recognised = parse_status(task_id, data, max_urls=self._max_urls)
        if not recognised and status.status.lower() not in self._unknown_statuses:
            self._unknown_statuses.add(status.status.lower())
            log.warning(
                "the API reported an unknown task status %r; treating it as not done",
                status.status,
            )
        return status

    @staticmethod
    def _raise_refused(task_id: str, reply: Reply, effective: int) -> None:
        message = reply.message
        if effective in (400, 404, 410) and "task" in message.lower():
            raise TaskGoneError(
                f"the vendor does not know task {task_id} (HTTP {effective}: {message})",
                status=reply.status,
                code=reply.code,
            )
        raise PermanentApiError(f"{message} (HTTP {effective})", status=reply.status)

    # ------------------------------------------------------------------ both
    def _auth_error(self, reply: Reply) -> AuthError:
        return AuthError(
            f"the API at {self.host} refused the token (HTTP 401: {reply.message}); "
            f"check {TOKEN_ENV}",
            status=reply.status,
            code=reply.code,
        )

    def _rate_limited(self, reply: Reply, where: str) -> RateLimitedError:
        self.rate_limited += 1
        return RateLimitedError(
            f"{where}: rate limited (HTTP 429)",
            status=reply.status,
            code=reply.code,
            retry_after=reply.rate.pause(),
        )

    def _timeout(self, method: str) -> aiohttp.ClientTimeout:
        read = self._timeouts.submit_read if method == "POST" else self._timeouts.status_read
        total = read + self._timeouts.connect
        left = self._time_left() if self._time_left is not None else None
        if left is not None:
            total = max(0.01, min(total, left))
        return aiohttp.ClientTimeout(
            total=total,
            sock_connect=self._timeouts.connect,
            connect=self._timeouts.connect * 2,
            sock_read=read,
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        mark: SendMark | None = None,
    ) -> Reply:
        self.requests += 1
        try:
            reply = await self._request(method, path, json_body, params, mark or SendMark())
        except NotSent as exc:
            self.health.failed(self.clock(), self._cannot_connect(exc))
            raise
        except NoAnswer as exc:
            self.health.failed(self.clock(), f"{self.host} did not answer: {exc}")
            raise
        if reply.status >= 500 or not reply.complete:
            self.health.failed(self.clock(), f"{self.host} answered HTTP {reply.status}")
        else:
            self.health.succeeded(self.clock())
        if self._on_response is not None:
            self._on_response(reply.rate, reply.status)
        if reply.status != 401 and reply.code != 401:
            self.token_accepted = True
        return reply

    async def _request(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        mark: SendMark,
    ) -> Reply:
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                json=json_body,
                params=params,
                timeout=self._timeout(method),
                trace_request_ctx=mark,
            ) as response:
                return await read_reply(response, self._max_answer)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSent(reason(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoAnswer(f"connection lost after sending: {reason(exc)}") from exc
