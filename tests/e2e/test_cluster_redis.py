"""core.cluster against a real Redis: shared pacing, order tickets, their bounds, and Redis going away.

Redis as in test_redis_limits.py. Every test uses a stream name of its own, so no key of another run meets it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis

from core import counters
from core.cluster.order import OrderTicket, RedisOrder
from core.cluster.pacing import CLAIM_SECONDS, RedisPacing
from core.cluster.wakeups import Wakeups
from tests.e2e.test_redis_limits import REDIS_URL, redis_client  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    yield connection
    await connection.aclose()


def fresh(name: str) -> str:
    return f"test:{name}:{uuid.uuid4().hex}"


async def test_two_processes_spend_one_bucket_and_one_chat_slot(client: redis.Redis) -> None:
    stream = fresh("pace")
    first = RedisPacing(client, stream=stream, requests_per_second=2.0)
    second = RedisPacing(client, stream=stream, requests_per_second=2.0)  # another process, same bot
    assert await first.take_requests([3]) == (1, 0.5)  # burst 1 at 2/s: one now, the next in 0.5 s
    granted, wait = await second.take_requests([1])  # for every process
    assert granted == 0 and 0.3 < wait <= 0.5
    other_bot = RedisPacing(client, stream=fresh("pace"), requests_per_second=2.0, burst=3)
    assert (await other_bot.take_requests([5]))[0] == 3  # another bot's budget is its own; a burst at once


async def test_first_texts_of_one_process_go_before_edits_of_another(client: redis.Redis) -> None:
    stream = fresh("pace")
    first = RedisPacing(client, stream=stream, requests_per_second=20.0, burst=2)
    second = RedisPacing(client, stream=stream, requests_per_second=20.0, burst=2)
    assert await first.take_requests([3]) == (2, 0.05)  # short of first texts: it claims them
    await asyncio.sleep(0.06)  # a request is free again
    granted, wait = await second.take_requests([0, 0, 4])
    assert granted == 0 and 0 < wait <= 0.05  # its edits wait while the other process lacks first texts
    assert (await second.take_requests([1, 0, 4]))[0] == 1  # its own first texts share the bucket as before
    await asyncio.sleep(0.06)
    assert (await first.take_requests([1]))[0] == 1  # the claim is met, and dropped
    await asyncio.sleep(0.11)
    assert (await second.take_requests([0, 0, 4]))[0] == 2  # edits go again, a burst at once


async def test_finals_leave_the_reserve_to_first_texts(client: redis.Redis) -> None:
    """Finals waiting take every request above the reserve; first texts arriving together then go at once."""
    stream = fresh("pace")
    busy = RedisPacing(client, stream=stream, requests_per_second=10.0, burst=1, reserve=3)
    other = RedisPacing(client, stream=stream, requests_per_second=10.0, burst=1, reserve=3)  # another process
    granted, wait = await busy.take_requests([0, 20])
    assert granted == 1 and 0.09 <= wait <= 0.1  # 4 in the bucket, 3 kept: one final now, the next in 0.1 s
    assert (await busy.take_requests([0, 20]))[0] == 0  # the reserve is not theirs
    assert (await other.take_requests([3, 20]))[0] == 3  # three first texts at once, in any process
    granted, wait = await other.take_requests([1])
    assert granted == 0 and 0 < wait <= 0.1  # the reserve spent: the next first text waits like anyone


async def test_a_claim_left_behind_holds_the_others_back_only_briefly(client: redis.Redis) -> None:
    stream = fresh("pace")
    gone = RedisPacing(client, stream=stream, requests_per_second=100.0, burst=1)
    assert (await gone.take_requests([5]))[0] == 1  # short, then the process stops asking (it died)
    other = RedisPacing(client, stream=stream, requests_per_second=100.0, burst=1)
    await asyncio.sleep(0.02)
    assert (await other.take_requests([0, 1]))[0] == 0
    await asyncio.sleep(CLAIM_SECONDS)
    assert (await other.take_requests([0, 1]))[0] == 1


async def test_a_chat_slot_is_spaced_by_its_interval_across_processes(client: redis.Redis) -> None:
    stream = fresh("pace")
    first = RedisPacing(client, stream=stream, requests_per_second=100.0, burst=10)
    second = RedisPacing(client, stream=stream, requests_per_second=100.0, burst=10)
    assert await first.take_chat("chat-a", 2.0) == 0.0
    assert 1.5 < await second.take_chat("chat-a", 2.0) <= 2.0  # the chat's next call is 2 s away, for everyone
    assert await second.take_chat("chat-b", 2.0) == 0.0


async def test_unreachable_redis_falls_back_to_the_local_budget_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = redis.Redis.from_url("redis://:hunter2@127.0.0.1:1/0", socket_connect_timeout=0.2)
    pacing = RedisPacing(down, stream=fresh("pace"), requests_per_second=1.0)
    with caplog.at_level(logging.INFO, logger="core.cluster.pacing"):
        assert (await pacing.take_requests([1]))[0] == 1  # never an error: the local bucket paces alone
        for _ in range(2):
            granted, wait = await pacing.take_requests([1])
            assert granted == 0 and 0 < wait <= 1.0  # 1 request/s, here in this process
            assert await pacing.take_chat("chat-a", 1.0) == 0.0  # chat slots: the local budget's own
    assert [r.getMessage() for r in caplog.records] == [
        "redis unreachable (ConnectionError): platform pacing is per process until it is back"
    ]
    await down.aclose()


async def test_a_later_update_waits_for_an_earlier_one_of_its_conversation(client: redis.Redis) -> None:
    stream = fresh("order")
    one, two = RedisOrder(client, hold_seconds=0.05), RedisOrder(client, hold_seconds=0.05)
    second = await two.arrive(stream, "conv", 11)  # reached its process first
    first = await one.arrive(stream, "conv", 10)
    other = await two.arrive(stream, "elsewhere", 12)
    waiting = asyncio.create_task(second.wait())
    await asyncio.wait_for(first.wait(), 5)
    await asyncio.wait_for(other.wait(), 5)  # another conversation never waits for this one
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done  # 11 waits while 10 has the turn
    await first.leave()
    await asyncio.wait_for(waiting, 5)
    await second.leave()
    await other.leave()


async def test_a_missing_earlier_update_holds_a_later_one_only_briefly(client: redis.Redis) -> None:
    stream = fresh("order")
    order = RedisOrder(client, hold_seconds=0.2)
    first = await order.arrive(stream, "conv", 20)
    await asyncio.wait_for(first.wait(), 5)
    await first.leave()
    later = await order.arrive(stream, "conv", 22)  # 21 never comes
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(later.wait(), 5)
    assert loop.time() - started >= 0.2  # it waited for 21, but no longer than the hold
    await later.leave()
    after = await order.arrive(stream, "conv", 23)  # the watermark moved past the gap: no hold again
    started = loop.time()
    await asyncio.wait_for(after.wait(), 5)
    assert loop.time() - started < 0.2
    await after.leave()


async def test_the_ticket_of_a_dead_process_expires(client: redis.Redis) -> None:
    stream = fresh("order")
    dead = RedisOrder(client, hold_seconds=0.05, lease_seconds=0.5)
    held = await dead.arrive(stream, "conv", 30)
    await asyncio.wait_for(held.wait(), 5)
    held._renewing.cancel()  # type: ignore[union-attr]  # the process dies holding the turn: no renewal, no leave
    alive = RedisOrder(client, hold_seconds=0.05)
    waiter = await alive.arrive(stream, "conv", 31)
    await asyncio.wait_for(waiter.wait(), 5)  # after the lease, not forever
    await waiter.leave()


class CountingRedis(redis.Redis):
    """The real client, counting the commands it sends (scripts included; the subscription has its own)."""

    sent = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.fixture
async def woken() -> AsyncIterator[tuple[CountingRedis, Wakeups]]:
    """One process's order client (its commands counted) and its subscription."""
    client = CountingRedis.from_url(REDIS_URL, socket_connect_timeout=2)
    wakeups = Wakeups(client)
    await wakeups.start()
    assert wakeups.subscribed
    yield client, wakeups
    await wakeups.stop()
    await client.aclose()


