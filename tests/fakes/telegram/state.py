"""What the fake Telegram knows: users, chats, topics, messages, files, drafts and the pending updates.

No HTTP here; `FakeTelegram` (server.py) and `BotApi` (methods.py) read and change it. Every change calls
`notify()`, which wakes long polls and `wait_for`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from .formatting import Entity
from .media import sniff_image
from .objects import (
    CHANNEL_BOT_ID,
    GROUP_ANONYMOUS_BOT_ID,
    AdminStatus,
    ApiError,
    ChatAction,
    Draft,
    FakeChat,
    FakeUser,
    MessageKind,
    StoredFile,
    StoredMessage,
    WebhookConfig,
    bad_request,
)


class World:
    """All state of one fake Bot API server."""

    def __init__(self, bot: FakeUser) -> None:
        self.bot = bot
        self.chats: dict[int, FakeChat] = {}
        self.topics: dict[int, dict[int, str]] = {}  # chat id -> thread id -> topic name
        self.chat_messages: dict[int, list[StoredMessage]] = {}
        self.files: dict[str, StoredFile] = {}
        self.drafts: list[Draft] = []
        self.actions: list[ChatAction] = []
        self.commands: dict[str, list[dict[str, str]]] = {}  # scope+language key -> BotCommand list
        self.admins: dict[int, dict[int, tuple[FakeUser, AdminStatus]]] = {}  # chat id -> user id -> admin
        self.channel_bot = FakeUser(CHANNEL_BOT_ID, "Channel", "Channel_Bot", is_bot=True)
        self.anonymous_bot = FakeUser(GROUP_ANONYMOUS_BOT_ID, "Group", "GroupAnonymousBot", is_bot=True)
        self.updates: list[dict[str, Any]] = []  # queued and not yet confirmed
        self.allowed_updates: list[str] | None = None
        self.webhook = WebhookConfig()
        self._user_ids = itertools.count(100_001)
        self._group_ids = itertools.count(5_001)
        self._file_ids = itertools.count(1)
        self._update_ids = itertools.count(700_000_001)
        self._next_message_id: dict[int, int] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ change notification

    @property
    def change_event(self) -> asyncio.Event:
        """Set at the next change; take it BEFORE checking a condition, then wait on it."""
        return self._changed

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ users, chats, topics

    def new_user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = None,
    ) -> FakeUser:
        return FakeUser(next(self._user_ids), first_name, username, last_name, language_code)

    def private_chat(self, user: FakeUser) -> FakeChat:
        return self._register(FakeChat(user.id, "private", first_name=user.first_name, username=user.username))

    def group(self, title: str) -> FakeChat:
        return self._register(FakeChat(-next(self._group_ids), "group", title=title))

    def supergroup(self, title: str, *, is_forum: bool = False, username: str | None = None) -> FakeChat:
        chat_id = -(1_000_000_000_000 + next(self._group_ids))  # the -100… form of supergroup ids
        return self._register(FakeChat(chat_id, "supergroup", title=title, username=username, is_forum=is_forum))

    def channel(self, title: str) -> FakeChat:
        chat_id = -(1_000_000_000_000 + next(self._group_ids))  # channels share the -100… form
        return self._register(FakeChat(chat_id, "channel", title=title))

    def promote(self, chat: FakeChat, user: FakeUser, status: AdminStatus) -> None:
        if not chat.is_group:
            raise ValueError("only groups have administrators here")
        self.admins.setdefault(chat.id, {})[user.id] = (user, status)

    def _register(self, chat: FakeChat) -> FakeChat:
        self.chats[chat.id] = chat
        self.chat_messages.setdefault(chat.id, [])
        return chat

    def create_topic(self, chat: FakeChat, name: str, creator: FakeUser) -> int:
        """A forum topic: its thread id is the id of its forum_topic_created service message."""
        if not chat.is_forum:
            raise ValueError(f"chat {chat.id} is not a forum")
        service = self.add_message(
            chat,
            creator,
            "service",
            extra={
                "forum_topic_created": {"name": name, "icon_color": 7322096},
            },
        )
        service.message_thread_id = service.message_id
        service.is_topic_message = True
        self.topics.setdefault(chat.id, {})[service.message_id] = name
        return service.message_id

    def chat(self, raw_id: Any) -> FakeChat:
        """The chat for a chat_id parameter (int, numeric string or @username)."""
        if isinstance(raw_id, str) and raw_id.startswith("@"):
            for chat in self.chats.values():
                if chat.username and f"@{chat.username}".lower() == raw_id.lower():
                    return chat
            raise bad_request("chat not found")
        try:
            chat_id = int(raw_id)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        if chat_id not in self.chats:
            raise bad_request("chat not found")
        return self.chats[chat_id]

    # ------------------------------------------------------------------ messages and files

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        for message in self.chat_messages.get(chat_id, ()):
            if message.message_id == message_id:
                return message
        return None

    def add_message(
        self,
        chat: FakeChat,
        sender: FakeUser,
        kind: MessageKind,
        *,
        text: str = "",
        entities: tuple[Entity, ...] = (),
        **fields: Any,
    ) -> StoredMessage:
        message_id = self._next_message_id.get(chat.id, 1)
        self._next_message_id[chat.id] = message_id + 1
        message = StoredMessage(
            chat=chat,
            message_id=message_id,
            sender=sender,
            from_bot=sender.id == self.bot.id,
            kind=kind,
            date=int(time.time()),
            time=time.monotonic(),
            text=text,
            entities=entities,
            history=[text],
            **fields,
        )
        self.chat_messages[chat.id].append(message)
        self.notify()
        return message

    def message_api(self, message: StoredMessage) -> dict[str, Any]:
        """The Message object, with reply_to_message filled in from the chat's current state."""
        target = None
        if message.reply_to_message_id is not None:
            target = self.message(message.chat.id, message.reply_to_message_id)
        return message.to_api(reply_to=target)

    def add_file(
        self,
        data: bytes,
        *,
        folder: str = "documents",
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        number = next(self._file_ids)
        info = sniff_image(data)
        extension = (mime_type or (info.mime_type if info else "")).rpartition("/")[2] or "bin"
        stored = StoredFile(
            file_id=f"AgAD{number:06d}fake",
            file_unique_id=f"AQAD{number:06d}",
            data=data,
            file_path=f"{folder}/file_{number}.{extension}",
            mime_type=mime_type or (info.mime_type if info else None),
            file_name=file_name,
            width=info.width if info else None,
            height=info.height if info else None,
        )
        self.files[stored.file_id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        if file_id not in self.files:
            raise bad_request("invalid file_id")
        return self.files[file_id]

    # ------------------------------------------------------------------ updates

    def queue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self.notify()
        return update

    def pending_updates(self) -> list[dict[str, Any]]:
        """Unconfirmed updates of allowed types (others are dropped, as Telegram never sends them)."""
        allowed = self.allowed_updates
        if allowed:
            self.updates = [u for u in self.updates if any(kind in u for kind in allowed)]
        return self.updates

    def confirm_updates(self, offset: int) -> None:
        """getUpdates offset semantics: drop ids below offset; a negative offset keeps the last -offset."""
        if offset < 0:
            del self.updates[: max(0, len(self.updates) + offset)]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def require_topic(self, chat: FakeChat, thread_id: int | None) -> None:
        if chat.is_forum and thread_id is not None and thread_id not in self.topics.get(chat.id, {}):
            raise bad_request("message thread not found")

    def drop_updates(self) -> None:
        self.updates.clear()


def api_error_for_retry(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
