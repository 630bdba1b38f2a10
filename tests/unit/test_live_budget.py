"""The per-bot request budget: rate, priorities, round-robin between replies, per-chat spacing, 429 holds."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Sequence

import pytest

from core.live.budget import Budget, Priority
from tests.fakes.live_surface import now, run_virtual


async def _grant(budget: Budget, lane: str, priority: Priority, order: list[str], label: str) -> None:
    await budget.ticket(lane, priority, interval_seconds=0).wait()
    order.append(label)


async def _grant_times(budgets: list[Budget], calls: int) -> list[float]:
    """When each of `calls` calls (one a chat, spread over `budgets`) was let go."""
    times: list[float] = []

    async def one(budget: Budget, lane: str) -> None:
        await budget.ticket(lane, Priority.EDIT, interval_seconds=0).wait()
        times.append(now())

    await asyncio.gather(*(one(budgets[i % len(budgets)], f"chat-{i}") for i in range(calls)))
    return times


def _assert_within_rate(times: list[float], per_second: int) -> None:
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0) <= per_second


def test_grants_never_exceed_the_rate() -> None:
    times = run_virtual(_grant_times([Budget(10)], 50))
    assert len(times) == 50
    _assert_within_rate(times, 10)
    assert times[-1] == pytest.approx(4.9, abs=0.01)


async def _edits_then_final_then_first(budget: Budget) -> list[str]:
    """Queue two edits, then a final, then a first text on a spent `budget`; the order they are let go in."""
    order: list[str] = []
    tasks = [asyncio.create_task(_grant(budget, f"e{i}", Priority.EDIT, order, f"edit{i}")) for i in range(2)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(_grant(budget, "f", Priority.FINAL, order, "final"))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(_grant(budget, "n", Priority.FIRST, order, "first"))]
    await asyncio.gather(*tasks)
    return order


def test_first_texts_then_finals_then_edits_when_requests_are_scarce() -> None:
    async def scenario() -> list[str]:
        budget = Budget(1)
        assert budget.try_take()  # the bucket is empty now: everyone below has to queue
        return await _edits_then_final_then_first(budget)

    assert run_virtual(scenario()) == ["first", "final", "edit0", "edit1"]


def test_replies_at_the_same_priority_take_turns() -> None:
    async def scenario() -> Counter[str]:
        budget = Budget(6)
        served: Counter[str] = Counter()
        stop = now() + 10

        async def reply(lane: str) -> None:
            while now() < stop:
                await budget.ticket(lane, Priority.EDIT, interval_seconds=0).wait()
                if now() < stop:
                    served[lane] += 1

        await asyncio.gather(*(reply(f"chat-{i}") for i in range(4)))
        return served

    served = run_virtual(scenario())
    assert 58 <= sum(served.values()) <= 61
    assert max(served.values()) - min(served.values()) <= 2  # the first reply to start may go twice


def test_calls_into_one_chat_are_spaced_by_its_interval() -> None:
    async def scenario() -> list[float]:
        budget = Budget(100)
        times: list[float] = []

        async def reply() -> None:
            for _ in range(3):
                await budget.ticket("group", Priority.EDIT, interval_seconds=3.0).wait()
                times.append(now())

        await asyncio.gather(reply(), reply())
        return times

    times = sorted(run_virtual(scenario()))
    assert all(b - a >= 3.0 - 1e-9 for a, b in itertools.pairwise(times))


def test_a_429_holds_the_chat_for_retry_after() -> None:
    async def scenario() -> float:
        budget = Budget(100)
        await budget.ticket("chat", Priority.EDIT, interval_seconds=1.0).wait()
        budget.hold("chat", 7.5)
        await budget.ticket("chat", Priority.FIRST, interval_seconds=1.0).wait()
        return now()

    assert run_virtual(scenario()) == pytest.approx(7.5)


def test_a_waiting_ticket_can_be_raised_to_final() -> None:
    async def scenario() -> list[str]:
        budget = Budget(1)
        order: list[str] = []
        budget.try_take()
        edits = [asyncio.create_task(_grant(budget, f"e{i}", Priority.EDIT, order, f"edit{i}")) for i in range(3)]
        late = budget.ticket("late", Priority.EDIT, interval_seconds=0)

        async def wait_late() -> None:
            await late.wait()
            order.append("late")

        task = asyncio.create_task(wait_late())
        await asyncio.sleep(0.1)
        late.raise_to(Priority.FINAL)
        await asyncio.gather(*edits, task)
        return order

    assert run_virtual(scenario())[0] == "late"


def test_a_cancelled_wait_gives_its_turn_away() -> None:
    async def scenario() -> tuple[list[str], int]:
        budget = Budget(1)
        order: list[str] = []
        budget.try_take()
        doomed = asyncio.create_task(_grant(budget, "a", Priority.FIRST, order, "a"))
        other = asyncio.create_task(_grant(budget, "b", Priority.EDIT, order, "b"))
        await asyncio.sleep(0.1)
        doomed.cancel()
        await asyncio.gather(other)
        return order, budget.waiting

    order, waiting = run_virtual(scenario())
    assert order == ["b"]
    assert waiting == 0


def test_typing_gets_a_request_only_when_nobody_waits() -> None:
    async def scenario() -> tuple[bool, bool]:
        budget = Budget(1)
        assert budget.try_take()
        waiter = asyncio.create_task(budget.ticket("x", Priority.EDIT, interval_seconds=0).wait())
        await asyncio.sleep(0.5)
        while_waiting = budget.try_take()
        await waiter
        await asyncio.sleep(2)
        return while_waiting, budget.try_take()

    assert run_virtual(scenario()) == (False, True)


def test_idle_chats_are_forgotten() -> None:
    async def scenario() -> int:
        budget = Budget(1e6)
        for i in range(10_000):
            await budget.ticket(f"chat-{i}", Priority.EDIT, interval_seconds=0.001).wait()
        await asyncio.sleep(1)
        await budget.ticket("last", Priority.EDIT, interval_seconds=1).wait()
        budget.ticket("trigger", Priority.EDIT, interval_seconds=1)
        return budget.chats_remembered

    assert run_virtual(scenario()) < 5000


class SharedBucket:
    """A `SharedGate` as Redis plays it (core.cluster.pacing), in virtual time: one bucket, chat slots."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = 0.0
        self.chat_due: dict[str, float] = {}
        self.calls = 0
        self.asked: list[tuple[int, ...]] = []  # the calls waiting per priority, at each round trip

    async def take_requests(self, wanted: Sequence[int]) -> tuple[int, float]:
        self.calls += 1
        self.asked.append(tuple(wanted))
        self.tokens = min(self.burst, self.tokens + (now() - self.at) * self.rate)
        self.at = now()
        granted = min(sum(wanted), int(self.tokens + 1e-9))
        self.tokens -= granted
        return granted, 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    async def take_chat(self, lane: str, interval_seconds: float) -> float:
        due = self.chat_due.get(lane, 0.0)
        if due > now():
            return due - now()
        self.chat_due[lane] = now() + interval_seconds
        return 0.0


