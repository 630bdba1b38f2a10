"""Wake-ups for order waiters: one Redis subscription per process instead of one poll loop per waiter.

Polling waiters scale with the backlog: with thousands of updates waiting for the request budget (Telegram
allows 30 requests/s, a busy bot's replies need more), each waiter's poll took a Redis connection, the
pool grew without bound and calls timed out. Now a waiter asks Redis once, then sleeps on a local event
until the order scripts announce a change that concerns it (PUBLISH on `parley:order:wake:<stream>`: the
stream's watermark moved past what it waits for, or its ticket became its conversation's lowest), and
asks again.

A wake-up can be lost (the subscription drops and comes back, a lease runs out with nobody leaving), so a
waiter also asks again after `FALLBACK_SECONDS`; while the subscription is down it polls as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "parley:order:wake:"
LISTEN_SECONDS = 1.0  # one read's wait; a stop request is seen within this
RETRY_SECONDS = 1.0  # after the subscription failed
FALLBACK_SECONDS = 2.0  # a subscribed waiter asks Redis again this often, whatever it heard


def channel(stream: str) -> str:
    return CHANNEL_PREFIX + stream


class Wakeups:
    """This process's subscription. Announcements (PUBLISHed by the order scripts, see order.py):
    `m:<id>`, every update of the stream up to id has been filed; `t:<conversation>:<id>`, ticket id is now
    the lowest of its conversation. Each wakes only the waiters it concerns: a leave wakes one waiter, not
    every waiter of the conversation (a busy group's queue would otherwise cost a poll per waiter per turn).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._marks: dict[str, dict[asyncio.Event, int]] = {}  # stream -> waiter -> the mark it needs
        self._turns: dict[tuple[str, str], asyncio.Event] = {}  # (stream, "conversation:id") -> its waiter
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def subscribed(self) -> bool:
        """True while announcements reach this process (else waiters must poll)."""
        return self._subscribed.is_set()

    async def start(self, ready_seconds: float = 2.0) -> None:
        """Subscribe in the background; wait up to `ready_seconds` for it (Redis down: waiters poll)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="parley-order-wakeups")
        with suppress(TimeoutError):
            async with asyncio.timeout(ready_seconds):
                await self._subscribed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._subscribed.clear()

    @contextmanager
    def watch(self, stream: str, conversation: str, position: int) -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
        """Two events for ticket `position`: the stream's mark reached `position - 1`, and the ticket became
        its conversation's lowest. Register before asking Redis, so an announcement made between the answer
        and the wait is not lost."""
        marked, turned = asyncio.Event(), asyncio.Event()
        marks = self._marks.setdefault(stream, {})
        marks[marked] = position - 1
        turn = (stream, f"{conversation}:{position}")
        self._turns[turn] = turned
        try:
            yield marked, turned
        finally:
            marks.pop(marked, None)
            if not marks:
                self._marks.pop(stream, None)
            if self._turns.get(turn) is turned:
                del self._turns[turn]

    def _announce(self, stream: str, what: str) -> None:
        kind, _, rest = what.partition(":")
        if kind == "t":
            event = self._turns.get((stream, rest))
            if event is not None:
                event.set()
        elif kind == "m" and rest.isdigit():
            mark = int(rest)
            for event, needed in self._marks.get(stream, {}).items():
                if needed <= mark:
                    event.set()

    def _wake_all(self) -> None:
        """The subscription dropped: every waiter asks Redis now (and polls until it is back)."""
        for marks in self._marks.values():
            for event in marks:
                event.set()
        for event in self._turns.values():
            event.set()

    async def _listen(self) -> None:
        failing = False
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._subscribed.set()
                if failing:
                    failing = False
                    log.info("redis reachable again: order waiters are woken by announcements")
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_SECONDS)
                    if message is not None and message["type"] == "pmessage":
                        stream = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                        self._announce(stream, message["data"].decode())
            except (RedisError, OSError, TimeoutError) as exc:
                if not failing:
                    failing = True
                    log.warning("redis subscription lost (%s): order waiters poll until it is back", type(exc).__name__)
            finally:
                self._subscribed.clear()
                self._wake_all()
                with suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(RETRY_SECONDS)
