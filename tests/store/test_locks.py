"""KeyedLock: FIFO per key, concurrent across keys, no leftover entries, cancellation-safe."""

from __future__ import annotations

import asyncio

import pytest

from core.store import KeyedLock


async def test_one_key_is_held_by_one_task_at_a_time_in_arrival_order() -> None:
    locks = KeyedLock()
    entered: list[int] = []
    inside = 0

    async def worker(n: int) -> None:
        nonlocal inside
        async with locks("chat"):
            inside += 1
            assert inside == 1
            entered.append(n)
            await asyncio.sleep(0)  # yield while holding: others must keep waiting
            await asyncio.sleep(0)
            inside -= 1

    tasks = []
    for n in range(20):
        tasks.append(asyncio.create_task(worker(n)))
        await asyncio.sleep(0)  # start each task, so arrival order is 0, 1, 2, ...
    await asyncio.gather(*tasks)

    assert entered == list(range(20))
    assert len(locks) == 0


async def test_different_keys_are_held_at_the_same_time() -> None:
    locks = KeyedLock()
    a_inside = asyncio.Event()
    b_inside = asyncio.Event()

    async def hold(key: str, mine: asyncio.Event, other: asyncio.Event) -> None:
        async with locks(key):
            mine.set()
            await other.wait()  # deadlocks (and times out) if keys shared one lock

    async with asyncio.timeout(2):
        await asyncio.gather(hold("a", a_inside, b_inside), hold("b", b_inside, a_inside))
    assert len(locks) == 0


async def test_no_entries_remain_after_ten_thousand_keys() -> None:
    locks = KeyedLock()

    async def use(key: int) -> None:
        async with locks(key):
            await asyncio.sleep(0)

    await asyncio.gather(*(use(n % 10_000) for n in range(12_000)))  # some keys contended, most not
    assert len(locks) == 0


async def test_entry_lives_while_held_or_awaited() -> None:
    locks = KeyedLock()
    async with locks("k"):
        assert len(locks) == 1
        async with locks("other"):
            assert len(locks) == 2
        assert len(locks) == 1
    assert len(locks) == 0


async def test_cancelled_waiter_leaves_no_trace_and_does_not_block_the_next() -> None:
    locks = KeyedLock()
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks("k"):
            order.append("holder")
            holding.set()
            await release.wait()

    async def waiter(name: str) -> None:
        async with locks("k"):
            order.append(name)

    held = asyncio.create_task(holder())
    async with asyncio.timeout(2):
        await holding.wait()
    doomed = asyncio.create_task(waiter("doomed"))
    await asyncio.sleep(0)
    patient = asyncio.create_task(waiter("patient"))
    await asyncio.sleep(0)

    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert len(locks) == 1  # still held and awaited

    release.set()
    async with asyncio.timeout(2):
        await asyncio.gather(held, patient)
    assert order == ["holder", "patient"]
    assert len(locks) == 0


async def test_cancelling_the_only_waiter_removes_the_entry_once_released() -> None:
    locks = KeyedLock()
    async with locks("k"):
        waiting = asyncio.create_task(locks("k").__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert len(locks) == 1
    assert len(locks) == 0


async def test_an_error_inside_releases_the_lock() -> None:
    locks = KeyedLock()
    with pytest.raises(ValueError):
        async with locks("k"):
            raise ValueError("boom")
    assert len(locks) == 0
    async with asyncio.timeout(1), locks("k"):  # not stuck
        pass
