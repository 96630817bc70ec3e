"""The shared window across hosts: the same rule as ``window_local``, in Redis.

``--limiter redis://HOST:PORT/DB`` (or ``limiter = "redis://…"`` in ``batchgen.toml``). The
account's keys are ``batchgen:window:<digest>:{answered,seen,flight,head}`` (the digest of
base URL and token, as for the local file): a sorted set of answer times and three hashes per
member. Every exchange is one Lua script, which Redis runs atomically (the sliding-window-log
pattern: drop what left the window, count, add), on the Redis server's own clock (``TIME``),
so the hosts' clocks are never compared. Every key expires after ``2 x KEEP`` seconds without
use. The client is redis-py's asyncio client, in the optional extra ``batchgen[redis]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from batchgen.engine.pacing.window import KEEP, STALE, SharedWindow, Verdict, WindowRequest
from batchgen.errors import UsageError
from batchgen.text import clean_text

__all__ = ["RedisWindow", "parse_verdict"]

# KEYS: answered (zset), seen (hash), flight (hash), head (hash).
# ARGV: owner, now ('' = the server's TIME), usable, window, keep, stale, want ('' = a
# heartbeat), after ('' = nothing else waits), count, returned, then the ages of the answers.
_SCRIPT = """
local answered, seen, flight, head = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local usable, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local keep, stale = tonumber(ARGV[5]), tonumber(ARGV[6])
local want, after = tonumber(ARGV[7]), tonumber(ARGV[8])
local count, returned = tonumber(ARGV[9]), tonumber(ARGV[10])

local flying = tonumber(redis.call('HGET', flight, owner) or '0')
redis.call('HSET', seen, owner, now)
local n = #ARGV - 10
if n > 0 then
  local seq = redis.call('HINCRBY', seen, '#seq', n)
  for i = 1, n do
    redis.call('ZADD', answered, now - tonumber(ARGV[10 + i]), owner .. ':' .. (seq - i))
  end
end
if n + returned > 0 then
  flying = math.max(0, flying - n - returned)
  redis.call('HSET', flight, owner, flying)
end
redis.call('ZREMRANGEBYSCORE', answered, '-inf', now - keep)
redis.call('ZREMRANGEBYSCORE', answered, '(' .. (now + keep), '+inf')

local used = redis.call('ZCOUNT', answered, '(' .. (now - window), '+inf')
local sharers, ahead = 0, 0
local members = redis.call('HGETALL', seen)
for i = 1, #members, 2 do
  local who, at = members[i], tonumber(members[i + 1])
  if who ~= '#seq' then
    if at <= now - keep or at > now + keep then
      redis.call('HDEL', seen, who)
      redis.call('HDEL', flight, who)
      redis.call('HDEL', head, who)
    elseif at > now - window then
      used = used + tonumber(redis.call('HGET', flight, who) or '0')
    end
    if who ~= owner and at > now - stale and at <= now + keep then
      sharers = sharers + 1
      if want then
        local h = tonumber(redis.call('HGET', head, who) or '')
        if h and (h < now + want or (h == now + want and who < owner)) then
          ahead = ahead + 1
        end
      end
    end
  end
end

local granted, retry_in = 0, 0
if want then
  granted = math.max(0, math.min(count, usable - used - ahead))
  if granted > 0 then
    redis.call('HSET', flight, owner, flying + granted)
    if after then
      redis.call('HSET', head, owner, now + after)
    else
      redis.call('HDEL', head, owner)
    end
  else
    redis.call('HSET', head, owner, now + want)
  end
end
if granted == 0 then
  local oldest = redis.call('ZRANGEBYSCORE', answered, '(' .. (now - window), '+inf',
    'WITHSCORES', 'LIMIT', 0, 1)
  if #oldest > 0 then retry_in = math.max(0, tonumber(oldest[2]) + window - now) end
end
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, math.ceil(2 * keep)) end
return {granted, used, sharers, tostring(retry_in)}
"""

_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


def _address(url: str) -> str:
    """``host:port/db`` of a ``redis://`` URL, without any password it may carry."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 6379}{parts.path or '/0'}"