async def test_a_queue_of_waiters_costs_redis_nothing_and_each_turn_starts_at_once(
    client: redis.Redis, woken: tuple[CountingRedis, Wakeups]
) -> None:
    """100 updates of one conversation wait in one process while another process's update has the turn:
    they sleep (no command while nothing changes), and each turn starts when the last one ends (each leave
    wakes only the next ticket: a poll per turn, not one per waiter per turn)."""
    counting, wakeups = woken
    stream = fresh("order")
    holder = RedisOrder(client)  # another process; the fallback poll (2 s) would be far slower than a wake-up
    held = await holder.arrive(stream, "group", 1)
    await asyncio.wait_for(held.wait(), 5)
    order = RedisOrder(counting, wakeups=wakeups)
    tickets = [await order.arrive(stream, "group", n) for n in range(2, 102)]
    finished: list[int] = []

    async def take_turn(n: int, ticket: OrderTicket) -> None:
        await ticket.wait()
        finished.append(n)
        await ticket.leave()

    tasks = [asyncio.create_task(take_turn(n, t)) for n, t in enumerate(tickets, 2)]
    await asyncio.sleep(0.3)  # every waiter has asked once and sleeps
    before = counting.sent
    await asyncio.sleep(1.0)
    assert counting.sent == before  # polling waiters: 100 x 5 polls in this second
    loop = asyncio.get_running_loop()
    started = loop.time()
    await held.leave()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert finished == list(range(2, 102))  # in the platform's order
    assert loop.time() - started < 1.5  # 100 turns one after another, none waiting for the 2 s fallback
    assert counting.sent - before <= 3 * 100  # a poll, a renewal start and a leave per turn: linear


