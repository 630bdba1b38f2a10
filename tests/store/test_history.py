"""Store behaviour on SQLite and PostgreSQL: conversations, history, usage, atomicity and races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from core.conversation import ConversationKey, UserRef
from core.events import Image, ToolCall, Usage
from core.store import NewImage, NewMessage, Store, StoreError, UsageTotals, open_store
from core.store.tables import Conversation, Message, UsageRecord
from tests.fakes.clock import FakeWallClock, utc

KEY = ConversationKey("telegram", "-100123")
ANN = UserRef("42", "Ann")
BOB = UserRef("43", "Bob")


async def _conversation(store: Store, key: ConversationKey = KEY, user: UserRef = ANN) -> int:
    return (await store.active_conversation(key, user, model="m1", system_prompt="be brief")).id


async def _scalar(database_url: str, query: Any) -> Any:
    """Read the database behind the store's back, to check what it does not expose."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(query)).scalar()
    finally:
        await engine.dispose()


async def test_active_conversation_is_created_once_then_reused(store: Store, clock: FakeWallClock) -> None:
    first = await store.active_conversation(KEY, ANN, model="m1", system_prompt="be brief")
    created = clock.at
    clock.advance(60)
    again = await store.active_conversation(KEY, BOB, model="other", system_prompt="other")

    assert again.id == first.id
    assert (again.model, again.system_prompt) == ("m1", "be brief")  # kept from creation
    assert first.key == KEY
    assert first.created_at.tzinfo is not None and first.created_at.utcoffset() == timedelta(0)
    assert first.created_at == again.created_at == created  # the store's clock, not the real one


async def test_thread_and_scope_make_separate_conversations(store: Store) -> None:
    ids = {
        await _conversation(store, key)
        for key in (
            KEY,
            ConversationKey("telegram", "-100123", thread_id="7"),
            ConversationKey("telegram", "-100123", scope="42"),
            ConversationKey("discord", "-100123"),
        )
    }
    assert len(ids) == 4


async def test_reset_keeps_the_old_conversation_and_starts_a_new_one(store: Store, database_url: str) -> None:
    old = await _conversation(store)
    await store.add_message(old, NewMessage("user", "remember 7", user=ANN))

    assert await store.reset(KEY) is True
    assert await store.reset(KEY) is False  # nothing active any more

    new = await _conversation(store)
    assert new != old
    assert await store.recent_messages(new, limit=50) == []
    assert [m.text for m in await store.recent_messages(old, limit=50)] == ["remember 7"]
    assert await _scalar(database_url, select(func.count()).select_from(Conversation)) == 2


async def test_recent_messages_are_the_newest_in_chronological_order(store: Store) -> None:
    conversation = await _conversation(store)
    other = await _conversation(store, ConversationKey("telegram", "elsewhere"))
    for n in range(12):
        await store.add_message(conversation, NewMessage("user" if n % 2 == 0 else "assistant", f"m{n}"))
        await store.add_message(other, NewMessage("user", f"other {n}"))

    recent = await store.recent_messages(conversation, limit=5)

    assert [m.text for m in recent] == ["m7", "m8", "m9", "m10", "m11"]
    assert [m.role for m in recent] == ["assistant", "user", "assistant", "user", "assistant"]
    assert [m.id for m in recent] == sorted(m.id for m in recent)
    assert len(await store.recent_messages(conversation, limit=100)) == 12
    assert await store.recent_messages(conversation, limit=0) == []


async def test_message_fields_and_unicode_round_trip(store: Store) -> None:
    conversation = await _conversation(store)
    hard = "Привет 👋🏽 مرحبا 你好 \u200d e\u0301 \U0010ffff ' \" \\ %s ; DROP TABLE users; --"
    image = Image(data=b"\x89PNG\r\n\x1a\n\x00bytes", mime="image/png")
    await store.add_message(
        conversation, NewMessage("user", hard, user=UserRef("44", "Zoë 🦊"), images=[NewImage(image, "44")])
    )
    await store.add_message(
        conversation,
        NewMessage(
            "assistant",
            "half an ans\x00wer",
            user=ANN,
            reasoning="thinking… 🤔",
            model="m2",
            incomplete=True,
            tool_calls=[ToolCall("call_1", "search", '{"q": "ü"}')],
        ),
    )

    user_message, reply = await store.recent_messages(conversation, limit=10)  # user 44 was created on the way

    assert (user_message.text, user_message.user_name) == (hard, "Zoë 🦊")
    assert (user_message.images, user_message.image_count) == ((image,), 1)
    assert (user_message.role, user_message.reasoning, user_message.model) == ("user", None, None)
    assert user_message.incomplete is False
    assert reply.text == "half an ans\ufffdwer"  # NUL cannot be stored by PostgreSQL: replaced on both
    assert (reply.reasoning, reply.model, reply.incomplete, reply.images) == ("thinking… 🤔", "m2", True, ())
    assert reply.user_name == "Ann"
    assert user_message.created_at <= reply.created_at
    assert reply.created_at.utcoffset() == timedelta(0)


