"""Image bytes in the store, on SQLite and PostgreSQL: kept only for the last turns, read only for them, gone
on reset and with their author's /forget; replies to a forgotten question are not stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from core.conversation import ConversationKey, UserRef
from core.events import Image, Usage
from core.store import NewImage, NewMessage, Store, open_store
from core.store.tables import Message, MessageImage, UsageRecord, User

KEY = ConversationKey("telegram", "-100")
ANN = UserRef("7", "Ann")
BOB = UserRef("8", "Bob")
USAGE = Usage(prompt_tokens=5, completion_tokens=5, total_tokens=10)


def _image(n: int) -> Image:
    return Image(data=b"\x89PNG\r\n\x1a\n" + bytes([n]) * 100, mime="image/png")


async def _conversation(store: Store) -> int:
    return (await store.active_conversation(KEY, ANN, model="m", system_prompt="")).id


async def _turn(
    store: Store, conversation: int, n: int, *, user: UserRef = ANN, author: str | None = None, turns: int | None = 2
) -> int:
    images = [NewImage(_image(n), author or user.id)]
    message = NewMessage("user", f"turn {n}", user=user, images=images)
    return await store.add_message(conversation, message, image_turns=turns)


async def _query(database_url: str, query: Any) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(query)).all())
    finally:
        await engine.dispose()


async def test_a_new_turn_drops_the_image_bytes_that_fell_out_of_the_window(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    ids = [await _turn(store, conversation, n) for n in range(4)]
    await store.add_message(conversation, NewMessage("assistant", "a reply does not move the window", user=ANN))

    kept = await _query(database_url, select(MessageImage.message_id).order_by(MessageImage.id))
    counts = await _query(database_url, select(Message.image_count).where(Message.role == "user").order_by(Message.id))
    assert [row.message_id for row in kept] == ids[2:]
    assert [row.image_count for row in counts] == [1, 1, 1, 1]  # the placeholder's memory of what was there
    history = await store.recent_messages(conversation, limit=50, image_turns=2)
    assert [len(m.images) for m in history] == [0, 0, 1, 1, 0]
    assert history[3].images == (_image(3),)


async def test_history_reads_no_image_bytes_outside_the_window(store: Store) -> None:
    conversation = await _conversation(store)
    for n in range(3):  # stored without pruning, as after HISTORY_IMAGE_TURNS was lowered
        await _turn(store, conversation, n, turns=None)

    history = await store.recent_messages(conversation, limit=50, image_turns=1)

    assert [m.images for m in history] == [(), (), (_image(2),)]
    assert [m.image_count for m in history] == [1, 1, 1]


async def test_reset_drops_the_conversations_image_bytes(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    await _turn(store, conversation, 1)

    assert await store.reset(KEY) is True

    assert await _query(database_url, select(MessageImage.id)) == []
    assert [m.image_count for m in await store.recent_messages(conversation, limit=5)] == [1]


async def test_forget_removes_a_photo_the_user_posted_in_someone_elses_turn(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    await _turn(store, conversation, 1, user=BOB, author=ANN.id)  # Bob quoted Ann's photo
    await _turn(store, conversation, 2, user=BOB)  # and sent one of his own

    await store.forget(platform="telegram", user_id=ANN.id)

    history = await store.recent_messages(conversation, limit=5, image_turns=2)
    assert [(m.text, m.images) for m in history] == [("turn 1", ()), ("turn 2", (_image(2),))]


async def test_a_reply_to_a_forgotten_question_is_not_stored(store: Store, database_url: str) -> None:
    conversation = await _conversation(store)
    question = await store.add_message(conversation, NewMessage("user", "secret", user=ANN))
    await store.forget(platform="telegram", user_id=ANN.id)

    stored = await store.add_reply(
        conversation, NewMessage("assistant", "answer", user=ANN, usage=USAGE), answering=question
    )

    assert stored is None
    assert await _query(database_url, select(User.id)) == []
    assert await _query(database_url, select(Message.id)) == []
    assert await _query(database_url, select(UsageRecord.id)) == []


async def test_a_reply_to_a_question_still_there_is_stored_with_its_usage(store: Store) -> None:
    conversation = await _conversation(store)
    question = await store.add_message(conversation, NewMessage("user", "hi", user=ANN))

    stored = await store.add_reply(
        conversation, NewMessage("assistant", "hello", user=ANN, usage=USAGE), answering=question
    )

    assert stored is not None
    assert (await store.conversation_usage(conversation)).total_tokens == 10


async def test_forget_in_another_process_waits_for_a_reply_being_stored(postgres_database_url: str) -> None:
    """PostgreSQL: the reply's transaction holds the user row (FOR KEY SHARE) while it writes; /forget from
    another process locks that row first, so it waits, then deletes the reply too."""
    url = postgres_database_url
    async with open_store(url) as store:
        conversation = await _conversation(store)
        await store.add_message(conversation, NewMessage("user", "secret", user=ANN))
    engine = create_async_engine(url)
    try:
        async with engine.connect() as replying, open_store(url) as other:
            await replying.execute(
                text("SELECT users.id FROM users WHERE platform_user_id = :id FOR KEY SHARE"), {"id": ANN.id}
            )
            forgetting = asyncio.create_task(other.forget(platform="telegram", user_id=ANN.id))
            await _wait_for_a_lock_wait(url)
            await replying.execute(
                text(
                    "INSERT INTO messages (conversation_id, user_id, role, text, image_count, incomplete, "
                    "prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, "
                    "platform_message_ids, created_at) SELECT :c, id, 'assistant', 'the answer', 0, false, "
                    "0, 0, 0, 0, 0, '[]', now() FROM users WHERE platform_user_id = :id"
                ),
                {"c": conversation, "id": ANN.id},
            )
            await replying.commit()
            forgotten = await forgetting
    finally:
        await engine.dispose()
    assert forgotten.messages == 2  # the question and the reply committed while /forget waited
    assert await _query(url, select(func.count(Message.id))) == [(0,)]


async def _wait_for_a_lock_wait(url: str) -> None:
    """Until some session of the database waits for a row lock (the forget)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(10), engine.connect() as connection:
            while True:
                if (await connection.execute(query)).scalar_one():
                    return
                # pg_stat_activity is read from a snapshot kept until the transaction ends: end it to look again.
                await connection.rollback()
                await asyncio.sleep(0.01)  # pg_stat_activity has no notification to wait on
    finally:
        await engine.dispose()


