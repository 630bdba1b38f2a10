"""Access grants, per-minute request counters, statistics and `/forget`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from core.conversation import ConversationKey, UserRef
from core.events import Usage
from core.store import NewMessage, Store
from core.store.tables import Base, User
from tests.fakes.clock import FakeWallClock, utc

ANN = UserRef("7", "Ann")
BOB = UserRef("8", "Bob")
DM = ConversationKey("telegram", "7")
GROUP = ConversationKey("telegram", "-100")
PER_USER = ConversationKey("telegram", "-100", scope="7")  # GROUP_HISTORY=user: Ann's own conversation there


async def _say(store: Store, key: ConversationKey, user: UserRef, text: str, *, tokens: int = 0) -> int:
    conversation = (await store.active_conversation(key, user, model="m", system_prompt="")).id
    await store.add_message(conversation, NewMessage(role="user", text=text, user=user))
    usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens) if tokens else None
    await store.add_reply(conversation, NewMessage(role="assistant", text=f"re: {text}", user=user, usage=usage))
    return conversation


async def _every_row(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the schema, column by column: what a reader of the database could find."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in (await connection.execute(select(table).order_by(*table.primary_key))).all()
                ]
                for table in Base.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


def _texts(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every text and JSON value stored (numbers and times are compared as values, never searched as text)."""
    return [str(value) for table in rows.values() for row in table for value in row.values()
            if isinstance(value, str | list | dict)]  # fmt: skip


async def _user_row_id(database_url: str, user: UserRef) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(User.id).where(User.platform == "telegram", User.platform_user_id == user.id)
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def test_forget_leaves_nothing_of_the_user(store: Store, database_url: str) -> None:
    await _say(store, DM, ANN, "ann-secret-dm", tokens=10)
    await store.reset(DM)
    await _say(store, DM, ANN, "ann-secret-dm-2", tokens=5)
    await _say(store, PER_USER, ANN, "ann-secret-scoped")
    group = await _say(store, GROUP, ANN, "ann-secret-group", tokens=3)  # Ann started it, Bob joined
    await _say(store, GROUP, BOB, "bob-keeps-this", tokens=4)
    await store.count_request(platform="telegram", user_id=ANN.id, window=1)
    await store.count_request(platform="telegram", user_id=BOB.id, window=1)
    ann_id, bob_id = await _user_row_id(database_url, ANN), await _user_row_id(database_url, BOB)

    forgotten = await store.forget(platform="telegram", user_id=ANN.id)

    assert (forgotten.messages, forgotten.conversations, forgotten.usage_records) == (8, 3, 3)
    rows = await _every_row(database_url)
    assert not any("ann-secret" in text or "Ann" in text for text in _texts(rows))
    assert [(row["id"], row["platform_user_id"], row["name"]) for row in rows["users"]] == [(bob_id, BOB.id, "Bob")]
    assert [(row["user_id"], row["window"], row["count"]) for row in rows["rate_windows"]] == [(BOB.id, 1, 1)]
    # The shared group conversation stays for Bob, no longer linked to Ann; nothing refers to her old id.
    assert [(row["id"], row["user_id"]) for row in rows["conversations"]] == [(group, None)]
    assert [(row["user_id"], row["total_tokens"]) for row in rows["usage_records"]] == [(bob_id, 4)]
    assert [(row["user_id"], row["text"]) for row in rows["messages"]] == [
        (bob_id, "bob-keeps-this"),
        (bob_id, "re: bob-keeps-this"),
    ]
    assert ann_id not in {row["user_id"] for table in rows.values() for row in table if "user_id" in row}
    # Forgetting twice, or someone never seen, is harmless.
    again = await store.forget(platform="telegram", user_id=ANN.id)
    assert (again.messages, again.conversations, again.usage_records) == (0, 0, 0)