async def test_user_name_is_updated_but_never_blanked(store: Store) -> None:
    conversation = await _conversation(store, user=UserRef("42", "Ann"))
    await store.add_message(conversation, NewMessage("user", "a", user=UserRef("42", "")))
    assert [m.user_name for m in await store.recent_messages(conversation, limit=1)] == ["Ann"]

    await store.active_conversation(KEY, UserRef("42", "Annie"), model="m1", system_prompt="")
    await store.add_message(conversation, NewMessage("user", "b"))  # no user linked

    assert [m.user_name for m in await store.recent_messages(conversation, limit=2)] == ["Annie", ""]


async def test_set_model_changes_the_conversation_model(store: Store) -> None:
    conversation = await _conversation(store)
    await store.set_model(conversation, "m9")
    assert (await store.active_conversation(KEY, ANN, model="m1", system_prompt="")).model == "m9"


async def test_usage_totals_per_conversation_and_per_user_since(store: Store, clock: FakeWallClock) -> None:
    conversation = await _conversation(store)
    other = await _conversation(store, ConversationKey("telegram", "elsewhere"))
    await store.add_reply(conversation, NewMessage("assistant", "a", user=ANN, usage=Usage(10, 5, 15, 3, 2)))
    clock.advance(1)
    before_second = clock.at
    await store.add_reply(conversation, NewMessage("assistant", "b", user=ANN, usage=Usage(20, 6, 26, 4, 1)))
    await store.record_usage(
        ANN, "telegram", conversation_id=conversation, kind="image", model="img", usage=Usage(1, 1, 2, 0, 0)
    )
    await store.add_reply(other, NewMessage("assistant", "c", user=BOB, usage=Usage(100, 100, 200, 0, 0)))
    await store.record_usage(  # the same user id on another platform is another user
        UserRef("42"), "discord", conversation_id=None, kind="chat", model="m", usage=Usage(7, 7, 14, 0, 0)
    )
    await store.add_reply(conversation, NewMessage("assistant", "no usage", user=ANN))

    assert await store.conversation_usage(conversation) == UsageTotals(3, 31, 12, 43, 7, 3)
    assert await store.user_usage_since("telegram", "42", before_second - timedelta(hours=1)) == UsageTotals(
        3, 31, 12, 43, 7, 3
    )
    assert await store.user_usage_since("telegram", "42", before_second) == UsageTotals(2, 21, 7, 28, 4, 1)
    naive = before_second.replace(tzinfo=None)  # naive means UTC
    assert await store.user_usage_since("telegram", "42", naive) == UsageTotals(2, 21, 7, 28, 4, 1)
    assert await store.user_usage_since("telegram", "43", before_second) == UsageTotals(1, 100, 100, 200, 0, 0)
    assert await store.user_usage_since("telegram", "42", clock.at + timedelta(seconds=5)) == (
        UsageTotals(0, 0, 0, 0, 0, 0)
    )
    assert await store.conversation_usage(999_999) == UsageTotals(0, 0, 0, 0, 0, 0)


async def test_usage_since_midnight_utc_changes_day_between_235959_and_000000(
    store: Store, clock: FakeWallClock, database_url: str
) -> None:
    conversation = await _conversation(store)
    clock.at = utc(2026, 12, 31, 23, 59, 59)
    await store.add_reply(conversation, NewMessage("assistant", "late", user=ANN, usage=Usage(1, 1, 2)))
    clock.advance(1)  # 2027-01-01 00:00:00 UTC
    await store.add_reply(conversation, NewMessage("assistant", "early", user=ANN, usage=Usage(3, 4, 7)))
    await store.record_usage(ANN, "telegram", conversation_id=None, kind="image", model="img", usage=Usage(0, 0, 5))

    assert await store.user_usage_since("telegram", ANN.id, utc(2027, 1, 1)) == UsageTotals(2, 3, 4, 12, 0, 0)
    assert await store.user_usage_since("telegram", ANN.id, utc(2026, 12, 31)) == UsageTotals(3, 4, 5, 14, 0, 0)
    stored = await _scalar(database_url, select(func.min(UsageRecord.created_at)))
    assert stored == utc(2026, 12, 31, 23, 59, 59)


