"""The bot's platform budget shared by every process: one token bucket and per-chat slots in Redis.

One Lua script (loaded once, run by EVALSHA) refills the bot's bucket, checks the chat's next free time and
spends both atomically, on Redis's own clock (`TIME`), so that processes with drifting clocks still agree.
Priorities hold across processes: while one process lacks requests for its first texts, no other spends the
bot's requests on mere edits (a process-wide priority alone let one process's edits take the requests its
peer's first texts waited for, once the bot is busy).
Redis unreachable: the process falls back to its local budget (core.live.budget), says so in one log line,
tries Redis again after a pause, and never fails a reply for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:pace:"
CALL_TIMEOUT_SECONDS = 2.0  # a Redis slower than this (loop lag included) would hold replies back: go local
LOG_EVERY_SECONDS = 60.0
RETRY_AFTER_FAILURE_SECONDS = 5.0  # how long the local budget serves alone after Redis failed
BUCKET_TTL_MS = 60_000  # an idle bot's bucket is full again long before Redis forgets it
# A process short of requests renews its claim each time it asks again (a request's time, plus its loop's
# lag); one that stopped asking (its calls gone, the process dead) holds the others back this long at most.
CLAIM_SECONDS = 0.5

# One script, two uses. KEYS[1] the bot's bucket (hash tokens, at) or a chat's next free time (ms).
# ARGV: "request", rate/s, burst, ttl ms, process, claim ms, reserve, then calls waiting per priority (most
# urgent first)  |  "chat", interval ms. KEYS[2] ("request" only): the claims, process -> "priority:until ms".
# The bucket holds burst + reserve requests; only first texts (priority 0) may spend the last `reserve`.
# "chat": 0 when the slot is taken, else the milliseconds until it is free.
# "request": {requests granted (most urgent first), milliseconds until it is worth asking again (0: now)}.
# A process short of requests at some priority claims it for `claim ms` (renewed while it asks again);
# while another process's claim stands, its less urgent calls get nothing, so a first text in one process
# goes before an edit in another, as it does within a process.
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
local rate, reserve = tonumber(ARGV[2]), tonumber(ARGV[7])
local capacity = tonumber(ARGV[3]) + reserve
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or capacity
local at = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local urgent = math.huge
local claims = redis.call('HGETALL', KEYS[2])
for i = 1, #claims, 2 do
  local p, due = string.match(claims[i + 1], '^(%d+):(%d+)$')
  if p == nil or tonumber(due) <= now then
    redis.call('HDEL', KEYS[2], claims[i])
  elseif claims[i] ~= ARGV[5] then
    urgent = math.min(urgent, tonumber(p))
  end
end
local granted, short = 0, nil
for i = 8, #ARGV do
  local wanted, p = tonumber(ARGV[i]), i - 8
  if wanted > 0 then
    local g = 0
    local keep = 0
    if p > 0 then keep = reserve end
    if p <= urgent then g = math.min(wanted, math.max(0, math.floor(tokens - keep + 1e-9))) end
    tokens = tokens - g
    granted = granted + g
    if g < wanted then short = p break end
  end
end
local wait = 0
if short ~= nil then
  redis.call('HSET', KEYS[2], ARGV[5], short .. ':' .. (now + tonumber(ARGV[6])))
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
else
  redis.call('HDEL', KEYS[2], ARGV[5])
end
if short ~= nil and short > urgent then  -- held back by another process's more urgent calls
  wait = math.max(1, math.ceil(1000 / rate))
else  -- until the next request is free for the calls left waiting (above the reserve, unless first texts)
  local need = 1
  if short ~= nil and short > 0 then need = 1 + reserve end
  if tokens < need then wait = math.max(1, math.ceil((need - tokens) * 1000 / rate)) end
end
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
        reserve: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._script = client.register_script(TAKE_SCRIPT)  # EVALSHA, loading the script when Redis lacks it
        self._bucket = f"{KEY_PREFIX}{stream}:bot"
        self._claims = f"{KEY_PREFIX}{stream}:claims"
        self._process = uuid.uuid4().hex  # this process's name among the claims
        self._claim_ms = round(CLAIM_SECONDS * 1000)
        self._chat_prefix = f"{KEY_PREFIX}{stream}:chat:"
        self._request_args: list[str | float | int] = ["request", requests_per_second, burst, BUCKET_TTL_MS]
        self._rate, self._burst, self._reserve = requests_per_second, float(burst), reserve
        self._clock = clock
        self._tokens, self._at = float(burst), clock()  # the local bucket, used only while Redis is away
        self._local_until: float | None = None  # set while Redis is out of reach
        self._logged_at: float | None = None

    async def take_requests(self, wanted: Sequence[int]) -> tuple[int, float]:
        args = [*self._request_args, self._process, self._claim_ms, self._reserve, *wanted]
        answer = await self._run([self._bucket, self._claims], args)
        if answer is None:  # Redis out of reach: paced by this process alone
            return self._take_locally(sum(wanted))
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
        wait_ms = await self._run([self._chat_prefix + lane], ["chat", round(interval_seconds * 1000)])
        return 0.0 if wait_ms is None else int(wait_ms) / 1000

    async def _run(self, keys: list[str], args: list[str | float | int]) -> Any:
        """The script's answer, or None while Redis is out of reach (one log line an outage)."""
        now = self._clock()
        if self._local_until is not None and now < self._local_until:
            return None
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                answer = await self._script(keys=keys, args=args)
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