async def test_the_newest_grant_decides(store: Store) -> None:
    assert await store.latest_grant(platform="telegram", kind="user", subject_id="5") is None
    await store.add_grant(platform="telegram", kind="user", subject_id="5", granted=True, by="1")
    assert await store.latest_grant(platform="telegram", kind="user", subject_id="5") is True
    await store.add_grant(platform="telegram", kind="user", subject_id="5", granted=False, by="1")
    assert await store.latest_grant(platform="telegram", kind="user", subject_id="5") is False
    # Kinds and platforms are separate subjects.
    assert await store.latest_grant(platform="telegram", kind="chat", subject_id="5") is None
    assert await store.latest_grant(platform="discord", kind="user", subject_id="5") is None
    # Both subjects of a message in one statement: the user's and the chat's newest decisions.
    await store.add_grant(platform="telegram", kind="chat", subject_id="-9", granted=True, by="1")
    assert await store.latest_grants(platform="telegram", user_id="5", chat_id="-9") == (False, True)
    assert await store.latest_grants(platform="telegram", user_id="6", chat_id="5") == (None, None)


async def test_request_counters_are_atomic_and_old_windows_dropped(store: Store, database_url: str) -> None:
    counts = await asyncio.gather(
        *(store.count_request(platform="telegram", user_id="7", window=100) for _ in range(12))
    )
    assert sorted(counts) == list(range(1, 13))
    assert await store.count_request(platform="telegram", user_id="8", window=100) == 1
    assert await store.count_request(platform="telegram", user_id="7", window=103) == 1
    windows = [row["window"] for row in (await _every_row(database_url))["rate_windows"] if row["user_id"] == "7"]
    assert windows == [103]  # window 100 went when 103 began


async def test_stats_count_users_conversations_tokens_and_failures_today(store: Store, clock: FakeWallClock) -> None:
    clock.at = utc(2026, 11, 23, 12, 0, 0)
    await _say(store, DM, ANN, "hello", tokens=10)
    conversation = await _say(store, GROUP, BOB, "hi", tokens=4)
    await store.add_reply(conversation, NewMessage(role="assistant", text="cut", user=BOB, incomplete=True))

    stats = await store.stats(since=utc(2026, 11, 23, 11, 0, 0))

    assert (stats.users, stats.conversations, stats.tokens_today, stats.errors_today) == (2, 2, 14, 1)
    later = await store.stats(since=utc(2026, 11, 23, 13, 0, 0))
    assert (later.users, later.tokens_today, later.errors_today) == (2, 0, 0)


async def test_stats_of_a_day_start_at_its_first_second_utc(store: Store, clock: FakeWallClock) -> None:
    clock.at = utc(2026, 12, 31, 23, 59, 59)
    conversation = await _say(store, DM, ANN, "last of the year", tokens=10)
    await store.add_reply(conversation, NewMessage(role="assistant", text="cut", user=ANN, incomplete=True))
    clock.advance(1)  # 2027-01-01 00:00:00
    await _say(store, DM, ANN, "first of the year", tokens=3)
    await store.add_reply(conversation, NewMessage(role="assistant", text="cut", user=ANN, incomplete=True))
    await store.add_reply(conversation, NewMessage(role="assistant", text="cut", user=ANN, incomplete=True))

    new_year = await store.stats(since=utc(2027, 1, 1))
    old_year = await store.stats(since=utc(2026, 12, 31))

    assert (new_year.tokens_today, new_year.errors_today) == (3, 2)
    assert (old_year.tokens_today, old_year.errors_today) == (13, 3)


async def test_users_table_is_keyed_by_platform(store: Store, database_url: str) -> None:
    await _say(store, ConversationKey("discord", "7"), ANN, "discord side")
    await _say(store, DM, ANN, "telegram side")
    await store.forget(platform="telegram", user_id=ANN.id)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            left = (await connection.execute(select(User.platform))).scalars().all()
    finally:
        await engine.dispose()
    assert left == ["discord"]
