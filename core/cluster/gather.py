"""Groups of items that arrive as separate updates (Telegram albums) gathered in Redis across processes.

Each part is appended to the group's list; the first part to arrive (SET NX) gathers: it waits until no
part has come for `gap_seconds` (or the group is full), then takes the list and deletes it in one
transaction. The other parts' callers get None. A part arriving after that starts a group of its own, as
in one process. Redis unreachable: the part is answered alone, with one log line per outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:group:"
KEY_TTL_SECONDS = 60  # a group is gathered within seconds; keys left by a dead process go after this
POLL_SECONDS = 0.05

# KEYS: items, gatherer. ARGV: item, ttl s. Returns {1 if this caller gathers else 0, items so far}.
JOIN_SCRIPT = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local first = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2])
return {first and 1 or 0, redis.call('LLEN', KEYS[1])}
"""


class RedisGather:
    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] | None = None) -> None:
        self._client = client
        self._join = client.register_script(JOIN_SCRIPT)
        self._clock = clock
        self._failing = False

    async def gather(self, group: str, item: str, *, gap_seconds: float, max_items: int) -> list[str] | None:
        """Every item of `group` for the first caller (in arrival order), None for the others."""
        items_key, gatherer_key = f"{KEY_PREFIX}{group}:items", f"{KEY_PREFIX}{group}:gatherer"
        try:
            first, count = await self._join(keys=[items_key, gatherer_key], args=[item, KEY_TTL_SECONDS])
            if not first:
                return None
            loop = asyncio.get_running_loop()
            now = self._clock or loop.time
            quiet_since = now()
            while int(count) < max_items and now() - quiet_since < gap_seconds:
                await asyncio.sleep(min(POLL_SECONDS, gap_seconds))
                latest = await self._client.llen(items_key)  # type: ignore[misc]  # redis-py's sync|async union
                if latest != count:
                    count, quiet_since = latest, now()
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.lrange(items_key, 0, max_items - 1)
                pipe.delete(items_key, gatherer_key)
                raw, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            if not self._failing:
                self._failing = True
                log.warning("redis unreachable (%s): album parts are answered one by one", type(exc).__name__)
            return [item]
        self._failing = False
        return [value.decode() if isinstance(value, bytes) else str(value) for value in raw]
