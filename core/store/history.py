"""`Store`: conversations, their messages and usage, one short transaction per call; `open_store` builds it.

Only core/assistant.py and core/answer.py use this; the message values and the statements they are stored and
read with are in core/store/messages.py. SQLAlchemy and driver errors become `StoreError` here and go no further.
Imports core.conversation, core.events and core.errors from the rest of core.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.conversation import ConversationKey, UserRef
from core.errors import StoreError
from core.events import Usage
from core.store import admin, personas
from core.store.admin import Forgotten, Stats, SubjectKind
from core.store.advisory import AdvisoryLocks, Lease, lock_id, open_advisory_locks
from core.store.db import Database, dialect_insert, ensure_user, open_database
from core.store.images import add_images, drop_images, load_images, prune_images
from core.store.locks import KeyedLock
from core.store.messages import (
    ANSWERED,
    INSERT_MESSAGE,
    RECENT,
    ConversationRecord,
    NewMessage,
    StoredMessage,
    message_params,
    stored_calls,
)
from core.store.tables import ACTIVE_ONLY, Conversation, Message, User
from core.store.usage import (
    UsageKind,
    UsageTotals,
    conversation_totals,
    insert_usage,
    user_totals_since,
)


class Store:
    """Conversation history and usage. Every method is its own short transaction.

    Safe to share between tasks and processes: concurrent `active_conversation` calls for one key agree
    on a single conversation (a partial unique index decides, not a read-then-write).
    `clock` (Unix seconds) stamps the messages, conversations and usage it writes, so that the windows
    read from those times (tokens today, failures today) follow the same clock as `Gatekeeper`'s.
    """

    def __init__(
        self, database: Database, locks: AdvisoryLocks | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = database
        self._clock = clock
        self._advisory = locks or AdvisoryLocks(None)
        self._keyed = KeyedLock()
        # Per platform user id: a reply's final store and /forget never interleave in this process (SQLite
        # has no row locks; on PostgreSQL the row locks of ANSWERED and admin.forget also hold across processes).
        self._users = KeyedLock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    @asynccontextmanager
    async def conversation_lock(self, key: ConversationKey) -> AsyncIterator[None]:
        """Hold the conversation for one turn: in this process (FIFO), then on PostgreSQL across processes.

        The in-process lock comes first so that a process never queues on itself through the database,
        and holds only one lock connection per conversation.
        """
        async with self._keyed(key):
            held = lock_id("conversation", key.platform, key.chat_id, key.thread_id, key.scope)
            async with self._advisory.hold(held):
                yield

    def leadership(self, name: str, *, retry_seconds: float) -> AbstractAsyncContextManager[Lease]:
        """Wait until this process is the one holding `name` (PostgreSQL: across processes), hold it."""
        return self._advisory.leadership(lock_id("leader", name), retry_seconds=retry_seconds)

    @asynccontextmanager
    async def _transaction(self, *, single_read: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction; for one SELECT (`single_read`) none is begun where that is cheaper."""
        try:
            if single_read:
                async with self._db.reader.connect() as connection:
                    yield connection
            else:
                async with self._db.engine.begin() as connection:
                    yield connection
        except (SQLAlchemyError, OSError) as exc:  # OSError: asyncpg's refused, timed-out or dropped connections
            # The class name only: a driver's message quotes the SQL, which helps nobody in a chat.
            raise StoreError(f"database error ({type(exc).__name__})") from exc

    async def active_conversation(
        self, key: ConversationKey, user: UserRef, *, model: str, system_prompt: str
    ) -> ConversationRecord:
        """The active conversation for `key`, created with `model` and `system_prompt` if there is none.

        An existing conversation keeps its own model and prompt. The user's row is created, or renamed. The
        key's persona (/system), if any, is the record's `system_prompt`.
        """
        async with self._transaction() as connection:
            user_id = await ensure_user(connection, self._db.dialect, key.platform, user)
            row = await self._find_active(connection, key)
            if row is None:
                # A racing creator may win between the SELECT and here: the index turns our insert into a
                # no-op and the SELECT below reads the winner's row (after its commit, on both dialects).
                now = self._now()
                stmt = dialect_insert(self._db.dialect, Conversation).values(
                    platform=key.platform,
                    chat_id=key.chat_id,
                    thread_id=key.thread_id,
                    scope=key.scope,
                    user_id=user_id,
                    model=model,
                    system_prompt=system_prompt,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                await connection.execute(
                    stmt.on_conflict_do_nothing(
                        index_elements=["platform", "chat_id", "thread_id", "scope"], index_where=ACTIVE_ONLY
                    )
                )
                row = await self._find_active(connection, key)
                if row is None:  # pragma: no cover - the index guarantees a row
                    raise StoreError("active conversation vanished while being created")
            return ConversationRecord(
                row.id, key, row.model, row.system_prompt, row.created_at, bool(row.custom_prompt)
            )

    @staticmethod
    async def _find_active(connection: AsyncConnection, key: ConversationKey) -> Any:
        return (await connection.execute(personas.active_with_persona(key))).first()

    async def set_persona(self, key: ConversationKey, user: UserRef, system_prompt: str, *, personal: bool) -> None:
        """`system_prompt` for the conversations of `key` from their next turn on, across /reset. `personal`
        (a DM, GROUP_HISTORY=user): the persona is `user`'s, and their /forget deletes it; else the group's."""
        async with self._transaction() as connection:
            owner = await ensure_user(connection, self._db.dialect, key.platform, user) if personal else None
            await personas.set_persona(
                connection, self._db.dialect, key, system_prompt=system_prompt, owner_id=owner, now=self._now()
            )

    async def clear_persona(self, key: ConversationKey, *, system_prompt: str) -> None:
        """Drop the persona of `key`: its active conversation goes on with `system_prompt`, later ones as made."""
        async with self._transaction() as connection:
            await personas.clear_persona(connection, key, system_prompt=system_prompt, now=self._now())

    async def ping(self) -> None:
        """One trivial query (for /healthz); raises StoreError when the database does not answer."""
        async with self._transaction(single_read=True) as connection:
            await connection.execute(select(1))

    async def reset(self, key: ConversationKey) -> bool:
        """Deactivate the active conversation (it stays stored, without image bytes); True if there was one."""
        async with self._transaction() as connection:
            ended = (
                (
                    await connection.execute(
                        update(Conversation)
                        .where(
                            Conversation.platform == key.platform,
                            Conversation.chat_id == key.chat_id,
                            Conversation.thread_id == key.thread_id,
                            Conversation.scope == key.scope,
                            Conversation.active,
                        )
                        .values(active=False, updated_at=self._now())
                        .returning(Conversation.id)
                    )
                )
                .scalars()
                .all()
            )
            await drop_images(connection, ended)  # never sent upstream again: placeholders from now on
            return bool(ended)

    async def set_model(self, conversation_id: int, model: str) -> None:
        async with self._transaction() as connection:
            await connection.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(model=model, updated_at=self._now())
            )

    async def add_message(self, conversation_id: int, message: NewMessage, *, image_turns: int | None = None) -> int:
        """Store a message (with its usage columns and images, if any) and return its id.

        With `image_turns`, a user message also drops, in the same transaction, the image bytes of the
        conversation's turns older than the last `image_turns` user turns (this one counts; at least one).
        """
        async with self._transaction() as connection:
            message_id, _ = await self._insert_message(connection, conversation_id, message)
            await add_images(connection, conversation_id, message_id, message.images)
            if image_turns is not None and message.role == "user":
                await prune_images(connection, conversation_id, image_turns)
            return message_id

    async def add_reply(
        self,
        conversation_id: int,
        message: NewMessage,
        *,
        kind: UsageKind = "chat",
        answering: int | None = None,
        before: Sequence[NewMessage] = (),
    ) -> int | None:
        """Store an assistant message and, if it has usage, a usage record: both or neither.

        The usage is charged to `message.user`, else to whoever started the conversation; its model is
        `message.model`, else the conversation's. With `answering` (the id of the user message replied to)
        nothing is stored, and None returned, when that message or its author is gone: `/forget` ran while
        the reply was streaming, and must not be undone by it. `before` (a tool exchange: the assistant's
        calls and the tools' results) is stored first, in the same transaction.
        """
        if answering is None or message.user is None:
            return await self._store_reply(conversation_id, message, kind=kind, answering=None, before=before)
        async with self._users(message.user.id):
            return await self._store_reply(conversation_id, message, kind=kind, answering=answering, before=before)

    async def _store_reply(
        self,
        conversation_id: int,
        message: NewMessage,
        *,
        kind: UsageKind,
        answering: int | None,
        before: Sequence[NewMessage] = (),
    ) -> int | None:
        async with self._transaction() as connection:
            if answering is not None and message.user is not None:
                found = await connection.execute(
                    ANSWERED,
                    {"p_answering": answering, "p_conversation_id": conversation_id, "p_author": message.user.id},
                )
                if found.first() is None:
                    return None
            for earlier in before:
                await self._insert_message(connection, conversation_id, earlier)
            message_id, user_id = await self._insert_message(connection, conversation_id, message)
            if message.usage is not None:
                owner = (
                    await connection.execute(
                        select(Conversation.user_id, Conversation.model).where(Conversation.id == conversation_id)
                    )
                ).one()
                charged = user_id if user_id is not None else owner.user_id
                if charged is not None:  # None only for a conversation made outside `active_conversation`
                    await insert_usage(
                        connection,
                        user_id=charged,
                        conversation_id=conversation_id,
                        kind=kind,
                        model=message.model or owner.model,
                        usage=message.usage,
                        created_at=self._now(),
                    )
            return message_id

    async def _insert_message(
        self, connection: AsyncConnection, conversation_id: int, message: NewMessage
    ) -> tuple[int, int | None]:
        """Insert the message; return its id and its user's id."""
        params = message_params(conversation_id, message, self._now())
        row = (await connection.execute(INSERT_MESSAGE, params)).one()
        message_id, user_id = int(row.id), row.user_id
        if message.user is not None and user_id is None:  # a user never seen on this platform: create it
            platform = (
                await connection.execute(select(Conversation.platform).where(Conversation.id == conversation_id))
            ).scalar_one()
            user_id = await ensure_user(connection, self._db.dialect, platform, message.user)
            await connection.execute(update(Message).where(Message.id == message_id).values(user_id=user_id))
        return message_id, user_id

    async def recent_messages(self, conversation_id: int, *, limit: int, image_turns: int = 1) -> list[StoredMessage]:
        """The newest `limit` messages of the conversation, oldest first.

        Image bytes are read only for the last `image_turns` user turns (at least one), the ones that go
        upstream with their images; older turns come with their `image_count` alone.
        """
        if limit <= 0:
            return []
        async with self._transaction(single_read=True) as connection:
            result = await connection.execute(RECENT, {"p_conversation_id": conversation_id, "p_limit": limit})
            rows = result.all()
            window = [row for row in rows if row.role == "user"][: max(1, image_turns)]  # rows: newest first
            wanted = [row.id for row in window if row.image_count]
            images = await load_images(connection, conversation_id, wanted)
        return [
            StoredMessage(
                row.id,
                row.role,
                row.text,
                tuple(images.get(row.id, ())),
                row.image_count,
                row.reasoning,
                row.model,
                row.incomplete,
                row.name or "",
                row.created_at,
                stored_calls(row.tool_calls),
            )
            for row in reversed(rows)
        ]

    async def set_platform_message_ids(self, message_id: int, ids: Sequence[str]) -> None:
        async with self._transaction() as connection:
            await connection.execute(
                update(Message).where(Message.id == message_id).values(platform_message_ids=list(ids))
            )

    async def record_usage(
        self,
        user: UserRef,
        platform: str,
        *,
        conversation_id: int | None,
        kind: UsageKind,
        model: str,
        usage: Usage,
        create_user: bool = True,
    ) -> bool:
        """Record usage outside a reply (an image, say); the user's row is created if needed.

        With `create_user=False` nothing is recorded (False returned) when the user's row is gone: a
        `/forget` ran since the work began. The row is held as in `add_reply` (PostgreSQL), so that a
        concurrent `/forget` either deletes this record or finds it never written.
        """
        async with self._users(user.id), self._transaction() as connection:
            if create_user:
                user_id = await ensure_user(connection, self._db.dialect, platform, user)
            else:
                found = await connection.execute(
                    select(User.id)
                    .where(User.platform == platform, User.platform_user_id == user.id)
                    .with_for_update(read=True, key_share=True)
                )
                kept: int | None = found.scalar_one_or_none()
                if kept is None:
                    return False
                user_id = kept
            await insert_usage(
                connection,
                user_id=user_id,
                conversation_id=conversation_id,
                kind=kind,
                model=model,
                usage=usage,
                created_at=self._now(),
            )
            return True

    async def conversation_usage(self, conversation_id: int) -> UsageTotals:
        async with self._transaction(single_read=True) as connection:
            return await conversation_totals(connection, conversation_id)

    async def user_usage_since(self, platform: str, user_id: str, since: datetime) -> UsageTotals:
        """The platform user's usage from `since` on (a naive `since` is taken as UTC)."""
        async with self._transaction(single_read=True) as connection:
            return await user_totals_since(connection, platform, user_id, since)

    async def add_grant(self, *, platform: str, kind: SubjectKind, subject_id: str, granted: bool, by: str) -> None:
        async with self._transaction() as connection:
            await admin.add_grant(
                connection, platform=platform, kind=kind, subject_id=subject_id, granted=granted, by=by
            )

    async def latest_grant(self, *, platform: str, kind: SubjectKind, subject_id: str) -> bool | None:
        async with self._transaction(single_read=True) as connection:
            return await admin.latest_grant(connection, platform=platform, kind=kind, subject_id=subject_id)

    async def latest_grants(self, *, platform: str, user_id: str, chat_id: str) -> tuple[bool | None, bool | None]:
        """The newest decisions about a user and a chat (see admin.latest_grants)."""
        async with self._transaction(single_read=True) as connection:
            return await admin.latest_grants(connection, platform=platform, user_id=user_id, chat_id=chat_id)

    async def count_request(self, *, platform: str, user_id: str, window: int) -> int:
        async with self._transaction() as connection:
            return await admin.count_request(
                connection, self._db.dialect, platform=platform, user_id=user_id, window=window
            )

    async def stats(self, *, since: datetime) -> Stats:
        async with self._transaction() as connection:
            return await admin.stats(connection, since=since)

    async def forget(self, *, platform: str, user_id: str) -> Forgotten:
        """Delete everything of one platform user (see `core.store.admin.forget`), in one transaction."""
        async with self._users(user_id), self._transaction() as connection:
            return await admin.forget(connection, platform=platform, user_id=user_id)


@asynccontextmanager
async def open_store(database_url: str, *, clock: Callable[[], float] = time.time) -> AsyncIterator[Store]:
    """A `Store` on a migrated database (see `core.store.migrate.upgrade`); the engine is disposed on exit."""
    async with open_database(database_url) as database, open_advisory_locks(database_url) as locks:
        yield Store(database, locks, clock=clock)
