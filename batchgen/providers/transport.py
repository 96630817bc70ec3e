"""What every HTTP provider shares: one aiohttp session carrying the token, bounded answers,
time limits capped by the run's time left, the health record and the throttle's hook.

A vendor's client (``providers/grokimagine.py``, ``providers/xai.py``) subclasses
:class:`HttpClient` and writes only its wire format: its paths, its bodies, and how its answers
map into the domain (the POST decision table of :mod:`batchgen.providers.submit_table`, the
errors of :mod:`batchgen.errors`, :class:`~batchgen.models.TaskStatus`). The hooks it may use
are the public methods below; nothing here knows a vendor.

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

from batchgen.config import Timeouts
from batchgen.errors import (
    AmbiguousSubmitError,
    AuthError,
    NoSuchEndpointError,
    NotSentError,
    PermanentApiError,
    RateLimitedError,
)
from batchgen.providers.base import ApiHealth, SendMark
from batchgen.providers.descriptor import ResponseHook
from batchgen.providers.endpoint import check_transport
from batchgen.providers.submit_table import Proof, Rule, SubmitAnswer, decide_submit
from batchgen.providers.token import Token
from batchgen.providers.wire import (
    NoAnswer,
    NotSent,
    Reply,
    detail,
    headers_sent,
    read_reply,
    reason,
)

__all__ = ["MAX_ANSWER_BYTES", "HttpClient"]

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1_000_000  # a status answer is a few hundred bytes


class HttpClient:
    """One vendor's HTTP session (a base for :class:`~batchgen.providers.base.Provider`\\ s).

    Use as ``async with Client(...) as api``. ``time_left`` returns the seconds the run may
    still spend (None: no deadline); every request's total time limit is capped by it.
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
        time_left: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_transport(base_url)
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeouts = timeouts or Timeouts()
        self._on_response = on_response
        self._max_connections = max_connections
        self.max_answer = max_answer_bytes
        self._time_left = time_left
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.rate_limited = 0
        self.token_accepted = False  # True once any answer other than a token refusal came back
        self.health = ApiHealth()
        self._unknown_statuses: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    @property
    def host(self) -> str:
        """The API's host[:port]."""
        return urlsplit(self.base_url).netloc

    async def __aenter__(self) -> Any:
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_sent)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"Authorization": f"Bearer {self.token.reveal()}"},
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
            raise RuntimeError(f"{type(self).__name__} used outside 'async with'")
        return self._session

    # ------------------------------------------------------------------ the paid request
    async def create(
        self,
        path: str,
        body: Any,
        to_answer: Callable[[Reply], SubmitAnswer],
        *,
        mark: SendMark | None = None,
    ) -> str:
        """POST ``body`` to ``path`` and return the task id it created, or raise what the
        answer proves (:mod:`batchgen.providers.submit_table`): ``NotSentError`` /
        ``RateLimitedError`` (nothing created: send again), ``AuthError`` (stop the run),
        ``PermanentApiError`` (the row is refused) or ``AmbiguousSubmitError`` (maybe created:
        never resent silently). ``to_answer`` is the vendor's mapping of its reply into the
        table's terms; everything else is the same for every vendor."""
        where = f"POST {path}"
        try:
            reply = await self.exchange("POST", path, json_body=body, mark=mark)
        except NotSent as exc:
            self.proved(SubmitAnswer(sent=False))
            raise NotSentError(self.cannot_connect(exc)) from None
        except NoAnswer as exc:
            rule = self.proved(SubmitAnswer(status=None))
            raise AmbiguousSubmitError(f"{where}: {exc}; {rule.why}") from None
        answer = to_answer(reply)
        rule = self.proved(answer)
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
            raise self.auth_error(reply)
        if rule.proof is Proof.RETRY:
            raise self.rate_limited_error(reply, where)
        if rule.proof is Proof.REFUSED:
            raise PermanentApiError(
                f"{self.message(reply)} (HTTP {answer.effective})",
                status=reply.status,
                code=answer.code,
            )
        if reply.status in (404, 405) and not answer.vendor_json:
            raise NoSuchEndpointError(
                f"{self.base_url}{path} answered HTTP {reply.status}{detail(reply)}: no such "
                f"endpoint there; is the base URL right, and the provider (--provider)? "
                f"{rule.why}",
                status=reply.status,
            )
        raise AmbiguousSubmitError(
            f"{where}: HTTP {reply.status}{detail(reply)}; {rule.why}", status=reply.status
        )

    # ------------------------------------------------------------------ hooks for vendors
    def message(self, reply: Reply) -> str:
        """The vendor's words in an answer (a vendor with another error shape overrides)."""
        return reply.message

    def auth_error(self, reply: Reply) -> AuthError:
        """The token was refused: the run stops; the message names the token's source."""
        return AuthError(
            f"the API at {self.host} refused the token (HTTP {reply.status}: "
            f"{self.message(reply)}); check {self.token.source}",
            status=reply.status,
            code=reply.code,
        )

    def rate_limited_error(self, reply: Reply, where: str) -> RateLimitedError:
        """A 429: nothing was created; the pause the server asked for, if any."""
        self.rate_limited += 1
        return RateLimitedError(
            f"{where}: rate limited (HTTP 429)",
            status=reply.status,
            code=reply.code,
            retry_after=reply.rate.pause(),
        )

    def cannot_connect(self, exc: Exception) -> str:
        """``could not connect to HOST: why`` (for NotSentError messages)."""
        # aiohttp names its TLS context ("ssl:default") even for plain http: noise to a reader
        return f"could not connect to {self.host}: {str(exc).replace(' ssl:default', '')}"

    @staticmethod
    def proved(answer: SubmitAnswer) -> Rule:
        """What a POST's answer proves (the one table), logged at debug level."""
        rule = decide_submit(answer)
        log.debug("submit answer %s: %s (%s)", answer, rule.proof, rule.name)
        return rule

    def refuses_token(self, reply: Reply) -> bool:
        """Whether ``reply`` says the token is wrong (a vendor may say so in its own way)."""
        return reply.status == 401 or reply.code == 401

    def unknown_status(self, word: str) -> None:
        """Log a status word nobody documented, once per word and run."""
        if word.lower() not in self._unknown_statuses:
            self._unknown_statuses.add(word.lower())
            log.warning(
                "%s reported an unknown task status %r; treating it as not done until the "
                "task deadline",
                self.host,
                word,
            )

    def timeout(self, method: str) -> aiohttp.ClientTimeout:
        """The time limits of one request (a POST waits longer: an answer beats a doubt)."""
        read = self.timeouts.submit_read if method == "POST" else self.timeouts.status_read
        total = read + self.timeouts.connect
        left = self._time_left() if self._time_left is not None else None
        if left is not None:
            total = max(0.01, min(total, left))
        return aiohttp.ClientTimeout(
            total=total,
            sock_connect=self.timeouts.connect,
            connect=self.timeouts.connect * 2,
            sock_read=read,
        )

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        mark: SendMark | None = None,
    ) -> Reply:
        """One request and its bounded answer; raises NotSent / NoAnswer (``wire``). Counts
        the request, records health, feeds the throttle's hook."""
        self.requests += 1
        try:
            reply = await self._request(method, path, json_body, params, data, mark or SendMark())
        except NotSent as exc:
            self.health.failed(self.clock(), self.cannot_connect(exc))
            raise
        except NoAnswer as exc:
            self.health.failed(self.clock(), f"{self.host} did not answer: {exc}")
            raise
        if reply.status >= 500 or not reply.complete:
            self.health.failed(self.clock(), f"{self.host} answered HTTP {reply.status}")
        else:
            self.health.succeeded(self.clock())
        self.observed(reply)
        if not self.refuses_token(reply):
            self.token_accepted = True
        return reply

    def observed(self, reply: Reply) -> None:
        """Hand one answer's rate information to the throttle."""
        if self._on_response is not None:
            self._on_response(reply.rate, reply.status)

    async def _request(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        data: Any,
        mark: SendMark,
    ) -> Reply:
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                json=json_body,
                params=params,
                data=data,
                timeout=self.timeout(method),
                trace_request_ctx=mark,
            ) as response:
                return await read_reply(response, self.max_answer)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSent(reason(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoAnswer(f"connection lost after sending: {reason(exc)}") from exc
