"""The tool loop of one reply: stream, run the tools the model called, send their results, stream again.

`ToolLoop.run` wraps `UpstreamClient.stream`: it yields the text and reasoning as they come, a
`ToolRunning` while tools run, and at the end the usage summed over all rounds and the last `Finished`.
What happened (each round's text, calls and results; the images tools made) is written into an
`Exchange` for the assistant to store. Tool calls run concurrently, each within its timeout; a tool that
fails gives the model a short error result, never a traceback. A gateway that refuses `tools` (a 400
naming them) is asked again without, and the model is remembered as tool-less until restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from core.context import tool_call_message, tool_result_message
from core.errors import ToolsRefusedError
from core.events import Event, Finished, Image, ReasoningDelta, TextDelta, ToolCall, ToolRunning, Usage
from core.tools.base import ToolContext, ToolFailed
from core.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

ERROR_DETAIL_MAX_CHARS = 200  # what a tool's own failure message may add to the model's error result
ROUND_LIMIT_REASON = "tool_limit"  # the finish reason when the last round still called tools (FINISH_NOTES)
ROUND_SEPARATOR = "\n\n"  # between text streamed before a tool call and the text after it

Stream = Callable[..., AsyncGenerator[Event, None]]
"""`UpstreamClient.stream`: keyword arguments model, messages, user, tools."""


@dataclass(frozen=True, slots=True)
class ToolLimits:
    timeout_seconds: float = 30.0
    max_rounds: int = 5
    result_max_chars: int = 20_000


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call and what the model reads back (`text`); `images` go to the user only."""

    call: ToolCall
    text: str
    images: tuple[Image, ...] = ()
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ToolRound:
    """An upstream answer that called tools, and the results sent back."""

    text: str
    reasoning: str
    outcomes: tuple[CallOutcome, ...]


@dataclass(slots=True)
class Exchange:
    """Written by `ToolLoop.run` as the reply goes; read by the assistant once it ends."""

    rounds: list[ToolRound] = field(default_factory=list)
    final_offset: int = 0  # characters of the shown text that came before the final answer's own
    images: list[Image] = field(default_factory=list)
    usage: Usage | None = None