async def test_a_reply_stored_while_another_process_forgets_waits_and_stores_nothing(
    postgres_database_url: str,
) -> None:
    """PostgreSQL: /forget in another process holds the user row (FOR UPDATE); the reply's final write
    waits for it, then finds its question gone and writes nothing, not even a new user row."""
    url = postgres_database_url
    engine = create_async_engine(url)
    try:
        async with open_store(url) as store, engine.connect() as forgetting:
            conversation = await _conversation(store)
            question = await store.add_message(conversation, NewMessage("user", "secret", user=ANN))
            await forgetting.execute(
                text("SELECT id FROM users WHERE platform_user_id = :id FOR UPDATE"), {"id": ANN.id}
            )
            storing = asyncio.create_task(
                store.add_reply(
                    conversation, NewMessage("assistant", "answer", user=ANN, usage=USAGE), answering=question
                )
            )
            await _wait_for_a_lock_wait(url)
            await forgetting.execute(text("DELETE FROM messages"))
            await forgetting.execute(text("DELETE FROM conversations"))
            await forgetting.execute(text("DELETE FROM users"))
            await forgetting.commit()
            assert await storing is None
    finally:
        await engine.dispose()
    assert await _query(url, select(User.id)) == []
    assert await _query(url, select(UsageRecord.id)) == []
