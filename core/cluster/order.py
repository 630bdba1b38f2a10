"""Per-conversation order across processes, in the platform's order (Telegram's `update_id`).

Telegram pushes up to `max_connections` webhook updates at once, so behind a balancer two messages of one
conversation can reach two processes in either order. Design (Redis, no database connection per waiter):

- Every update of a stream (one bot) is announced on arrival: one script marks its id *seen* and, in the
  same step, files it as a ticket in its conversation's sorted set (scored by id). The stream keeps a
  watermark: every id up to it has been seen.
- A ticket's turn comes when (1) the watermark has reached the id just below it, so every earlier update
  of the bot, whatever its conversation, has been filed, and (2) no lower ticket of its conversation is
  left. Waiters poll one script with a backoff (10 ms doubling to 200 ms); a finished turn removes its
  ticket, so the next one starts within one poll.
- Bounded waits: an id below the watermark that never arrives (a gap: an update of a kind never sent, a
  crashed sender) holds later updates at most `hold_seconds`, after which the waiter moves the watermark
  past it. A ticket carries a lease its holder renews while it waits or runs; a process that dies leaves a
  ticket whose lease runs out, and the next waiter drops it.

Why not the database: a queue table costs a transaction per arrival and per poll, and LISTEN/NOTIFY would
hold a connection per process; Redis already carries the shared pacing. Without Redis, `LocalOrder` keeps
today's order (first come, first served per process; the PostgreSQL advisory lock across processes).
Redis failing mid-run: a ticket lets its turn go at once (the conversation lock still keeps turns apart),
with one log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:order:"
HOLD_SECONDS = 0.5  # the longest an update waits for a lower id that has not arrived
LEASE_SECONDS = 30.0  # a ticket whose process stopped renewing it is dropped after this
POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.2
CALL_TIMEOUT_SECONDS = 2.0
LOG_EVERY_SECONDS = 60.0  # at most one "unreachable" line a minute, should Redis come and go
KEY_TTL_SECONDS = 86_400  # a stream's watermark outlives any pause between two updates of an active bot

# KEYS: mark, seen, tickets, leases. ARGV: id, lease ms, ttl s, file (1: file a ticket too).
ARRIVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = tonumber(ARGV[1])
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
if id > mark then
  redis.call('ZADD', KEYS[2], id, ARGV[1])
  while redis.call('ZSCORE', KEYS[2], string.format('%d', mark + 1)) do
    mark = mark + 1
    redis.call('ZREM', KEYS[2], string.format('%d', mark))
  end
end
redis.call('SET', KEYS[1], string.format('%d', mark), 'EX', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[3], id, ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], now + tonumber(ARGV[2]))
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
end
return mark
"""

# KEYS: mark, seen, tickets, leases. ARGV: id, lease ms, ttl s, force (1: stop waiting for missing ids).
# Returns 0: the ticket's turn; 1: an earlier update of the stream is not filed yet; 2: an earlier ticket.
POLL_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = tonumber(ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], now + tonumber(ARGV[2]))
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
if mark < id - 1 then
  if ARGV[4] ~= '1' then return 1 end
  mark = id - 1
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', mark)
  while redis.call('ZSCORE', KEYS[2], string.format('%d', mark + 1)) do
    mark = mark + 1
    redis.call('ZREM', KEYS[2], string.format('%d', mark))
  end
  redis.call('SET', KEYS[1], string.format('%d', mark), 'EX', ARGV[3])
end
for _, earlier in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])) do
  if tonumber(redis.call('HGET', KEYS[4], earlier) or '0') >= now then return 2 end
  redis.call('ZREM', KEYS[3], earlier)
  redis.call('HDEL', KEYS[4], earlier)
end
return 0
"""

# KEYS: leases. ARGV: id, lease ms. On Redis's clock, as the other scripts.
RENEW_SCRIPT = """
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2]))
return 0
"""


class OrderTicket:
    """One update's place in its conversation: `await wait()` for its turn, `await leave()` to pass it on."""

    def __init__(self, order: RedisOrder | None, keys: list[str], position: int) -> None:
        self._order = order
        self._keys = keys
        self._position = position
        self._renewing: asyncio.Task[None] | None = None
        self._left = False

    async def wait(self) -> None:
        """Return when every earlier update of the conversation has had its turn; then hold the turn."""
        order = self._order
        if order is None or self._left or self._renewing is not None:
            return
        await order.wait(self._keys, self._position)
        self._renewing = asyncio.create_task(order.renew(self._keys, self._position))

    async def leave(self) -> None:
        """Give the place (or the turn) up; call it once the update is handled, whatever happened."""
        if self._order is None or self._left:
            return
        self._left = True
        if self._renewing is not None:
            self._renewing.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewing
        await self._order.leave(self._keys, self._position)


class LocalOrder:
    """No shared order: every ticket's turn is at once (the conversation lock orders turns)."""

    async def arrive(self, stream: str, conversation: str | None, position: int) -> OrderTicket:
        return OrderTicket(None, [], position)


class RedisOrder:
    """Tickets in Redis for the updates of every stream (bot), shared by all processes."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        hold_seconds: float = HOLD_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._lease_ms = round(lease_seconds * 1000)
        self._renew_every = lease_seconds / 3
        self._arrive = client.register_script(ARRIVE_SCRIPT)
        self._poll = client.register_script(POLL_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._hold_seconds = hold_seconds
        self._clock = clock
        self._logged_at: float | None = None
        self._failing = False

    async def arrive(self, stream: str, conversation: str | None, position: int) -> OrderTicket:
        """Announce update `position` of `stream`; file a ticket in `conversation` unless it is None."""
        base = f"{KEY_PREFIX}{stream}:"
        keys = [base + "mark", base + "seen", f"{base}c:{conversation}", f"{base}c:{conversation}:lease"]
        filed = conversation is not None
        args = [position, self._lease_ms, KEY_TTL_SECONDS, int(filed)]
        if await self._call(self._arrive, keys, args) is None or not filed:
            return OrderTicket(None, [], position)
        return OrderTicket(self, keys, position)

    async def wait(self, keys: list[str], position: int) -> None:
        started = self._clock()
        delay = POLL_FIRST_SECONDS
        while True:
            force = self._clock() - started >= self._hold_seconds
            args = [position, self._lease_ms, KEY_TTL_SECONDS, int(force)]
            state = await self._call(self._poll, keys, args)
            if state is None or state == 0:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_SECONDS)

    async def renew(self, keys: list[str], position: int) -> None:
        """Keep a running turn's lease alive (a long reply must not lose its place)."""
        while True:
            await asyncio.sleep(self._renew_every)
            await self._call(self._renew, keys[3:], [position, self._lease_ms])

    async def leave(self, keys: list[str], position: int) -> None:
        with suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS), self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(keys[2], str(position))
                pipe.hdel(keys[3], str(position))
                await pipe.execute()

    async def _call(self, script: AsyncScript, keys: list[str], args: list[int]) -> int | None:
        """Run a script; None (and one log line per outage) when Redis fails: order then falls back."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                result = await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            now = self._clock()
            self._failing = True
            if self._logged_at is None or now - self._logged_at >= LOG_EVERY_SECONDS:  # one line an outage
                self._logged_at = now
                log.warning(
                    "redis unreachable (%s): order across processes is not kept until it is back", type(exc).__name__
                )
            return None
        if self._failing:
            self._failing = False
            log.info("redis reachable again: order across processes is kept")
        return int(result)
