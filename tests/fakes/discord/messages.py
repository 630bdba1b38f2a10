"""Creating, editing and deleting messages under Discord's rules, and dispatching the matching gateway events.

Shared by channel routes, interaction responses and the fake users; raises ApiError with Discord's codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from .gateway import Gateway
from .mentions import AllowedMentionsError, compute_mentions
from .models import (
    JSON,
    MAX_ATTACHMENTS,
    MAX_CONTENT_CHARS,
    FakeChannel,
    FakeInteraction,
    FakeMember,
    FakeUser,
    Intent,
    MentionOutcome,
    MessageFlag,
    MessageType,
    Ping,
    StoredAttachment,
    StoredMessage,
    Upload,
    iso_now,
)
from .state import ApiError, DiscordState, form_error

SENDABLE_FLAGS = MessageFlag.SUPPRESS_EMBEDS | MessageFlag.SUPPRESS_NOTIFICATIONS | (1 << 15)  # + components v2
ALL_MENTIONS: JSON = {"parse": ["users", "roles", "everyone"]}


def _checked_content(payload: JSON) -> str | None:
    content = payload.get("content")
    if content is None:
        return None
    if not isinstance(content, str):
        raise form_error("content", "BASE_TYPE_BAD_TYPE", "Must be a string.")
    if len(content) > MAX_CONTENT_CHARS:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT_CHARS} or fewer in length.")
    return content


def _check_attachment_count(count: int) -> None:
    if count > MAX_ATTACHMENTS:  # refused before anything is stored, as Discord validates the form first
        raise form_error("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")


def _has_body(content: str, payload: JSON, attachments: Sequence[StoredAttachment]) -> bool:
    # Whitespace-only content counts as empty, as Discord trims it.
    extras = ("embeds", "components", "sticker_ids", "poll")
    return bool(content.strip()) or bool(attachments) or any(payload.get(k) for k in extras)


class Messages:
    def __init__(self, state: DiscordState, gateway: Gateway) -> None:
        self._state = state
        self._gateway = gateway

    # --- bot side (REST) --------------------------------------------------------------------------------

    def create(
        self,
        channel: FakeChannel,
        payload: JSON,
        files: Mapping[int, Upload],
        *,
        interaction: FakeInteraction | None = None,
        type: MessageType = MessageType.DEFAULT,
        extra_flags: int = 0,
    ) -> StoredMessage:
        """A message by the bot (or an interaction response when `interaction` is given)."""
        state = self._state
        content = _checked_content(payload) or ""
        _check_attachment_count(len(files))
        attachments = self._new_attachments(channel, payload, files)
        allowed_flags = SENDABLE_FLAGS | (MessageFlag.EPHEMERAL if interaction else 0)
        flags = int((int(payload.get("flags") or 0) & allowed_flags) | extra_flags)
        if not _has_body(content, payload, attachments) and not flags & MessageFlag.LOADING:
            raise ApiError(400, 50006, "Cannot send an empty message")
        referenced = self._referenced(channel, payload.get("message_reference"))
        allowed = payload.get("allowed_mentions")
        mentions = self._mentions(channel, content, allowed, referenced, author=state.bot)
        message = StoredMessage(
            id=state.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=state.bot,
            content=content,
            attachments=attachments,
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            flags=flags,
            type=MessageType.REPLY if referenced and type is MessageType.DEFAULT else type,
            tts=bool(payload.get("tts")),
            reference_id=referenced.id if referenced else None,
            mentions=mentions,
            versions=[content],
            allowed_mentions=[allowed],
        )
        if interaction is not None:
            message.webhook_id = state.application_id
            message.interaction_id = interaction.id
        state.add_message(message)
        self._record_ping(message, "send", allowed)
        self._dispatch_message("MESSAGE_CREATE", message)
        return message

    def edit(self, message: StoredMessage, payload: JSON, files: Mapping[int, Upload]) -> StoredMessage:
        if message.author is not self._state.bot:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        channel = self._state.channel(message.channel_id)
        content = _checked_content(payload)
        new_content = message.content if "content" not in payload else (content or "")
        attachments = message.attachments
        if "attachments" in payload or files:
            kept = self._kept_attachments(message, payload)
            _check_attachment_count(len(kept) + len(files))
            attachments = kept + self._new_attachments(channel, payload, files)
        embeds = list(payload["embeds"] or []) if "embeds" in payload else message.embeds
        if not _has_body(new_content, payload | {"embeds": embeds}, attachments):
            raise ApiError(400, 50006, "Cannot send an empty message")
        allowed = payload.get("allowed_mentions")
        unchanged = (new_content, attachments, embeds) == (
            message.content,
            message.attachments,
            message.embeds,
        )
        if "content" in payload:
            # "If there is no explicit allowed_mentions in the edit request, the content will be parsed with
            # default allowances" (docs, Edit Message), whatever the original send said.
            referenced = self._state.messages.get(message.reference_id or 0)
            message.mentions = self._mentions(channel, new_content, allowed, referenced, author=message.author)
        message.content, message.attachments, message.embeds = new_content, attachments, embeds
        if "components" in payload:
            message.components = list(payload["components"] or [])
        if "flags" in payload:
            message.flags = int(int(payload["flags"] or 0) & SENDABLE_FLAGS) | (message.flags & MessageFlag.EPHEMERAL)
        message.flags = int(message.flags & ~MessageFlag.LOADING)
        message.edited_at = iso_now()
        message.edit_count += 1
        message.noop_edits += unchanged
        message.versions.append(new_content)
        message.allowed_mentions.append(allowed)
        if "content" in payload:
            self._record_ping(message, "edit", allowed)
        self._state.waiters.notify()
        self._dispatch_message("MESSAGE_UPDATE", message)
        return message

    def delete(self, message: StoredMessage) -> None:
        message.deleted = True
        self._state.waiters.notify()
        if message.ephemeral:
            return
        data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        self._gateway.dispatch("MESSAGE_DELETE", data, intent=self._intent_for(message))

    # --- fake users (gateway) ---------------------------------------------------------------------------

    def from_user(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        *,
        mentions_bot: bool,
        reply_to: StoredMessage | None,
        attachments: Sequence[Upload],
        ping_reply: bool,
        flags: int = 0,
    ) -> StoredMessage:
        state = self._state
        guild = state.guild_of(channel)
        if guild is not None and author.id not in guild.members:
            guild.members[author.id] = FakeMember(author)
        if mentions_bot and state.bot.mention not in content:
            content = f"{state.bot.mention} {content}"
        stored = [state.store_attachment(channel.id, upload) for upload in attachments]
        allowed = None if ping_reply else ALL_MENTIONS
        message = StoredMessage(
            id=state.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            attachments=stored,
            type=MessageType.REPLY if reply_to else MessageType.DEFAULT,
            reference_id=reply_to.id if reply_to else None,
            mentions=self._mentions(channel, content, allowed, reply_to, author=author),
            versions=[content],
            allowed_mentions=[allowed],
            flags=flags,
        )
        state.add_message(message)
        self._dispatch_message("MESSAGE_CREATE", message)
        return message

    # --- helpers ----------------------------------------------------------------------------------------

    def _new_attachments(
        self, channel: FakeChannel, payload: JSON, files: Mapping[int, Upload]
    ) -> list[StoredAttachment]:
        described = {str(a.get("id")): a for a in payload.get("attachments") or [] if isinstance(a, dict)}
        stored = []
        for index, upload in sorted(files.items()):
            if len(upload.data) > self._state.upload_limit_bytes:
                raise ApiError(413, 40005, "Request entity too large")
            entry = described.get(str(index), {})
            upload = Upload(entry.get("filename") or upload.filename, upload.data, upload.content_type)
            stored.append(self._state.store_attachment(channel.id, upload, entry.get("description")))
        return stored

    @staticmethod
    def _kept_attachments(message: StoredMessage, payload: JSON) -> list[StoredAttachment]:
        if "attachments" not in payload:
            return list(message.attachments)
        listed = {str(a.get("id")) for a in payload["attachments"] or [] if isinstance(a, dict)}
        return [a for a in message.attachments if str(a.id) in listed]

    def _referenced(self, channel: FakeChannel, reference: JSON | None) -> StoredMessage | None:
        if not reference:
            return None
        found = self._state.messages.get(int(reference.get("message_id") or 0))
        if found is None or found.deleted or found.channel_id != channel.id:
            if reference.get("fail_if_not_exists", True):
                raise form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            return None
        return found

    @staticmethod
    def _mentions(
        channel: FakeChannel,
        content: str,
        allowed: JSON | None,
        referenced: StoredMessage | None,
        *,
        author: FakeUser,
    ) -> MentionOutcome:
        try:
            return compute_mentions(
                content,
                allowed,
                in_guild=channel.guild_id is not None,
                author_id=author.id,
                replied_author_id=referenced.author.id if referenced else None,
            )
        except AllowedMentionsError as exc:
            raise form_error("allowed_mentions", "MESSAGE_ALLOWED_MENTIONS_INVALID", str(exc)) from None

    def _record_ping(self, message: StoredMessage, kind: Literal["send", "edit"], allowed: JSON | None) -> None:
        if message.mentions.pings_anyone:
            self._state.pings.append(Ping(message.id, message.channel_id, kind, message.mentions, allowed))

    @staticmethod
    def _intent_for(message: StoredMessage) -> int:
        return Intent.GUILD_MESSAGES if message.guild_id is not None else Intent.DIRECT_MESSAGES

    def _dispatch_message(self, event: str, message: StoredMessage) -> None:
        if message.ephemeral:
            return  # ephemeral messages never reach the gateway
        state = self._state
        full = state.message_json(message, gateway=True)
        # Without the MESSAGE_CONTENT intent these fields arrive empty, except in DMs, in the bot's own
        # messages and in messages mentioning it (docs "Message Content Intent").
        exempt = message.guild_id is None or message.author is state.bot or state.bot.id in message.mentions.users
        blanked = full | {"content": "", "embeds": [], "attachments": [], "components": []}
        intent = self._intent_for(message)

        def data_for(intents: int) -> JSON | None:
            if not intents & intent:
                return None
            return full if exempt or intents & Intent.MESSAGE_CONTENT else blanked

        self._gateway.dispatch_each(event, data_for)
