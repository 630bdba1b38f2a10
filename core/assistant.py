"""The one entry point adapters call: `Assistant.reply`, `imagine`, `reset`, `set_model`, `usage`, and the
access and privacy commands (`access`, `grant`, `revoke`, `stats`, `forget`).

It ties the upstream client, the store and image handling together; it knows no chat platform. Every method
that reads or changes a conversation takes the caller and checks their access itself (only `forget`, which
touches nothing but the caller's own data, is open to all), so no adapter can forget to.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.access import Access, Gatekeeper, midnight_utc
from core.answer import AnswerStream
from core.cluster import Cluster, open_cluster
from core.context import HistoryItem, build_context
from core.conversation import ChatAdminCheck, ConversationKey, Turn, UserRef
from core.counters import RequestCounter, open_redis_counter
from core.errors import ImageError, InputError, ParleyError, UpstreamError
from core.events import Completed, Event, Image, Usage
from core.health import HEALTH_TIMEOUT_SECONDS, UpstreamHealth, probe
from core.images import (
    extract_images,
    to_data_url,
)
from core.inputs import check_turn, is_blank, too_long
from core.logs import conversation_id as log_conversation_id
from core.logs import new_request_id, request_id
from core.settings import DatabaseSettings, Settings
from core.store import (
    ConversationRecord,
    Forgotten,
    Lease,
    NewImage,
    NewMessage,
    Stats,
    Store,
    UsageTotals,
    open_store,
    upgrade,
)
from core.tools import Draw, ImageTool, ToolContext, ToolLimits, ToolLoop, ToolRegistry, image_drawer
from core.upstream import UpstreamClient

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


def user_hash(platform: str, user_id: str) -> str:
    """A stable, non-reversible id for the upstream `user` field (abuse tracking without identities)."""
    return hashlib.sha256(f"parley:{platform}:{user_id}".encode()).hexdigest()[:32]


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
        self._models_cache: tuple[float, list[str]] | None = None
        self._upstream_health = UpstreamHealth(upstream.list_models, clock)
        self._answers = AnswerStream(
            settings=settings, upstream=upstream, store=store, metrics=metrics, tools=self._tools
        )

    async def reply(self, turn: Turn) -> AsyncGenerator[Event, None]:
        """Stream the answer to `turn`: deltas as they come, then one `Completed`.

        Raises a `ParleyError` (after storing what arrived) when the upstream fails. The user's message is
        stored before the upstream is called, so it is kept whatever happens; a cut-short answer is stored
        with `incomplete=True`. Consume the iterator to the end (or `aclose()` it): it holds the
        conversation's lock while it runs. AccessDeniedError and QuotaExceededError come before anything
        is stored or sent upstream.
        """
        # Set in the consuming task's context: its log lines carry the ids until the next reply.
        request_id.set(new_request_id())
        settings = self._settings
        images = check_turn(
            turn,
            max_chars=settings.max_input_chars,
            image_max_bytes=settings.image_max_bytes,
            turn_max_bytes=settings.image_max_bytes_per_turn,
        )
        quote_author = turn.quote.author.id if turn.quote else turn.user.id
        authors = [turn.user.id] * len(turn.images) + [quote_author] * (len(images) - len(turn.images))
        async with self._locks(turn.conversation):
            # Inside the lock: an await before it would let a later turn of the conversation overtake this one.
            await self._gate.admit(turn.conversation, turn.user)
            conversation = await self._store.active_conversation(
                turn.conversation,
                turn.user,
                model=self._settings.chat_model,
                system_prompt=self._settings.system_prompt,
            )
            log_conversation_id.set(str(conversation.id))
            if self._settings.log_content:  # LOG_CONTENT=true only: message text stays out of logs otherwise
                log.debug("turn text=%r", turn.text)
            asked = await self._store.add_message(
                conversation.id,
                NewMessage(
                    role="user",
                    text=turn.text,
                    user=turn.user,
                    images=[NewImage(image, author) for image, author in zip(images, authors, strict=True)],
                    platform_message_ids=(turn.platform_message_id,) if turn.platform_message_id else (),
                ),
                image_turns=settings.history_image_turns,
            )
            messages = await self._context(conversation, turn)
            stream = self._answers.stream_and_store(
                conversation.id,
                conversation.model,
                turn.user,
                user_hash(turn.conversation.platform, turn.user.id),
                messages,
                asked,
                # Built only here, after the access check: strangers are never offered tools.
                ToolContext(images=images, draw=self._drawer(turn.conversation, turn.user, conversation.id)),
            )
            # aclosing: an early exit of our consumer must store the partial answer before the lock is released.
            async with aclosing(stream):
                async for event in stream:
                    yield event

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
        """For /healthz: "ok" or a short reason, for the database (one trivial query) and the upstream.

        The upstream counts as reachable when `GET /models` answers at all (a gateway without that
        endpoint still answers 404), except 401/403: a refused key fails every reply too. Its state is
        kept for HEALTH_CACHE_SECONDS and concurrent callers share one probe: a flood of /healthz
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
        await self._gate.require(conversation, user)  # first: a stranger learns nothing, not even usage hints
        model = self._settings.image_model
        if not model:
            raise ParleyError("IMAGE_MODEL not set", user_message="Image generation is not set up on this bot.")
        prompt = prompt.strip()
        if is_blank(prompt):
            raise InputError("empty prompt", user_message="Say what to draw, e.g. /imagine a lighthouse at dusk.")
        if len(prompt) > self._settings.max_input_chars:
            raise too_long(self._settings.max_input_chars)
        await self._gate.limit(conversation, user)
        content: str | list[dict[str, Any]] = prompt
        if references:
            content = [{"type": "text", "text": prompt}]
            content += [{"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in references]
        # Before the upstream call: a /forget during the call then leaves the usage below unrecorded.
        record = await self._store.active_conversation(
            conversation, user, model=self._settings.chat_model, system_prompt=self._settings.system_prompt
        )
        completion = await self._upstream.complete(
            model=model,
            messages=[{"role": "user", "content": content}],
            user=user_hash(conversation.platform, user.id),
        )
        if completion.usage is not None:
            await self._store.record_usage(
                user,
                conversation.platform,
                conversation_id=record.id,
                kind="image",
                model=model,
                usage=completion.usage,
                create_user=False,
            )
        extracted = await extract_images(
            completion.text,
            completion.image_urls,
            max_bytes=self._settings.image_max_bytes,
            download=self._answers.downloader(),
            deadline_seconds=self._settings.image_download_timeout_seconds,
        )
        if not extracted.images:
            if extracted.failures:
                raise extracted.failures[0]
            raise ImageError("no image in the answer", user_message="The model did not return an image.")
        return Completed(text=extracted.caption, images=extracted.images)

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

    def _drawer(self, key: ConversationKey, user: UserRef, conversation_id: int) -> Draw | None:
        """The `generate_image` capability of one reply: IMAGE_MODEL, its usage charged to `user`."""
        model = self._settings.image_model
        if not model:
            return None

        async def record(usage: Usage) -> None:
            await self._store.record_usage(
                user,
                key.platform,
                conversation_id=conversation_id,
                kind="image",
                model=model,
                usage=usage,
                create_user=False,
            )

        return image_drawer(
            upstream=self._upstream,
            model=model,
            upstream_user=user_hash(key.platform, user.id),
            max_prompt_chars=self._settings.max_input_chars,
            image_max_bytes=self._settings.image_max_bytes,
            download=self._answers.downloader(),
            deadline_seconds=self._settings.image_download_timeout_seconds,
            on_usage=record,
        )


def default_tools(settings: Settings) -> ToolRegistry:
    """The built-in tools the settings turn on: `generate_image` with IMAGE_MODEL, unless IMAGE_TOOL=false."""
    registry = ToolRegistry()
    if settings.image_model and settings.image_tool:
        registry.register(ImageTool())
    return registry


def _image_parts(images: Sequence[Image]) -> list[dict[str, Any]]:
    return [{"type": "image_url", "image_url": {"url": to_data_url(image)}} for image in images]


@asynccontextmanager
async def open_assistant(
    settings: Settings,
    *,
    migrate: bool = True,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    tools: ToolRegistry | None = None,
) -> AsyncIterator[Assistant]:
    """Own the database and the upstream client for the life of the block; upgrade the schema first.

    `clock` (Unix seconds) decides the per-minute and per-day windows of the user limits and stamps what is
    stored; tests pass their own.
    """
    if migrate:
        await upgrade(settings.database_url)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    async with (
        open_redis_counter(redis_url) as counter,
        open_cluster(redis_url) as cluster,
        open_store(settings.database_url, clock=clock) as store,
        UpstreamClient(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_seconds=settings.llm_timeout_seconds,
            idle_timeout_seconds=settings.stream_idle_timeout_seconds,
            reply_timeout_seconds=settings.reply_timeout_seconds,
            max_retries=settings.llm_max_retries,
            extra_body=settings.llm_extra_body,
            clock=clock,
            allow_private_image_urls=settings.allow_private_image_urls,
        ) as upstream,
    ):
        yield Assistant(
            settings=settings,
            upstream=upstream,
            store=store,
            metrics=metrics,
            clock=clock,
            counter=counter,
            tools=tools,
            cluster=cluster,
        )


async def upgrade_database(settings: DatabaseSettings) -> None:
    """`parley db upgrade`: bring the schema to the newest revision."""
    await upgrade(settings.database_url)
