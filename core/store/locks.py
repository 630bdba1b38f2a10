"""`KeyedLock`: one asyncio lock per key, created on demand and dropped when nobody holds or awaits it.

Pure asyncio; imports nothing from the rest of core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from contextlib import AbstractAsyncContextManager
from types import TracebackType


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders plus waiters: the entry may go only when this is zero


class KeyedLock:
    """`async with locks(key): ...` serialises work per key; different keys run concurrently.

    Waiters on one key get the lock in arrival order (asyncio.Lock is FIFO). A waiter cancelled before it
    gets the lock leaves no trace. Memory is bounded by the keys in use, not by the keys ever seen.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __call__(self, key: Hashable) -> AbstractAsyncContextManager[None]:
        return _Held(self._entries, key)

    def __len__(self) -> int:
        return len(self._entries)


class _Held(AbstractAsyncContextManager[None]):
    __slots__ = ("_entries", "_entry", "_key")

    def __init__(self, entries: dict[Hashable, _Entry], key: Hashable) -> None:
        self._entries = entries
        self._key = key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        entry = self._entries.get(self._key)
        if entry is None:
            entry = self._entries[self._key] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: give the slot back, then re-raise
            self._leave(entry)
            raise
        self._entry = entry

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            raise RuntimeError("KeyedLock context exited without being entered")
        entry.lock.release()
        self._leave(entry)

    def _leave(self, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0 and self._entries.get(self._key) is entry:
            del self._entries[self._key]
