"""The message values the store takes and gives back, and the statements that write and read them.

Split from core/store/history.py (`Store`), which runs these statements in its transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BindParameter, bindparam, insert, select

from core.conversation import ConversationKey, UserRef
from core.events import Image, ToolCall, Usage
from core.store.images import NewImage
from core.store.tables import Conversation, Message, User


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    key: ConversationKey
    model: str
    system_prompt: str  # what its turns are sent with: the key's persona (/system), else its own
    created_at: datetime
    custom_prompt: bool = False  # `system_prompt` is a persona


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store. `user` is the author of a user message, the requester of an assistant one.

    A "tool" message is a tool's result; its `tool_calls` holds the one call it answers (id and name).
    """

    role: Literal["user", "assistant", "tool"]
    text: str
    user: UserRef | None = None
    images: Sequence[NewImage] = ()
    reasoning: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    model: str | None = None
    incomplete: bool = False
    usage: Usage | None = None
    platform_message_ids: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read back for the context. `user_name` is "" when no user is linked.

    `images` are the bytes still stored (recent turns only); `image_count` how many the turn had.
    """

    id: int
    role: str
    text: str
    images: tuple[Image, ...]
    image_count: int
    reasoning: str | None
    model: str | None
    incomplete: bool
    user_name: str
    created_at: datetime
    tool_calls: tuple[ToolCall, ...] = ()


# Hot-path statements are built once: building one costs more than running it (SQLAlchemy caches the
# compiled SQL, not the Python objects). Parameter names avoid column names, which INSERT reserves.
def _param(name: str) -> BindParameter[Any]:
    return bindparam(f"p_{name}", type_=Message.__table__.c[name].type)


RECENT = (
    select(
        Message.id,
        Message.role,
        Message.text,
        Message.image_count,
        Message.reasoning,
        Message.model,
        Message.incomplete,
        User.name,
        Message.created_at,
        Message.tool_calls,
    )
    .outerjoin(User, User.id == Message.user_id)
    .where(Message.conversation_id == bindparam("p_conversation_id"))
    .order_by(Message.id.desc())
    .limit(bindparam("p_limit"))
)
# The author's id found inside the INSERT, saving a round trip; NULL for no user or an unknown one.
_AUTHOR = (
    select(User.id)
    .join(Conversation, Conversation.platform == User.platform)
    .where(Conversation.id == bindparam("p_conversation_id"), User.platform_user_id == bindparam("p_author"))
    .scalar_subquery()
)
_MESSAGE_FIELDS = (
    "conversation_id",
    "role",
    "text",
    "image_count",
    "reasoning",
    "tool_calls",
    "model",
    "incomplete",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "platform_message_ids",
    "created_at",
)
INSERT_MESSAGE = (
    insert(Message)
    .values({**{name: _param(name) for name in _MESSAGE_FIELDS}, "user_id": _AUTHOR})
    .returning(Message.id, Message.user_id)
)
# The user message a reply answers, if it and its author are still there. FOR KEY SHARE OF users (PostgreSQL;
# nothing on SQLite) makes a concurrent /forget, which locks the user row FOR UPDATE first, wait for this
# transaction, or this one wait for it and then find nothing.
ANSWERED = (
    select(Message.id)
    .join(User, User.id == Message.user_id)
    .where(
        Message.id == bindparam("p_answering"),
        Message.conversation_id == bindparam("p_conversation_id"),
        User.platform_user_id == bindparam("p_author"),
    )
    .with_for_update(read=True, key_share=True, of=User)
)


def stored_calls(stored: Any) -> tuple[ToolCall, ...]:
    """The `tool_calls` column read back; anything malformed is skipped (the column is ours, but JSON)."""
    if not isinstance(stored, list):
        return ()
    return tuple(
        ToolCall(id=str(item.get("id", "")), name=str(item.get("name", "")), arguments=str(item.get("arguments", "")))
        for item in stored
        if isinstance(item, dict)
    )


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; the same replacement on SQLite keeps both dialects alike.
    return text.replace("\x00", "\ufffd")


def message_params(conversation_id: int, message: NewMessage, now: datetime) -> dict[str, Any]:
    usage = message.usage or Usage()
    return {
        "p_conversation_id": conversation_id,
        "p_author": None if message.user is None else message.user.id,
        "p_role": message.role,
        "p_text": _storable(message.text),
        "p_image_count": len(message.images),
        "p_reasoning": None if message.reasoning is None else _storable(message.reasoning),
        "p_tool_calls": [{"id": call.id, "name": call.name, "arguments": call.arguments} for call in message.tool_calls]
        or None,
        "p_model": message.model,
        "p_incomplete": message.incomplete,
        "p_prompt_tokens": usage.prompt_tokens,
        "p_completion_tokens": usage.completion_tokens,
        "p_total_tokens": usage.total_tokens,
        "p_cached_tokens": usage.cached_tokens,
        "p_reasoning_tokens": usage.reasoning_tokens,
        "p_platform_message_ids": list(message.platform_message_ids),
        "p_created_at": now,
    }
