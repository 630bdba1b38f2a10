"""Objects the fake Discord holds (users, guilds, channels, messages, interactions) and their API v10 JSON shapes.

Pure data: no aiohttp, no discord.py. Ids are ints here and strings in JSON, as on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, IntFlag
from typing import Any, Literal, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1_420_070_400_000  # snowflake epoch (docs "Reference: Snowflakes")
MAX_CONTENT_CHARS = 2000  # counted in code points (discord-api-docs#1315, staff answer)
MAX_ATTACHMENTS = 10  # files per message (API docs, Reference > "Uploading Files": up to 10 files)
WAIT_POLL_SECONDS = 0.05  # wait_for also re-checks on this period, for predicates on client-side state


class ChannelType(IntEnum):
    GUILD_TEXT = 0
    DM = 1
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12


class MessageType(IntEnum):
    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20


class MessageFlag(IntFlag):
    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_VOICE_MESSAGE = 1 << 13  # discord.com/developers/docs/resources/message#message-object-message-flags


class Intent(IntFlag):
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT
# Application flags GATEWAY_MESSAGE_CONTENT(_LIMITED): what the developer portal toggle sets.
APP_FLAG_MESSAGE_CONTENT = (1 << 18) | (1 << 19)

# A new server's @everyone: view, send, embed, attach, history, mention @everyone, app commands, threads.
DEFAULT_EVERYONE_PERMISSIONS = sum(1 << bit for bit in (6, 10, 11, 14, 15, 16, 17, 31, 35, 36, 38))


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


class SnowflakeSource:
    """Strictly increasing snowflakes whose timestamp part is the current time."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass(slots=True, eq=False)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass(slots=True, eq=False)
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    mentionable: bool = True
    position: int = 0

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def to_json(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": self.mentionable,
            "flags": 0,
        }


@dataclass(slots=True, eq=False)
class FakeMember:
    user: FakeUser
    role_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=iso_now)

    def to_json(self, *, with_user: bool = True) -> JSON:
        data: JSON = {
            "roles": [str(r) for r in self.role_ids],
            "nick": None,
            "avatar": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.user.to_json()
        return data


@dataclass(slots=True, eq=False)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)

    def permissions_of(self, user_id: int) -> int:
        member = self.members.get(user_id)
        role_ids = [self.id, *(member.role_ids if member else [])]
        value = 0
        for role_id in role_ids:
            role = self.roles.get(role_id)
            value |= role.permissions if role else 0
        return value


@dataclass(slots=True, eq=False)
class FakeChannel:
    id: int
    type: ChannelType
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    recipient: FakeUser | None = None  # DMs only
    owner_id: int | None = None  # threads only
    created_at: str = field(default_factory=iso_now)
    message_count: int = 0
    last_message_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def is_dm(self) -> bool:
        return self.type is ChannelType.DM

    def to_json(self) -> JSON:
        last = str(self.last_message_id) if self.last_message_id else None
        base: JSON = {"id": str(self.id), "type": int(self.type), "last_message_id": last, "flags": 0}
        if self.is_dm:
            assert self.recipient is not None
            return base | {"recipients": [self.recipient.to_json()]}
        base |= {"guild_id": str(self.guild_id), "name": self.name, "rate_limit_per_user": 0, "nsfw": False}
        if not self.is_thread:
            return base | {"position": 0, "permission_overwrites": [], "parent_id": None, "topic": None}
        metadata = {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": self.created_at,
            "locked": False,
            "create_timestamp": self.created_at,
        }
        if self.type is ChannelType.PRIVATE_THREAD:
            metadata["invitable"] = True
        return base | {
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "message_count": self.message_count,
            "member_count": 1,
            "total_message_sent": self.message_count,
            "thread_metadata": metadata,
        }


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as sent: by a fake user (attachments, slash-command options) or by the bot (multipart)."""

    filename: str
    data: bytes
    content_type: str | None = None
    duration_secs: float | None = None  # a voice message's recording (tests/fakes/discord/voice.py)
    waveform: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """Discord's Attachment object: id, filename, size in bytes, url, proxy_url, content_type (the media type
    Discord detected), width/height for images (discord.com/developers/docs/resources/message#attachment-object).
    """

    id: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    duration_secs: float | None = None
    waveform: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def to_json(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        if self.width is not None:
            data |= {"width": self.width, "height": self.height}
        if self.duration_secs is not None:  # attachment object: "duration_secs", "waveform" (voice messages)
            data |= {"duration_secs": self.duration_secs, "waveform": self.waveform}
        return data


@dataclass(frozen=True, slots=True)
class MentionOutcome:
    """Who a message notifies: computed from its content and allowed_mentions, as Discord does."""

    everyone: bool = False
    here: bool = False
    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()

    @property
    def pings_anyone(self) -> bool:
        return self.everyone or self.here or bool(self.users) or bool(self.roles)


@dataclass(frozen=True, slots=True)
class Ping:
    """One bot send or edit that would notify someone (edits only highlight; counted anyway, to be strict)."""

    message_id: int
    channel_id: int
    kind: Literal["send", "edit"]
    outcome: MentionOutcome
    allowed_mentions: JSON | None


@dataclass(slots=True, eq=False)
class StoredMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str
    attachments: list[StoredAttachment] = field(default_factory=list)
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    flags: int = 0
    type: MessageType = MessageType.DEFAULT
    tts: bool = False
    reference_id: int | None = None  # the message this one replies to
    mentions: MentionOutcome = MentionOutcome()
    created_at: str = field(default_factory=iso_now)
    edited_at: str | None = None
    edit_count: int = 0
    noop_edits: int = 0  # edits that changed nothing (content, attachments, embeds)
    deleted: bool = False
    versions: list[str] = field(default_factory=list)  # content after the send and after every edit
    allowed_mentions: list[JSON | None] = field(default_factory=list)  # as sent with the send and every edit
    webhook_id: int | None = None  # set on interaction responses and follow-ups
    interaction_id: int | None = None
    thread_id: int | None = None  # a thread started from this message

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & MessageFlag.LOADING)


@dataclass(frozen=True, slots=True)
class RestCall:
    """One REST request as the fake received it (Authorization excluded) and the status it answered."""

    method: str
    path: str  # below /api/v10, e.g. /channels/1/messages
    route: str  # "POST /channels/{channel_id}/messages"
    query: dict[str, str]
    body: bytes = field(repr=False)
    json: Any
    files: tuple[Upload, ...]
    status: int
    at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class CommandSync:
    guild_id: int | None  # None: global
    commands: tuple[JSON, ...]  # as the bot sent them


@dataclass(slots=True, eq=False)
class FakeInteraction:
    """An interaction the fake sent, and everything the bot answered to it."""

    id: int
    token: str
    type: int  # 2 application command, 4 autocomplete
    name: str
    data: JSON
    channel_id: int
    guild_id: int | None
    user: FakeUser
    sent_at: float  # time.monotonic()
    callbacks: list[JSON] = field(default_factory=list)  # every callback body, accepted or not
    response_type: int | None = None  # type of the accepted callback
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    choices: list[JSON] | None = None  # autocomplete answer

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def deferred(self) -> bool:
        return self.response_type == 5


@dataclass(slots=True)
class Waiters:
    """Wakes wait_for() whenever the fake's state changes."""

    _event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_for(self, predicate: Callable[[], T | None], timeout_seconds: float) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"fake Discord: condition not met within {timeout_seconds} s")
            if self._event is None:
                self._event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), min(remaining, WAIT_POLL_SECONDS))
