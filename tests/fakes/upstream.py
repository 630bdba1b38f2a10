"""A fake OpenAI-compatible gateway on 127.0.0.1 (aiohttp): real SSE bytes, hostile chunking, faults.

    async with FakeUpstream() as up:          # up.base_url == "http://127.0.0.1:PORT/v1"
        up.add_reply("Hello!", chunk_chars=2, line_end="\\r\\n", byte_chunking="byte")
        up.add_fault("disconnect_after", 3)   # the next request: 3 content chars, then a dropped connection
        up.add_fault("keepalive_after", 5)    # 5 chars, then ": keep-alive" comments until the client leaves
        ...
        assert up.chat_requests[0].body["stream"] is True

POST /v1/chat/completions takes the next script from a queue (a reply, an error, a fault, raw bytes or a
handler); with the queue empty it answers `default_reply(request)`, "Echo: <last user text>". A `Reply`
answers streaming or not, as the request asks. GET /v1/models lists `models`. POST /v1/audio/transcriptions
checks its multipart form (tests/fakes/transcriptions.py) and answers the next `add_transcript` (else "Heard N
bytes of NAME."). `serve()` puts any bytes at any other path (image downloads). Every request is recorded in
`requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from tests.fakes.transcriptions import (
    FormError,
    Transcript,
    TranscriptionRequest,
    default_transcript,
    read_transcription,
)

Fault = Literal[
    "disconnect_after",
    "stall_after",
    "error_event_after",
    "sse_error_after",
    "malformed_after",
    "keepalive_after",
    "no_done",
    "no_finish_reason",
]
"""What breaks a scripted answer after `fault_after` content characters:

- disconnect_after: the TCP connection is cut; stall_after: silence until the fake closes;
- error_event_after: a `data: {"error": {...}}` chunk (OpenAI and OpenRouter report mid-stream errors so);
- sse_error_after: an `event: error` SSE event whose data is `error_payload` (an error's own fields, with no
  `error` key: only the event type says it is an error);
- malformed_after: one chunk that is not what the API promises (`malformed` says how);
- keepalive_after: SSE comments (`keepalive_comment`) every `keepalive_seconds`, and nothing else, until the
  client leaves or the fake closes (OpenRouter sends ": OPENROUTER PROCESSING" while a model is busy);
- no_done / no_finish_reason: the end of a stream without `[DONE]` / without any finish_reason.

After an error event or a malformed chunk, `after_fault` decides: "close" ends the response; "continue"
sends the rest of the answer and a normal end (a client must not show it as a whole answer); "keep_alive"
sends only comments until the client leaves (a client that waits for more never ends).
"""
Malformed = Literal["truncated_json", "not_json", "not_an_object", "choices_not_a_list", "delta_not_an_object"]
AfterFault = Literal["close", "continue", "keep_alive"]
Handler = Callable[[web.Request, "RecordedRequest"], Awaitable[web.StreamResponse]]
# Queued answers per endpoint: "chat", "models", "transcribe".

FAULT_TEXT = "The quick brown fox jumps over the lazy dog."
"""The answer a fault streams when none is given."""

STALL_SECONDS = 30.0
"""How long a stall lasts at most; leaving the `async with` ends it at once."""

KEEPALIVE_MAX_SECONDS = 30.0
"""How long comments keep coming at most (a test that forgets to leave still ends)."""

_MALFORMED_DATA: dict[str, bytes] = {
    "truncated_json": b'{"choices": [{"delta": {"content": "x"',
    "not_json": b"<html>502 Bad Gateway</html>",
    "not_an_object": b'["choices", 1]',
    "choices_not_a_list": b'{"choices": "none"}',
    "delta_not_an_object": b'{"choices": [{"index": 0, "delta": "x", "finish_reason": null}]}',
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    raw: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def tool_names(self) -> list[str]:
        """The names of the `tools` the request offered ([] for none)."""
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [t["function"]["name"] for t in tools or [] if isinstance(t, dict) and "function" in t]

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The request's `role: tool` messages (a follow-up request after tool calls)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "tool"]

    @property
    def last_user_text(self) -> str:
        """The text of the last user message (text parts joined when content is a list)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        for message in reversed(messages or []):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
                return str(content or "")
        return ""


