"""The longest single event-loop step while a block runs: how long one callback held the loop.

Every other chat and the platforms' heartbeats share the loop, so a pass over model output must never
hold it long, whatever its total time. Patches asyncio's callback runner for the block (this process only).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager


class LongestStep:
    def __init__(self) -> None:
        self.seconds = 0.0


@contextmanager
def longest_loop_step() -> Iterator[LongestStep]:
    longest = LongestStep()
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        run(handle)
        longest.seconds = max(longest.seconds, time.perf_counter() - started)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    try:
        yield longest
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]
