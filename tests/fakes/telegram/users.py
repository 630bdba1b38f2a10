"""The user side of the fake Telegram: make users, chats, topics and files, and send what users send.

A mixin of `FakeTelegram` (server.py) working on its `World`; messages become queued updates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .formatting import detect_entities, entities_from_api
from .media import sniff_image
from .objects import AdminStatus, FakeChat, FakeUser, MessageKind, StoredFile, StoredMessage
from .state import World

ChatRef = FakeChat | int


class UserSide:
    """Test-side actions of users; needs `self.world`."""

    world: World

    # ------------------------------------------------------------------ users, chats, files

    def user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        return self.world.new_user(first_name, username=username, last_name=last_name, language_code=language_code)

    def private_chat(self, user: FakeUser) -> FakeChat:
        return self.world.private_chat(user)

    def group(self, title: str = "Test group") -> FakeChat:
        return self.world.group(title)

    def supergroup(
        self, title: str = "Test supergroup", *, is_forum: bool = False, username: str | None = None
    ) -> FakeChat:
        return self.world.supergroup(title, is_forum=is_forum, username=username)

    def channel(self, title: str = "Test channel") -> FakeChat:
        """A channel: it can speak in groups (`chat_sends`); the bot is not in it."""
        return self.world.channel(title)

    def promote(self, chat: FakeChat, user: FakeUser, *, status: AdminStatus = "administrator") -> None:
        """Make `user` an administrator ("creator": the owner) of the group `chat` (getChatAdministrators)."""
        self.world.promote(chat, user, status)

    def create_topic(self, chat: FakeChat, name: str, *, creator: FakeUser) -> int:
        """A forum topic (its service message is stored, no update queued); returns the thread id."""
        return self.world.create_topic(chat, name, creator)

    def add_file(self, data: bytes, *, file_name: str | None = None, mime_type: str | None = None) -> str:
        """Register bytes a user could send; returns the file_id (downloadable through getFile)."""
        folder = "photos" if sniff_image(data) else "documents"
        return self.world.add_file(data, folder=folder, file_name=file_name, mime_type=mime_type).file_id

    def file(self, file_id: str) -> StoredFile:
        return self.world.file(file_id)

    # ------------------------------------------------------------------ injecting updates

    def user_sends(
        self,
        chat: ChatRef,
        user: FakeUser,
        text: str | None = None,
        *,
        reply_to: int | StoredMessage | Mapping[str, Any] | None = None,
        entities: Sequence[Mapping[str, Any]] | None = None,
        photo: str | None = None,
        document: str | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        message_thread_id: int | None = None,
        is_topic_message: bool | None = None,
        edited: bool = False,
        message_id: int | None = None,
        forward_origin: FakeUser | Mapping[str, Any] | None = None,
        sticker: str | None = None,
        voice: bytes | None = None,
        sender_chat: FakeChat | None = None,
    ) -> dict[str, Any]:
        """A user's message as Telegram would deliver it; queued for getUpdates (or pushed to the webhook).

        `entities=None` detects mentions, /commands, URLs and hashtags as Telegram does; pass [] for none.
        `photo`/`document` take file_ids from `add_file`; `edited=True` edits `message_id` (default: the
        user's last message in the chat) and queues an edited_message. `sender_chat` sends on behalf of a
        chat (see `chat_sends`). Returns the Message dict.
        """
        chat = self._chat(chat)
        if isinstance(reply_to, StoredMessage):
            reply_to = reply_to.message_id
        elif isinstance(reply_to, Mapping):
            reply_to = int(reply_to["message_id"])
        target = self.world.message(chat.id, reply_to) if reply_to is not None else None
        thread = message_thread_id
        if thread is None and target is not None:
            thread = target.message_thread_id
        topic = bool(is_topic_message)
        if chat.is_forum and thread is not None:
            if thread not in self.world.topics.get(chat.id, {}):
                raise ValueError(f"no topic {thread} in chat {chat.id}: create it with create_topic()")
            topic = is_topic_message is not False
            reply_to = reply_to if reply_to is not None else thread  # Telegram: topic posts reply to its creation
        body = (caption if caption is not None else text) or ""
        kind, files, extra = self._content(photo, document, sticker, voice, has_text=text is not None)
        found = detect_entities(body) if entities is None else entities_from_api(body, entities)
        if forward_origin is not None:
            extra["forward_origin"] = (
                {"type": "user", "date": int(time.time()), "sender_user": forward_origin.to_api()}
                if isinstance(forward_origin, FakeUser)
                else dict(forward_origin)
            )
        if sender_chat is not None:
            extra["sender_chat"] = sender_chat.to_api()
        if edited:
            payload = self.world.message_api(self._edit_user_message(chat, user, message_id, body, found))
            self.world.queue_update("edited_message", payload)
            return payload
        message = self.world.add_message(
            chat,
            user,
            kind,
            text=body,
            entities=found,
            files=files,
            reply_to_message_id=reply_to,
            message_thread_id=thread,
            is_topic_message=topic,
            media_group_id=media_group_id,
            extra=extra,
        )
        payload = self.world.message_api(message)
        self.world.queue_update("message", payload)
        return payload

    def chat_sends(
        self, chat: ChatRef, sender_chat: FakeChat, text: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A message sent on behalf of a chat, as Telegram delivers it: `sender_chat` set, and `from` the
        placeholder every such sender shares: GroupAnonymousBot when an anonymous admin speaks as the group
        itself, Channel_Bot when a channel speaks. Other `fields` as for `user_sends`."""
        target = self._chat(chat)
        if sender_chat.id == target.id:
            placeholder = self.world.anonymous_bot
        elif sender_chat.type == "channel":
            placeholder = self.world.channel_bot
        else:
            raise ValueError("a chat speaks in a group as the group itself (anonymous admin) or as a channel")
        return self.user_sends(target, placeholder, text, sender_chat=sender_chat, **fields)

    def _content(
        self, photo: str | None, document: str | None, sticker: str | None, voice: bytes | None, *, has_text: bool
    ) -> tuple[MessageKind, tuple[StoredFile, ...], dict[str, Any]]:
        if photo is not None:
            full = self.world.file(photo)
            thumb = self.world.add_file(full.data, folder="photos", mime_type=full.mime_type)
            scale = 90 / max(full.width or 90, full.height or 90, 90)  # a ≤90 px preview size, like Telegram's
            thumb.width, thumb.height = round((full.width or 90) * scale), round((full.height or 90) * scale)
            full.width, full.height = full.width or 800, full.height or 600
            return "photo", (thumb, full), {}
        if document is not None:
            return "document", (self.world.file(document),), {}
        if sticker is not None:
            ids = self.world.add_file(b"RIFF\x00\x00\x00\x00WEBP", folder="stickers", mime_type="image/webp")
            return (
                "sticker",
                (),
                {
                    "sticker": {
                        "file_id": ids.file_id,
                        "file_unique_id": ids.file_unique_id,
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                        "emoji": sticker,
                    }
                },
            )
        if voice is not None:
            stored = self.world.add_file(voice, folder="voice", mime_type="audio/ogg")
            return (
                "voice",
                (),
                {
                    "voice": {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "duration": 1,
                        "mime_type": "audio/ogg",
                        "file_size": len(voice),
                    }
                },
            )
        if not has_text:
            raise ValueError("a message needs text, a photo, a document, a sticker or a voice note")
        return "text", (), {}

    def _edit_user_message(
        self, chat: FakeChat, user: FakeUser, message_id: int | None, body: str, found: tuple[Any, ...]
    ) -> StoredMessage:
        own = [m for m in self.world.chat_messages[chat.id] if m.sender.id == user.id]
        message = self.world.message(chat.id, message_id) if message_id is not None else (own[-1] if own else None)
        if message is None:
            raise ValueError("nothing to edit: the user has no such message in this chat")
        message.text, message.entities = body, found
        message.edit_count += 1
        message.edit_date = int(time.time())
        message.history.append(body)
        return message

    def _chat(self, chat: ChatRef) -> FakeChat:
        return self.world.chats[chat if isinstance(chat, int) else chat.id]
