"""The bot's platform budget shared by every process: one token bucket and per-chat slots in Redis.

One Lua script (loaded once, run by EVALSHA) refills the bot's bucket, checks the chat's next free time and
spends both atomically, on Redis's own clock (`TIME`), so that processes with drifting clocks still agree.
Redis unreachable: the process falls back to its local budget (core.live.budget), says so in one log line,
tries Redis again after a pause, and never fails a reply for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:pace:"
CALL_TIMEOUT_SECONDS = 2.0  # a Redis slower than this (loop lag included) would hold replies back: go local
LOG_EVERY_SECONDS = 60.0
RETRY_AFTER_FAILURE_SECONDS = 5.0  # how long the local budget serves alone after Redis failed
BUCKET_TTL_MS = 60_000  # an idle bot's bucket is full again long before Redis forgets it

# One script, two uses. KEYS[1] the bot's bucket (hash tokens, at) or a chat's next free time (ms).
# ARGV: "request", rate/s, burst, ttl ms, wanted  |  "chat", interval ms.
# "chat": 0 when the slot is taken, else the milliseconds until it is free.
# "request": {requests granted (up to wanted), milliseconds until the next one is free (0: free now)}.
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'chat' then
  local due = tonumber(redis.call('GET', KEYS[1]) or '0')
  if due > now then return due - now end
  local interval = tonumber(ARGV[2])
  if interval > 0 then redis.call('SET', KEYS[1], now + interval, 'PX', interval + 1000) end
  return 0
end
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.min(tonumber(ARGV[5]), math.floor(tokens + 1e-9))
tokens = tokens - granted
local wait = 0
if tokens < 1 then wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {granted, wait}
"""


class RedisPacing:
    """A `SharedGate` (core.live.budget) for one bot: `stream` names it (e.g. "telegram:<bot id>")."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        requests_per_second: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._script = client.register_script(TAKE_SCRIPT)  # EVALSHA, loading the script when Redis lacks it
        self._bucket = f"{KEY_PREFIX}{stream}:bot"
        self._chat_prefix = f"{KEY_PREFIX}{stream}:chat:"
        self._request_args: list[str | float | int] = ["request", requests_per_second, burst, BUCKET_TTL_MS]
        self._rate, self._burst = requests_per_second, float(burst)
        self._clock = clock
        self._tokens, self._at = float(burst), clock()  # the local bucket, used only while Redis is away
        self._local_until: float | None = None  # set while Redis is out of reach
        self._logged_at: float | None = None

    async def take_requests(self, wanted: int) -> tuple[int, float]:
        answer = await self._run(self._bucket, [*self._request_args, wanted])
        if answer is None:  # Redis out of reach: paced by this process alone
            return self._take_locally(wanted)
        granted, wait_ms = answer
        return int(granted), int(wait_ms) / 1000

    def _take_locally(self, wanted: int) -> tuple[int, float]:
        """The same bucket in this process only, while Redis is out of reach."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._at) * self._rate)
        self._at = now
        granted = min(wanted, int(self._tokens + 1e-9))
        self._tokens -= granted
        return granted, 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    async def take_chat(self, lane: str, interval_seconds: float) -> float:
        wait_ms = await self._run(self._chat_prefix + lane, ["chat", round(interval_seconds * 1000)])
        return 0.0 if wait_ms is None else int(wait_ms) / 1000

    async def _run(self, key: str, args: list[str | float | int]) -> Any:
        """The script's answer, or None while Redis is out of reach (one log line an outage)."""
        now = self._clock()
        if self._local_until is not None and now < self._local_until:
            return None
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                answer = await self._script(keys=[key], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._local_until = now + RETRY_AFTER_FAILURE_SECONDS
            if self._logged_at is None or now - self._logged_at >= LOG_EVERY_SECONDS:  # even if Redis flaps
                self._logged_at = now
                log.warning(
                    "redis unreachable (%s): platform pacing is per process until it is back", type(exc).__name__
                )
            return None
        if self._local_until is not None:
            self._local_until = None
            log.info("redis reachable again: platform pacing is shared by every process")
        return answer
