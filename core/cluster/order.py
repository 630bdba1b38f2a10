"""Per-conversation order across processes, in the platform's order (Telegram's `update_id`).

Telegram pushes up to `max_connections` webhook updates at once, so behind a balancer two messages of one
conversation can reach two processes in either order. Design (Redis, no database connection per waiter):

- Every update of a stream (one bot) is announced on arrival: one script marks its id *seen* and, in the
  same step, files it as a ticket in its conversation's sorted set (scored by id). The stream keeps a
  watermark: every id up to it has been seen.
- A ticket's turn comes when (1) the watermark has reached the id just below it, so every earlier update
  of the bot, whatever its conversation, has been filed, and (2) no lower ticket of its conversation is
  left. A waiter asks one script, then sleeps until the scripts announce a change on the stream's channel
  (the watermark moved, or a ticket of its conversation left: see wakeups.py), and asks again; so the
  next turn starts one round trip after the last one ends, and a backlog of thousands of waiters costs
  Redis nothing while nothing changes. Without the subscription, waiters poll (10 ms doubling to 200 ms).
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from core.cluster.wakeups import FALLBACK_SECONDS, Wakeups, channel

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:order:"
HOLD_SECONDS = 0.5  # the longest an update waits for a lower id that has not arrived
LEASE_SECONDS = 30.0  # a ticket whose process stopped renewing it is dropped after this
POLL_FIRST_SECONDS = 0.01
POLL_MAX_SECONDS = 0.2
CALL_TIMEOUT_SECONDS = 2.0
LOG_EVERY_SECONDS = 60.0  # at most one "unreachable" line a minute, should Redis come and go
KEY_TTL_SECONDS = 86_400  # a stream's watermark outlives any pause between two updates of an active bot

# KEYS: mark, seen, tickets, leases, wake channel. ARGV: id, lease ms, ttl s, file (1: file a ticket too).
ARRIVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = tonumber(ARGV[1])
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
if id > mark then
  local before = mark
  redis.call('ZADD', KEYS[2], id, ARGV[1])
  while redis.call('ZSCORE', KEYS[2], string.format('%d', mark + 1)) do
    mark = mark + 1
    redis.call('ZREM', KEYS[2], string.format('%d', mark))
  end
  if mark > before then redis.call('PUBLISH', KEYS[5], 'm:' .. string.format('%d', mark)) end
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

# KEYS: mark, seen, tickets, leases, wake channel. ARGV: id, lease ms, ttl s, force (1: stop waiting for
# missing ids).
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
  redis.call('PUBLISH', KEYS[5], 'm:' .. string.format('%d', mark))
end
for _, earlier in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])) do
  if tonumber(redis.call('HGET', KEYS[4], earlier) or '0') >= now then return 2 end
  redis.call('ZREM', KEYS[3], earlier)
  redis.call('HDEL', KEYS[4], earlier)
end
return 0
"""

# KEYS: tickets, leases, wake channel. ARGV: id, conversation. The ticket that is now the lowest of its
# conversation is told (only it can have its turn now).
LEAVE_SCRIPT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local next = redis.call('ZRANGE', KEYS[1], 0, 0)
if next[1] then redis.call('PUBLISH', KEYS[3], 't:' .. ARGV[2] .. ':' .. next[1]) end
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

    def __init__(self, order: RedisOrder | None, place: _Place | None) -> None:
        self._order = order
        self._place = place
        self._renewing: asyncio.Task[None] | None = None
        self._left = False

    async def wait(self) -> None:
        """Return when every earlier update of the conversation has had its turn; then hold the turn."""
        order, place = self._order, self._place
        if order is None or place is None or self._left or self._renewing is not None:
            return
        await order.wait(place)
        self._renewing = asyncio.create_task(order.renew(place))

    async def leave(self) -> None:
        """Give the place (or the turn) up; call it once the update is handled, whatever happened."""
        if self._order is None or self._place is None or self._left:
            return
        self._left = True
        if self._renewing is not None:
            self._renewing.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewing
        await self._order.leave(self._place)


class _Place:
    """Where a ticket lives in Redis: its stream, conversation and the keys of the scripts."""

    __slots__ = ("conversation", "keys", "position", "stream")

    def __init__(self, stream: str, conversation: str, position: int) -> None:
        base = f"{KEY_PREFIX}{stream}:"
        self.stream, self.conversation, self.position = stream, conversation, position
        self.keys = [base + "mark", base + "seen", f"{base}c:{conversation}", f"{base}c:{conversation}:lease"]
        self.keys.append(channel(stream))


class LocalOrder:
    """No shared order: every ticket's turn is at once (the conversation lock orders turns)."""

    async def arrive(self, stream: str, conversation: str | None, position: int) -> OrderTicket:
        return OrderTicket(None, None)


class RedisOrder:
    """Tickets in Redis for the updates of every stream (bot), shared by all processes.

    `wakeups` (this process's subscription) lets waiters sleep until something changed; without it (or
    while it is down) they poll.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        wakeups: Wakeups | None = None,
        hold_seconds: float = HOLD_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._wakeups = wakeups
        self._lease_ms = round(lease_seconds * 1000)
        self._renew_every = lease_seconds / 3
        self._arrive = client.register_script(ARRIVE_SCRIPT)
        self._poll = client.register_script(POLL_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._leave = client.register_script(LEAVE_SCRIPT)
        self._hold_seconds = hold_seconds
        self._clock = clock
        self._logged_at: float | None = None
        self._failing = False

    async def arrive(self, stream: str, conversation: str | None, position: int) -> OrderTicket:
        """Announce update `position` of `stream`; file a ticket in `conversation` unless it is None."""
        place = _Place(stream, conversation or "-", position)
        filed = conversation is not None
        args = [position, self._lease_ms, KEY_TTL_SECONDS, int(filed)]
        if await self._call(self._arrive, place.keys, args) is None or not filed:
            return OrderTicket(None, None)
        return OrderTicket(self, place)

    async def wait(self, place: _Place) -> None:
        started = self._clock()
        delay = POLL_FIRST_SECONDS
        while True:
            waited = self._clock() - started
            args = [place.position, self._lease_ms, KEY_TTL_SECONDS, int(waited >= self._hold_seconds)]
            with self._watch(place) as (marked, turned):
                state = await self._call(self._poll, place.keys, args)
                if state is None or state == 0:
                    return
                if self._wakeups is not None and self._wakeups.subscribed:
                    pause = FALLBACK_SECONDS
                else:
                    pause, delay = delay, min(delay * 2, POLL_MAX_SECONDS)
                if state == 1:  # an earlier update of the bot is not filed yet: at most until the hold ends
                    pause = min(pause, max(0.0, self._hold_seconds - waited))
                with suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await (marked if state == 1 else turned).wait()

    @contextmanager
    def _watch(self, place: _Place) -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
        if self._wakeups is None:
            yield asyncio.Event(), asyncio.Event()  # never set: the waiter polls
            return
        with self._wakeups.watch(place.stream, place.conversation, place.position) as events:
            yield events

    async def renew(self, place: _Place) -> None:
        """Keep a running turn's lease alive (a long reply must not lose its place)."""
        while True:
            await asyncio.sleep(self._renew_every)
            await self._call(self._renew, place.keys[3:4], [place.position, self._lease_ms])

    async def leave(self, place: _Place) -> None:
        with suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                await self._leave(keys=place.keys[2:5], args=[place.position, place.conversation])

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
