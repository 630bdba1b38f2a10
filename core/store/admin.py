"""Access grants, per-minute request counters, run-time statistics and `/forget`, on an open connection.

`Store` (history.py) owns the transactions and calls these. Imports only the store's own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store.db import Dialect, dialect_insert
from core.store.tables import (
    AccessGrant,
    Conversation,
    Message,
    MessageImage,
    Persona,
    RateWindow,
    UsageRecord,
    User,
    utc_now,
)

SubjectKind = Literal["user", "chat"]
RATE_WINDOWS_KEPT = 2  # older per-minute counters of a user are deleted when a new window starts


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    conversations: int
    tokens_today: int
    errors_today: int  # assistant replies stored incomplete (cut short or failed) since midnight UTC


@dataclass(frozen=True, slots=True)
class Forgotten:
    messages: int
    conversations: int
    usage_records: int


async def add_grant(
    connection: AsyncConnection, *, platform: str, kind: SubjectKind, subject_id: str, granted: bool, by: str
) -> None:
    await connection.execute(
        insert(AccessGrant).values(
            platform=platform,
            subject_kind=kind,
            subject_id=subject_id,
            granted=granted,
            by_user_id=by,
            created_at=utc_now(),
        )
    )


def _newest(platform: str, kind: SubjectKind, subject_id: str) -> Select[bool]:
    return (
        select(AccessGrant.granted)
        .where(
            AccessGrant.platform == platform,
            AccessGrant.subject_kind == kind,
            AccessGrant.subject_id == subject_id,
        )
        .order_by(AccessGrant.id.desc())
        .limit(1)
    )


async def latest_grant(
    connection: AsyncConnection, *, platform: str, kind: SubjectKind, subject_id: str
) -> bool | None:
    """The newest decision about the subject: True granted, False revoked, None never decided."""
    row = (await connection.execute(_newest(platform, kind, subject_id))).first()
    return None if row is None else bool(row.granted)


async def latest_grants(
    connection: AsyncConnection, *, platform: str, user_id: str, chat_id: str
) -> tuple[bool | None, bool | None]:
    """`latest_grant` of the user and of the chat, in one statement (every message asks both)."""
    both = select(
        _newest(platform, "user", user_id).scalar_subquery(), _newest(platform, "chat", chat_id).scalar_subquery()
    )
    by_user, by_chat = (await connection.execute(both)).one()
    return (None if by_user is None else bool(by_user)), (None if by_chat is None else bool(by_chat))


async def count_request(
    connection: AsyncConnection, dialect: Dialect, *, platform: str, user_id: str, window: int
) -> int:
    """Add one request to the user's counter for `window` and return the new count (atomic on both dialects)."""
    stmt = dialect_insert(dialect, RateWindow).values(platform=platform, user_id=user_id, window=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateWindow.platform, RateWindow.user_id, RateWindow.window],
        set_={"count": RateWindow.count + 1},
    )
    count = int((await connection.execute(stmt.returning(RateWindow.count))).scalar_one())
    if count == 1:  # a new window: drop this user's stale ones, so the table stays small
        await connection.execute(
            delete(RateWindow).where(
                RateWindow.platform == platform,
                RateWindow.user_id == user_id,
                RateWindow.window <= window - RATE_WINDOWS_KEPT,
            )
        )
    return count


async def stats(connection: AsyncConnection, *, since: datetime) -> Stats:
    users = (await connection.execute(select(func.count(User.id)))).scalar_one()
    conversations = (await connection.execute(select(func.count(Conversation.id)))).scalar_one()
    tokens = (
        await connection.execute(
            select(func.coalesce(func.sum(UsageRecord.total_tokens), 0)).where(UsageRecord.created_at >= since)
        )
    ).scalar_one()
    errors = (
        await connection.execute(
            select(func.count(Message.id)).where(
                Message.role == "assistant", Message.incomplete, Message.created_at >= since
            )
        )
    ).scalar_one()
    return Stats(int(users), int(conversations), int(tokens), int(errors))


async def forget(connection: AsyncConnection, *, platform: str, user_id: str) -> Forgotten:
    """Delete the user's messages (and the replies made to them), the conversations left empty that they
    started, their usage records, request counters, the personas of their own conversations and their user
    row, and the images they posted that others quoted (those turns keep a placeholder). Other people's
    messages stay.

    The user row is locked first (FOR UPDATE, PostgreSQL): a reply being stored for them meanwhile either
    commits before and is deleted here, or waits and then finds its user gone (history.py `_ANSWERED`).
    """
    row_id = (
        await connection.execute(
            select(User.id).where(User.platform == platform, User.platform_user_id == user_id).with_for_update()
        )
    ).scalar_one_or_none()
    await connection.execute(delete(RateWindow).where(RateWindow.platform == platform, RateWindow.user_id == user_id))
    in_platform = select(Conversation.id).where(Conversation.platform == platform)
    await connection.execute(
        delete(MessageImage).where(MessageImage.author == user_id, MessageImage.conversation_id.in_(in_platform))
    )
    if row_id is None:
        return Forgotten(0, 0, 0)
    messages = await connection.execute(delete(Message).where(Message.user_id == row_id))
    has_messages = exists().where(Message.conversation_id == Conversation.id)
    conversations = await connection.execute(delete(Conversation).where(Conversation.user_id == row_id, ~has_messages))
    # Shared conversations they started stay for the others, no longer linked to them.
    await connection.execute(update(Conversation).where(Conversation.user_id == row_id).values(user_id=None))
    usage = await connection.execute(delete(UsageRecord).where(UsageRecord.user_id == row_id))
    # The personas of their own conversations (a shared group's has no owner: it is the group's).
    await connection.execute(delete(Persona).where(Persona.user_id == row_id))
    await connection.execute(delete(User).where(User.id == row_id))
    return Forgotten(messages.rowcount, conversations.rowcount, usage.rowcount)