@dataclass(frozen=True, slots=True)
class ToolCallScript:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted answer: streamed as SSE, or one JSON body when the request has `stream: false`."""

    text: str = ""
    reasoning: str = ""
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    think_tags: bool = False  # reasoning inside content as "<think>...</think>" instead of a field
    tool_calls: Sequence[ToolCallScript] = ()
    tool_call_index: Literal["normal", "omitted", "reused"] = "normal"
    chunk_chars: int = 4  # characters per content/reasoning delta
    tokens_per_second: float | None = None  # None: as fast as possible
    usage: Mapping[str, Any] | Literal["auto"] | None = "auto"  # sent when the request asks include_usage
    usage_in_choice: bool = False  # put usage in choices[0].usage of the finish chunk instead
    finish_reason: str = "stop"
    line_end: Literal["\n", "\r\n", "\r"] = "\n"
    byte_chunking: Literal["event", "byte", "bulk"] = "event"  # one write per event / per byte / one write
    keepalive_every: int = 0  # a keep-alive comment first and before every N-th event
    keepalive_comment: str = "keep-alive"  # the comment's text, e.g. "OPENROUTER PROCESSING"
    keepalive_seconds: float = 0.05  # the pause between comments of keepalive_after / after_fault="keep_alive"
    multiline_data: bool = False  # each chunk's JSON spread over several `data:` lines
    images: Sequence[str] = ()  # OpenRouter-style message.images urls (non-streaming replies)
    model: str | None = None  # the model named in chunks; default: the request's
    fault: Fault | None = None
    fault_after: int = 0  # content characters sent before the fault
    error_payload: Mapping[str, Any] | str | None = None  # sse_error_after's data; None: a 502 error's fields
    malformed: Malformed = "truncated_json"
    after_fault: AfterFault = "close"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Error:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Served:
    body: bytes
    content_type: str
    status: int
    headers: Mapping[str, str]
    chunked: bool


def echo_reply(request: RecordedRequest) -> Reply:
    return Reply(text=f"Echo: {request.last_user_text}")


class FakeUpstream:
    """See the module docstring. With `api_key` set, other `Authorization` headers get a 401."""

    def __init__(
        self, *, api_key: str | None = None, default_reply: Callable[[RecordedRequest], Reply] = echo_reply
    ) -> None:
        self.api_key = api_key
        self.default_reply = default_reply
        self.models: list[str] = ["fake/echo", "fake/other"]
        self.refuse_tools = False  # True: every chat request carrying `tools` gets a 400 naming them
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, deque[Reply | _Error | Handler | Transcript]] = {
            "chat": deque(),
            "models": deque(),
            "transcribe": deque(),
        }
        self.transcriptions: list[TranscriptionRequest] = []  # the forms of /audio/transcriptions it accepted
        self._served: dict[str, _Served] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        # A gateway accepts hundreds of connections at once (aiohttp's default listen backlog, 128, drops the rest
        # of a burst for a second).
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    # -- scripting ---------------------------------------------------------------------------------

    def add_reply(self, text: str = "", **options: Any) -> None:
        """Queue a `Reply` (see its fields) for the next chat request."""
        self._scripts["chat"].append(Reply(text=text, **options))

    def add_fault(self, fault: Fault, after: int = 0, *, text: str = FAULT_TEXT, **options: Any) -> None:
        """Queue a reply that breaks after `after` content characters (for the faults that cut)."""
        self._scripts["chat"].append(Reply(text=text, fault=fault, fault_after=after, **options))

    def add_error(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str = "chat",
    ) -> None:
        """Queue an HTTP error. `body`: None (an OpenAI-style error), a dict (JSON), or str/bytes (as is)."""
        if body is None:
            body = {"error": {"message": f"fake error {status}", "type": "fake_error", "code": str(status)}}
        self._scripts[endpoint].append(_Error(status, body, dict(headers or {})))

    def add_json(self, body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        """Queue a raw JSON answer (any shape) for the next chat request."""
        self._scripts["chat"].append(_Error(status, body, dict(headers or {})))

    def add_transcript(self, text: str, *, usage: Mapping[str, Any] | None = None) -> None:
        """Queue the answer of the next `/audio/transcriptions` request (else "Heard N bytes of NAME.")."""
        self._scripts["transcribe"].append(Transcript(text, usage))

    def add_raw_stream(self, pieces: Sequence[bytes], *, content_type: str = "text/event-stream") -> None:
        """Queue a 200 response written as exactly these pieces, each its own write."""

        async def handler(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
            response = await self._start_stream(request, content_type, {})
            for piece in pieces:
                await response.write(piece)
            await response.write_eof()
            return response

        self._scripts["chat"].append(handler)

    def add_handler(self, handler: Handler, *, endpoint: str = "chat") -> None:
        """Queue an arbitrary aiohttp handler for the next request to `endpoint`."""
        self._scripts[endpoint].append(handler)

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        chunked: bool = False,
    ) -> str:
        """Serve `body` at `path` (every time); returns its URL. `chunked` omits Content-Length."""
        path = "/" + path.lstrip("/")
        self._served[path] = _Served(body, content_type, status, dict(headers or {}), chunked)
        return self.url(path)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- serving -----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, body, raw
        )
        self.requests.append(recorded)
        if request.path in self._served:
            return await self._serve_bytes(request, self._served[request.path])
        if self.api_key is not None and recorded.authorization != f"Bearer {self.api_key}":
            return _json_response(
                401,
                {
                    "error": {
                        "message": "Invalid API key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        if request.method == "GET" and request.path == "/v1/models":
            script = self._next("models")
            if script is None:
                return _json_response(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models],
                    },
                )
            return await self._run(script, request, recorded)
        if request.method == "POST" and request.path == "/v1/chat/completions":
            if self.refuse_tools and isinstance(body, dict) and "tools" in body:
                # Modelled on Ollama's OpenAI-compatible API, which answers a request with `tools` for a model
                # without tool support with HTTP 400 "<model> does not support tools".
                message = f"registry.fake/{body.get('model')} does not support tools"
                return _json_response(400, {"error": {"message": message, "type": "api_error"}})
            script = self._next("chat") or self.default_reply(recorded)
            return await self._run(script, request, recorded)
        if request.method == "POST" and request.path == "/v1/audio/transcriptions":
            return await self._transcribe(request, recorded)
        return _json_response(404, {"error": {"message": "no such route", "type": "not_found"}})

    async def _transcribe(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        """tests/fakes/transcriptions.py checks the form; a 400 in OpenAI's shape when it is malformed."""
        try:
            form = read_transcription(request.headers.get("Content-Type", ""), recorded.raw)
        except FormError as exc:
            return _json_response(400, exc.body())
        self.transcriptions.append(form)
        script = self._next("transcribe") or default_transcript(form)
        if isinstance(script, Transcript):
            return _json_response(200, script.body())
        return await self._run(script, request, recorded)

    def _next(self, endpoint: str) -> Reply | _Error | Handler | Transcript | None:
        queue = self._scripts[endpoint]
        return queue.popleft() if queue else None

    async def _run(
        self, script: Reply | _Error | Handler | Transcript, request: web.Request, recorded: RecordedRequest
    ) -> web.StreamResponse:
        try:
            if isinstance(script, _Error):
                return _json_response(script.status, script.body, script.headers)
            if isinstance(script, Transcript):
                return _json_response(200, script.body())
            if isinstance(script, Reply):
                wants_stream = isinstance(recorded.body, dict) and recorded.body.get("stream") is True
                if wants_stream:
                    return await self._stream(script, request, recorded)
                return await self._complete(script, request, recorded)
            return await script(request, recorded)
        except ConnectionError:  # the client went away mid-answer: nothing left to do
            return web.StreamResponse()

    async def _serve_bytes(self, request: web.Request, served: _Served) -> web.StreamResponse:
        headers = {"Content-Type": served.content_type, **served.headers}
        if not served.chunked:
            return web.Response(status=served.status, body=served.body, headers=headers)
        response = web.StreamResponse(status=served.status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(served.body), 4096):
            await response.write(served.body[start : start + 4096])
        await response.write_eof()
        return response

    async def _start_stream(
        self, request: web.Request, content_type: str, headers: Mapping[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache", **headers}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        return response

    async def _complete(self, reply: Reply, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        """A non-streaming answer; faults: disconnect (no response), stall, malformed body, error body."""
        if reply.fault == "disconnect_after":
            _drop(request)
            return web.StreamResponse()
        if reply.fault in ("stall_after", "keepalive_after"):
            await self._stall()
        if reply.fault == "malformed_after":
            return web.Response(status=200, body=b'{"choices": [', content_type="application/json")
        if reply.fault in ("error_event_after", "sse_error_after"):
            return _json_response(200, _error_object())
        content = f"<think>{reply.reasoning}</think>\n\n{reply.text}" if reply.think_tags else reply.text
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.reasoning and not reply.think_tags:
            message[reply.reasoning_field] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in reply.tool_calls
            ]
        if reply.images:
            message["images"] = [{"type": "image_url", "image_url": {"url": url}} for url in reply.images]
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or _model(recorded),
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        }
        usage = _usage(reply, recorded)
        if usage is not None:
            body["usage"] = usage
        return _json_response(200, body, reply.headers)

    async def _stream(self, reply: Reply, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        response = await self._start_stream(request, "text/event-stream; charset=utf-8", reply.headers)
        writer = _SSEWriter(response, reply)
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or _model(recorded),
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        await writer.event(chunk({"role": "assistant", "content": ""}))
        if reply.reasoning and not reply.think_tags:
            for piece in _pieces(reply.reasoning, reply.chunk_chars):
                await writer.event(chunk({reply.reasoning_field: piece, "content": None}), paced=True)
        content = f"<think>{reply.reasoning}</think>\n\n{reply.text}" if reply.think_tags else reply.text
        limit = reply.fault_after if reply.fault in _CUTTING_FAULTS else len(content)
        for piece in _pieces(content[:limit], reply.chunk_chars):
            await writer.event(chunk({"content": piece}), paced=True)
        if reply.fault in _CUTTING_FAULTS:
            await self._break(reply.fault, writer, request)
            if reply.after_fault != "continue" or reply.fault not in _REPORTING_FAULTS:
                return writer.response
            for piece in _pieces(content[limit:], reply.chunk_chars):
                await writer.event(chunk({"content": piece}), paced=True)
        for delta in _tool_call_deltas(reply):
            await writer.event(chunk({"tool_calls": [delta]}))
        usage = _usage(reply, recorded) if _asks_usage(recorded) or reply.usage_in_choice else None
        if reply.fault != "no_finish_reason":
            final = chunk({}, reply.finish_reason)
            if usage is not None and reply.usage_in_choice:
                final["choices"][0]["usage"] = usage
            await writer.event(final)
        if usage is not None and not reply.usage_in_choice:
            await writer.event({**base, "choices": [], "usage": usage})
        if reply.fault != "no_done":
            await writer.raw(f"data: [DONE]{reply.line_end}{reply.line_end}".encode())
        await writer.flush()
        await response.write_eof()
        return response

    async def _break(self, fault: str, writer: _SSEWriter, request: web.Request) -> None:
        """The fault itself; for the reporting faults, what `after_fault` says follows unless "continue"."""
        reply, end = writer.reply, writer.end
        if fault == "disconnect_after":
            await writer.flush()
            _drop(request)
            return
        if fault == "stall_after":
            await writer.flush()
            await self._stall()
            return
        if fault == "keepalive_after":
            await self._keep_alive(writer)
            return
        if fault == "error_event_after":
            await writer.event(_error_object())
        elif fault == "sse_error_after":
            payload = reply.error_payload if reply.error_payload is not None else _BARE_ERROR
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await writer.raw(b"event: error" + end + b"data: " + data.encode() + end + end)
        elif fault == "malformed_after":
            await writer.raw(b"data: " + _MALFORMED_DATA[reply.malformed] + end + end)
        if reply.after_fault == "close":
            await writer.flush()
            await writer.response.write_eof()
        elif reply.after_fault == "keep_alive":
            await self._keep_alive(writer)

    async def _keep_alive(self, writer: _SSEWriter) -> None:
        """Comments only, until the client goes away (the write fails) or the fake closes."""
        comment = b": " + writer.reply.keepalive_comment.encode() + writer.end * 2
        started = time.monotonic()
        while not self._closing.is_set() and time.monotonic() - started < KEEPALIVE_MAX_SECONDS:
            await writer.raw(comment)  # raises ConnectionError once the client has closed the connection
            await writer.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), writer.reply.keepalive_seconds)

    async def _stall(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), STALL_SECONDS)


