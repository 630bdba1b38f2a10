"""The database schema: SQLAlchemy 2 typed ORM tables (users, conversations, messages, message_images,
usage_records, access_grants, rate_windows, personas).

Schema only: no queries and no engine here. migrations/versions/ must agree with it (a test checks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints, so that later SQLite batch migrations can find them by name (Alembic "Naming Conventions").
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACTIVE_ONLY = text("active")
"""Predicate of the partial unique index on conversations; ON CONFLICT must name the same one."""

ZERO = text("0")  # a name, because `Message.text` shadows sqlalchemy's text() in that class body


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both dialects.

    SQLite keeps no offset and hands back naive values, so values are converted to UTC before they are
    stored (keeping the text comparable) and marked UTC when read. Naive input is taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    platform_user_id: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # At most one active conversation per key; inactive (reset) ones are kept as history.
        Index(
            "uq_conversations_active_key",
            "platform",
            "chat_id",
            "thread_id",
            "scope",
            unique=True,
            sqlite_where=ACTIVE_ONLY,
            postgresql_where=ACTIVE_ONLY,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    chat_id: Mapped[str] = mapped_column(String)
    thread_id: Mapped[str] = mapped_column(String, default="")
    scope: Mapped[str] = mapped_column(String, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    model: Mapped[str] = mapped_column(String)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # When this row last changed (model, reset); new messages do not touch it, to keep turns one write.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Persona(Base):
    """The system prompt chosen with `/system` for a conversation key (platform, chat, thread, scope).

    Keyed like a conversation, not tied to one conversation row: `/reset` deactivates the row and the next
    one under the same key is sent with this prompt too. Without a row, a conversation goes on with its own
    `system_prompt` (SYSTEM_PROMPT when it began).
    """

    __tablename__ = "personas"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "thread_id", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    chat_id: Mapped[str] = mapped_column(String)
    thread_id: Mapped[str] = mapped_column(String, default="")
    scope: Mapped[str] = mapped_column(String, default="")
    system_prompt: Mapped[str] = mapped_column(Text)
    # Whose data it is: the user of a personal conversation (a DM, GROUP_HISTORY=user), deleted by their
    # /forget; NULL in a conversation a whole group shares, where it is the group's.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The author of a user message, the requester of an assistant message.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text)
    # How many images the turn had; their bytes are in message_images while the turn is recent enough.
    image_count: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    reasoning: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    model: Mapped[str | None] = mapped_column(String)
    incomplete: Mapped[bool] = mapped_column(default=False, server_default=false())
    prompt_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    completion_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    total_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    cached_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    reasoning_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    platform_message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class MessageImage(Base):
    """The bytes of one image of a user turn, kept only while the turn is among the last HISTORY_IMAGE_TURNS
    of its conversation (then the row goes and the turn's `image_count` stands for it as a placeholder).

    Apart from `messages`, so that reading history reads no image bytes outside that window.
    """

    __tablename__ = "message_images"
    __table_args__ = (Index("ix_message_images_conversation_id_message_id", "conversation_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The platform user id of whoever posted the image: the turn's author, or the author of a quoted photo.
    # A string, not a users row: a quoted author may never have talked to the bot. /forget goes by it.
    author: Mapped[str] = mapped_column(String)
    mime: Mapped[str] = mapped_column(String)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_user_id_created_at", "user_id", "created_at"),
        Index("ix_usage_records_conversation_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Usage outlives a deleted conversation: it still counts towards the user's totals.
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    prompt_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    completion_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    total_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    cached_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    reasoning_tokens: Mapped[int] = mapped_column(default=0, server_default=ZERO)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class AccessGrant(Base):
    """An admin's decision about a user or chat; the newest row per subject wins, older ones are the audit."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_subject", "platform", "subject_kind", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    subject_kind: Mapped[str] = mapped_column(String)  # "user" or "chat"
    subject_id: Mapped[str] = mapped_column(String)
    granted: Mapped[bool] = mapped_column()  # False: revoked
    by_user_id: Mapped[str] = mapped_column(String)  # the admin's platform user id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class RateWindow(Base):
    """Requests of one platform user in one minute (fixed windows): flood control shared by all processes."""

    __tablename__ = "rate_windows"
    __table_args__ = (UniqueConstraint("platform", "user_id", "window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String)
    user_id: Mapped[str] = mapped_column(String)  # the platform user id: no users row is needed to count
    window: Mapped[int] = mapped_column(Integer)  # Unix time // 60
    count: Mapped[int] = mapped_column(Integer)
