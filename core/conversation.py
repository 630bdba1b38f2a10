"""Who is talking, where: the values adapters hand to the core. Imports nothing from the rest of core."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.events import Image


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. Ids are strings on every platform; empty means "none".

    `scope` separates conversations that share a chat: "" for one conversation per chat (and for DMs),
    a user id when a group keeps one conversation per user (`GROUP_HISTORY=user`).
    `is_group` (a chat of several people: a Telegram group, a Discord server channel or thread) is a fact
    about the chat, not part of the key: it decides who may change a conversation everyone there shares.
    """

    platform: str
    chat_id: str
    thread_id: str = ""
    scope: str = ""
    is_group: bool = field(default=False, compare=False)

    @property
    def is_shared(self) -> bool:
        """Several people talk in this one conversation (a group with `GROUP_HISTORY=chat`)."""
        return self.is_group and not self.scope


def conversation_for(
    platform: str, chat_id: str, *, thread_id: str = "", user_id: str, is_group: bool, group_history: str
) -> ConversationKey:
    """The conversation a message belongs to, from the platform's facts; what GROUP_HISTORY means.

    A direct chat is one conversation. A group (each thread or forum topic apart) is one conversation
    everyone there shares with GROUP_HISTORY=chat, one per user with GROUP_HISTORY=user: the user's id
    is then the scope (as stored: existing databases keep their conversations).
    """
    scope = user_id if is_group and group_history == "user" else ""
    return ConversationKey(platform, chat_id, thread_id, scope, is_group=is_group)


# Whether the caller administers the chat, asked of the platform only when a command needs to know
# (an adapter's answer: Telegram chat administrators, Discord Manage Messages in the channel).
ChatAdminCheck = Callable[[], Awaitable[bool]]


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


# Downloads a user's recording; called by the core only after access and the limits were checked.
FetchAudio = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice message or audio file as the platform declares it, before anything is downloaded.

    `duration_seconds` / `size_bytes` are None when the platform does not say (then only the other bounds it);
    `filename` and `content_type` go upstream as they are (the transcription service reads the format from them).
    """

    fetch: FetchAudio = field(repr=False)
    filename: str
    content_type: str
    duration_seconds: float | None = None
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True, repr=False)
class Document:
    """A file a user sent, as downloaded: its name as the platform gives it (untrusted), bytes and declared
    MIME type. `core.documents` decides from the bytes whether it is text or a PDF."""

    name: str
    data: bytes
    mime: str = ""

    def __repr__(self) -> str:  # never megabytes in a log line
        return f"Document(name={self.name!r}, mime={self.mime!r}, bytes={len(self.data)})"


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message to answer.

    `context` holds recent group lines the bot saw but was not asked about ("name: text"), given to
    the model as the discussion before the question; they are not stored.
    `quote` carries the images of a quoted message; they go upstream after `images`.
    `voice`: a recording to transcribe (TRANSCRIBE_MODEL); its transcript, after `text` (a caption), is the turn.
    `documents` (text files, PDFs) are read by the core and become labelled text parts of the turn.
    """

    conversation: ConversationKey
    user: UserRef
    text: str
    images: Sequence[Image] = ()
    platform_message_id: str = ""
    context: Sequence[str] = field(default_factory=tuple)
    quote: Quote | None = None
    voice: Voice | None = None
    documents: Sequence[Document] = ()

    @property
    def name_prefix(self) -> bool:
        """The user's name goes before the text upstream: several people talk in this conversation."""
        return self.conversation.is_shared


def user_hash(platform: str, user_id: str) -> str:
    """A stable, non-reversible id for the upstream `user` field (abuse tracking without identities)."""
    return hashlib.sha256(f"parley:{platform}:{user_id}".encode()).hexdigest()[:32]
