"""The message methods of the fake Bot API (send, edit, delete, drafts, files), with Telegram's rules.

Each handler takes decoded `Params` and returns the JSON `result`, or raises `ApiError`. Method reference:
core.telegram.org/bots/api#available-methods; photo rules from its sendPhoto section.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .bot_setup import SetupApi
from .formatting import EntityParseError, EntityUrlError, Formatted, format_text, utf16_len
from .limits import RateLimiter
from .media import sniff_image
from .objects import (
    ApiError,
    ChatAction,
    Draft,
    FakeChat,
    MessageKind,
    StoredFile,
    StoredMessage,
    UploadedFile,
    bad_request,
)
from .params import Params
from .state import World, api_error_for_retry

# sendMessage: "Text of the message to be sent, 1-4096 characters after entities parsing"; sendPhoto:
# "Photo caption ... 0-1024 characters after entities parsing" (core.telegram.org/bots/api). Telegram counts
# these characters in UTF-16 code units, as entity offsets (core.telegram.org/api/entities).
MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_MAX_BYTES = 50 * 1024 * 1024
# getFile: "For the moment, bots can download files of up to 20MB in size" (core.telegram.org/bots/api#getfile).
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)  # fmt: skip


class BotApi:
    """Handlers by lower-case method name (Telegram matches method names case-insensitively)."""

    def __init__(self, world: World, limiter: RateLimiter) -> None:
        self.world = world
        self.limiter = limiter
        self.draft_error: str | None = None  # set to make every sendMessageDraft fail with this description
        handlers: list[tuple[str, Callable[[Params], Any]]] = [
            ("sendMessage", self.send_message),
            ("editMessageText", self.edit_text),
            ("editMessageCaption", self.edit_caption),
            ("editMessageReplyMarkup", self.edit_markup),
            ("deleteMessage", self.delete_message),
            ("deleteMessages", self.delete_messages),
            ("sendChatAction", self.send_chat_action),
            ("sendMessageDraft", self.send_draft),
            ("sendPhoto", self.send_photo),
            ("sendDocument", self.send_document),
            ("sendMediaGroup", self.send_media_group),
            ("getFile", self.get_file),
        ]
        handlers += SetupApi(world).handlers()
        self.handlers = {name.lower(): (name, handler) for name, handler in handlers}

    # ------------------------------------------------------------------ shared rules

    def _target(self, p: Params) -> tuple[FakeChat, int | None, int | None]:
        """Chat, replied-to message id and thread id of a send, validated as Telegram does."""
        chat = self.world.chat(p.require("chat_id"))
        reply = p.get("reply_parameters")
        reply_id = p.opt_integer("reply_to_message_id")
        allow_without = p.flag("allow_sending_without_reply")
        if isinstance(reply, Mapping):
            reply_id = Params(reply).opt_integer("message_id")
            allow_without = Params(reply).flag("allow_sending_without_reply")
        target = self.world.message(chat.id, reply_id) if reply_id is not None else None
        if reply_id is not None and (target is None or target.deleted):
            if not allow_without:
                raise bad_request("message to be replied not found")
            reply_id = None
        thread = p.opt_integer("message_thread_id")
        if thread is None and target is not None and chat.is_forum:
            thread = target.message_thread_id  # a reply lands in the topic of the message it answers
        self.world.require_topic(chat, thread)
        return chat, reply_id, thread

    def _format(self, p: Params, key: str, entities_key: str, *, caption: bool, allow_empty: bool) -> Formatted:
        try:
            formatted = format_text(p.opt_text(key) or "", p.opt_text("parse_mode"), p.get(entities_key))
        except EntityUrlError as exc:
            raise bad_request(str(exc)) from None
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        except ValueError:
            raise bad_request("unsupported parse_mode") from None
        if utf16_len(formatted.text) > (MAX_CAPTION_UTF16 if caption else MAX_TEXT_UTF16):
            raise bad_request("message caption is too long" if caption else "message is too long")
        if not formatted.text and not allow_empty:
            raise bad_request("message text is empty")
        return formatted

    def _spend(self, chat: FakeChat, *, is_draft: bool = False) -> None:
        if is_draft and not self.limiter.limits.drafts_count:
            return
        retry_after = self.limiter.check(chat.id, is_group=chat.is_group)
        if retry_after:
            raise api_error_for_retry(retry_after)

    def _own_message(self, p: Params, missing: str) -> StoredMessage:
        if p.get("inline_message_id") is not None:
            raise bad_request("inline messages are not supported by this fake")
        chat = self.world.chat(p.require("chat_id"))
        message = self.world.message(chat.id, p.integer("message_id"))
        if message is None or message.deleted:
            raise bad_request(missing)
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _bot_message(
        self,
        chat: FakeChat,
        kind: MessageKind,
        formatted: Formatted,
        reply_id: int | None,
        thread: int | None,
        p: Params,
        **fields: Any,
    ) -> StoredMessage:
        return self.world.add_message(
            chat,
            self.world.bot,
            kind,
            text=formatted.text,
            entities=formatted.entities,
            reply_to_message_id=reply_id,
            message_thread_id=thread,
            is_topic_message=bool(thread and chat.is_forum),
            reply_markup=p.get("reply_markup"),
            **fields,
        )

    # ------------------------------------------------------------------ text messages

    def send_message(self, p: Params) -> dict[str, Any]:
        chat, reply_id, thread = self._target(p)
        formatted = self._format(p, "text", "entities", caption=False, allow_empty=False)
        self._spend(chat)
        return self.world.message_api(self._bot_message(chat, "text", formatted, reply_id, thread, p))

    def _edit(self, message: StoredMessage, formatted: Formatted, markup: Any) -> dict[str, Any]:
        if (formatted.text, formatted.entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad_request(NOT_MODIFIED)
        self._spend(message.chat)
        message.text, message.entities, message.reply_markup = formatted.text, formatted.entities, markup
        message.edit_count += 1
        message.edit_date = int(time.time())
        message.history.append(formatted.text)
        self.world.notify()
        return self.world.message_api(message)

    def edit_text(self, p: Params) -> dict[str, Any]:
        message = self._own_message(p, "message to edit not found")
        if message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        formatted = self._format(p, "text", "entities", caption=False, allow_empty=False)
        return self._edit(message, formatted, p.get("reply_markup"))

    def edit_caption(self, p: Params) -> dict[str, Any]:
        message = self._own_message(p, "message to edit not found")
        if message.kind not in ("photo", "document"):
            raise bad_request("there is no caption in the message to edit")
        formatted = self._format(p, "caption", "caption_entities", caption=True, allow_empty=True)
        return self._edit(message, formatted, p.get("reply_markup"))

    def edit_markup(self, p: Params) -> dict[str, Any]:
        message = self._own_message(p, "message to edit not found")
        return self._edit(message, Formatted(message.text, message.entities), p.get("reply_markup"))

    def delete_message(self, p: Params) -> bool:
        chat = self.world.chat(p.require("chat_id"))
        message = self.world.message(chat.id, p.integer("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        self.world.notify()
        return True

    def delete_messages(self, p: Params) -> bool:
        chat = self.world.chat(p.require("chat_id"))
        ids = p.require("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must contain 1-100 message identifiers")
        for message_id in ids:
            message = self.world.message(chat.id, int(message_id))
            if message is not None:
                message.deleted = True
        self.world.notify()
        return True

    def send_chat_action(self, p: Params) -> bool:
        chat = self.world.chat(p.require("chat_id"))
        action = p.opt_text("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.world.actions.append(ChatAction(chat.id, action, p.opt_integer("message_thread_id"), _now()))
        self.world.notify()
        return True

    def send_draft(self, p: Params) -> bool:
        chat = self.world.chat(p.require("chat_id"))
        if chat.type != "private":
            raise bad_request("TEXTDRAFT_PEER_INVALID")  # drafts are private-chat only (Bot API sendMessageDraft)
        draft_id = p.integer("draft_id")
        if draft_id == 0:
            raise bad_request("draft_id must be non-zero")
        if self.draft_error is not None:
            raise ApiError(400, self.draft_error)
        formatted = self._format(p, "text", "entities", caption=False, allow_empty=True)
        self._spend(chat, is_draft=True)
        thread = p.opt_integer("message_thread_id")
        self.world.drafts.append(Draft(chat.id, draft_id, formatted.text, formatted.entities, thread, _now()))
        self.world.notify()
        return True

    # ------------------------------------------------------------------ files

    def _input_file(self, p: Params, value: Any) -> UploadedFile | StoredFile:
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value.removeprefix("attach://"))
        if isinstance(value, UploadedFile):
            if len(value.data) > UPLOAD_MAX_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            return value
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")  # the fake fetches nothing
        if isinstance(value, str) and value in self.world.files:
            return self.world.files[value]
        raise bad_request("wrong file identifier/HTTP URL specified")

    @staticmethod
    def _check_photo(upload: UploadedFile | StoredFile) -> None:
        if isinstance(upload, StoredFile):
            return
        if len(upload.data) > PHOTO_MAX_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        info = sniff_image(upload.data)
        if info is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        small, large = sorted((info.width, info.height))
        if info.width + info.height > 10_000 or small == 0 or large > 20 * small:
            raise bad_request("PHOTO_INVALID_DIMENSIONS")

    def _store(self, upload: UploadedFile | StoredFile, folder: str) -> StoredFile:
        if isinstance(upload, StoredFile):
            return upload
        mime = upload.content_type if upload.content_type != "application/octet-stream" else None
        return self.world.add_file(upload.data, folder=folder, file_name=upload.filename, mime_type=mime)

    def send_photo(self, p: Params) -> dict[str, Any]:
        chat, reply_id, thread = self._target(p)
        caption = self._format(p, "caption", "caption_entities", caption=True, allow_empty=True)
        upload = self._input_file(p, p.require("photo"))
        self._check_photo(upload)
        self._spend(chat)
        stored = self._store(upload, "photos")
        return self.world.message_api(self._bot_message(chat, "photo", caption, reply_id, thread, p, files=(stored,)))

    def send_document(self, p: Params) -> dict[str, Any]:
        chat, reply_id, thread = self._target(p)
        caption = self._format(p, "caption", "caption_entities", caption=True, allow_empty=True)
        upload = self._input_file(p, p.require("document"))
        self._spend(chat)
        stored = self._store(upload, "documents")
        message = self._bot_message(chat, "document", caption, reply_id, thread, p, files=(stored,))
        return self.world.message_api(message)

    def send_media_group(self, p: Params) -> list[dict[str, Any]]:
        chat, reply_id, thread = self._target(p)
        media = p.require("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10 or not all(isinstance(m, Mapping) for m in media):
            raise bad_request("media group must contain 2-10 items")
        kinds = {item.get("type") for item in media}
        if not kinds <= {"photo", "document"} or len(kinds) != 1:
            raise bad_request("this fake sends albums of only photos or only documents")
        items: list[tuple[Formatted, UploadedFile | StoredFile]] = []
        for item in media:
            sub = Params({**item, "parse_mode": item.get("parse_mode")})
            caption = self._format(sub, "caption", "caption_entities", caption=True, allow_empty=True)
            upload = self._input_file(p, item.get("media"))
            if item["type"] == "photo":
                self._check_photo(upload)
            items.append((caption, upload))
        self._spend(chat)
        group_id = f"{chat.id}{len(self.world.chat_messages[chat.id])}".lstrip("-")
        kind: MessageKind = "photo" if kinds == {"photo"} else "document"
        sent = [
            self._bot_message(
                chat,
                kind,
                caption,
                reply_id,
                thread,
                p,
                files=(self._store(upload, f"{kind}s"),),
                media_group_id=group_id,
            )
            for caption, upload in items
        ]
        return [self.world.message_api(message) for message in sent]

    def get_file(self, p: Params) -> dict[str, Any]:
        stored = self.world.file(str(p.require("file_id")))
        if len(stored.data) > DOWNLOAD_MAX_BYTES:
            raise bad_request("file is too big")
        return stored.file_api()


def _now() -> float:
    return time.monotonic()
