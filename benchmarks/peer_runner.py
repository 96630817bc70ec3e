"""An independent peer of ``batchgen run``, written as users write one: a baseline.

aiohttp for the requests and aiolimiter for the rate, as aiolimiter's documentation shows it
(``AsyncLimiter(max_rate, time_period)``, every request inside ``async with limiter:``): every
task submitted at once, each polled every 5 s until it is done (``backoff``: the wait grows by
half each time, up to a minute), a 429 waited out as its ``Retry-After`` (else its
``X-RateLimit-Reset``) says, then sent again. It keeps no state, downloads nothing and shares
no code with batchgen: only its requests are compared (``bench_run.py --grid``, where the
simulator counts its 429s).

Durations are compressed by ``k`` as in ``bench_run.py``: the limiter's period is ``60 / k``
seconds, the polls ``5 / k`` apart. Needs the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PeerResult", "run_peer"]

POLL = 5.0  # seconds between polls, before compression
MAX_POLL = 60.0  # the longest wait of the backoff variant, before compression


@dataclass
class PeerResult:
    """What one peer run did; times in wall seconds from the first task id back."""

    makespan: float = 0.0
    submit_span: float = 0.0
    rate_limited: int = 0  # 429s it met
    done: int = 0
    failed: int = 0
    ends: list[float] = field(default_factory=list)


async def run_peer(
    base_url: str,
    token: str,
    prompts: Sequence[str],
    *,
    rpm: int,
    k: float = 1.0,
    backoff: bool = False,
) -> PeerResult:
    """Submit one task per prompt against ``base_url`` at ``rpm`` per ``60 / k`` seconds and
    poll each until it is done; see the module's docstring."""
    import aiohttp
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(rpm, 60.0 / k)
    result = PeerResult()
    created: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}

    async with aiohttp.ClientSession(base_url, headers=headers) as session:

        async def call(method: str, path: str, **options: Any) -> dict[str, Any]:
            while True:
                async with limiter, session.request(method, path, **options) as response:
                    if response.status != 429:
                        response.raise_for_status()
                        body: dict[str, Any] = await response.json()
                        return body
                    result.rate_limited += 1
                    wait = response.headers.get("Retry-After") or response.headers.get(
                        "X-RateLimit-Reset", "1"
                    )
                await asyncio.sleep(float(wait))

        async def one(prompt: str) -> float:
            body = {"prompt": prompt, "mode": "normal", "ratio": "1:1"}
            task_id = (await call("POST", "/v1/generate", json=body))["data"]["task_id"]
            created.append(time.monotonic())
            wait = POLL / k
            while True:
                await asyncio.sleep(wait)
                answer = await call("GET", "/v1/status", params={"task_id": task_id})
                status = answer["data"]["status"]
                if status in ("completed", "failed"):
                    result.done += status == "completed"
                    result.failed += status == "failed"
                    return time.monotonic()
                if backoff:
                    wait = min(wait * 1.5, MAX_POLL / k)

        ends = await asyncio.gather(*(one(prompt) for prompt in prompts))
    first = min(created)
    result.ends = [end - first for end in ends]
    result.makespan = max(result.ends)
    result.submit_span = max(created) - first
    return result
