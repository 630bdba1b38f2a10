"""TelegramBot: the update handlers; each turns a Telegram message into one core call and shows the answer.

Thin: keys and addressing come from inbound.py, words from texts.py, pacing and splitting from core.live.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from telegram import BotCommand, Message, Update, User
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bots.telegram_adapter import texts
from bots.telegram_adapter.albums import ALBUM_GAP_SECONDS, Albums
from bots.telegram_adapter.documents import download_documents, has_document
from bots.telegram_adapter.inbound import (
    caption_of,
    conversation_of,
    declared_image_bytes,
    discussion_of,
    download_images,
    has_image,
    is_addressed,
    is_chat_admin,
    is_group,
    overheard_line,
    parse_command,
    quoted,
    replied,
    replies_to_bot,
    topic_of,
    user_of,
    without_mention,
)
from bots.telegram_adapter.surface import TelegramSurface, telegram_profile
from bots.telegram_adapter.voice import RECORDINGS, voice_of
from core import (
    AccessDeniedError,
    Assistant,
    Discussion,
    Image,
    OrderTicket,
    ParleyError,
    Quote,
    Settings,
    Turn,
    check_turn_bytes,
    show_message,
    show_reply,
)

log = logging.getLogger(__name__)

Work = Callable[[Message, User], Awaitable[None]]
ACTION_REFRESH_SECONDS = 4.5  # sendChatAction: "The status is set for 5 seconds or less"
_NO_DRAFT_CHATS_MAX = 100_000  # bound on remembered chats that refused drafts
# Open to strangers: /forget deletes only the caller's own data; the admin commands answer "admins only".
UNGATED_COMMANDS = frozenset({"forget", "stats", "grant", "revoke"})
# The update's place in its conversation (core's Cluster): set by _guarded, awaited where the turn starts.
_TICKET: contextvars.ContextVar[OrderTicket] = contextvars.ContextVar("telegram_order_ticket")


class TelegramBot:
    """The handlers of one bot. `install(application)` registers them; `drain()` ends the work in flight."""

    def __init__(
        self, assistant: Assistant, settings: Settings, *, album_gap_seconds: float = ALBUM_GAP_SECONDS
    ) -> None:
        self._assistant = assistant
        self._settings = settings
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
        self._stream = f"telegram:{token.partition(':')[0]}"  # the bot's id: public, never the secret half
        self._budget = assistant.cluster.budget(settings.telegram_requests_per_second, stream=self._stream)
        self._discussion = Discussion(settings.group_context_messages)
        self._albums = Albums(album_gap_seconds, cluster=assistant.cluster)
        self._no_drafts: set[int] = set()
        self._draft_ids = itertools.count(1)
        self._active: set[asyncio.Task[Any]] = set()

    # --- wiring ------------------------------------------------------------------------------------

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        new = filters.UpdateType.MESSAGE
        names = [name for name, _ in texts.COMMANDS] + list(texts.HIDDEN_COMMANDS)
        application.add_handler(CommandHandler(names, self._on_command, filters=new))
        application.add_handler(MessageHandler(new & filters.COMMAND, self._on_unknown_command))
        application.add_handler(
            MessageHandler(new & (filters.TEXT | filters.PHOTO | filters.Document.ALL | RECORDINGS), self._on_message)
        )
        application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, self._on_edited))
        application.add_handler(MessageHandler(new & ~filters.StatusUpdate.ALL, self._on_unsupported))
        application.add_handler(MessageHandler(filters.ALL, self._on_other))  # only takes its place in order
        application.add_error_handler(self._on_error)

    def commands(self) -> list[BotCommand]:
        return [
            BotCommand(name, description)
            for name, description in texts.COMMANDS
            if name != "imagine" or self._settings.image_model
        ]

    async def drain(self, grace_seconds: float) -> None:
        """Let replies in flight finish within `grace_seconds`, then cancel the rest (partials are kept)."""
        if not self._active:
            return
        _, pending = await asyncio.wait(set(self._active), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # --- PTB callbacks -----------------------------------------------------------------------------

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._message, turn_inside=True)  # an album is gathered first

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._command)

    async def _on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._unknown_command)

    async def _on_unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._unsupported)

    async def _on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._edited)

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._guarded(update, self._nothing)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("telegram: %s", type(error).__name__, exc_info=error)

    async def _guarded(self, update: Update, work: Work, *, turn_inside: bool = False) -> None:
        """The one broad catch of a handler: core errors are shown as they are, anything else generically.

        The update waits for its conversation's turn (Telegram's update order, across processes) before
        `work`, or, with `turn_inside`, where `work` awaits `_TICKET`.
        """
        message = update.effective_message
        ticket = await self._arrive(update, message)
        if message is None:
            await ticket.leave()
            return
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        _TICKET.set(ticket)
        try:
            if not turn_inside:
                await ticket.wait()
            await work(message, message.get_bot().bot)
        except AccessDeniedError as exc:
            if not is_group(message):  # one polite refusal in a DM; in a group, silence
                await self._notify(message, texts.error(exc.user_message))
        except ParleyError as exc:
            await self._notify(message, texts.error(exc.user_message))
        except Exception:
            log.exception("telegram: a message in chat %s could not be handled", message.chat_id)
            await self._notify(message, texts.error(texts.GENERIC_ERROR))
        finally:
            await ticket.leave()
            if task is not None:
                self._active.discard(task)

    async def _arrive(self, update: Update, message: Message | None) -> OrderTicket:
        """File the update in its conversation's order (the update id is Telegram's order for the bot)."""
        try:
            key = conversation_of(message, group_history=self._settings.group_history) if message else None
        except Exception:  # a message without what a conversation needs: it waits for nobody
            key = None
        return await self._assistant.cluster.arrive(self._stream, key, update.update_id)

    async def _nothing(self, message: Message, me: User) -> None:
        """An update no other handler takes (a service message): it only passes its turn on."""

    # --- messages ----------------------------------------------------------------------------------

    async def _message(self, message: Message, me: User) -> None:
        album = await self._albums.collect(message)
        if album is None:
            return  # part of an album another handler is gathering
        await _TICKET.get().wait()
        first = album[0]
        text = caption_of(album)
        command = parse_command(text) if first.caption is not None else None
        if command is not None and command.name == "imagine" and self._for_me(command.bot, me):
            await self._imagine(first, command.argument, album)  # a photo captioned "/imagine ...": an edit
            return
        if not any(is_addressed(item, me) for item in album):
            self._discussion.add(discussion_of(first), user_of(first).name, overheard_line(first))
            return
        turn = await self._turn(album, me)
        await show_reply(
            self._assistant,
            turn,
            self._surface(first),
            budget=self._budget,
            show_reasoning=self._settings.show_reasoning,
        )

    async def _turn(self, album: Sequence[Message], me: User) -> Turn:
        """The turn of a message (or album) for the bot: its text, photos, a quoted message, the discussion."""
        first = album[0]
        key = conversation_of(first, group_history=self._settings.group_history)
        quote = quoted(first, me)
        sources = [*album, *([quote] if quote else [])]
        if any(has_image(item) or has_document(item) for item in sources):  # a stranger's files are never fetched
            await self._assistant.require_access(key, user_of(first))
        # Refused before downloading when the sizes Telegram declares are over the cap already (core checks again).
        check_turn_bytes(declared_image_bytes(sources), self._settings.image_max_bytes_per_turn)
        documents = await download_documents(album, max_bytes=self._settings.max_document_bytes)
        images = await download_images(album, max_bytes=self._settings.image_max_bytes)
        # A quoted photo joins the turn but stays its author's: their /forget removes it from this turn too.
        quoted_images = await download_images([quote], max_bytes=self._settings.image_max_bytes) if quote else []
        context: tuple[str, ...] = self._discussion.take(discussion_of(first)) if is_group(first) else ()
        if quote is not None and (caption_of([quote]) or has_image(quote)):
            context += (f"{user_of(quote).name}: {overheard_line(quote)}",)
        return Turn(
            conversation=key,
            user=user_of(first),
            text=without_mention(caption_of(album), me),
            images=images,
            platform_message_id=str(first.message_id),
            context=context,
            quote=Quote(user_of(quote), quoted_images) if quote is not None and quoted_images else None,
            voice=voice_of(first),  # downloaded by the core, once it checked access and the limits
            documents=documents,
        )

    async def _command(self, message: Message, me: User) -> None:
        command = parse_command(message.text or "")
        if command is None:
            return
        key = conversation_of(message, group_history=self._settings.group_history)
        user = user_of(message)
        if command.name not in UNGATED_COMMANDS:  # the same check as a message: silence in groups
            await self._assistant.require_access(key, user)
        image_model = bool(self._settings.image_model)
        admin = functools.partial(is_chat_admin, message)  # asked by the core, only in shared groups
        match command.name:
            case "start":
                sender = message.from_user if message.sender_chat is None else None
                first_name = sender.first_name if sender else user.name
                await self._say(message, texts.start(first_name, username=me.username or "", image_model=image_model))
            case "help":
                await self._say(message, texts.help_text(username=me.username or "", image_model=image_model))
            case "reset":
                await self._assistant.reset(key, user, chat_admin=admin)
                await self._say(message, texts.reset_done())
            case "model" if command.argument:
                chosen = await self._assistant.set_model(key, user, command.argument, chat_admin=admin)
                await self._say(message, texts.model_set(chosen))
            case "model":
                current = await self._assistant.current_model(key, user)
                await self._say(message, texts.model_choices(current, await self._assistant.models()))
            case "system":
                result = await self._assistant.system_prompt(key, user, command.argument, chat_admin=admin)
                await self._say(message, texts.system_prompt(result))
            case "imagine":
                source = replied(message)
                await self._imagine(message, command.argument, [source] if source else [])
            case "usage":
                await self._say(message, texts.usage(await self._assistant.usage(key, user)))
            case "forget":
                await self._say(message, texts.forgotten(await self._assistant.forget(key.platform, user)))
            case "stats":
                await self._say(message, texts.stats(await self._assistant.stats(user, key.platform)))
            case "grant" | "revoke":
                kind, _, subject = command.argument.strip().partition(" ")
                change = self._assistant.grant if command.name == "grant" else self._assistant.revoke
                await change(user, key.platform, kind, subject.strip())
                await self._say(message, texts.access_changed(command.name == "grant", kind, subject.strip()))

    async def _imagine(self, message: Message, prompt: str, sources: Sequence[Message]) -> None:
        """Draw with IMAGE_MODEL; photos in `sources` go along as references (editing)."""
        key = conversation_of(message, group_history=self._settings.group_history)
        user = user_of(message)
        if not prompt.strip():  # the core answers with the usage hint; nothing to download or show
            await self._assistant.imagine(prompt, conversation=key, user=user)
            return
        if any(has_image(source) for source in sources):  # a stranger's files are never fetched
            await self._assistant.require_access(key, user)
        references = await download_images(sources, max_bytes=self._settings.image_max_bytes)
        async with self._action(message, ChatAction.UPLOAD_PHOTO):
            result = await self._assistant.imagine(prompt, conversation=key, user=user, references=references)
        await self._say(message, result.text, result.images)

    async def _unknown_command(self, message: Message, me: User) -> None:
        command = parse_command(message.text or "")
        if command is not None and (not is_group(message) or (command.bot and self._for_me(command.bot, me))):
            await self._say_to_allowed(message, texts.plain(texts.UNKNOWN_COMMAND))

    async def _unsupported(self, message: Message, me: User) -> None:
        if not is_group(message) or replies_to_bot(message, me):
            await self._say_to_allowed(message, texts.plain(texts.UNSUPPORTED))

    async def _edited(self, message: Message, me: User) -> None:
        if not is_group(message):
            await self._say_to_allowed(message, texts.plain(texts.EDITED))

    async def _say_to_allowed(self, message: Message, markdown: str) -> None:
        """A note only for those who may use the bot: a stranger must not spend a group's message budget."""
        key = conversation_of(message, group_history=self._settings.group_history)
        await self._assistant.require_access(key, user_of(message))
        await self._say(message, markdown)

    @staticmethod
    def _for_me(addressee: str, me: User) -> bool:
        return not addressee or addressee.lower() == (me.username or "").lower()

    # --- showing -----------------------------------------------------------------------------------

    def _surface(self, message: Message) -> TelegramSurface:
        chat_id, group = message.chat.id, is_group(message)
        mode = self._settings.telegram_stream_mode
        drafts = not group and (mode == "draft" or (mode == "auto" and chat_id not in self._no_drafts))
        return TelegramSurface(
            message.get_bot(),
            telegram_profile(self._settings, is_group=group, drafts=drafts),
            chat_id=chat_id,
            thread_id=topic_of(message),
            reply_to=message.message_id if group else None,  # in groups the answer replies to its question
            draft_id=next(self._draft_ids),
            on_drafts_refused=(lambda: self._refuse_drafts(chat_id)) if mode == "auto" else None,
        )

    def _refuse_drafts(self, chat_id: int) -> None:
        if len(self._no_drafts) >= _NO_DRAFT_CHATS_MAX:
            self._no_drafts.clear()  # drafts get another try everywhere rather than unbounded memory
        self._no_drafts.add(chat_id)

    async def _say(self, message: Message, markdown: str, images: Sequence[Image] = ()) -> None:
        """A message of the bot's own, through the same engine (paced, split, plain text if refused)."""
        await show_message(self._assistant, markdown, self._surface(message), budget=self._budget, images=images)

    async def _notify(self, message: Message, markdown: str) -> None:
        try:
            await self._say(message, markdown)
        except Exception:  # the error message itself failed: the chat is unreachable, the log is all we have
            log.warning("telegram: could not tell chat %s about an error", message.chat_id, exc_info=True)

    @contextlib.asynccontextmanager
    async def _action(self, message: Message, action: str) -> AsyncIterator[None]:
        """Show `action` ("upload_photo"...) in the chat while the block runs."""

        async def keep_showing() -> None:
            while True:
                if self._budget.try_take():
                    try:
                        await message.get_bot().send_chat_action(
                            message.chat.id, action, message_thread_id=topic_of(message)
                        )
                    except TelegramError:  # cosmetic: a lost status line must not fail the command
                        log.debug("chat action failed", exc_info=True)
                await asyncio.sleep(ACTION_REFRESH_SECONDS)

        task = asyncio.create_task(keep_showing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