class ToolLoop:
    """Runs the tool rounds of replies; one per assistant (it remembers the models that refuse tools)."""

    def __init__(self, registry: ToolRegistry, limits: ToolLimits, *, log_content: bool = False) -> None:
        self._registry = registry
        self._limits = limits
        self._log_content = log_content
        self._refused: set[str] = set()  # models whose gateway refused `tools`: not offered until restart

    @property
    def registry(self) -> ToolRegistry:
        return self._registry

    async def run(
        self,
        stream: Stream,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        user: str | None,
        context: ToolContext,
        exchange: Exchange,
    ) -> AsyncGenerator[Event, None]:
        """Yield what the user may see (text, reasoning, ToolRunning), then the summed Usage and Finished."""
        sent: list[Mapping[str, Any]] = list(messages)
        shown = 0  # characters of text yielded so far
        ends_blank = True
        for round_number in range(self._limits.max_rounds + 1):
            offer = bool(self._registry) and model not in self._refused
            text: list[str] = []
            reasoning: list[str] = []
            calls: list[ToolCall] = []
            finished: Finished | None = None
            exchange.final_offset = shown
            async with aclosing(self._round(stream, model, sent, user, offer=offer)) as events:
                async for event in events:
                    if type(event) is TextDelta:
                        if not text and not ends_blank and event.text.strip():
                            yield TextDelta(ROUND_SEPARATOR)  # the text before the tool call stays
                            shown += len(ROUND_SEPARATOR)
                            exchange.final_offset = shown
                        text.append(event.text)
                        shown += len(event.text)
                        ends_blank = event.text[-1:].isspace() if event.text else ends_blank
                        yield event
                    elif type(event) is ReasoningDelta:
                        reasoning.append(event.text)
                        yield event
                    elif type(event) is ToolCall:
                        calls.append(event)
                    elif type(event) is Usage:
                        exchange.usage = _add(exchange.usage, event)
                    elif type(event) is Finished:
                        finished = event
            # Not offered tools (a refusing gateway), or past the last round: the calls are not run, and
            # not stored (a call without its result would break the next request).
            if not calls or not offer or round_number == self._limits.max_rounds:
                if exchange.usage is not None:
                    yield exchange.usage
                if calls and offer:
                    yield Finished(ROUND_LIMIT_REASON)
                elif finished is not None:
                    yield finished
                return
            yield ToolRunning(tuple(call.name for call in calls))
            outcomes = await self.run_calls(calls, context)
            exchange.rounds.append(ToolRound("".join(text), "".join(reasoning), tuple(outcomes)))
            for outcome in outcomes:
                exchange.images.extend(outcome.images)
            sent.append(tool_call_message("".join(text), calls))
            sent.extend(tool_result_message(outcome.call.id, outcome.text) for outcome in outcomes)

    async def _round(
        self, stream: Stream, model: str, messages: Sequence[Mapping[str, Any]], user: str | None, *, offer: bool
    ) -> AsyncGenerator[Event, None]:
        tools = self._registry.specs() if offer else []
        started = False
        try:
            async with aclosing(stream(model=model, messages=messages, user=user, tools=tools)) as events:
                async for event in events:
                    started = True
                    yield event
            return
        except ToolsRefusedError:
            # A refusal comes as the answer's status, before any event; after one, asking again would repeat it.
            if not tools or started:
                raise
        self._refused.add(model)
        log.warning("the gateway refused tools for model %.80r: not offered to it until restart", model)
        async with aclosing(stream(model=model, messages=messages, user=user, tools=[])) as events:
            async for event in events:
                yield event

    async def run_calls(self, calls: Sequence[ToolCall], context: ToolContext) -> list[CallOutcome]:
        """Run `calls` concurrently; every call gets an outcome, in call order."""
        return list(await asyncio.gather(*(self._run_one(call, context) for call in calls)))

    async def _run_one(self, call: ToolCall, context: ToolContext) -> CallOutcome:
        tool = self._registry.get(call.name)
        if tool is None:
            return CallOutcome(call, "error: no such tool", is_error=True)
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return CallOutcome(call, "error: the arguments are not a JSON object", is_error=True)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._limits.timeout_seconds):
                result = await tool.run(arguments, context)
        except TimeoutError:
            outcome = CallOutcome(
                call, f"error: the tool did not answer within {self._limits.timeout_seconds:g} seconds", is_error=True
            )
        except ToolFailed as exc:
            outcome = CallOutcome(call, f"error: {str(exc)[:ERROR_DETAIL_MAX_CHARS]}", is_error=True)
        except Exception as exc:  # any failure of a tool is the model's to handle, not the reply's end
            outcome = CallOutcome(call, f"error: the tool failed ({type(exc).__name__})", is_error=True)
        else:
            text = _cut(result.text, self._limits.result_max_chars)
            outcome = CallOutcome(call, f"error: {text}" if result.is_error else text, result.images, result.is_error)
        # Names and sizes only: arguments and results are untrusted text (LOG_CONTENT=true shows them).
        log.info(
            "tool %s %s seconds=%.3f chars=%d images=%d",
            call.name,
            "failed" if outcome.is_error else "ok",
            time.monotonic() - started,
            len(outcome.text),
            len(outcome.images),
        )
        if self._log_content:
            log.debug("tool %s arguments=%r result=%r", call.name, call.arguments, outcome.text)
        return outcome


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[cut: {len(text) - max_chars} more characters not shown]"


def _add(total: Usage | None, more: Usage) -> Usage:
    if total is None:
        return more
    return Usage(
        prompt_tokens=total.prompt_tokens + more.prompt_tokens,
        completion_tokens=total.completion_tokens + more.completion_tokens,
        total_tokens=total.total_tokens + more.total_tokens,
        cached_tokens=total.cached_tokens + more.cached_tokens,
        reasoning_tokens=total.reasoning_tokens + more.reasoning_tokens,
    )
