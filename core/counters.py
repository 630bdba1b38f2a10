"""Per-minute request counters in Redis (REDIS_URL), shared by every Parley process; the database's
`rate_windows` table (core.store) does the same job when REDIS_URL is not set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.errors import StoreError

KEY_TTL_SECONDS = 120  # a minute's counter is needed for that minute only; Redis forgets it after two
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 32  # per client; a call waits for a free one at most CONNECT_TIMEOUT_SECONDS


class RequestCounter(Protocol):
    async def count_request(self, *, platform: str, user_id: str, window: int) -> int:
        """Add one request of the user in `window` (Unix minutes) and return the window's count."""
        ...


class RedisCounter:
    """INCR and EXPIRE in one MULTI/EXEC: atomic across processes, and no key outlives its use."""

    def __init__(self, client: redis.Redis, *, prefix: str = "parley:rate:") -> None:
        self._client = client
        self._prefix = prefix

    async def count_request(self, *, platform: str, user_id: str, window: int) -> int:
        key = f"{self._prefix}{platform}:{user_id}:{window}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, KEY_TTL_SECONDS)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            # The class name only: the URL (and its password) stays out of messages.
            raise StoreError(f"redis error ({type(exc).__name__})") from exc
        return int(count)


def redis_client(redis_url: str, *, name: str = "parley", max_connections: int = MAX_CONNECTIONS) -> redis.Redis:
    """A client for `redis_url` with Parley's timeouts (a Redis out of reach fails fast, never hangs a reply).

    The pool is bounded: a burst of calls queues for a connection instead of opening thousands of them
    (each connect slower than the last, until calls time out). `name` is the connections' CLIENT SETNAME,
    so that `CLIENT LIST` tells an operator whose they are.
    """
    pool = redis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        client_name=name,
        timeout=CONNECT_TIMEOUT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


@asynccontextmanager
async def open_redis_counter(redis_url: str | None) -> AsyncIterator[RedisCounter | None]:
    """A RedisCounter for `redis_url` (closed on exit), or None when no URL is given."""
    if not redis_url:
        yield None
        return
    client = redis_client(redis_url, name="parley-limits")
    try:
        yield RedisCounter(client)
    finally:
        await client.aclose()
