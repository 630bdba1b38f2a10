"""The fake Discord's server-side state: every object by id, the records tests assert on, and JSON rendering.

Shared by the REST and gateway layers; no aiohttp here. Lookups raise ApiError with Discord's own codes.
"""

from __future__ import annotations

import mimetypes
import struct
from typing import Any

from .models import (
    DEFAULT_EVERYONE_PERMISSIONS,
    JSON,
    ChannelType,
    CommandSync,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
    Ping,
    RestCall,
    SnowflakeSource,
    StoredAttachment,
    StoredMessage,
    Upload,
    Waiters,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SNIFFED_TYPES = ((PNG_MAGIC, "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


class ApiError(Exception):
    """An error answer in Discord's shape: {"code", "message", "errors"?} with an HTTP status."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def to_json(self) -> JSON:
        body: JSON = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def form_error(field: str, code: str, message: str) -> ApiError:
    """50035 Invalid Form Body with one field error, nested as Discord nests them."""
    return ApiError(400, 50035, "Invalid Form Body", {field: {"_errors": [{"code": code, "message": message}]}})


def sniff_content_type(upload: Upload) -> str:
    # Discord detects the type itself: discord.py sends every file as application/octet-stream.
    for magic, mime in SNIFFED_TYPES:
        if upload.data.startswith(magic):
            return mime
    if upload.content_type and upload.content_type != "application/octet-stream":
        return upload.content_type
    return mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"


def png_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


class DiscordState:
    def __init__(self, *, bot_name: str, token: str, upload_limit_bytes: int) -> None:
        self.ids = SnowflakeSource()
        self.token = token
        self.upload_limit_bytes = upload_limit_bytes
        self.bot = FakeUser(self.ids.next(), bot_name, global_name=None, bot=True)
        self.application_id = self.bot.id  # true of every application created since 2020
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.channel_messages: dict[int, list[StoredMessage]] = {}
        self.dm_by_user: dict[int, FakeChannel] = {}
        self.attachments: dict[int, StoredAttachment] = {}  # served at /attachments/... like the CDN
        self.attachment_downloads: list[int] = []  # attachment id of every CDN GET served
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}
        self.commands: dict[int | None, list[JSON]] = {}
        self.command_syncs: list[CommandSync] = []
        self.calls: list[RestCall] = []
        self.pings: list[Ping] = []
        self.public_base = ""  # http://127.0.0.1:PORT once the server listens
        self.waiters = Waiters()

    # --- lookups ---------------------------------------------------------------------------------------

    def channel(self, channel_id: int | str) -> FakeChannel:
        try:
            return self.channels[int(channel_id)]
        except (KeyError, ValueError):
            raise ApiError(404, 10003, "Unknown Channel") from None

    def message(self, channel_id: int, message_id: int | str) -> StoredMessage:
        try:
            found = self.messages[int(message_id)]
        except (KeyError, ValueError):
            raise ApiError(404, 10008, "Unknown Message") from None
        if found.channel_id != channel_id or found.deleted:
            raise ApiError(404, 10008, "Unknown Message")
        return found

    def user(self, user_id: int | str) -> FakeUser:
        try:
            return self.users[int(user_id)]
        except (KeyError, ValueError):
            raise ApiError(404, 10013, "Unknown User") from None

    def guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return None if channel.guild_id is None else self.guilds[channel.guild_id]

    # --- creation ---------------------------------------------------------------------------------------

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> FakeUser:
        user = FakeUser(self.ids.next(), username, global_name=global_name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, guild_id: int | None = None) -> FakeGuild:
        owner = self.add_user(f"{name.lower().replace(' ', '-')}-owner")
        guild = FakeGuild(self.ids.next() if guild_id is None else guild_id, name, owner_id=owner.id)
        guild.roles[guild.id] = FakeRole(guild.id, guild.id, "@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS)
        for user in (owner, self.bot):
            guild.members[user.id] = FakeMember(user)
        self.guilds[guild.id] = guild
        return guild

    def add_channel(
        self,
        guild: FakeGuild,
        name: str,
        *,
        type: ChannelType = ChannelType.GUILD_TEXT,
        parent_id: int | None = None,
        owner_id: int | None = None,
        channel_id: int | None = None,
    ) -> FakeChannel:
        channel = FakeChannel(
            channel_id or self.ids.next(),
            type,
            name=name,
            guild_id=guild.id,
            parent_id=parent_id,
            owner_id=owner_id,
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        channel = self.dm_by_user.get(user.id)
        if channel is None:
            channel = FakeChannel(self.ids.next(), ChannelType.DM, recipient=user)
            self.channels[channel.id] = self.dm_by_user[user.id] = channel
        return channel

    def store_attachment(self, channel_id: int, upload: Upload, description: str | None = None) -> StoredAttachment:
        attachment_id = self.ids.next()
        content_type = sniff_content_type(upload)
        size = png_size(upload.data) if content_type == "image/png" else None
        self.attachments[attachment_id] = attachment = StoredAttachment(
            id=attachment_id,
            filename=upload.filename,
            content_type=content_type,
            data=upload.data,
            url=f"{self.public_base}/attachments/{channel_id}/{attachment_id}/{upload.filename}",
            description=description,
            width=size[0] if size else None,
            height=size[1] if size else None,
            duration_secs=upload.duration_secs,
            waveform=upload.waveform,
        )
        return attachment

    def add_message(self, message: StoredMessage) -> StoredMessage:
        self.messages[message.id] = message
        self.channel_messages.setdefault(message.channel_id, []).append(message)
        channel = self.channels[message.channel_id]
        channel.last_message_id = message.id
        channel.message_count += 1
        self.waiters.notify()
        return message

    # --- JSON -------------------------------------------------------------------------------------------

    def member_json(self, guild: FakeGuild, user: FakeUser, *, with_user: bool) -> JSON:
        member = guild.members.get(user.id) or FakeMember(user)
        return member.to_json(with_user=with_user)

    def message_json(self, message: StoredMessage, *, gateway: bool = False, depth: int = 0) -> JSON:
        """A message object; gateway events also carry guild_id and the author's member."""
        data: JSON = {
            "id": str(message.id),
            "type": int(message.type),
            "channel_id": str(message.channel_id),
            "author": message.author.to_json(),
            "content": message.content,
            "timestamp": message.created_at,
            "edited_timestamp": message.edited_at,
            "tts": message.tts,
            "mention_everyone": message.mentions.everyone or message.mentions.here,
            "mentions": [self.users[u].to_json() for u in sorted(message.mentions.users) if u in self.users],
            "mention_roles": [str(r) for r in sorted(message.mentions.roles)],
            "attachments": [a.to_json() for a in message.attachments],
            "embeds": message.embeds,
            "components": message.components,
            "pinned": False,
            "flags": message.flags,
        }
        if message.webhook_id is not None:
            data |= {"webhook_id": str(message.webhook_id), "application_id": str(self.application_id)}
        if message.interaction_id is not None:
            interaction = self.interactions[message.interaction_id]
            data["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "name": interaction.name,
                "user": interaction.user.to_json(),
                "authorizing_integration_owners": {},
            }
        if message.reference_id is not None:
            referenced = self.messages.get(message.reference_id)
            data["message_reference"] = {
                "type": 0,
                "message_id": str(message.reference_id),
                "channel_id": str(message.channel_id),
            }
            if message.guild_id is not None:
                data["message_reference"]["guild_id"] = str(message.guild_id)
            if depth == 0:  # Discord nests one level only
                alive = referenced if referenced is not None and not referenced.deleted else None
                data["referenced_message"] = alive and self.message_json(alive, depth=1)
        if message.thread_id is not None:
            data["thread"] = self.channels[message.thread_id].to_json()
        if gateway and message.guild_id is not None:
            guild = self.guilds[message.guild_id]
            data["guild_id"] = str(message.guild_id)
            if message.webhook_id is None:
                data["member"] = self.member_json(guild, message.author, with_user=False)
            data["mentions"] = [
                m | {"member": self.member_json(guild, self.users[int(m["id"])], with_user=False)}
                for m in data["mentions"]
            ]
        return data

    def guild_create_json(self, guild: FakeGuild) -> JSON:
        channels = [self.channels[c] for c in guild.channel_ids]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.to_json() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "joined_at": guild.members[self.bot.id].joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "members": [m.to_json() for m in guild.members.values()],
            "channels": [c.to_json() for c in channels if not c.is_thread],
            "threads": [c.to_json() for c in channels if c.is_thread],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def application_json(self, *, flags: int) -> JSON:
        owner = self.users[next(iter(self.guilds.values())).owner_id] if self.guilds else self.bot
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": flags,
            "owner": owner.to_json(),
            "team": None,
            "bot": self.bot.to_json(),
            "interactions_endpoint_url": None,
            "summary": "",
        }


def strings_in(value: Any) -> list[str]:
    """Every string inside a JSON value (keys excluded), depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []
