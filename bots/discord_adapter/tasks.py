"""The handler tasks in flight, so that closing the bot cancels and awaits them instead of abandoning them.

discord.py runs every event and every slash command in a task of its own and forgets it; this keeps count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

CANCEL_WAIT_SECONDS = 5.0


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.closing = False  # set by drain(): handlers take no new work

    def __len__(self) -> int:
        return len(self._tasks)

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count the current task for the duration of the block."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    async def drain(self, grace_seconds: float) -> None:
        """Take no new work; let tracked tasks finish within `grace_seconds`, then cancel the rest.

        A reply cancelled here is stored as incomplete by the core (what the user saw is kept).
        """
        self.closing = True
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current and not task.done()]
        if tasks and grace_seconds > 0:
            await asyncio.wait(tasks, timeout=grace_seconds)
        await self.cancel_all()

    async def cancel_all(self) -> None:
        """Cancel every tracked task (but the caller) and wait, briefly, until they have unwound."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
