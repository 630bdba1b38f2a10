"""The one entry point adapters call: `Assistant.reply`, `imagine`, `reset`, `set_model`, `system_prompt`,
`usage`, and the access and privacy commands (`access`, `grant`, `revoke`, `stats`, `forget`).

It ties the upstream client, the store and image handling together; it knows no chat platform. Every method
that reads or changes a conversation takes the caller and checks their access itself (only `forget`, which
touches nothing but the caller's own data, is open to all), so no adapter can forget to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.access import Access, Gatekeeper, midnight_utc
from core.answer import AnswerStream
from core.cluster import Cluster
from core.context import HistoryItem, build_context
from core.conversation import ChatAdminCheck, ConversationKey, Turn, UserRef, user_hash
from core.counters import RequestCounter
from core.documents import DocumentLimits, DocumentReader, ReadDocuments
from core.drawing import Painter
from core.errors import InputError, UpstreamError
from core.events import Completed, Event, Heard, Image
from core.health import HEALTH_TIMEOUT_SECONDS, UpstreamHealth, probe
from core.images import (
    to_data_url,
)
from core.inputs import check_turn
from core.logs import conversation_id as log_conversation_id
from core.logs import new_request_id, request_id
from core.personas import Personas, SystemPrompt
from core.settings import Settings
from core.store import (
    ConversationRecord,
    Forgotten,
    Lease,
    NewImage,
    NewMessage,
    Stats,
    Store,
    UsageTotals,
)
from core.tools import ImageTool, ToolContext, ToolLimits, ToolLoop, ToolRegistry
from core.upstream import UpstreamClient
from core.voice import Hearing, Listener

if TYPE_CHECKING:
    from core.metrics import Metrics

log = logging.getLogger(__name__)

HISTORY_LOAD_LIMIT = 200  # newest messages read per turn; the token budget then trims further
MODELS_CACHE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token use of one conversation, and of one user since midnight UTC."""

    model: str
    conversation: UsageTotals
    today: UsageTotals


