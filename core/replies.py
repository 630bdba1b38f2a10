"""Showing a reply: the one call with which every adapter streams an answer into a chat.

An adapter turns a platform message into a `Turn` and a `Surface`; `show_reply` does the rest: the
assistant's reply through `LiveReply` at the bot's shared `Budget`, the metrics hooks, and closing the
reply's stream (which holds its conversation's lock) whatever happens. New kinds of answers get added here
once, not once per adapter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from core.assistant import Assistant
from core.conversation import Turn
from core.events import Completed, Event, Image
from core.live import Budget, LiveReply, ReplyResult, Surface
from core.live.engine import ReasoningMode
from core.voice import quoting_transcript

log = logging.getLogger(__name__)


async def show_reply(
    assistant: Assistant, turn: Turn, surface: Surface, *, budget: Budget, show_reasoning: ReasoningMode = "status"
) -> ReplyResult:
    """Answer `turn` live on `surface` and return what stayed on screen.

    Raises AccessDeniedError, with nothing sent but a typing indicator, when the user may not use the bot
    here: the adapter answers once in a direct chat and stays silent in a group. Every other `ParleyError`
    of the reply (quota, upstream, input) ends it with a short note under what was shown. Anything else
    (a surface that broke off) propagates. The check stays inside `Assistant.reply`, in the conversation's
    lock, so that no await of the adapter's lets a later message of the conversation overtake this one.
    """
    events = quoting_transcript(assistant.reply(turn))  # a voice message's transcript shows first, quoted
    hook = assistant.first_text_hook()  # built as the reply starts: it times the first visible text
    return await _show(assistant, events, surface, budget=budget, show_reasoning=show_reasoning, on_first_text=hook)


async def show_message(
    assistant: Assistant, markdown: str, surface: Surface, *, budget: Budget, images: Sequence[Image] = ()
) -> ReplyResult:
    """A message of the bot's own (a command's answer, drawn images): paced, split, plain text if refused."""
    return await _show(assistant, _completed(markdown, images), surface, budget=budget)


async def _show(
    assistant: Assistant,
    events: AsyncGenerator[Event, None],
    surface: Surface,
    *,
    budget: Budget,
    show_reasoning: ReasoningMode = "status",
    on_first_text: Callable[[], None] | None = None,
) -> ReplyResult:
    live = LiveReply(surface, budget=budget, show_reasoning=show_reasoning, on_first_text=on_first_text)
    try:
        async with aclosing(events):  # releases the conversation's lock even when the surface broke off
            result = await live.run(events)
    finally:
        if live.rate_limited:
            assistant.count_rate_limits(live.rate_limited)
            log.warning("%d rate limits met in chat %s", live.rate_limited, surface.chat_key)
    if result.error_message:
        log.info("reply in chat %s ended early: %s", surface.chat_key, result.error_message)
    return result


async def _completed(text: str, images: Sequence[Image]) -> AsyncGenerator[Event, None]:
    yield Completed(text, tuple(images))