_CUTTING_FAULTS = (
    "disconnect_after",
    "stall_after",
    "error_event_after",
    "sse_error_after",
    "malformed_after",
    "keepalive_after",
)
_REPORTING_FAULTS = ("error_event_after", "sse_error_after", "malformed_after")
_BARE_ERROR = {"message": "Upstream provider returned an error", "type": "upstream_error", "code": 502}


class _SSEWriter:
    """Writes SSE events with the reply's line ends, keep-alives, pacing and chunking."""

    def __init__(self, response: web.StreamResponse, reply: Reply) -> None:
        self.response = response
        self.reply = reply
        self.end = reply.line_end.encode()
        self._events = 0
        self._bulk = bytearray()

    async def event(self, payload: Mapping[str, Any], *, paced: bool = False) -> None:
        every = self.reply.keepalive_every
        if every and self._events % every == 0:
            await self.raw(b": " + self.reply.keepalive_comment.encode() + self.end + self.end)
        self._events += 1
        if self.reply.multiline_data:
            text = json.dumps(payload, ensure_ascii=False, indent=1)
        else:
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        lines = [b"data: " + line.encode() for line in text.split("\n")]
        await self.raw(self.end.join(lines) + self.end + self.end)
        if paced and self.reply.tokens_per_second:
            await self.flush()
            await asyncio.sleep(1 / self.reply.tokens_per_second)

    async def raw(self, data: bytes) -> None:
        mode = self.reply.byte_chunking
        if mode == "bulk":
            self._bulk += data
        elif mode == "byte":
            for index in range(len(data)):
                await self.response.write(data[index : index + 1])
                await asyncio.sleep(0)  # let the bytes leave one by one
        else:
            await self.response.write(data)

    async def flush(self) -> None:
        if self._bulk:
            data, self._bulk = bytes(self._bulk), bytearray()
            await self.response.write(data)


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tool_call_deltas(reply: Reply) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for number, call in enumerate(reply.tool_calls):
        index = {"normal": {"index": number}, "reused": {"index": 0}, "omitted": {}}[reply.tool_call_index]
        deltas.append({**index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}})
        deltas += [{**index, "function": {"arguments": piece}} for piece in _pieces(call.arguments, reply.chunk_chars)]
    return deltas


def _asks_usage(recorded: RecordedRequest) -> bool:
    options = recorded.body.get("stream_options") if isinstance(recorded.body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def _usage(reply: Reply, recorded: RecordedRequest) -> Mapping[str, Any] | None:
    if reply.usage != "auto":
        return reply.usage
    messages = recorded.body.get("messages", []) if isinstance(recorded.body, dict) else []
    prompt = max(1, len(json.dumps(messages)) // 4)
    completion = max(1, (len(reply.text) + len(reply.reasoning)) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(reply.reasoning) // 4},
    }


def _model(recorded: RecordedRequest) -> str:
    model = recorded.body.get("model") if isinstance(recorded.body, dict) else None
    return model if isinstance(model, str) else "fake/echo"


def _error_object() -> dict[str, Any]:
    return {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "code": None,
        }
    }


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    if isinstance(body, bytes | str):
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, content_type="text/plain", headers=headers)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


def _drop(request: web.Request) -> None:
    """Cut the TCP connection without ending the response (what a crashed proxy does)."""
    if request.transport is not None:
        request.transport.abort()


__all__ = ["FAULT_TEXT", "FakeUpstream", "RecordedRequest", "Reply", "ToolCallScript", "echo_reply"]
