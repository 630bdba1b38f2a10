"""One answer: streamed from the upstream, watched by the metrics, its images extracted, then stored.

Split from core/assistant.py (`Assistant.reply` builds the context under the conversation's lock and hands
the stream to `AnswerStream`). Knows no chat platform.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from core.conversation import UserRef
from core.errors import ImageError, ParleyError, UpstreamError
from core.events import Completed, Event, Finished, ReasoningDelta, TextDelta, ToolCall, Usage
from core.images import ANSWER_DOWNLOAD_BUDGET_IMAGES, Download, ExtractedImages, extract_images, has_inline_image
from core.settings import Settings
from core.store import NewMessage, Store
from core.tools import Exchange, ToolContext, ToolLoop
from core.upstream import ByteBudget, UpstreamClient

if TYPE_CHECKING:
    from core.metrics import Metrics

T = TypeVar("T")

NOT_SHOWN_NOTE = " (The reply then failed: the user never saw the image.)"

log = logging.getLogger("core.assistant")  # the reply's log lines keep the logger they always had


@dataclass(slots=True)
class Answer:
    """What the stream of one answer carried so far."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""

    def add(self, event: Event) -> None:
        match event:
            case TextDelta(text=piece):
                self.text.append(piece)
            case ReasoningDelta(text=piece):
                self.reasoning.append(piece)
            case ToolCall():
                self.tool_calls.append(event)
            case Usage():
                self.usage = event
            case Finished(reason=reason):
                self.finish_reason = reason

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    def own_reasoning(self, exchange: Exchange) -> str:
        """The reasoning of the last round: the earlier rounds' is stored with them (`exchange`)."""
        return "".join(self.reasoning)[sum(len(done.reasoning) for done in exchange.rounds) :]

    def message(self, user: UserRef, model: str, extracted: ExtractedImages | None, exchange: Exchange) -> NewMessage:
        """The answer to store once it ended: images extracted (their history text kept), tool calls too.
        The text of earlier tool rounds is stored with those rounds (`exchange`), not again here."""
        return NewMessage(
            role="assistant",
            text=extracted.history_text if extracted else self.full_text[exchange.final_offset :],
            user=user,
            reasoning=self.own_reasoning(exchange) or None,
            tool_calls=tuple(self.tool_calls),
            model=model,
            usage=self.usage,
        )

    def partial_message(self, user: UserRef, model: str, exchange: Exchange) -> NewMessage:
        """The answer cut short, marked incomplete: what the user saw of its last round (the earlier rounds'
        text is stored with them), and the usage of the rounds that ended (the loop sums it as they end)."""
        return NewMessage(
            role="assistant",
            text=self.full_text[exchange.final_offset :],
            user=user,
            reasoning=self.own_reasoning(exchange) or None,
            model=model,
            incomplete=True,
            usage=self.usage or exchange.usage,
        )

    def completed(self, extracted: ExtractedImages | None, exchange: Exchange) -> Completed:
        return Completed(
            text=_with_failure_note(extracted.caption, extracted.failures) if extracted else self.full_text,
            images=(*(extracted.images if extracted else ()), *exchange.images),  # drawn by tools come last
            reasoning="".join(self.reasoning),
            finish_reason=self.finish_reason,
        )


class StreamWatch:
    """The metrics of one reply stream: active streams, time to the first token, outcome, errors, tokens.

    Does nothing when metrics are off. `ended` must run once, however the stream ends.
    """

    __slots__ = ("_first_token", "_metrics", "outcome", "started")

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics
        self.started = time.monotonic()
        self.outcome: Literal["completed", "failed", "cancelled"] = "cancelled"  # unless we get further
        self._first_token = True
        if metrics is not None:
            metrics.active_streams.inc()

    def saw(self, event: Event) -> None:
        if self._first_token and self._metrics is not None and isinstance(event, TextDelta | ReasoningDelta):
            self._first_token = False
            self._metrics.first_token.observe(time.monotonic() - self.started)

    def failed(self, exc: ParleyError) -> None:
        self.outcome = "failed"
        if self._metrics is not None and isinstance(exc, UpstreamError):
            self._metrics.upstream_error(type(exc).__name__)

    def ended(self, usage: Usage | None) -> None:
        if self._metrics is not None:
            self._metrics.active_streams.dec()
            self._metrics.reply_ended(self.outcome)
            if usage is not None:
                self._metrics.add_usage(usage)


