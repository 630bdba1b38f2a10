"""Image bytes of user turns (`message_images`): stored with a turn, kept for the last turns only, read
only for those. Functions take an open connection; `Store` (history.py) owns the transactions. Imports only
core.events from the rest of core, besides the store's own modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events import Image
from core.store.tables import Message, MessageImage


@dataclass(frozen=True, slots=True)
class NewImage:
    """An image of a user turn and the platform user id of whoever posted it (a quoted photo's author)."""

    image: Image
    author: str


# The id of the oldest user turn whose images are kept: the `p_offset`+1-th newest user message.
_WINDOW_START = (
    select(Message.id)
    .where(Message.conversation_id == bindparam("p_conversation_id"), Message.role == "user")
    .order_by(Message.id.desc())
    .offset(bindparam("p_offset"))
    .limit(1)
    .scalar_subquery()
)
# Images that fell out of the window; the index on (conversation_id, message_id) finds exactly them, and
# since every older one went the same way, a turn deletes at most about one turn's images.
_PRUNE = delete(MessageImage).where(
    MessageImage.conversation_id == bindparam("p_conversation_id"), MessageImage.message_id < _WINDOW_START
)


async def add_images(
    connection: AsyncConnection, conversation_id: int, message_id: int, images: Sequence[NewImage]
) -> None:
    if images:
        await connection.execute(
            insert(MessageImage),
            [
                {
                    "message_id": message_id,
                    "conversation_id": conversation_id,
                    "author": new.author,
                    "mime": new.image.mime,
                    "data": new.image.data,
                }
                for new in images
            ],
        )


async def prune_images(connection: AsyncConnection, conversation_id: int, image_turns: int) -> None:
    """Delete the image bytes of the turns older than the last `image_turns` user turns (at least one)."""
    await connection.execute(_PRUNE, {"p_conversation_id": conversation_id, "p_offset": max(1, image_turns) - 1})


async def drop_images(connection: AsyncConnection, conversation_ids: Sequence[int]) -> None:
    """Delete every image of these conversations (reset: they are never sent upstream again)."""
    if conversation_ids:
        await connection.execute(delete(MessageImage).where(MessageImage.conversation_id.in_(conversation_ids)))


async def load_images(
    connection: AsyncConnection, conversation_id: int, message_ids: Sequence[int]
) -> dict[int, list[Image]]:
    """The stored images of these messages of the conversation, by message id, in the order they came."""
    found: dict[int, list[Image]] = {}
    if not message_ids:
        return found
    rows = await connection.execute(
        select(MessageImage.message_id, MessageImage.mime, MessageImage.data)
        .where(MessageImage.conversation_id == conversation_id, MessageImage.message_id.in_(message_ids))
        .order_by(MessageImage.id)
    )
    for row in rows:
        found.setdefault(row.message_id, []).append(Image(data=row.data, mime=row.mime))
    return found