async def test_reply_usage_falls_back_to_the_conversation_starter_and_model(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    await store.add_reply(conversation, NewMessage("assistant", "x", usage=Usage(1, 2, 3)))

    assert await store.user_usage_since("telegram", ANN.id, datetime(2000, 1, 1, tzinfo=UTC)) == UsageTotals(
        1, 1, 2, 3, 0, 0
    )
    assert await _scalar(database_url, select(UsageRecord.model)) == "m1"
    assert await _scalar(database_url, select(UsageRecord.kind)) == "chat"
    assert await _scalar(database_url, select(Message.total_tokens)) == 3


async def test_add_reply_stores_message_and_usage_together_or_not_at_all(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    await store.add_message(conversation, NewMessage("user", "question", user=ANN))
    # Break the second write of the transaction for real: the usage table is gone.
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE usage_records"))
    finally:
        await engine.dispose()

    with pytest.raises(StoreError) as caught:
        await store.add_reply(conversation, NewMessage("assistant", "secret answer", user=ANN, usage=Usage(1)))

    assert "secret answer" not in str(caught.value)
    assert [m.text for m in await store.recent_messages(conversation, limit=10)] == ["question"]
    await store.add_reply(conversation, NewMessage("assistant", "no usage, no usage row needed", user=ANN))
    assert len(await store.recent_messages(conversation, limit=10)) == 2


async def test_platform_message_ids_are_stored_and_replaced(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    message_id = await store.add_message(conversation, NewMessage("user", "hi", platform_message_ids=["17"]))
    query = select(Message.platform_message_ids).where(Message.id == message_id)
    assert await _scalar(database_url, query) == ["17"]

    await store.set_platform_message_ids(message_id, ["18", "19", "20"])

    assert await _scalar(database_url, query) == ["18", "19", "20"]
    plain = await store.add_message(conversation, NewMessage("user", "no ids"))
    assert await _scalar(database_url, select(Message.platform_message_ids).where(Message.id == plain)) == []


async def test_racing_tasks_and_stores_agree_on_one_conversation(store: Store, database_url: str) -> None:
    users = [UserRef(str(n), f"user{n}") for n in range(3)]
    for user in users:  # known users cost no write, so every racer reaches the conversation INSERT together
        await store.active_conversation(ConversationKey("discord", "warm-up"), user, model="m1", system_prompt="")
    key = ConversationKey("discord", "race")
    async with open_store(database_url) as second:  # another engine and pool, as another process would
        records = await asyncio.gather(
            *(
                (store if n % 2 else second).active_conversation(key, users[n % 3], model="m1", system_prompt="")
                for n in range(10)
            )
        )

    assert len({record.id for record in records}) == 1
    query = select(func.count()).select_from(Conversation).where(Conversation.chat_id == "race")
    assert await _scalar(database_url, query) == 1


async def test_message_for_a_missing_conversation_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.add_message(123_456, NewMessage("user", "orphan", user=ANN))
    with pytest.raises(StoreError):
        await store.add_message(123_456, NewMessage("user", "orphan"))  # the foreign key refuses it


async def test_unreachable_database_raises_store_error() -> None:
    async with open_store("postgresql+asyncpg://nobody:hunter2@127.0.0.1:1/none") as store:
        with pytest.raises(StoreError) as caught:
            await store.reset(KEY)
    assert "hunter2" not in str(caught.value)
    assert caught.value.user_message == StoreError.default_message


@pytest.mark.postgres
async def test_store_recovers_after_postgres_drops_its_connections(postgres_database_url: str) -> None:
    url = postgres_database_url
    async with open_store(url) as store:
        conversation = await _conversation(store)
        await store.add_message(conversation, NewMessage("user", "before", user=ANN))
        await _scalar(
            url,
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = '{make_url(url).database}' AND pid <> pg_backend_pid()"
            ),
        )

        try:  # at most the first call after the drop fails, and as a StoreError
            await store.add_message(conversation, NewMessage("user", "after", user=ANN))
        except StoreError:
            await store.add_message(conversation, NewMessage("user", "after", user=ANN))

        assert [m.text for m in await store.recent_messages(conversation, limit=5)] == ["before", "after"]
