"""What the processes of one bot share through Redis (REDIS_URL): platform pacing, order, albums.

`Cluster(None)` (no Redis) keeps everything in the process: the budget is then per process, and order
across processes is the database's conversation lock (first come, first served).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis

from core.cluster.gather import RedisGather
from core.cluster.order import LocalOrder, OrderTicket, RedisOrder
from core.cluster.pacing import RedisPacing
from core.cluster.wakeups import Wakeups
from core.conversation import ConversationKey
from core.counters import redis_client
from core.live import Budget

# The shared bucket holds this many seconds of requests (30/s: 3), so that one round trip can let several
# calls go at once under load; Telegram's "about 30 messages per second" tolerates such short bursts.
SHARED_BURST_SECONDS = 0.1
# And this many more that only first texts may spend. Under load the finals waiting for the budget take every
# request as it comes, so without a reserve a first text always waited for the next free one and a few
# messages arriving together queued (first-visible p99 0.8-1.2 s at 25/s, 0.7 s with 0.15 s kept); with
# 0.2 s kept back (6 at 30/s), 0.25-0.3 s. The rate is the same; the largest burst is 0.3 s of it (9 at 30/s),
# well inside PTB's own AIORateLimiter, which lets a whole second's 30 go at once (overall_time_period=1).
FIRST_RESERVE_SECONDS = 0.2
# One drainer per bot and process asks the bucket, one round trip at a time, for up to 8 grants; each granted
# call then takes its chat's slot: 9 calls at once at most, and a call never waits long for a connection.
PACING_CONNECTIONS = 16

__all__ = ["Cluster", "OrderTicket", "open_cluster"]


class Cluster:
    """Built by `open_cluster`; the adapters reach it as `assistant.cluster`."""

    def __init__(
        self, client: redis.Redis | None, *, pacing: redis.Redis | None = None, wakeups: Wakeups | None = None
    ) -> None:
        self._client = client
        self._pacing = pacing or client  # its own pool in production: a backlog of others never delays a grant
        self._order: LocalOrder | RedisOrder = (
            RedisOrder(client, wakeups=wakeups) if client is not None else LocalOrder()
        )
        self._gather = RedisGather(client) if client is not None else None

    @property
    def shared(self) -> bool:
        """True when the processes share Redis (else each process paces and orders alone)."""
        return self._client is not None

    def budget(self, requests_per_second: float, *, stream: str) -> Budget:
        """The request budget of bot `stream` ("telegram:<bot id>"): shared in Redis when there is one."""
        reserve = round(requests_per_second * FIRST_RESERVE_SECONDS)
        if self._pacing is None:
            return Budget(requests_per_second, reserve=reserve)
        burst = max(1, round(requests_per_second * SHARED_BURST_SECONDS))
        pacing = RedisPacing(
            self._pacing, stream=stream, requests_per_second=requests_per_second, burst=burst, reserve=reserve
        )
        return Budget(requests_per_second, shared=pacing)

    async def arrive(self, stream: str, conversation: ConversationKey | None, position: int) -> OrderTicket:
        """Announce update `position` (the platform's order) of `stream`; its ticket waits for its turn."""
        name = None if conversation is None else _name(conversation)
        return await self._order.arrive(stream, name, position)

    async def gather(self, group: str, item: str, *, gap_seconds: float, max_items: int) -> list[str] | None:
        """With Redis: every item of `group` for its first caller, None for the others (see gather.py)."""
        if self._gather is None:
            raise RuntimeError("gather needs Redis: check `cluster.shared` first")
        return await self._gather.gather(group, item, gap_seconds=gap_seconds, max_items=max_items)


def _name(key: ConversationKey) -> str:
    """A short fixed-size Redis name for a conversation (its ids are never put in keys as they are)."""
    joined = "\x1f".join((key.platform, key.chat_id, key.thread_id or "", key.scope or "")).encode()
    return hashlib.blake2b(joined, digest_size=12).hexdigest()


@asynccontextmanager
async def open_cluster(redis_url: str | None) -> AsyncIterator[Cluster]:
    """A Cluster on `redis_url` (its client closed on exit), or a process-local one without a URL."""
    if not redis_url:
        yield Cluster(None)
        return
    client = redis_client(redis_url, name="parley-cluster")
    pacing = redis_client(redis_url, name="parley-pacing", max_connections=PACING_CONNECTIONS)
    wakeups = Wakeups(client)
    try:
        await wakeups.start()
        yield Cluster(client, pacing=pacing, wakeups=wakeups)
    finally:
        await wakeups.stop()
        await pacing.aclose()
        await client.aclose()