def test_two_processes_sharing_a_gate_stay_within_its_rate_together() -> None:
    shared = SharedBucket(10)
    processes = [Budget(10, shared=shared), Budget(10, shared=shared)]  # each alone would allow 10/s
    times = run_virtual(_grant_times(processes, 40))
    assert len(times) == 40
    _assert_within_rate(times, 10)
    assert times[-1] == pytest.approx(3.9, abs=0.05)


def test_priorities_hold_while_the_shared_budget_is_spent() -> None:
    async def scenario() -> list[str]:
        shared = SharedBucket(1)
        budget = Budget(100, shared=shared)
        assert await shared.take_requests([1]) == (1, 1.0)  # another process spent the bot's request
        return await _edits_then_final_then_first(budget)

    assert run_virtual(scenario()) == ["first", "final", "edit0", "edit1"]


def test_the_shared_gate_is_told_how_many_calls_wait_at_each_priority() -> None:
    async def scenario() -> list[tuple[int, ...]]:
        shared = SharedBucket(1)
        budget = Budget(100, shared=shared)
        order: list[str] = []
        await shared.take_requests([1])  # another process spent the bot's request: the calls below queue
        tasks = [asyncio.create_task(_grant(budget, f"e{i}", Priority.EDIT, order, "edit")) for i in range(9)]
        tasks += [asyncio.create_task(_grant(budget, "n", Priority.FIRST, order, "first"))]
        await asyncio.gather(*tasks)
        return shared.asked[1:5]

    # All at once (at most SHARED_BATCH_MAX), most urgent first: the bucket can serve every process's first
    # texts before anyone's edits (core.cluster.pacing); once granted, a call is no longer asked for.
    assert run_virtual(scenario()) == [(1, 0, 7), (1, 0, 7), (0, 0, 8), (0, 0, 8)]