async def test_the_watermark_wakes_only_the_updates_it_reaches(
    client: redis.Redis, woken: tuple[CountingRedis, Wakeups]
) -> None:
    counting, wakeups = woken
    stream = fresh("order")
    order = RedisOrder(counting, wakeups=wakeups, hold_seconds=5.0)
    late = await order.arrive(stream, "a", 3)  # 1 and 2 are still on their way to other processes
    later = await order.arrive(stream, "b", 5)  # 4 too
    waiting = [asyncio.create_task(late.wait()), asyncio.create_task(later.wait())]
    await asyncio.sleep(0.2)
    before = counting.sent
    await asyncio.sleep(1.0)
    assert counting.sent == before  # asleep until the mark moves (polling: 5 polls a second each)
    other = RedisOrder(client)
    for n in (1, 2):
        ticket = await other.arrive(stream, f"c{n}", n)
        await ticket.leave()
    await asyncio.wait_for(waiting[0], 1)  # woken by the mark's move, long before the hold ends
    await asyncio.sleep(0.2)
    assert not waiting[1].done()  # 4 has not arrived: 5 still waits
    assert counting.sent - before <= 3  # the mark at 2 woke 3 only (its poll and its renewal's start)
    fourth = await other.arrive(stream, "c4", 4)
    await asyncio.wait_for(waiting[1], 1)
    await asyncio.gather(fourth.leave(), late.leave(), later.leave())


async def test_waiters_poll_while_the_subscription_is_lost_and_sleep_again_once_it_is_back(
    client: redis.Redis, woken: tuple[CountingRedis, Wakeups], caplog: pytest.LogCaptureFixture
) -> None:
    waiters_client, wakeups = woken
    stream = fresh("order")
    held = await RedisOrder(client).arrive(stream, "conv", 1)
    await held.wait()
    waiter = await RedisOrder(waiters_client, wakeups=wakeups).arrive(stream, "conv", 2)
    waiting = asyncio.create_task(waiter.wait())
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.INFO, logger="core.cluster.wakeups"):
        await client.client_kill_filter(_type="pubsub")  # Redis drops every subscriber
        await asyncio.sleep(0.1)
        assert not wakeups.subscribed
        await held.leave()  # announced while nobody listens: the waiter finds out by polling
        await asyncio.wait_for(waiting, 1)
        await asyncio.sleep(1.5)  # resubscribed after RETRY_SECONDS
    assert wakeups.subscribed
    assert [r.getMessage() for r in caplog.records] == [
        "redis subscription lost (ConnectionError): order waiters poll until it is back",
        "redis reachable again: order waiters are woken by announcements",
    ]
    await waiter.leave()


async def test_a_burst_of_calls_queues_for_a_bounded_number_of_connections(client: redis.Redis) -> None:
    """500 waiters polling at once (no subscription) share 32 connections; an unbounded pool opened 500."""
    name = f"parley-test-{uuid.uuid4().hex[:8]}"
    bounded = counters.redis_client(REDIS_URL, name=name)
    stream = fresh("order")
    order = RedisOrder(bounded, hold_seconds=5.0)
    tickets = [await order.arrive(stream, f"c{n}", n) for n in range(2, 502)]  # 1 is missing: all poll
    waiting = [asyncio.create_task(t.wait()) for t in tickets]
    await asyncio.sleep(0.5)
    clients = await client.client_list()
    assert 1 <= sum(c["name"] == name for c in clients) <= counters.MAX_CONNECTIONS
    first = await RedisOrder(client).arrive(stream, "c1", 1)
    await asyncio.wait_for(asyncio.gather(*waiting), 10)
    await asyncio.gather(first.leave(), *(t.leave() for t in tickets))
    await bounded.aclose()