class AnswerStream:
    """Streams one answer from the upstream, then extracts its images and stores it (core.assistant's reply).

    Each step is one short call: `StreamWatch` for the metrics, `Answer` for what arrived, `_answer_images`,
    `_store_answer`; whatever ends the stream, the metrics close and a cut-short answer is kept.
    """

    def __init__(
        self, *, settings: Settings, upstream: UpstreamClient, store: Store, metrics: Metrics | None, tools: ToolLoop
    ) -> None:
        self._settings = settings
        self._tools = tools
        self._upstream = upstream
        self._store = store
        self._metrics = metrics

    async def stream_and_store(
        self,
        conversation_id: int,
        model: str,
        user: UserRef,
        upstream_user: str,
        messages: list[dict[str, Any]],
        asked: int,
        tools: ToolContext,
    ) -> AsyncGenerator[Event, None]:
        """Stream, then store the answer to the user message `asked`; not at all if `/forget` removed that.

        With tools, the upstream is asked again after each round of tool calls (`ToolLoop`); the rounds
        (`exchange`) are stored before the final answer, in the same transaction."""
        answer = Answer()
        exchange = Exchange()
        watch = StreamWatch(self._metrics)
        stored = False
        try:
            events = self._tools.run(
                self._upstream.stream,
                model=model,
                messages=messages,
                user=upstream_user,
                context=tools,
                exchange=exchange,
            )
            async with aclosing(events):  # closes the HTTP response at once when we stop early
                async for event in events:
                    watch.saw(event)
                    answer.add(event)
                    yield event
            extracted = await self._answer_images(answer.full_text)
            try:
                await self._store_answer(
                    conversation_id,
                    answer.message(user, model, extracted, exchange),
                    asked,
                    _exchange_messages(exchange, user, model),
                )
            finally:
                stored = True  # written (even if we were cancelled meanwhile), or failed: never a second copy
            self._log_done(conversation_id, model, answer, watch)
            watch.outcome = "completed"
            yield answer.completed(extracted, exchange)
        except ParleyError as exc:
            if isinstance(exc, UpstreamError):
                log.warning(
                    "upstream failed conversation=%s kind=%s status=%s partial_chars=%d",
                    conversation_id, type(exc).__name__, exc.status, sum(map(len, answer.text)),
                )  # fmt: skip
            watch.failed(exc)
            raise
        finally:
            watch.ended(answer.usage)
            if not stored and (answer.text or exchange.rounds):
                await self._store_partial(conversation_id, user, model, answer, exchange, asked)

    async def _store_partial(
        self, conversation_id: int, user: UserRef, model: str, answer: Answer, exchange: Exchange, asked: int
    ) -> None:
        """Cut short (error, cancellation, consumer gone): keep what the user saw, marked incomplete, after
        the tool rounds that ended (each call with its result: the next request stays valid)."""
        await _to_completion(
            self._store.add_reply(
                conversation_id,
                answer.partial_message(user, model, exchange),
                answering=asked,
                before=_exchange_messages(exchange, user, model, shown=False),
            )
        )

    def _log_done(self, conversation_id: int, model: str, answer: Answer, watch: StreamWatch) -> None:
        log.info(
            "reply done conversation=%s model=%s chars=%d seconds=%.2f finish=%.40r",
            conversation_id, model, len(answer.full_text), time.monotonic() - watch.started, answer.finish_reason,
        )  # fmt: skip
        if self._settings.log_content:
            log.debug("reply text=%r", answer.full_text)

    async def _answer_images(self, text: str) -> ExtractedImages | None:
        """The images a finished answer shows inline (data URLs, links), or None when it has none."""
        if not has_inline_image(text):
            return None
        return await extract_images(
            text,
            max_bytes=self._settings.image_max_bytes,
            download=self.downloader(),
            deadline_seconds=self._settings.image_download_timeout_seconds,
        )

    async def _store_answer(
        self, conversation_id: int, message: NewMessage, asked: int, before: Sequence[NewMessage]
    ) -> None:
        # A length or content-filter stop is stored complete: the model ended the answer, nothing of
        # ours failed (incomplete counts as a failed reply); the note shown with it is not stored.
        kept = await _to_completion(self._store.add_reply(conversation_id, message, answering=asked, before=before))
        if kept is None:
            log.info("reply not stored: /forget removed its question meanwhile conversation=%s", conversation_id)

    def downloader(self) -> Download:
        """A downloader for the images of one answer: they share one byte budget."""
        max_bytes = self._settings.image_max_bytes
        budget = ByteBudget(ANSWER_DOWNLOAD_BUDGET_IMAGES * max_bytes)

        async def download(url: str) -> bytes:
            return await self._upstream.download(url, max_bytes=max_bytes, budget=budget)

        return download


async def _to_completion(write: Awaitable[T]) -> T:
    """Run a store write to its end even if the reply is cancelled meanwhile (the live engine cancels its
    reader when the chat breaks off), then let the cancellation go on. A transaction cut in the middle
    leaves SQLite's write lock with a connection on its way out, and the conversation's next write then
    meets "database is locked"."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _with_failure_note(caption: str, failures: Sequence[ImageError]) -> str:
    if not failures:
        return caption
    note = failures[0].user_message
    return f"{caption}\n\n({note})" if caption else f"({note})"


def _exchange_messages(exchange: Exchange, user: UserRef, model: str, *, shown: bool = True) -> list[NewMessage]:
    """The tool rounds of a reply as stored messages: each call message, then its results. Not `shown` (the
    reply failed), the images tools made never reached the user: their results say so for the next turn."""
    stored: list[NewMessage] = []
    for done in exchange.rounds:
        calls = tuple(outcome.call for outcome in done.outcomes)
        stored.append(
            NewMessage(
                role="assistant",
                text=done.text,
                user=user,
                reasoning=done.reasoning or None,
                tool_calls=calls,
                model=model,
            )
        )
        stored.extend(
            NewMessage(
                role="tool",
                text=outcome.text if shown or not outcome.images else f"{outcome.text}{NOT_SHOWN_NOTE}",
                user=user,
                tool_calls=(_answered(outcome.call),),
            )
            for outcome in done.outcomes
        )
    return stored


def _answered(call: ToolCall) -> ToolCall:
    return ToolCall(call.id, call.name, "")  # a result stores which call it answers; the arguments are in it
