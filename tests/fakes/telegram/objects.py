"""Records of the fake Bot API: users, chats, files, messages, drafts and calls, with their JSON forms.

Plain dataclasses; the JSON shapes are the Bot API's (core.telegram.org/bots/api#available-types).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .formatting import Entity

ChatType = Literal["private", "group", "supergroup", "channel"]
AdminStatus = Literal["creator", "administrator"]

# Who `from` names when a message is sent on behalf of a chat (Bot API Message.sender_chat: "For backward
# compatibility, if the message was sent on behalf of a chat, the field from contains a fake sender user in
# non-channel chats"). The same two users for every channel and every anonymous admin, everywhere.
CHANNEL_BOT_ID = 136817688  # @Channel_Bot: a channel speaking in a group
GROUP_ANONYMOUS_BOT_ID = 1087968824  # @GroupAnonymousBot: an anonymous admin speaking as the group


class ApiError(Exception):
    """A Bot API error answer: HTTP status == error_code; `retry_after` only for 429."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True, slots=True)
class FakeUser:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True, slots=True)
class FakeChat:
    """A chat the bot is in; private chats have the user's id, groups negative ids."""

    id: int
    type: ChatType
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    is_forum: bool = False

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "username"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.is_forum:
            out["is_forum"] = True
        return out


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A multipart file part as received (recorded in `Call.params` in place of the bytes)."""

    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes = field(repr=False)
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None

    def photo_size_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
            "file_size": len(self.data),
        }

    def document_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name:
            out["file_name"] = self.file_name
        if self.mime_type:
            out["mime_type"] = self.mime_type
        return out

    def file_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


MessageKind = Literal["text", "photo", "document", "sticker", "voice", "service", "other"]


@dataclass(slots=True)
class StoredMessage:
    """One message of a chat, the bot's or a user's. `text` is the visible text, or the caption of media."""

    chat: FakeChat
    message_id: int
    sender: FakeUser
    from_bot: bool
    kind: MessageKind
    date: int
    time: float
    text: str = ""
    entities: tuple[Entity, ...] = ()
    files: tuple[StoredFile, ...] = ()  # photo sizes (smallest first), or the one document/voice
    reply_to_message_id: int | None = None
    message_thread_id: int | None = None
    is_topic_message: bool = False
    media_group_id: str | None = None
    reply_markup: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # forward_origin, sticker, forum_topic_created...
    edit_count: int = 0
    edit_date: int | None = None
    deleted: bool = False
    history: list[str] = field(default_factory=list)  # every text shown, the first one included

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def file(self) -> StoredFile | None:
        """The largest photo size, or the document."""
        return self.files[-1] if self.files else None

    def to_api(self, reply_to: StoredMessage | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": self.chat.to_api(),
            "from": self.sender.to_api(),
        }
        text_key, entities_key = ("text", "entities") if self.kind == "text" else ("caption", "caption_entities")
        if self.kind == "text" or self.text:
            out[text_key] = self.text
        if self.entities:
            out[entities_key] = [entity.to_api() for entity in self.entities]
        if self.kind == "photo":
            out["photo"] = [size.photo_size_api() for size in self.files]
        elif self.kind == "document" and self.file is not None:
            out["document"] = self.file.document_api()
        if self.message_thread_id is not None:
            out["message_thread_id"] = self.message_thread_id
        if self.is_topic_message:
            out["is_topic_message"] = True
        if self.media_group_id is not None:
            out["media_group_id"] = self.media_group_id
        if self.reply_markup is not None:
            out["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            out["edit_date"] = self.edit_date
        if reply_to is not None:
            out["reply_to_message"] = reply_to.to_api()  # one level deep, as Telegram does
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Draft:
    """One sendMessageDraft call that Telegram accepted."""

    chat_id: int
    draft_id: int
    text: str
    entities: tuple[Entity, ...]
    message_thread_id: int | None
    time: float


@dataclass(frozen=True, slots=True)
class ChatAction:
    chat_id: int
    action: str
    message_thread_id: int | None
    time: float


@dataclass(slots=True)
class Call:
    """One request to the fake: canonical method name, decoded params, monotonic time, outcome."""

    method: str
    params: dict[str, Any]
    time: float
    status: int = 0
    description: str | None = None
    result: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class WebhookConfig:
    url: str = ""
    secret_token: str | None = field(default=None, repr=False)
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    deliveries: list[tuple[int, int]] = field(default_factory=list)  # (update_id, HTTP status or 0)
    delivered_at: dict[int, float] = field(default_factory=dict)  # update_id -> time.monotonic() of its 2xx
