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
from collections.abc import Callable
from typing import Any

from batchgen.config import Timeouts
from batchgen.errors import (
    NotSentError,
    PermanentApiError,
    ProtocolError,
    TaskGoneError,
    TransientApiError,
)
from batchgen.models import JobSpec, TaskStatus
from batchgen.providers.answers import (
    GROKIMAGINE_WORDS,
    parse_status,
    task_id_of,
)
from batchgen.providers.base import SendMark
from batchgen.providers.descriptor import (
    CREDIT,
    ClientOptions,
    LimitModel,
    Price,
    ProviderInfo,
    RequestField,
    ResponseHook,
)
from batchgen.providers.endpoint import check_transport, resolve_base_url
from batchgen.providers.ratelimit import (
    DEFAULT_RESET,
    RateInfo,
    parse_rate_headers,
    parse_reset,
)
from batchgen.providers.submit_table import SubmitAnswer
from batchgen.providers.token import GROKIMAGINE_TOKEN, Token, load_token
from batchgen.providers.transport import MAX_ANSWER_BYTES, HttpClient
from batchgen.providers.wire import NoAnswer, NotSent, Reply, detail

__all__ = [
    "DEFAULT_RESET",
    "GROKIMAGINE",
    "MAX_ANSWER_BYTES",
    "MAX_PICTURE_BYTES",
    "MAX_URLS_PER_TASK",
    "PICTURE_FORMATS",
    "ApiClient",
    "RateInfo",
    "ResponseHook",
    "Token",
    "check_transport",
    "generate_body",
    "load_token",
    "parse_rate_headers",
    "parse_reset",
    "resolve_base_url",
]

log = logging.getLogger(__name__)

MAX_URLS_PER_TASK = 20
#: The picture formats a row may send. GrokImagine's contract names none (its example is a
#: PNG; a rejected task says "File type not supported"); the model's maker documents JPEG,
#: PNG and WebP for video input (xai-video-api.md section 6), so those three, no more.
PICTURE_FORMATS = ("JPEG", "PNG", "WebP")
#: The largest picture a row may send, bytes. Undocumented by GrokImagine and by xAI for
#: video input; 10 MB is the limit a reseller of the same model states (xai-video-api.md
#: section 6), the strictest figure known.
MAX_PICTURE_BYTES = 10 * 1024 * 1024


def generate_body(spec: JobSpec) -> dict[str, Any]:
    """The JSON body of ``POST /v1/generate`` for ``spec`` (contract: ``GenerateRequest`` in
    ``tests/contract/grokimagine.json``): ``mode``, ``prompt``, ``ratio``, and ``images``
    only when there are some. A request field the vendor has no word for is not sent."""
    body: dict[str, Any] = {"mode": spec.mode, "prompt": spec.prompt, "ratio": spec.ratio}
    if spec.images:
        body["images"] = list(spec.images)
    return body


def _answer(reply: Reply) -> SubmitAnswer:
    """A ``POST /v1/generate`` reply in the decision table's terms: its status, whether the
    body is the vendor's envelope, the envelope's ``code`` and the task id it names."""
    return SubmitAnswer(
        status=reply.status,
        vendor_json=reply.vendor_json,
        code=reply.code,
        task_id=task_id_of(reply.body) if reply.complete else None,
    )


class ApiClient(HttpClient):
    """Talks to the GrokImagine reseller (a :class:`~batchgen.providers.base.Provider`).

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
        super().__init__(
            base_url,
            token,
            timeouts=timeouts,
            on_response=on_response,
            max_connections=max_connections,
            max_answer_bytes=max_answer_bytes,
            time_left=time_left,
            clock=clock,
        )
        self._max_urls = max_urls

    @classmethod
    def from_options(cls, options: ClientOptions) -> ApiClient:
        """The client :data:`GROKIMAGINE` opens for a run."""
        return cls(
            options.base_url,
            options.token,
            timeouts=options.timeouts,
            on_response=options.on_response,
            max_answer_bytes=options.max_answer_bytes,
            max_urls=options.max_urls,
            time_left=options.time_left,
        )

    async def __aenter__(self) -> ApiClient:
        await super().__aenter__()
        return self

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        """Start one generation; returns the vendor's task id (errors: ``providers.base``)."""
        return await self.create("/v1/generate", generate_body(spec), _answer, mark=mark)

    # ------------------------------------------------------------------ status
    async def status(self, task_id: str) -> TaskStatus:
        """The current state of one task (errors: ``providers.base``)."""
        where = "GET /v1/status"
        try:
            reply = await self.exchange("GET", "/v1/status", params={"task_id": task_id})
        except NotSent as exc:
            raise NotSentError(self.cannot_connect(exc)) from None
        except NoAnswer as exc:
            raise TransientApiError(f"{where}: {exc}") from None
        code = reply.code or 0
        if reply.status == 401 or code == 401:
            raise self.auth_error(reply)
        if reply.status == 429 or code == 429:
            raise self.rate_limited_error(reply, where)
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
        status, recognised = parse_status(
            task_id, data, max_urls=self._max_urls, words=GROKIMAGINE_WORDS
        )
        if not recognised:
            self.unknown_status(status.status)
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


#: The reseller (``../shared/grokimagine-api.md``): style ``mode`` and ``ratio`` required, image
#: URLs only, 40 credits a task, 100/1,000/5,000 requests a minute per account by tier.
GROKIMAGINE = ProviderInfo(
    name="grokimagine",
    label="GrokImagine",
    token_env=GROKIMAGINE_TOKEN.env,
    token_file_env=GROKIMAGINE_TOKEN.file_env,
    base_url_env="GROKIMAGINE_BASE_URL",
    default_base_url="https://grokimagineapi.com",
    fields=(
        RequestField(name="mode", wire="mode", values=("fun", "normal", "spicy"), required=True),
        RequestField(name="ratio", wire="ratio", values=("2:3", "3:2", "1:1"), required=True),
    ),
    price=Price(per_task=40, floor=True),
    unit=CREDIT,
    limits=LimitModel(
        requests=100,
        window=60.0,
        tiers={"free": 100, "pro": 1000, "enterprise": 5000},
        default_tier="free",
    ),
    words=GROKIMAGINE_WORDS,
    link_lifetime=None,
    images_max=None,
    local_images=None,
    open=ApiClient.from_options,
    picture_formats=PICTURE_FORMATS,
    picture_max_bytes=MAX_PICTURE_BYTES,
    docs="the GrokImagine REST reseller: 40 credits a video, 2:3, 3:2 or 1:1, image URLs",
)
