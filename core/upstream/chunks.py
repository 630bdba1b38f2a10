"""Upstream JSON -> Parley values: streamed chunks to events, completions, error bodies, model lists.

The only module that reads upstream JSON, by hand (dict access, no pydantic): it runs once per streamed
token. Pure: no I/O; imports only core.events and think.py (the `<think>` block splitter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.events import Event, Finished, ReasoningDelta, ToolCall, Usage
from core.upstream.think import ThinkSplitter
from core.upstream.think import split_think as split_think  # re-exported: completions use it too

_loads = json.JSONDecoder().decode  # json.loads minus its per-call argument checks: this runs per token


class ChunkError(ValueError):
    """A chunk or body that is not what the API promises (not JSON, not an object, wrong shapes)."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An OpenAI-style error object (`{"error": {"message", "type", "code", "param"}}`); codes kept as strings.

    `param` names the request field the error is about, when the gateway says (OpenAI does: `"tools"`)."""

    message: str = ""
    type: str = ""
    code: str = ""
    param: str = ""


class ErrorChunk(Exception):
    """The stream carried an error object instead of a chunk."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.type or info.code or "error event")
        self.info = info


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of a non-streaming call."""

    text: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage | None
    finish_reason: str | None
    image_urls: tuple[str, ...]


def parse_object(data: str | bytes) -> dict[str, Any]:
    """JSON text -> a dict, or ChunkError (the message names the problem, never the content)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        value = _loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ChunkError("invalid JSON") from None
    if type(value) is not dict:
        raise ChunkError(f"JSON {type(value).__name__}, not an object")
    return value


def read_error(body: Any) -> ErrorInfo | None:
    """The error object of a parsed body, if it is one (`{"error": {...}}`, `{"error": "text"}`)."""
    if isinstance(body, list) and body:  # some Google-style gateways wrap the body in a list
        body = body[0]
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return ErrorInfo(
            _text(error.get("message")), _text(error.get("type")), _text(error.get("code")), _text(error.get("param"))
        )
    if isinstance(error, str) and error:
        return ErrorInfo(message=error)
    return None


def read_error_event(data: str) -> ErrorInfo:
    """What an SSE `event: error` carries: an error object, the error's own fields, or plain text.

    The event type alone says it is an error, whatever its data looks like.
    """
    try:
        body = parse_object(data)
    except ChunkError:
        return ErrorInfo(message=data[:500])
    info = read_error(body)
    if info is not None:
        return info
    return ErrorInfo(_text(body.get("message")), _text(body.get("type")), _text(body.get("code")))


