"""Where a Discord message or slash command belongs (conversation key), whether it is for the bot, its text.

Pure translation from discord.py objects to core values (reading attachments is the only I/O).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import discord

from core import (
    ConversationKey,
    Image,
    ImageError,
    UserRef,
    check_turn_bytes,
    conversation_for,
    texts,
    validate_user_image,
)

PLATFORM = "discord"
MAX_THREAD_NAME_CHARS = 100  # Discord's limit on a thread's name
THREAD_NAME_CHARS = 60  # shorter reads better in the channel list
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")

GroupHistory = Literal["chat", "user"]


@dataclass(frozen=True, slots=True)
class Place:
    """A channel as conversations see it: a DM, a server channel, or a thread inside one."""

    channel_id: int
    parent_id: int | None = None  # set for threads
    is_dm: bool = False

    @property
    def is_thread(self) -> bool:
        return self.parent_id is not None


def place_of(channel: object, *, channel_id: int, in_guild: bool) -> Place:
    """The place of a message's or an interaction's channel (threads know their parent channel)."""
    if not in_guild:
        return Place(channel_id, is_dm=True)
    if isinstance(channel, discord.Thread):
        return Place(channel_id, parent_id=channel.parent_id)
    return Place(channel_id)


def conversation_key(place: Place, user_id: int, *, group_history: GroupHistory) -> ConversationKey:
    """The conversation of a message in `place` (core's rule, `conversation_for`): a server's threads are
    threads of their parent channel; a DM is no group."""
    chat_id, thread_id = (place.parent_id, str(place.channel_id)) if place.is_thread else (place.channel_id, "")
    return conversation_for(
        PLATFORM,
        str(chat_id),
        thread_id=thread_id,
        user_id=str(user_id),
        is_group=not place.is_dm,
        group_history=group_history,
    )


def user_ref(user: discord.User | discord.Member) -> UserRef:
    return UserRef(id=str(user.id), name=user.display_name)


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """A direct mention of the bot (not @everyone, @here or a role, which `User.mentioned_in` counts)."""
    return bot_id in message.raw_mentions


def in_bot_thread(message: discord.Message, bot_id: int) -> bool:
    """A thread the bot opened is a conversation with it: every message there is for the bot."""
    channel = message.channel
    return isinstance(channel, discord.Thread) and channel.owner_id == bot_id


def turn_text(message: discord.Message, bot_id: int) -> str:
    """The message text for the model: the bot's mention removed, other mentions shown as names."""
    text = re.sub(rf"<@!?{bot_id}>\s?", "", message.content)
    for user in message.mentions:
        text = re.sub(rf"<@!?{user.id}>", f"@{user.display_name}", text)
    for role in message.role_mentions:
        text = text.replace(f"<@&{role.id}>", f"@{role.name}")
    for channel in message.channel_mentions:
        text = text.replace(f"<#{channel.id}>", f"#{channel.name}")
    return text.strip()


def overheard_line(message: discord.Message) -> str:
    """What GROUP_CONTEXT_MESSAGES remembers of a message the bot was not asked about."""
    return message.clean_content


def thread_name(text: str, fallback: str) -> str:
    """A thread's name from the first line of the question, or `fallback` when there is no text."""
    first = " ".join(text.strip().split("\n", 1)[0].split())
    if not first:
        return fallback[:MAX_THREAD_NAME_CHARS]
    return first if len(first) <= THREAD_NAME_CHARS else first[: THREAD_NAME_CHARS - 1].rstrip() + "…"


def is_image(attachment: discord.Attachment) -> bool:
    content_type = attachment.content_type or ""
    return content_type.startswith("image/") or attachment.filename.lower().endswith(IMAGE_SUFFIXES)


async def read_image(attachment: discord.Attachment, *, max_bytes: int) -> Image:
    """Download one attached image for the model; refused before downloading when it is too large."""
    if attachment.size > max_bytes:
        raise ImageError(
            f"attachment of {attachment.size} bytes over {max_bytes}", user_message=texts.image_too_large(max_bytes)
        )
    return validate_user_image(await attachment.read(), max_bytes=max_bytes, alt=attachment.filename)


async def read_images(attachments: Sequence[discord.Attachment], *, max_bytes: int, max_total: int) -> list[Image]:
    """The attached images; over `max_total` bytes together (IMAGE_MAX_BYTES_PER_TURN) refused before reading."""
    images = [a for a in attachments if is_image(a)]
    check_turn_bytes(sum(a.size for a in images), max_total)
    return [await read_image(a, max_bytes=max_bytes) for a in images]