class Assistant:
    """Answers turns, one at a time per conversation, concurrently across conversations."""

    def __init__(
        self,
        *,
        settings: Settings,
        upstream: UpstreamClient,
        store: Store,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        counter: RequestCounter | None = None,
        tools: ToolRegistry | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        """`tools`: what the chat model may call; by default the built-in tools the settings enable.

        `cluster`: what this process shares with the bot's other processes (Redis); none by default.
        """
        self.cluster = cluster or Cluster(None)
        self._metrics = metrics
        self._tools = ToolLoop(
            default_tools(settings) if tools is None else tools,
            ToolLimits(settings.tool_timeout_seconds, settings.tool_max_rounds, settings.tool_result_max_chars),
            log_content=settings.log_content,
        )
        self._settings = settings
        self._upstream = upstream
        self._store = store
        self._clock = clock
        self._gate = Gatekeeper(settings=settings, store=store, counter=counter, clock=clock)
        self._locks = store.conversation_lock  # in-process, and across processes on PostgreSQL
        self._personas = Personas(settings=settings, store=store, gate=self._gate)
        self._models_cache: tuple[float, list[str]] | None = None
        self._upstream_health = UpstreamHealth(upstream.list_models, clock)
        self._listener = Listener(
            hearing=Hearing(settings.transcribe_model, settings.max_audio_seconds, settings.max_audio_bytes),
            upstream=upstream,
            gate=self._gate,
            store=store,
        )
        self._answers = AnswerStream(
            settings=settings, upstream=upstream, store=store, metrics=metrics, tools=self._tools
        )
        self._painter = Painter(
            settings=settings, upstream=upstream, store=store, gate=self._gate, downloader=self._answers.downloader
        )
        self._documents = DocumentReader(
            DocumentLimits(
                settings.max_document_chars,
                settings.max_document_bytes,
                settings.pdf_max_pages,
                settings.pdf_timeout_seconds,
            )
        )

    async def reply(self, turn: Turn) -> AsyncGenerator[Event, None]:
        """Stream the answer to `turn`: deltas as they come, then one `Completed` (a voice turn: `Heard` first).

        Raises a `ParleyError` (after storing what arrived) when the upstream fails. The user's message is
        stored before the upstream is called, so it is kept whatever happens; a cut-short answer is stored
        with `incomplete=True`. Consume the iterator to the end (or `aclose()` it): it holds the
        conversation's lock while it runs. AccessDeniedError and QuotaExceededError come before anything
        is stored, downloaded or sent upstream.
        """
        # Set in the consuming task's context: its log lines carry the ids until the next reply.
        request_id.set(new_request_id())
        if turn.voice is None:
            images, authors = self._checked(turn)
        async with self._locks(turn.conversation):
            # Inside the lock: an await before it would let a later turn of the conversation overtake this one.
            heard = None
            if turn.voice is None:
                await self._gate.admit(turn.conversation, turn.user)
            else:  # access, the recording's limits, the quota; then fetched and transcribed (core.voice)
                heard = await self._listener.hear(turn, upstream_user=self._upstream_user(turn))
                turn = heard.turn
                images, authors = self._checked(turn)
            # After the access check and the request count: a flood of hostile PDFs costs its sender requests.
            read = await self._documents.read(turn.documents) if turn.documents else ReadDocuments((), ())
            conversation = await self._store.active_conversation(
                turn.conversation,
                turn.user,
                model=self._settings.chat_model,
                system_prompt=self._settings.system_prompt,
            )
            log_conversation_id.set(str(conversation.id))
            if heard is not None:
                await self._listener.charge(turn, conversation.id, heard.usage)
                yield Heard(heard.transcript)
            if self._settings.log_content:  # LOG_CONTENT=true only: message text stays out of logs otherwise
                log.debug("turn text=%r", turn.text)
            asked = await self._ask(conversation.id, turn, read, images, authors)
            messages = await self._context(conversation, turn)
            stream = self._answers.stream_and_store(
                conversation.id,
                conversation.model,
                turn.user,
                self._upstream_user(turn),
                messages,
                asked,
                # Built only here, after the access check: strangers are never offered tools.
                ToolContext(images=images, draw=self._painter.drawer(turn.conversation, turn.user, conversation.id)),
            )
            # aclosing: an early exit of our consumer must store the partial answer before the lock is released.
            async with aclosing(stream):
                async for event in stream:
                    yield replace(event, notes=read.notes) if read.notes and isinstance(event, Completed) else event

    async def _ask(
        self, conversation_id: int, turn: Turn, read: ReadDocuments, images: list[Image], authors: list[str]
    ) -> int:
        """Store the user's message (its documents as text, each image with its author); return its id."""
        return await self._store.add_message(
            conversation_id,
            NewMessage(
                role="user",
                text=read.turn_text(turn.text) if read.blocks else turn.text,  # documents stay as text
                user=turn.user,
                images=[NewImage(image, author) for image, author in zip(images, authors, strict=True)],
                platform_message_ids=(turn.platform_message_id,) if turn.platform_message_id else (),
            ),
            image_turns=self._settings.history_image_turns,
        )

    def _checked(self, turn: Turn) -> tuple[list[Image], list[str]]:
        """The turn's images, validated (core.inputs), and the id of each one's author."""
        settings = self._settings
        images = check_turn(
            turn,
            max_chars=settings.max_input_chars,
            image_max_bytes=settings.image_max_bytes,
            turn_max_bytes=settings.image_max_bytes_per_turn,
        )
        quote_author = turn.quote.author.id if turn.quote else turn.user.id
        return images, [turn.user.id] * len(turn.images) + [quote_author] * (len(images) - len(turn.images))

    @staticmethod
    def _upstream_user(turn: Turn) -> str:
        return user_hash(turn.conversation.platform, turn.user.id)

    async def _context(self, conversation: ConversationRecord, turn: Turn) -> list[dict[str, Any]]:
        """The messages sent upstream for `turn`: the newest history, trimmed to the token budget."""
        history = await self._store.recent_messages(
            conversation.id, limit=HISTORY_LOAD_LIMIT, image_turns=self._settings.history_image_turns
        )
        return build_context(
            system_prompt=conversation.system_prompt,
            history=[
                HistoryItem(m.role, m.text, _image_parts(m.images), m.user_name, m.image_count, m.tool_calls)
                for m in history
            ],
            budget_tokens=self._settings.context_budget_tokens,
            image_turns=self._settings.history_image_turns,
            name_prefix=turn.name_prefix,
            discussion=turn.context,
        )

    async def health(self, *, timeout_seconds: float = HEALTH_TIMEOUT_SECONDS) -> dict[str, str]:
        """For /readyz (and /healthz): "ok" or a short reason, for the database (a trivial query) and the upstream.

        The upstream counts as reachable when `GET /models` answers at all (a gateway without that
        endpoint still answers 404), except 401/403: a refused key fails every reply too. Its state is
        kept for HEALTH_CACHE_SECONDS and concurrent callers share one probe: a flood of /readyz
        requests costs one upstream call per 15 s (core.health).
        """
        database, upstream_state = await asyncio.gather(
            probe(self._store.ping(), timeout_seconds), self._upstream_health.state(timeout_seconds)
        )
        return {"database": database, "upstream": upstream_state}

    def first_text_hook(self) -> Callable[[], None] | None:
        """For `LiveReply(on_first_text=...)`, built as a reply starts: times its first visible text."""
        return self._metrics.first_text_timer() if self._metrics is not None else None

    def count_rate_limits(self, count: int) -> None:
        """Adapters report the platform 429s a reply met (`LiveReply.rate_limited`)."""
        if self._metrics is not None:
            self._metrics.rate_limited(count)

    def count_webhook_rejected(self) -> None:
        """The Telegram webhook refused a request without the right secret token."""
        if self._metrics is not None:
            self._metrics.webhook_refused()

    async def imagine(
        self,
        prompt: str,
        *,
        conversation: ConversationKey,
        user: UserRef,
        references: Sequence[Image] = (),
    ) -> Completed:
        """Generate image(s) with IMAGE_MODEL; `references` (core.events.Image) are sent as `image_url` parts.

        Returns the images and the model's text as caption. Raises ImageError when no usable image came back.
        """
        return await self._painter.imagine(prompt, conversation=conversation, user=user, references=references)

    async def reset(
        self, conversation: ConversationKey, user: UserRef, *, chat_admin: ChatAdminCheck | None = None
    ) -> bool:
        """Start a new conversation here; the old one stays stored but is no longer sent upstream.

        In a conversation a whole group shares, only ADMINS and that chat's admins (`chat_admin`, asked only
        then) may: else ChatAdminRequiredError. Strangers get AccessDeniedError, as for a message.
        """
        await self._gate.require_steward(conversation, user, chat_admin)
        async with self._locks(conversation):
            return await self._store.reset(conversation)

    def leadership(self, name: str, *, retry_seconds: float = 5.0) -> AbstractAsyncContextManager[Lease]:
        """`async with assistant.leadership("telegram-poller") as lease:` runs the block in one process only.

        On PostgreSQL the others wait (retrying every `retry_seconds`) and take over when the leader's
        database session ends; `await lease.lost()` returns if this process's hold is lost. SQLite: no wait.
        """
        return self._store.leadership(name, retry_seconds=retry_seconds)

    async def require_access(self, conversation: ConversationKey, user: UserRef) -> None:
        """AccessDeniedError unless `user` may use the bot here. For adapters, before work of their own that
        a stranger must not cause (downloading the user's files, answering /help); core methods check anyway."""
        await self._gate.require(conversation, user)

    async def current_model(self, conversation: ConversationKey, user: UserRef) -> str:
        await self._gate.require(conversation, user)
        record = await self._store.active_conversation(
            conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
        )
        return record.model

    async def models(self) -> list[str]:
        """The models users may pick: ALLOWED_MODELS, else the upstream's `GET /models` (cached)."""
        if self._settings.allowed_models:
            return list(self._settings.allowed_models)
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < MODELS_CACHE_SECONDS:
            return list(self._models_cache[1])
        try:
            found = await self._upstream.list_models()
        except UpstreamError:
            found = []  # a gateway without /models still lets users name a model
        self._models_cache = (now, found)
        return list(found)

    async def set_model(
        self, conversation: ConversationKey, user: UserRef, model: str, *, chat_admin: ChatAdminCheck | None = None
    ) -> str:
        """Switch this conversation to `model` (checked against `models()` when that list is known).

        Who may: as for `reset`. Checked before the model list is read, so a stranger learns nothing of it.
        """
        await self._gate.require_steward(conversation, user, chat_admin)
        model = model.strip()
        choices = await self.models()
        if not model or (choices and model not in choices):
            shown = ", ".join(choices[:20])
            raise InputError(
                f"unknown model {model!r}",
                user_message=f"Unknown model. Choose one of: {shown}" if shown else "Name a model.",
            )
        async with self._locks(conversation):
            record = await self._store.active_conversation(
                conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
            )
            await self._store.set_model(record.id, model)
        return model

    async def system_prompt(
        self, conversation: ConversationKey, user: UserRef, text: str = "", *, chat_admin: ChatAdminCheck | None = None
    ) -> SystemPrompt:
        """`/system [TEXT | reset]`: without `text`, the prompt this conversation is sent with; "reset": back to
        SYSTEM_PROMPT; else `text` from the next turn on, kept across /reset. Who may change it: as for `reset`;
        longer than MAX_SYSTEM_PROMPT_CHARS: InputError. Details in core.personas."""
        return await self._personas.command(conversation, user, text, chat_admin)

    async def usage(self, conversation: ConversationKey, user: UserRef) -> UsageReport:
        await self._gate.require(conversation, user)
        record = await self._store.active_conversation(
            conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
        )
        midnight = midnight_utc(datetime.fromtimestamp(self._clock(), UTC))
        return UsageReport(
            model=record.model,
            conversation=await self._store.conversation_usage(record.id),
            today=await self._store.user_usage_since(conversation.platform, user.id, midnight),
        )

    async def access(self, conversation: ConversationKey, user: UserRef) -> Access:
        """Whether `user` may talk to the bot in `conversation`, and whether they are an admin."""
        return await self._gate.access(conversation, user)

    async def grant(self, admin: UserRef, platform: str, kind: str, subject_id: str) -> None:
        """Admins only (else AccessDeniedError): give a user or chat ("user" | "chat") access."""
        await self._gate.set_access(admin, platform, kind, subject_id, granted=True)

    async def revoke(self, admin: UserRef, platform: str, kind: str, subject_id: str) -> None:
        """Admins only: take access away, also from users and chats listed in ALLOWED_USERS / ALLOWED_CHATS."""
        await self._gate.set_access(admin, platform, kind, subject_id, granted=False)

    async def stats(self, admin: UserRef, platform: str) -> Stats:
        """Admins only: users, conversations, tokens today and failed replies today (all platforms)."""
        return await self._gate.stats(admin, platform)

    async def forget(self, platform: str, user: UserRef) -> Forgotten:
        """Delete all of the user's history: messages, the conversations left empty, usage, their user row."""
        return await self._gate.forget(platform, user)


def default_tools(settings: Settings) -> ToolRegistry:
    """The built-in tools the settings turn on: `generate_image` with IMAGE_MODEL, unless IMAGE_TOOL=false."""
    registry = ToolRegistry()
    if settings.image_model and settings.image_tool:
        registry.register(ImageTool())
    return registry


def _image_parts(images: Sequence[Image]) -> list[dict[str, Any]]:
    return [{"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in images]