def parse_error_body(raw: bytes) -> ErrorInfo:
    """Whatever an error response carried, as an ErrorInfo (plain text bodies become the message)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return ErrorInfo(message=raw[:500].decode("utf-8", "replace").strip())
    info = read_error(body)
    if info is not None:
        return info
    if isinstance(body, dict):
        return ErrorInfo(message=_text(body.get("message") or body.get("detail")))
    return ErrorInfo()


def parse_usage(raw: Any) -> Usage | None:
    """A usage object -> Usage; missing or null fields and details are zero, never an error."""
    if not isinstance(raw, dict):
        return None
    prompt = _count(raw.get("prompt_tokens", raw.get("input_tokens")))
    completion = _count(raw.get("completion_tokens", raw.get("output_tokens")))
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_count(raw.get("total_tokens")) or prompt + completion,
        cached_tokens=_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
        reasoning_tokens=(
            _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
        ),
    )


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.arguments: list[str] = []


class ToolCallAssembler:
    """Assembles tool calls from deltas, keyed by `index`.

    Robust to gateways that omit `index` (a delta without id continues the last call) or reuse index 0
    for every call (a new `id` at a taken index starts a new call).
    """

    __slots__ = ("_by_id", "_by_index", "_calls")

    def __init__(self) -> None:
        self._calls: list[_ToolCallParts] = []
        self._by_index: dict[int, _ToolCallParts] = {}
        self._by_id: dict[str, _ToolCallParts] = {}

    def feed(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise ChunkError("tool_calls is not a list")
        for delta in deltas:
            if not isinstance(delta, dict):
                raise ChunkError("tool call is not an object")
            self._feed_one(delta)

    def _feed_one(self, delta: dict[str, Any]) -> None:
        raw_id, raw_index = delta.get("id"), delta.get("index")
        call_id: str = raw_id if isinstance(raw_id, str) else ""
        index: int | None = raw_index if type(raw_index) is int else None
        parts = self._by_id.get(call_id) if call_id else None
        if parts is None:
            at_index = self._by_index.get(index) if index is not None else None
            if at_index is not None and (not call_id or not at_index.id):
                parts = at_index
            elif index is None and not call_id and self._calls:
                parts = self._calls[-1]
            else:
                parts = _ToolCallParts(call_id)
                self._calls.append(parts)
                if index is not None:
                    self._by_index[index] = parts
            if call_id and not parts.id:
                parts.id = call_id
            if call_id:
                self._by_id[call_id] = parts
        function = delta.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name and name != parts.name:
                parts.name += name  # a repeated full name is kept once; a name sent in pieces is joined
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                parts.arguments.append(arguments)
            elif isinstance(arguments, dict):  # a few gateways send parsed arguments
                parts.arguments.append(json.dumps(arguments, ensure_ascii=False))

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=parts.id or f"call_{number}", name=parts.name, arguments="".join(parts.arguments))
            for number, parts in enumerate(self._calls)
            if parts.name
        ]


class StreamAssembler:
    """Turns parsed stream chunks into events, in order.

    `feed` appends deltas as they arrive; `finish` gives the trailing ToolCalls, Usage and Finished, or
    None when no finish_reason ever came (the stream was cut short). Only choice 0 is read; empty
    `choices`, a missing delta and null content are normal.
    """

    __slots__ = ("_finish_reason", "_think", "_tools", "_usage")

    def __init__(self) -> None:
        self._think = ThinkSplitter()
        self._tools = ToolCallAssembler()
        self._usage: Any = None
        self._finish_reason: str | None = None

    def feed(self, chunk: dict[str, Any], out: list[Event]) -> None:
        if chunk.get("error"):
            raise ErrorChunk(read_error(chunk) or ErrorInfo())
        choices = chunk.get("choices")
        if choices:
            if type(choices) is not list:
                raise ChunkError("choices is not a list")
            for choice in choices:
                if type(choice) is not dict:
                    raise ChunkError("choice is not an object")
                if choice.get("index"):  # n > 1 is never requested; ignore other choices
                    continue
                delta = choice.get("delta")
                if delta:
                    if type(delta) is not dict:
                        raise ChunkError("delta is not an object")
                    self._delta(delta, out)
                reason = choice.get("finish_reason")
                if reason:
                    self._finish_reason = reason if type(reason) is str else str(reason)
                if choice.get("usage"):
                    self._usage = choice["usage"]
        usage = chunk.get("usage")
        if usage:
            self._usage = usage

    def _delta(self, delta: dict[str, Any], out: list[Event]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")  # some send both: one is enough
        if reasoning and type(reasoning) is str:
            out.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if content:
            if type(content) is not str:
                content = _joined_text(content)
            if content:
                self._think.feed(content, out)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            self._tools.feed(tool_calls)

    def finish(self) -> list[Event] | None:
        if self._finish_reason is None:
            return None
        out: list[Event] = []
        self._think.flush(out)
        out.extend(self._tools.calls())
        usage = parse_usage(self._usage)
        if usage is not None:
            out.append(usage)
        out.append(Finished(self._finish_reason))
        return out


def parse_completion(body: dict[str, Any]) -> Completion:
    """A non-streaming response body (already checked for `error`) -> Completion."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ChunkError("no choices")
    choice = next((c for c in choices if isinstance(c, dict) and not c.get("index")), None)
    if choice is None:
        raise ChunkError("no choice 0")
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    content = message.get("content")
    image_urls = _image_part_urls(content) + _image_part_urls(message.get("images"))
    field_reasoning = message.get("reasoning_content") or message.get("reasoning")
    think_reasoning, text = split_think(content if isinstance(content, str) else _joined_text(content))
    reasoning = "\n".join(part for part in (_text(field_reasoning), think_reasoning) if part)
    tools = ToolCallAssembler()
    if message.get("tool_calls"):
        tools.feed(message["tool_calls"])
    reason = choice.get("finish_reason")
    return Completion(
        text=text,
        reasoning=reasoning,
        tool_calls=tuple(tools.calls()),
        usage=parse_usage(body.get("usage") or choice.get("usage")),
        finish_reason=str(reason) if reason else None,
        image_urls=tuple(image_urls),
    )


def parse_model_ids(body: Any) -> list[str]:
    """`GET /models` (`{"data": [{"id": ...}]}`, or a bare list) -> the ids, sorted and unique."""
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ChunkError("no model list")
    ids = {item.get("id") if isinstance(item, dict) else item for item in items}
    return sorted(i for i in ids if isinstance(i, str) and i)


@dataclass(frozen=True, slots=True)
class Transcript:
    """`POST /audio/transcriptions` with `response_format=json`: the text, and token usage when given."""

    text: str
    usage: Usage | None = None


def parse_transcript(body: Any) -> Transcript:
    """`{"text": ...}` (OpenAI's json response format) -> Transcript. `usage` counts only when it is in tokens
    (gpt-4o-transcribe: `{"type": "tokens", "input_tokens": ...}`; whisper-1 reports `{"type": "duration"}`)."""
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise ChunkError("no transcript text")
    raw = body.get("usage")
    usage = parse_usage(raw) if isinstance(raw, dict) and raw.get("type", "tokens") == "tokens" else None
    return Transcript(text, usage if usage is not None and usage.total_tokens else None)


def _joined_text(content: Any) -> str:
    """Text parts of a multimodal content list, joined; anything else gives ""."""
    if not isinstance(content, list):
        return ""
    return "".join(
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
    )


def _image_part_urls(parts: Any) -> list[str]:
    """URLs of `image_url` parts (content lists, OpenRouter `message.images`); `image_url` may be a str."""
    if not isinstance(parts, list):
        return []
    urls: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, dict) else image_url
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


def _count(value: Any) -> int:
    if type(value) is int:
        return max(value, 0)
    if type(value) is float:
        return max(int(value), 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