def test_a_chat_another_process_just_called_into_waits_its_interval() -> None:
    async def scenario() -> float:
        shared = SharedBucket(100)
        budget = Budget(100, shared=shared)
        assert await shared.take_chat("chat-a", 2.0) == 0.0  # the other process's call
        await budget.ticket("chat-a", Priority.FIRST, interval_seconds=2.0).wait()
        return now()

    assert run_virtual(scenario()) == pytest.approx(2.0)


def test_one_round_trip_lets_several_calls_go_when_the_shared_budget_has_them() -> None:
    shared = SharedBucket(10, burst=4)
    times = run_virtual(_grant_times([Budget(10, shared=shared)], 4))
    assert times == [0.0] * 4 and shared.calls == 1


def test_without_a_shared_gate_nothing_changes_on_the_fast_path() -> None:
    async def scenario() -> float:
        budget = Budget(100)
        await budget.ticket("chat-a", Priority.FIRST, interval_seconds=1.0).wait()  # no suspension at all
        return now()

    assert run_virtual(scenario()) == 0.0


def test_finals_under_load_leave_the_reserve_to_first_texts() -> None:
    """Finals queued without end (a saturated bot) take each request above the reserve as it comes; three
    replies starting together then show their first texts at once, and the rate still holds."""

    async def scenario() -> tuple[list[float], list[float]]:
        budget = Budget(10, reserve=3)
        finals: list[float] = []

        async def final(n: int) -> None:
            await budget.ticket(f"f{n}", Priority.FINAL, interval_seconds=0).wait()
            finals.append(now())

        waiting = [asyncio.create_task(final(n)) for n in range(40)]
        await asyncio.sleep(2.0)  # the finals have had every request above the reserve for 2 s
        started = now()
        firsts: list[float] = []

        async def first(n: int) -> None:
            await budget.ticket(f"n{n}", Priority.FIRST, interval_seconds=0).wait()
            firsts.append(now() - started)

        await asyncio.gather(*(first(n) for n in range(3)))
        await asyncio.gather(*waiting)
        return finals, firsts

    finals, firsts = run_virtual(scenario())
    assert firsts == [0.0, 0.0, 0.0]  # without a reserve: 0.1, 0.2 and 0.3 s, each the next request
    assert 20 <= sum(1 for t in finals if t < 2.0) <= 21  # 10 a second, the reserve untouched
    _assert_within_rate(sorted([*finals, *(t + 2.0 for t in firsts)]), 10 + 3)


def test_cosmetic_calls_never_spend_the_reserve() -> None:
    async def scenario() -> list[bool]:
        budget = Budget(10, reserve=2)
        return [budget.try_take(), budget.try_take()]

    assert run_virtual(scenario()) == [True, False]  # burst 1 above the reserve; the 2 left are for first texts
