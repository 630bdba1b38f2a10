"""Who is talking, where: the values adapters hand to the core. Imports nothing from the rest of core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.events import Image


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. Ids are strings on every platform; empty means "none".

    `scope` separates conversations that share a chat: "" for one conversation per chat (and for DMs),
    a user id when a group keeps one conversation per user (`GROUP_HISTORY=user`).
    """

    platform: str
    chat_id: str
    thread_id: str = ""
    scope: str = ""


@dataclass(frozen=True, slots=True)
class UserRef:
    """A platform user: id (string) and a display name for prompts."""

    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    """The images of someone else's message the user replied to: part of the turn, still their author's
    (stored under the author's id, so the author's /forget removes them)."""

    author: UserRef
    images: Sequence[Image]


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message to answer.

    `context` holds recent group lines the bot saw but was not asked about ("name: text"), given to
    the model as the discussion before the question; they are not stored.
    `name_prefix` puts the user's name before the text upstream (shared group conversations).
    `quote` carries the images of a quoted message; they go upstream after `images`.
    """

    conversation: ConversationKey
    user: UserRef
    text: str
    images: Sequence[Image] = ()
    platform_message_id: str = ""
    context: Sequence[str] = field(default_factory=tuple)
    name_prefix: bool = False
    quote: Quote | None = None
