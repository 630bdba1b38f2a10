"""The request budget one bot shares between all its live replies, and the clock the engine reads.

A token bucket (requests per second) serves waiting calls by priority, first come first served within a
priority; every chat ("lane") is also spaced by its own minimum interval. Imports only the stdlib.

Several processes of one bot share the platform's limits: a `SharedGate` (core.cluster.pacing: a token
bucket in Redis) replaces the local bucket: the drainer asks it for as many requests as calls wait, counted
by priority (one round trip for several, one round trip at a time per process; the bucket serves the most
urgent calls of every process first) and lets them go by priority, and each granted call then takes its
chat's shared slot. Without one, everything stays in this process (and the limits are per process).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from enum import IntEnum
from typing import Protocol

_FORGET_LANES_OVER = 4096  # forget idle chats once this many are remembered
_WHOLE = 1 - 1e-9  # a token, allowing for float rounding in the refill
SHARED_BATCH_MAX = 8  # requests asked of a shared budget in one round trip (fewer round trips under load)


class Clock(Protocol):
    """Time as the engine sees it; tests drive it, production reads the event loop."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SharedGate(Protocol):
    """The bot's request budget and per-chat spacing as every process of the bot sees them."""

    async def take_requests(self, wanted: Sequence[int]) -> tuple[int, float]:
        """Spend requests for the calls waiting now, `wanted[p]` of them at priority p (most urgent first): how
        many were granted (most urgent first, and none while another process is short of more urgent ones),
        and the seconds until it is worth asking again (0.0 when more are free already)."""
        ...

    async def take_chat(self, lane: str, interval_seconds: float) -> float:
        """Take chat `lane`'s slot now (0.0; the next in `interval_seconds`), or say how long until it is free."""
        ...


class Priority(IntEnum):
    """Who goes first when requests are scarce: a reply's first text, then final texts, then the rest."""

    FIRST = 0
    FINAL = 1
    EDIT = 2


class Ticket:
    """One platform call a reply is waiting to make. Its priority may rise while it waits."""

    __slots__ = ("_budget", "_future", "interval_seconds", "lane", "priority")

    def __init__(self, budget: Budget, lane: str, priority: Priority, interval_seconds: float) -> None:
        self._budget = budget
        self.lane = lane
        self.priority = priority
        self.interval_seconds = interval_seconds
        self._future: asyncio.Future[None] | None = None

    def raise_to(self, priority: Priority) -> None:
        """Serve this call sooner (for instance when the stream has just ended)."""
        if priority < self.priority:
            self._budget._move(self, priority)

    async def wait(self) -> None:
        """Return when the call may be made: its chat is due and the bot has a request to spend.

        Does not suspend when both are already true, so a first text goes out on the same loop turn.
        """
        budget = self._budget
        while True:
            delay = budget._lane_due.get(self.lane, -math.inf) - budget.clock.now()
            if delay > 0:
                await budget.clock.sleep(delay)
                continue
            await budget._take(self)
            now = budget.clock.now()
            if budget._lane_due.get(self.lane, -math.inf) <= now:
                budget._lane_due[self.lane] = now + self.interval_seconds
                break
            # Another reply in the same chat went first; the spent request is lost, never a 429.
        shared = budget._shared
        if shared is not None:  # another process may have just called into this chat
            while (delay := await shared.take_chat(self.lane, self.interval_seconds)) > 0:
                await budget.clock.sleep(delay)


