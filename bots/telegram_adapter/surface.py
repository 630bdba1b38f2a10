"""TelegramSurface: one chat (or forum topic) as the live-reply engine sees it, one Bot API call per method.

PTB errors are mapped to core errors here and nowhere else. Imports PTB and `core` only.
"""

from __future__ import annotations

import datetime as dtm
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from telegram import (
    Bot,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    MessageEntity,
    ReplyParameters,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, EndPointNotFound, RetryAfter

from bots.telegram_adapter.media import fits_as_photo
from core import FormattingRejectedError, Handle, Image, Profile, Rendered, Settings, SurfaceRateLimitError

log = logging.getLogger(__name__)

MEDIA_GROUP_MAX = 10  # Bot API sendMediaGroup: 2-10 items
# Bot API sendMessage: "1-4096 characters after entities parsing", captions (sendPhoto) "0-1024 characters",
# counted in UTF-16 code units (core.telegram.org/api/entities). Formatting goes as MessageEntity values.
MESSAGE_MAX_UNITS = 4096
CAPTION_MAX_UNITS = 1024
# sendChatAction: "The status is set for 5 seconds or less", hence a re-send every 4.5 s.
TYPING_INTERVAL_SECONDS = 4.5
# sendMessageDraft shows "a temporary 30-second preview": re-sent before it expires.
DRAFT_REFRESH_SECONDS = 20.0


def telegram_profile(settings: Settings, *, is_group: bool, drafts: bool = False) -> Profile:
    """A chat's profile: paced by TELEGRAM_(GROUP_)EDIT_INTERVAL_SECONDS; `drafts` only in private chats."""
    return Profile(
        markup="entities",
        max_message_units=MESSAGE_MAX_UNITS,
        caption_max_units=CAPTION_MAX_UNITS,
        length_unit="utf16",
        edit_interval_seconds=(
            settings.telegram_group_edit_interval_seconds if is_group else settings.telegram_edit_interval_seconds
        ),
        typing_interval_seconds=TYPING_INTERVAL_SECONDS,
        supports_draft=drafts and not is_group,
        draft_refresh_seconds=DRAFT_REFRESH_SECONDS,
    )


def as_seconds(value: int | float | dtm.timedelta) -> float:
    """RetryAfter.retry_after is an int, or a timedelta with PTB_TIMEDELTA=true (PTB >= 22.2)."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@contextmanager
def mapped_errors(sent: Rendered | None = None) -> Iterator[None]:
    """429 -> SurfaceRateLimitError, refused markup -> FormattingRejectedError; the rest propagates.

    Any 400 on a text that carried entities counts as refused markup, not only "can't parse entities":
    Telegram also answers "entity URL '…' is invalid: URL host is empty" for a relative link, and new
    descriptions appear. The engine then sends that message as plain text; if plain text is refused
    too, the BadRequest propagates. "Message is not modified" is never a formatting problem.
    """
    try:
        yield
    except RetryAfter as exc:
        raise SurfaceRateLimitError(as_seconds(exc.retry_after)) from exc
    except BadRequest as exc:
        # PTB strips "Bad Request: " and capitalises the rest: compare in lower case.
        message = exc.message.lower()
        has_entities = sent is not None and _entities(sent) is not None
        if "can't parse entities" in message or (has_entities and not _is_not_modified(exc)):
            raise FormattingRejectedError("telegram refused the formatted text") from exc
        raise


def _entities(rendered: Rendered) -> list[MessageEntity] | None:
    if rendered.markup != "entities" or not rendered.entities:
        return None
    return [
        MessageEntity(e.type, e.offset, e.length, url=e.url or None, language=e.language or None)
        for e in rendered.entities
    ]


def _is_not_modified(exc: BadRequest) -> bool:
    return "not modified" in exc.message.lower()


class TelegramSurface:
    """One reply's view of a chat. `reply_to` makes the first message a reply (groups).

    Drafts (sendMessageDraft) are used when the profile allows them. If Telegram refuses a draft, the
    reply goes on with send-then-edit: the "draft" becomes a real message that is edited as the text
    grows, and the next `send` puts the final text into it, so nothing shows twice. `on_drafts_refused`
    tells the bot to stop offering drafts in this chat.
    """

    def __init__(
        self,
        bot: Bot,
        profile: Profile,
        *,
        chat_id: int,
        thread_id: int | None = None,
        reply_to: int | None = None,
        draft_id: int = 1,
        on_drafts_refused: Callable[[], None] | None = None,
    ) -> None:
        self._bot = bot
        self._profile = profile
        self._chat_id = chat_id
        self._thread_id = thread_id
        self._reply_to = reply_to
        self._draft_id = draft_id
        self._on_drafts_refused = on_drafts_refused
        self._drafts_refused = False
        self._stand_in: Handle | None = None  # the message playing the draft once drafts were refused
        self._stand_in_text: Rendered | None = None

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def chat_key(self) -> str:
        return str(self._chat_id)  # Telegram's limits are per chat, topics included

    def _reply_parameters(self) -> ReplyParameters | None:
        if self._reply_to is None:
            return None
        return ReplyParameters(self._reply_to, allow_sending_without_reply=True)

    def _handle(self, message: Message) -> Handle:
        self._reply_to = None  # only the first message of a reply answers the user's message
        return Handle(str(message.message_id), str(self._chat_id))

    async def send(self, text: Rendered) -> Handle:
        if self._stand_in is not None:
            handle = self._stand_in
            await self.edit(handle, text)
            self._stand_in = self._stand_in_text = None
            return handle
        with mapped_errors(text):
            message = await self._bot.send_message(
                self._chat_id,
                text.text,
                entities=_entities(text),
                message_thread_id=self._thread_id,
                reply_parameters=self._reply_parameters(),
            )
        return self._handle(message)

    async def edit(self, handle: Handle, text: Rendered) -> None:
        try:
            with mapped_errors(text):
                await self._bot.edit_message_text(
                    text.text, chat_id=self._chat_id, message_id=int(handle.id), entities=_entities(text)
                )
        except BadRequest as exc:
            if not _is_not_modified(exc):
                raise

    async def delete(self, handle: Handle) -> None:
        try:
            with mapped_errors():
                await self._bot.delete_message(self._chat_id, int(handle.id))
        except BadRequest as exc:
            if "not found" not in exc.message.lower():
                raise

    async def send_images(self, images: Sequence[Image], caption: Rendered | None) -> Sequence[Handle]:
        """One call: a photo, a document or an album (documents when Telegram would refuse a photo)."""
        if self._stand_in is not None:  # no text follows to take the stand-in's place
            await self.delete(self._stand_in)
            self._stand_in = self._stand_in_text = None
        if len(images) > MEDIA_GROUP_MAX:
            log.warning("the model returned %d images; sending the first %d", len(images), MEDIA_GROUP_MAX)
            images = images[:MEDIA_GROUP_MAX]
        as_photos = all(fits_as_photo(image) for image in images)
        text = caption.text if caption is not None else None
        entities = _entities(caption) if caption is not None else None
        names = [f"image-{n}.{image.extension}" for n, image in enumerate(images, 1)]
        thread, reply = self._thread_id, self._reply_parameters()
        with mapped_errors(caption):
            if len(images) > 1:
                # Raw bytes, not InputFile: PTB then uploads each item as its own attach:// part.
                kind = InputMediaPhoto if as_photos else InputMediaDocument
                media = [kind(image.data, filename=name) for image, name in zip(images, names, strict=True)]
                messages = await self._bot.send_media_group(
                    self._chat_id,
                    media,
                    caption=text,
                    caption_entities=entities,
                    message_thread_id=thread,
                    reply_parameters=reply,
                )
                return [self._handle(message) for message in messages]
            send = self._bot.send_photo if as_photos else self._bot.send_document
            message = await send(
                self._chat_id,
                InputFile(images[0].data, filename=names[0]),
                caption=text,
                caption_entities=entities,
                message_thread_id=thread,
                reply_parameters=reply,
            )
        return [self._handle(message)]

    async def typing(self) -> None:
        await self._bot.send_chat_action(self._chat_id, ChatAction.TYPING, message_thread_id=self._thread_id)

    async def draft(self, text: Rendered) -> None:
        if not self._drafts_refused:
            try:
                with mapped_errors(text):
                    await self._bot.send_message_draft(
                        self._chat_id,
                        self._draft_id,
                        text.text,
                        message_thread_id=self._thread_id,
                        entities=_entities(text),
                    )
                return
            except (BadRequest, EndPointNotFound) as exc:  # refused, or a Bot API server without drafts
                log.info("drafts refused in chat %s (%s); streaming by edits", self._chat_id, type(exc).__name__)
                self._drafts_refused = True
                if self._on_drafts_refused is not None:
                    self._on_drafts_refused()
        await self._stand_in_draft(text)

    async def _stand_in_draft(self, text: Rendered) -> None:
        """Send-then-edit in place of a draft: the engine paces these calls exactly like drafts."""
        if self._stand_in is None:
            self._stand_in = await self.send(text)
        elif text != self._stand_in_text:
            await self.edit(self._stand_in, text)
        self._stand_in_text = text
