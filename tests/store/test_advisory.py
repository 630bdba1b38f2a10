"""Cross-process locks: two stores (two engines and pools, as two processes have) on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from core.conversation import ConversationKey
from core.store import Store, open_store
from core.store.advisory import lock_id

KEY = ConversationKey("telegram", "100")
OTHER = ConversationKey("telegram", "200")


@pytest.fixture
async def two_stores(postgres_database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    async with open_store(postgres_database_url) as first, open_store(postgres_database_url) as second:
        yield first, second


def test_lock_ids_are_stable_and_distinct() -> None:
    assert lock_id("conversation", "telegram", "1", "", "") == lock_id("conversation", "telegram", "1", "", "")
    assert lock_id("conversation", "telegram", "1", "", "") != lock_id("conversation", "telegram", "", "1", "")
    assert -(2**63) <= lock_id("leader", "x") < 2**63


@pytest.mark.postgres
async def test_one_conversation_is_serialised_across_stores(two_stores: tuple[Store, Store]) -> None:
    first, second = two_stores
    order: list[str] = []
    entered = asyncio.Event()

    async def holder() -> None:
        async with first.conversation_lock(KEY):
            entered.set()
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    async def waiter() -> None:
        await entered.wait()
        async with second.conversation_lock(KEY):
            order.append("second in")

    async def other_conversation() -> float:
        await entered.wait()
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with second.conversation_lock(OTHER):
            return loop.time() - start

    _, _, waited = await asyncio.gather(holder(), waiter(), other_conversation())
    assert order == ["first in", "first out", "second in"]
    assert waited < 0.2  # another conversation is not held up


@pytest.mark.postgres
async def test_a_cancelled_waiter_leaves_no_lock_behind(two_stores: tuple[Store, Store]) -> None:
    first, second = two_stores
    async with first.conversation_lock(KEY):
        waiting = asyncio.create_task(second.conversation_lock(KEY).__aenter__())
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    async with asyncio.timeout(2), second.conversation_lock(KEY):
        pass


@pytest.mark.postgres
async def test_leadership_passes_on_when_the_leader_goes(two_stores: tuple[Store, Store]) -> None:
    first, second = two_stores
    async with first.leadership("poller", retry_seconds=0.05):
        follower = asyncio.create_task(_lead(second))
        await asyncio.sleep(0.3)
        assert not follower.done()  # the second waits while the first leads
    async with asyncio.timeout(2):
        await follower


async def _lead(store: Store) -> None:
    async with store.leadership("poller", retry_seconds=0.05):
        pass


@pytest.mark.postgres
async def test_a_dead_leader_session_frees_leadership(postgres_database_url: str) -> None:
    url = make_url(postgres_database_url)
    async with (
        open_store(postgres_database_url) as first,
        open_store(postgres_database_url) as second,
        first.leadership("poller", retry_seconds=0.05) as lease,
    ):
        follower = asyncio.create_task(_lead(second))
        admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
        try:  # the leader's lock connection dies, as when its process is killed
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database"
                " WHERE datname = $1)",
                url.database,
            )
        finally:
            await admin.close()
        async with asyncio.timeout(3):
            await follower  # the follower leads now
            await lease.lost()  # and the old leader finds out


@pytest.mark.postgres
async def test_locks_asked_together_share_statements_and_each_is_held_by_its_own_turn(
    two_stores: tuple[Store, Store],
) -> None:
    """300 conversations taking their turn at once in one process: the lock session runs what waits as one
    statement (a statement per lock queued a busy process's replies for seconds), and every lock is real:
    the other process finds each of them taken until its turn ends."""
    first, second = two_stores
    statements: list[str] = []
    lock_engine = first._advisory._engine  # the store's lock session pool (PostgreSQL)
    assert lock_engine is not None
    event.listen(lock_engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    keys = [ConversationKey("telegram", str(1000 + n)) for n in range(300)]
    inside, leave = asyncio.Event(), asyncio.Event()
    held = 0

    async def turn(key: ConversationKey) -> None:
        nonlocal held
        async with first.conversation_lock(key):
            held += 1
            if held == len(keys):
                inside.set()
            await leave.wait()

    turns = asyncio.gather(*(turn(key) for key in keys))
    async with asyncio.timeout(10):
        await inside.wait()
    other = second.conversation_lock(keys[123])
    taken = asyncio.create_task(other.__aenter__())
    await asyncio.sleep(0.2)
    assert not taken.done()  # held across processes
    leave.set()
    await turns
    async with asyncio.timeout(2):
        await taken  # and given back when the turn ended
    await other.__aexit__(None, None, None)
    locks = [s for s in statements if "pg_try_advisory_lock" in s]
    unlocks = [s for s in statements if "pg_advisory_unlock" in s]
    assert 1 <= len(locks) <= 20 and 1 <= len(unlocks) <= 20  # not 300 of each