class Budget:
    """Requests per second for one bot, shared by all its live replies.

    Under load every reply still gets its first and final texts (higher priorities) and fewer
    intermediate edits; a reply has at most one call waiting, so serving each priority first come
    first served is round-robin between replies. `reserve` requests beyond `burst` are kept for first
    texts: finals waiting under load would otherwise take each request as it comes, and new replies
    arriving together would queue for their first text.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        burst: int = 1,
        reserve: int = 0,
        clock: Clock | None = None,
        shared: SharedGate | None = None,
    ) -> None:
        if requests_per_second <= 0 or burst < 1 or reserve < 0:
            raise ValueError("requests_per_second must be > 0, burst >= 1 and reserve >= 0")
        self.clock: Clock = clock or LoopClock()
        self._shared = shared
        self._rate = requests_per_second
        self._reserve = float(reserve)  # kept for first texts: the others wait while no more is left
        self._burst = float(burst + reserve)
        self._tokens = self._burst
        self._refilled_at: float | None = None
        self._queues: tuple[dict[Ticket, None], ...] = tuple({} for _ in Priority)
        self._waiting = 0
        self._lane_due: dict[str, float] = {}
        self._forget_over = _FORGET_LANES_OVER
        self._drainer: asyncio.Task[None] | None = None

    def ticket(self, lane: str, priority: Priority, *, interval_seconds: float) -> Ticket:
        """A call into chat `lane`, spaced at least `interval_seconds` from the chat's previous one."""
        if len(self._lane_due) > self._forget_over:  # drop chats that are due anyway (amortised O(1))
            now = self.clock.now()
            self._lane_due = {key: due for key, due in self._lane_due.items() if due > now}
            self._forget_over = max(_FORGET_LANES_OVER, 2 * len(self._lane_due))
        return Ticket(self, lane, priority, interval_seconds)

    def try_take(self) -> bool:
        """Spend a request now if one is free and nobody waits (for cosmetic calls such as typing)."""
        if self._waiting == 0 and self._refill() >= _WHOLE + self._reserve:
            self._tokens -= 1
            return True
        return False

    def hold(self, lane: str, seconds: float) -> None:
        """The platform said 429 for this chat: nobody calls into it for `seconds`."""
        due = self.clock.now() + max(seconds, 0.0)
        self._lane_due[lane] = max(self._lane_due.get(lane, -math.inf), due)

    @property
    def waiting(self) -> int:
        """Calls waiting for a request now."""
        return self._waiting

    @property
    def chats_remembered(self) -> int:
        """Chats whose next-call time is kept (idle ones are forgotten)."""
        return len(self._lane_due)

    def _refill(self) -> float:
        now = self.clock.now()
        if self._refilled_at is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
        return self._tokens

    async def _take(self, ticket: Ticket) -> None:
        # At once when nobody as urgent waits: a first text passes finals queued above the reserve.
        urgent = not any(self._queues[: ticket.priority + 1])
        if self._shared is None and urgent and self._refill() >= _WHOLE + self._keep(ticket.priority):
            self._tokens -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ticket._future = future
        self._queues[ticket.priority][ticket] = None
        self._waiting += 1
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        try:
            await future
        finally:
            if self._queues[ticket.priority].pop(ticket, 0) is None:  # still queued: cancelled while waiting
                self._waiting -= 1
            ticket._future = None

    def _move(self, ticket: Ticket, priority: Priority) -> None:
        if self._queues[ticket.priority].pop(ticket, 0) is None:
            self._queues[priority][ticket] = None
        ticket.priority = priority

    async def _drain(self) -> None:
        """Serve waiting calls as requests become free; runs only while someone waits."""
        try:
            while self._waiting:
                if self._shared is not None:
                    await self._drain_shared(self._shared)
                    continue
                self._refill()
                while self._waiting and self._tokens >= _WHOLE + self._keep(self._most_urgent()):
                    if self._grant_next():
                        self._tokens -= 1
                if self._waiting:
                    need = 1 + self._keep(self._most_urgent())
                    await self.clock.sleep(max((need - self._tokens) / self._rate, 1e-6))
        finally:
            self._drainer = None

    async def _drain_shared(self, shared: SharedGate) -> None:
        """One round with the shared budget: as many requests as it grants (up to those waiting), in order."""
        wanted, left = [], SHARED_BATCH_MAX
        for queue in self._queues:  # by priority, so that the bucket can put first texts first in every process
            wanted.append(min(len(queue), left))
            left -= wanted[-1]
        granted, delay = await shared.take_requests(wanted)
        while granted > 0 and self._waiting:  # a request granted after its caller left is lost
            granted -= self._grant_next()
        if self._waiting and delay > 0:
            await self.clock.sleep(delay)

    def _keep(self, priority: Priority) -> float:
        """Requests a call of `priority` must leave in the bucket: the reserve, unless it is a first text."""
        return 0.0 if priority == Priority.FIRST else self._reserve

    def _most_urgent(self) -> Priority:
        return Priority(next(priority for priority, queue in enumerate(self._queues) if queue))

    def _grant_next(self) -> bool:
        """Let the first waiting call go (by priority, then arrival); False if it had been cancelled."""
        queue = next(q for q in self._queues if q)
        ticket = next(iter(queue))
        del queue[ticket]
        self._waiting -= 1
        if ticket._future is not None and not ticket._future.done():
            ticket._future.set_result(None)
            return True
        return False
