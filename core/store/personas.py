"""Personas on an open connection: the active conversation read with its key's persona, and /system's writes.

`Store` (history.py) owns the transactions and calls these. Imports only the store's own modules and
core.conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.conversation import ConversationKey
from core.store.db import Dialect, dialect_insert
from core.store.tables import ACTIVE_ONLY, Conversation, Persona

_KEY = ("platform", "chat_id", "thread_id", "scope")


NUL, REPLACEMENT = "\x00", "\ufffd"  # PostgreSQL text cannot hold NUL (as in messages.py)


def _at(table: type[Conversation] | type[Persona], key: ConversationKey) -> tuple[Any, ...]:
    """The rows of `table` under `key`."""
    return (
        table.platform == key.platform,
        table.chat_id == key.chat_id,
        table.thread_id == key.thread_id,
        table.scope == key.scope,
    )


def active_with_persona(key: ConversationKey) -> Select[int, str, str, bool, datetime]:
    """The active conversation of `key`: id, model, the prompt its turns are sent with (the key's persona,
    else its own), whether that is a persona (`custom_prompt`), created_at. One statement: a turn pays no
    extra round trip for personas."""
    return (
        select(
            Conversation.id,
            Conversation.model,
            func.coalesce(Persona.system_prompt, Conversation.system_prompt).label("system_prompt"),
            Persona.id.is_not(None).label("custom_prompt"),
            Conversation.created_at,
        )
        .outerjoin(Persona, and_(*(getattr(Persona, c) == getattr(Conversation, c) for c in _KEY)))
        # ACTIVE_ONLY, not `Conversation.active` (rendered `active = 1`): SQLite uses a partial index only for
        # a WHERE term the same as the index's own, else it scans every conversation.
        .where(*_at(Conversation, key), ACTIVE_ONLY)
    )


async def set_persona(
    connection: AsyncConnection,
    dialect: Dialect,
    key: ConversationKey,
    *,
    system_prompt: str,
    owner_id: int | None,
    now: datetime,
) -> None:
    """Insert or replace the persona of `key` (atomic on both dialects: the unique key decides)."""
    values = {"system_prompt": system_prompt.replace(NUL, REPLACEMENT), "user_id": owner_id, "updated_at": now}
    stmt = dialect_insert(dialect, Persona).values(
        platform=key.platform, chat_id=key.chat_id, thread_id=key.thread_id, scope=key.scope, **values
    )
    await connection.execute(stmt.on_conflict_do_update(index_elements=list(_KEY), set_=values))


async def clear_persona(
    connection: AsyncConnection, key: ConversationKey, *, system_prompt: str, now: datetime
) -> None:
    """Delete the persona of `key`; its active conversation (if any) goes on with `system_prompt`."""
    await connection.execute(delete(Persona).where(*_at(Persona, key)))
    await connection.execute(
        update(Conversation)
        .where(*_at(Conversation, key), ACTIVE_ONLY)
        .values(system_prompt=system_prompt.replace(NUL, REPLACEMENT), updated_at=now)
    )