def parse_verdict(reply: Any, count: int) -> Verdict:
    """The script's reply (``[granted, used, sharers, "retry_in"]``) as a Verdict; ValueError
    when it is not that shape. ``granted`` is kept within 0..``count`` (what was asked)."""
    if not isinstance(reply, list | tuple) or len(reply) != 4:
        raise ValueError(f"a reply of {_shape(reply)}, not the script's four values")
    try:
        granted, used, sharers = (int(v) for v in reply[:3])
        text = reply[3].decode("ascii") if isinstance(reply[3], bytes) else str(reply[3])
        retry_in = float(text)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"values that are not numbers: {reply!r}"[:120]) from exc
    if min(granted, used, sharers) < 0 or not math.isfinite(retry_in) or retry_in < 0:
        raise ValueError(f"impossible values {reply!r}"[:120])
    return Verdict(min(granted, count), used, sharers, retry_in)


def _shape(reply: Any) -> str:
    if isinstance(reply, list | tuple):
        return f"{len(reply)} values"
    return type(reply).__name__


class RedisWindow(SharedWindow):
    """``SharedWindow`` in Redis (see the module docstring).

    ``url``: ``redis://[:password@]HOST:PORT/DB`` (``rediss://`` for TLS); ``digest``: the
    account's name. ``store_clock`` replaces the server's ``TIME`` (tests only).
    Raises ``UsageError`` if redis-py is not installed or the URL is not a Redis URL.
    """

    def __init__(
        self,
        url: str,
        digest: str,
        *,
        clock: Callable[[], float],
        store_clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise UsageError(f"--limiter {_address(url)!r}: expected redis://HOST:PORT/DB")
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise UsageError(
                "--limiter redis://… needs the Redis client: pip install 'batchgen[redis]'"
            ) from None
        self._redis_errors: tuple[type[BaseException], ...] = (aioredis.RedisError, OSError)
        self.where = f"redis {_address(url)}"
        self._client: Any = aioredis.Redis.from_url(url, socket_timeout=10.0)
        self._script = self._client.register_script(_SCRIPT)
        self._leave_script = self._client.register_script(_LEAVE)
        prefix = f"batchgen:window:{digest}:"
        self._keys = [prefix + name for name in ("answered", "seen", "flight", "head")]
        self._now = store_clock

    async def _exchange(self, r: WindowRequest) -> Verdict:
        args: list[Any] = [
            self.owner,
            "" if self._now is None else repr(self._now()),
            r.usable,
            repr(r.window),
            repr(max(r.window, KEEP)),
            repr(STALE),
            "" if r.want is None else repr(r.want),
            "" if r.after is None else repr(r.after),
            r.count,
            r.returned,
            *(repr(a) for a in r.answered),
        ]
        try:
            reply = await self._script(keys=self._keys, args=args)
        except self._redis_errors as exc:
            detail = clean_text(str(exc), limit=200)
            raise UsageError(
                f"the shared rate-limit window ({self.where}) failed: {detail}"
            ) from exc
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            # redis-py meeting a reply no Redis server gives (seen: AttributeError on "+OK"
            # to everything): the address is not a working Redis.
            raise UsageError(self._not_redis(f"{type(exc).__name__}: {exc}")) from exc
        try:
            return parse_verdict(reply, r.count)
        except ValueError as exc:
            raise UsageError(self._not_redis(str(exc))) from exc

    def _not_redis(self, detail: str) -> str:
        return (
            f"the shared rate-limit window ({self.where}) answered something no Redis server "
            f"answers ({clean_text(detail, limit=120)}): is --limiter the address of a Redis "
            "server? nothing was sent"
        )

    async def _leave(self) -> None:
        keys = [self._keys[1], self._keys[2], self._keys[3]]
        await self._leave_script(keys=keys, args=[self.owner])

    async def close(self) -> None:
        """Leave the store and close the connection."""
        await super().close()
        await self._client.aclose()
