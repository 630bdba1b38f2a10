"""Token usage: one `usage_records` row per upstream call, and the totals built from them.

Functions take an open connection; `Store` (history.py) owns the transactions. Imports only core.events from
the rest of core, besides the store's own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events import Usage
from core.store.tables import UsageRecord, User

UsageKind = Literal["chat", "image", "transcription"]


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over usage records; all zero when there are none."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int


def usage_columns(usage: Usage | None) -> dict[str, int]:
    """The five token columns shared by `messages` and `usage_records`."""
    if usage is None:
        return {}
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


async def insert_usage(
    connection: AsyncConnection,
    *,
    user_id: int,
    conversation_id: int | None,
    kind: UsageKind,
    model: str,
    usage: Usage,
    created_at: datetime,
) -> None:
    await connection.execute(
        insert(UsageRecord).values(
            user_id=user_id,
            conversation_id=conversation_id,
            kind=kind,
            model=model,
            created_at=created_at,
            **usage_columns(usage),
        )
    )


async def _totals(connection: AsyncConnection, *where: ColumnElement[bool], by_user: bool = False) -> UsageTotals:
    query = select(
        func.count(UsageRecord.id),
        func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
        func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
        func.coalesce(func.sum(UsageRecord.total_tokens), 0),
        func.coalesce(func.sum(UsageRecord.cached_tokens), 0),
        func.coalesce(func.sum(UsageRecord.reasoning_tokens), 0),
    )
    if by_user:
        query = query.join(User, User.id == UsageRecord.user_id)
    row = (await connection.execute(query.where(*where))).one()
    # int(): PostgreSQL's SUM over integers is numeric (Decimal in Python).
    return UsageTotals(*(int(value) for value in row))


async def conversation_totals(connection: AsyncConnection, conversation_id: int) -> UsageTotals:
    return await _totals(connection, UsageRecord.conversation_id == conversation_id)


async def user_totals_since(connection: AsyncConnection, platform: str, user_id: str, since: datetime) -> UsageTotals:
    """Usage of one platform user from `since` (inclusive; a naive datetime is taken as UTC) to now."""
    return await _totals(
        connection,
        User.platform == platform,
        User.platform_user_id == user_id,
        UsageRecord.created_at >= since,
        by_user=True,
    )
