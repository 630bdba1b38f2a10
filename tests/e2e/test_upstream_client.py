"""UpstreamClient against the fake gateway on 127.0.0.1: streams, retries, faults, errors, secrets, images."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from core.errors import (
    IMAGE_NOT_SHOWN,
    ImageError,
    Outage,
    ReplyTimeoutError,
    StreamInterruptedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from core.events import Event, Finished, ReasoningDelta, TextDelta, ToolCall, Usage
from core.upstream import UpstreamClient
from core.upstream.faults import TOO_LONG_MESSAGE
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.upstream import FAULT_TEXT, FakeUpstream, ToolCallScript

pytestmark = pytest.mark.e2e

KEY = "sk-test-4f1c9e2b7a8d0c3e5f6a"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
UNICODE_TEXT = "Grüße aus 東京! 😀🚀 naïve café — ok.\nSecond line: 한국어 テスト 🎉."

MakeClient = Callable[..., UpstreamClient]


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def make_client(up: FakeUpstream) -> AsyncIterator[MakeClient]:
    clients: list[UpstreamClient] = []

    def make(**options: Any) -> UpstreamClient:
        settings: dict[str, Any] = {
            "base_url": up.base_url,
            "api_key": KEY,
            "backoff_base_seconds": 0.001,
            "backoff_max_seconds": 0.01,
            "idle_timeout_seconds": 5.0,
            **options,
        }
        client = UpstreamClient(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def collect(client: UpstreamClient, **options: Any) -> list[Event]:
    return [event async for event in client.stream(model="fake/model", messages=MESSAGES, **options)]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


# -- streaming ---------------------------------------------------------------------------------------


async def test_stream_yields_deltas_then_usage_then_finished(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_reply(
        "Hello, world!",
        chunk_chars=3,
        usage={
            "prompt_tokens": 9,
            "completion_tokens": 4,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": None,
        },
    )
    events = await collect(make_client())
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo,"),
        TextDelta(" wo"),
        TextDelta("rld"),
        TextDelta("!"),
        Usage(9, 4, 13, cached_tokens=2),
        Finished("stop"),
    ]
    request = up.chat_requests[0]
    assert request.authorization == f"Bearer {KEY}"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["model"] == "fake/model"
    assert request.body["messages"] == MESSAGES
    assert "user" not in request.body


async def test_a_busy_process_streams_more_than_a_hundred_answers_at_once(
    up: FakeUpstream, make_client: MakeClient
) -> None:
    """150 replies streaming together all reach the gateway at once: httpx's default pool (100 connections,
    20 kept) queued the 101st behind the others. LLM_MAX_CONNECTIONS (1000) bounds them instead."""
    client = make_client()
    for _ in range(150):
        up.add_reply("slow answer", chunk_chars=2, tokens_per_second=4)  # 6 pieces: ~1.5 s each
    tasks = [asyncio.create_task(collect(client)) for _ in range(150)]
    await asyncio.sleep(1.0)
    assert len(up.chat_requests) == 150
    assert all(text_of(events) == "slow answer" for events in await asyncio.gather(*tasks))
    small = make_client(max_connections=100)
    for _ in range(101):
        up.add_reply("slow answer", chunk_chars=2, tokens_per_second=4)
    tasks = [asyncio.create_task(collect(small)) for _ in range(101)]
    await asyncio.sleep(1.0)
    assert len(up.chat_requests) == 250  # the limit holds: the 101st waits for a connection
    await asyncio.gather(*tasks)


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("byte_chunking", ["event", "byte"])
async def test_hostile_framing_keeps_text_exact(
    up: FakeUpstream, make_client: MakeClient, line_end: str, byte_chunking: str
) -> None:
    up.add_reply(
        UNICODE_TEXT,
        chunk_chars=5,
        line_end=line_end,
        byte_chunking=byte_chunking,
        keepalive_every=2,
        multiline_data=True,
        reasoning="r1 ",
        think_tags=False,
    )
    events = await collect(make_client())
    assert text_of(events) == UNICODE_TEXT
    assert reasoning_of(events) == "r1 "
    assert events[-1] == Finished("stop")


async def test_stream_ending_without_done_finishes_normally(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_fault("no_done")
    events = await collect(make_client())
    assert text_of(events) == FAULT_TEXT
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finished("stop")


@pytest.mark.parametrize(
    "options",
    [{"reasoning_field": "reasoning_content"}, {"reasoning_field": "reasoning"}, {"think_tags": True}],
    ids=["reasoning_content", "reasoning", "think_tags"],
)
async def test_reasoning_in_every_form(up: FakeUpstream, make_client: MakeClient, options: dict[str, Any]) -> None:
    up.add_reply("The answer.", reasoning="First, think hard.", chunk_chars=3, **options)
    events = await collect(make_client())
    assert reasoning_of(events) == "First, think hard."
    assert text_of(events) == "The answer."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_text])


@pytest.mark.parametrize("style", ["normal", "omitted", "reused"])
async def test_tool_calls_are_assembled(up: FakeUpstream, make_client: MakeClient, style: str) -> None:
    calls = [
        ToolCallScript("call_1", "get_weather", '{"city": "Zürich"}'),
        ToolCallScript("call_2", "get_time", '{"tz": "Europe/Zurich"}'),
    ]
    up.add_reply("", tool_calls=calls, tool_call_index=style, chunk_chars=4, finish_reason="tool_calls")
    events = await collect(make_client())
    assert [e for e in events if isinstance(e, ToolCall)] == [ToolCall(c.id, c.name, c.arguments) for c in calls]
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finished("tool_calls")


async def test_usage_inside_the_choice_is_read(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_reply("x", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, usage_in_choice=True)
    assert (await collect(make_client()))[-2:] == [Usage(1, 1, 2), Finished("stop")]


async def test_gateway_answering_json_to_a_stream_request(up: FakeUpstream, make_client: MakeClient) -> None:
    message = {"role": "assistant", "content": "<think>hm</think>Whole answer"}
    up.add_json(
        {
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )
    up.add_json({"error": {"message": "nope", "type": "invalid_request_error"}})
    events = await collect(make_client())
    assert events == [ReasoningDelta("hm"), TextDelta("Whole answer"), Usage(3, 2, 5), Finished("stop")]
    with pytest.raises(UpstreamRejectedError):
        await collect(make_client())


async def test_extra_body_is_merged_but_our_fields_win(up: FakeUpstream, make_client: MakeClient) -> None:
    extra = {
        "temperature": 0.2,
        "provider": {"order": ["a"]},
        "model": "evil",
        "stream": False,
        "messages": [],
        "stream_options": {"chunk": 1},
    }
    client = make_client(extra_body=extra)
    await collect(client, user="u-hash-1")
    await client.complete(model="fake/model", messages=MESSAGES, user="u-hash-2")
    streamed, completed = (r.body for r in up.chat_requests)
    assert streamed["temperature"] == 0.2 and streamed["provider"] == {"order": ["a"]}
    assert (streamed["model"], streamed["stream"], streamed["messages"]) == ("fake/model", True, MESSAGES)
    assert streamed["stream_options"] == {"chunk": 1, "include_usage": True}
    assert streamed["user"] == "u-hash-1"
    assert (completed["model"], completed["stream"], completed["user"]) == ("fake/model", False, "u-hash-2")
    assert "stream_options" not in completed
    assert extra["model"] == "evil"  # the caller's mapping is not modified


async def test_stopping_early_closes_the_response(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_reply("a long answer " * 50, chunk_chars=2, tokens_per_second=2000)
    client = make_client()
    stream = client.stream(model="m", messages=MESSAGES)
    async for event in stream:
        assert isinstance(event, TextDelta)
        break
    await stream.aclose()
    assert text_of(await collect(client)) == "Echo: Hi there"  # the pool is still usable


# -- retries before the first event ------------------------------------------------------------------


async def test_502_503_504_are_retried_before_the_first_event(up: FakeUpstream, make_client: MakeClient) -> None:
    for status in (502, 503, 504):
        up.add_error(status)
    up.add_reply("finally")
    events = await collect(make_client(max_retries=3))
    assert text_of(events) == "finally"
    assert len(up.chat_requests) == 4


async def test_retries_are_bounded(up: FakeUpstream, make_client: MakeClient) -> None:
    for _ in range(5):
        up.add_error(503)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await collect(make_client(max_retries=2))
    assert caught.value.status == 503
    assert len(up.chat_requests) == 3


async def test_500_is_unavailable_and_not_retried(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_error(500)
    with pytest.raises(UpstreamUnavailableError):
        await collect(make_client())
    assert len(up.chat_requests) == 1


async def test_dropped_connection_before_any_event_is_retried(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_fault("disconnect_after", 0)
    up.add_fault("no_finish_reason", text="")  # an answer that ends with nothing: also a failed attempt
    up.add_reply("ok")
    assert text_of(await collect(make_client())) == "ok"
    assert len(up.chat_requests) == 3


async def test_retry_after_seconds_is_honoured(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_error(429, headers={"Retry-After": "1"})
    up.add_reply("after the wait")
    started = time.monotonic()
    events = await collect(make_client(backoff_max_seconds=5.0))
    assert time.monotonic() - started >= 1.0
    assert text_of(events) == "after the wait"
    assert len(up.chat_requests) == 2


async def test_retry_after_date_beyond_the_cap_is_raised_at_once(up: FakeUpstream, make_client: MakeClient) -> None:
    now = utc(2026, 12, 31, 23, 30, 0)
    up.add_error(429, headers={"Retry-After": "Fri, 01 Jan 2027 00:30:00 GMT"})  # an hour after `now`
    with pytest.raises(UpstreamRateLimitError) as caught:
        await collect(make_client(backoff_max_seconds=5.0, clock=FakeWallClock(now)))
    assert caught.value.retry_after == 3600
    assert "3600 seconds" in caught.value.user_message
    assert len(up.chat_requests) == 1


async def test_429_without_retry_after_is_retried_then_raised(up: FakeUpstream, make_client: MakeClient) -> None:
    for _ in range(3):
        up.add_error(429)
    with pytest.raises(UpstreamRateLimitError) as caught:
        await collect(make_client(max_retries=2))
    assert caught.value.retry_after is None
    assert len(up.chat_requests) == 3


async def test_connection_refused_is_unavailable_after_retries(make_client: MakeClient) -> None:
    client = make_client(base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await collect(client)
    assert caught.value.retryable


# -- the gateway's connections (core/upstream/transport.py: aiohttp under httpx) against raw sockets -----------

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_gateway(handle: RawHandler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 answering every connection with `handle`; yields its /v1 base URL."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handle(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    await reader.readexactly(length)


@pytest.mark.parametrize(
    ("behaviour", "outage", "message", "attempts"),
    [
        ("silent", Outage.TIMEOUT, "timeout: ReadTimeout", 1),  # headers never come: LLM_TIMEOUT_SECONDS
        ("hang_up", Outage.CONNECTION, "connection failed: RemoteProtocolError", 2),  # closed before answering
        ("garbage", Outage.CONNECTION, "connection failed: RemoteProtocolError", 2),  # not HTTP
    ],
)
async def test_a_gateway_failing_at_the_socket_maps_like_httpx_did(
    behaviour: str, outage: Outage, message: str, attempts: int
) -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        if behaviour == "silent":
            await asyncio.sleep(2)
        elif behaviour == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            await writer.drain()

    async with raw_gateway(handle) as base_url:
        client = UpstreamClient(
            base_url=base_url, api_key=KEY, timeout_seconds=0.3, max_retries=1, backoff_base_seconds=0.001
        )
        with pytest.raises(UpstreamUnavailableError) as caught:
            await collect(client)
        await client.aclose()
    assert (caught.value.outage, str(caught.value), connections) == (outage, message, attempts)


async def test_connection_refused_names_the_failure(make_client: MakeClient) -> None:
    with pytest.raises(UpstreamUnavailableError) as caught:
        await collect(make_client(base_url="http://127.0.0.1:9/v1", max_retries=0))
    assert (caught.value.outage, str(caught.value)) == (Outage.CONNECTION, "connection failed: ConnectError")


async def test_a_gzipped_answer_is_decoded_once() -> None:
    """aiohttp passes the bytes as they came and httpx decodes them, as before (never twice, never not)."""
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "unzipped"}, "finish_reason": "stop"}]
    }
    body = gzip.compress(json.dumps(answer).encode())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()

    async with raw_gateway(handle) as base_url, UpstreamClient(base_url=base_url, api_key=KEY) as client:
        completion = await client.complete(model="m", messages=MESSAGES)
    assert completion.text == "unzipped"


class RecordingTransport(httpx.AsyncBaseTransport):
    """A transport of our own (as a proxy layer would be): httpx's real one, noting what it carries."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


async def test_an_injected_transport_carries_every_gateway_request_but_no_image_download(
    up: FakeUpstream,
) -> None:
    transport = RecordingTransport()
    up.add_reply("Hello through the transport")
    up.models = ["b-model", "a-model"]
    image = up.serve("/img/cat.png", PNG, content_type="image/png")
    async with UpstreamClient(
        base_url=up.base_url, api_key=KEY, transport=transport, allow_private_image_urls=True
    ) as client:
        assert text_of(await collect(client)) == "Hello through the transport"
        assert await client.list_models() == ["a-model", "b-model"]
        assert await client.download(image, max_bytes=10_000, timeout_seconds=5) == PNG
    assert transport.paths == ["/v1/chat/completions", "/v1/models"]  # the image came another way
    assert transport.closed


@pytest.mark.parametrize(
    ("failure", "outage", "attempts"),
    [
        (httpx.ConnectError("refused"), Outage.CONNECTION, 3),
        (httpx.ConnectTimeout("slow connect"), Outage.CONNECTION, 3),
        (httpx.RemoteProtocolError("peer closed"), Outage.CONNECTION, 3),
        (httpx.ReadTimeout("slow read"), Outage.TIMEOUT, 1),
        (httpx.PoolTimeout("no connection free"), Outage.TIMEOUT, 1),
        (httpx.UnsupportedProtocol("no such scheme"), Outage.UNSENDABLE, 1),
        (httpx.DecodingError("bad gzip"), Outage.MALFORMED, 1),
    ],
)
async def test_transport_failures_map_to_an_outage_and_only_connection_trouble_is_retried(
    failure: httpx.HTTPError, outage: Outage, attempts: int
) -> None:
    calls: list[httpx.Request] = []

    def fail(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise failure

    async with UpstreamClient(
        base_url="http://gateway.test/v1",
        api_key=KEY,
        transport=httpx.MockTransport(fail),
        max_retries=2,
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.01,
    ) as client:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await collect(client)
        with pytest.raises(UpstreamUnavailableError):
            await client.list_models()
    assert caught.value.outage is outage
    assert caught.value.retryable is (attempts > 1)
    assert caught.value.__cause__ is failure
    assert len(calls) == 2 * attempts


# -- error mapping -----------------------------------------------------------------------------------

UPSTREAM_WORDS = "secret-upstream-words"


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (401, None, UpstreamAuthError),
        (403, None, UpstreamAuthError),
        (
            400,
            {"error": {"message": f"bad {UPSTREAM_WORDS}", "type": "invalid_request_error"}},
            UpstreamRejectedError,
        ),
        (
            404,
            {"error": {"message": f"model {UPSTREAM_WORDS}", "code": "model_not_found"}},
            UpstreamRejectedError,
        ),
        (422, f"<html>{UPSTREAM_WORDS}</html>", UpstreamRejectedError),
        (500, {"error": {"message": UPSTREAM_WORDS, "type": "server_error"}}, UpstreamUnavailableError),
    ],
)
async def test_statuses_map_to_errors_without_upstream_text(
    up: FakeUpstream, make_client: MakeClient, status: int, body: Any, error_type: type[UpstreamError]
) -> None:
    up.add_error(status, body)
    with pytest.raises(error_type) as caught:
        await collect(make_client())
    assert caught.value.status == status
    assert UPSTREAM_WORDS not in caught.value.user_message
    assert len(up.chat_requests) == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 8192 tokens. However, you "
                    "requested 9000 tokens.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
        ),
        (400, {"error": {"message": "prompt is too long: 210000 tokens > 200000 maximum"}}),
        (413, "Request Entity Too Large"),
    ],
)
async def test_context_length_errors_tell_the_user_to_reset(
    up: FakeUpstream, make_client: MakeClient, status: int, body: Any
) -> None:
    up.add_error(status, body)
    with pytest.raises(UpstreamRejectedError) as caught:
        await collect(make_client())
    assert caught.value.user_message == TOO_LONG_MESSAGE
    assert "/reset" in caught.value.user_message


async def test_wrong_key_is_an_auth_error(up: FakeUpstream, make_client: MakeClient) -> None:
    with pytest.raises(UpstreamAuthError):
        await collect(make_client(api_key="sk-wrong"))
    assert len(up.chat_requests) == 1


async def test_rate_limit_error_event_before_any_token_is_retried(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_raw_stream([b'data: {"error": {"message": "slow down", "type": "rate_limit_exceeded"}}\n\n'])
    up.add_reply("ok")
    assert text_of(await collect(make_client())) == "ok"
    assert len(up.chat_requests) == 2


# -- faults: after the first event StreamInterruptedError with the exact text; before it, UpstreamError --

MID_STREAM_FAULTS = ["disconnect_after", "error_event_after", "malformed_after", "stall_after"]


@pytest.mark.parametrize("fault", MID_STREAM_FAULTS)
@pytest.mark.parametrize("byte_chunking", ["event", "byte"])
async def test_fault_after_first_token_keeps_exact_partial_text(
    up: FakeUpstream, make_client: MakeClient, fault: str, byte_chunking: str
) -> None:
    up.add_fault(fault, 13, chunk_chars=3, byte_chunking=byte_chunking)  # type: ignore[arg-type]
    seen: list[Event] = []
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as caught:
        async for event in make_client(idle_timeout_seconds=0.2).stream(model="m", messages=MESSAGES):
            seen.append(event)
    assert caught.value.partial_text == FAULT_TEXT[:13] == text_of(seen)
    assert not any(isinstance(e, Finished) for e in seen)
    assert len(up.chat_requests) == 1  # never retried after a token was shown
    assert time.monotonic() - started < 3


async def test_stream_without_finish_reason_is_cut_short(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_fault("no_finish_reason")
    with pytest.raises(StreamInterruptedError) as caught:
        await collect(make_client())
    assert caught.value.partial_text == FAULT_TEXT
    assert len(up.chat_requests) == 1


@pytest.mark.parametrize("fault", ["error_event_after", "malformed_after", "stall_after"])
async def test_fault_before_first_token_is_an_upstream_error(
    up: FakeUpstream, make_client: MakeClient, fault: str
) -> None:
    up.add_fault(fault, 0)  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailableError) as caught:
        await collect(make_client(idle_timeout_seconds=0.2))
    assert not isinstance(caught.value, StreamInterruptedError)
    assert len(up.chat_requests) == 1  # a server error event, garbage or a stall is not worth repeating


async def test_idle_timeout_guards_each_read(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_reply("steady", chunk_chars=1, tokens_per_second=20)  # 50 ms gaps < 0.2 s idle limit
    assert text_of(await collect(make_client(idle_timeout_seconds=0.2))) == "steady"


# -- the reply deadline, error events, malformed chunks ----------------------------------------------

SAFETY_SECONDS = 10.0  # turns a client that never stops into a failure (TimeoutError) instead of a hang


@pytest.mark.parametrize("comment", ["keep-alive", "OPENROUTER PROCESSING"])
async def test_keepalive_comments_are_not_a_stall_but_never_extend_the_reply_deadline(
    up: FakeUpstream, make_client: MakeClient, comment: str
) -> None:
    up.add_fault("keepalive_after", 19, keepalive_comment=comment, keepalive_seconds=0.05)
    client = make_client(idle_timeout_seconds=0.3, reply_timeout_seconds=1.0)  # comments every 50 ms < 0.3 s
    seen: list[Event] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(SAFETY_SECONDS):
            async for event in client.stream(model="m", messages=MESSAGES):
                seen.append(event)
    assert caught.value.partial_text == text_of(seen) == "The quick brown fox"
    assert caught.value.user_message == ReplyTimeoutError.default_message  # not the idle timeout's
    assert len(up.chat_requests) == 1


async def test_a_reply_deadline_before_any_text_is_not_retried(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_fault("keepalive_after", 0)
    with pytest.raises(ReplyTimeoutError):
        async with asyncio.timeout(SAFETY_SECONDS):
            await collect(make_client(idle_timeout_seconds=0.3, reply_timeout_seconds=0.6, max_retries=3))
    assert len(up.chat_requests) == 1


async def test_a_retry_that_would_end_after_the_deadline_is_not_waited_for(
    up: FakeUpstream, make_client: MakeClient
) -> None:
    up.add_error(429, headers={"Retry-After": "5"})
    client = make_client(reply_timeout_seconds=1.0, max_retries=3, backoff_max_seconds=20.0)
    with pytest.raises(UpstreamRateLimitError):
        await collect(client)
    assert len(up.chat_requests) == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"message": "Rate limit exceeded", "code": 429}, UpstreamRateLimitError),  # the error's own fields
        ({"type": "error", "error": {"type": "authentication_error", "message": "bad"}}, UpstreamAuthError),
        ("upstream connect error or disconnect/reset before headers", UpstreamUnavailableError),
    ],
)
async def test_an_sse_error_event_before_any_text_is_mapped_by_its_fields(
    up: FakeUpstream, make_client: MakeClient, payload: Any, expected: type[UpstreamError]
) -> None:
    up.add_fault("sse_error_after", 0, error_payload=payload)
    with pytest.raises(expected) as caught:
        await collect(make_client(max_retries=0))
    assert type(caught.value) is expected


@pytest.mark.parametrize("fault", ["sse_error_after", "error_event_after"])
async def test_an_error_mid_stream_ends_the_reply_at_once_even_if_the_connection_stays_open(
    up: FakeUpstream, make_client: MakeClient, fault: str
) -> None:
    up.add_fault(fault, 15, after_fault="keep_alive")  # type: ignore[arg-type]
    client = make_client(idle_timeout_seconds=0.3, reply_timeout_seconds=5.0)
    with pytest.raises(StreamInterruptedError) as caught:
        async with asyncio.timeout(SAFETY_SECONDS):
            await collect(client)
    assert caught.value.partial_text == "The quick brown"
    assert caught.value.user_message == StreamInterruptedError.default_message  # not the deadline's


@pytest.mark.parametrize(
    "malformed", ["truncated_json", "not_json", "not_an_object", "choices_not_a_list", "delta_not_an_object"]
)
async def test_a_malformed_chunk_cuts_the_answer_even_if_a_normal_end_follows(
    up: FakeUpstream, make_client: MakeClient, malformed: str
) -> None:
    up.add_fault("malformed_after", 25, malformed=malformed, after_fault="continue")
    seen: list[Event] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async for event in make_client().stream(model="m", messages=MESSAGES):
            seen.append(event)
    assert caught.value.partial_text == text_of(seen) == "The quick brown fox jumps"
    assert not any(isinstance(e, Finished) for e in seen)


@pytest.mark.parametrize("reason", ["length", "content_filter"])
async def test_the_finish_reason_is_the_last_event(up: FakeUpstream, make_client: MakeClient, reason: str) -> None:
    up.add_reply("Cut here", finish_reason=reason)
    events = await collect(make_client())
    assert text_of(events) == "Cut here" and events[-1] == Finished(reason)


# -- non-streaming, models ---------------------------------------------------------------------------


async def test_complete_returns_text_reasoning_images_and_usage(up: FakeUpstream, make_client: MakeClient) -> None:
    data_url = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
    up.add_reply(
        f"Here it is ![generated image]({data_url})",
        reasoning="drawing",
        think_tags=True,
        images=[data_url, "https://cdn.example/x.png"],
        usage={"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12},
    )
    result = await make_client().complete(model="fake/image", messages=MESSAGES, user="u1")
    assert result.text == f"Here it is ![generated image]({data_url})"
    assert result.reasoning == "drawing"
    assert result.image_urls == (data_url, "https://cdn.example/x.png")
    assert result.usage == Usage(12, 0, 12)
    assert result.finish_reason == "stop"
    assert up.chat_requests[0].body["stream"] is False


async def test_complete_retries_then_maps_an_error_object_in_a_200(up: FakeUpstream, make_client: MakeClient) -> None:
    up.add_error(503)
    up.add_json({"error": {"message": "no", "type": "invalid_request_error", "code": "context_length_exceeded"}})
    with pytest.raises(UpstreamRejectedError) as caught:
        await make_client().complete(model="m", messages=MESSAGES)
    assert caught.value.user_message == TOO_LONG_MESSAGE
    assert len(up.chat_requests) == 2


@pytest.mark.parametrize("fault", ["malformed_after", "disconnect_after"])
async def test_complete_faults(up: FakeUpstream, make_client: MakeClient, fault: str) -> None:
    for _ in range(3):
        up.add_fault(fault)  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailableError):
        await make_client(max_retries=2).complete(model="m", messages=MESSAGES)
    assert len(up.chat_requests) == (1 if fault == "malformed_after" else 3)


async def test_list_models_sorted(up: FakeUpstream, make_client: MakeClient) -> None:
    up.models = ["z/last", "a/first", "m/middle"]
    assert await make_client().list_models() == ["a/first", "m/middle", "z/last"]
    up.add_error(404, endpoint="models")
    with pytest.raises(UpstreamRejectedError):
        await make_client().list_models()


# -- the key never leaks -----------------------------------------------------------------------------


async def test_api_key_never_appears_in_logs_reprs_or_errors(
    up: FakeUpstream, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiohttp", "core"):  # the gateway's connections are aiohttp's
        logging.getLogger(name).setLevel(logging.DEBUG)
    echo = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}",
            "type": "invalid_request_error",
            "code": KEY,
        }
    }
    client = make_client(max_retries=1)
    errors: list[BaseException] = []
    scripts: list[Callable[[], None]] = [
        lambda: up.add_error(401, echo),
        lambda: up.add_error(400, echo),
        lambda: up.add_error(503, echo),
        lambda: up.add_error(429, echo, {"Retry-After": "0"}),
        lambda: up.add_raw_stream([f'data: {{"error": {{"message": "{KEY}", "code": "{KEY}"}}}}\n\n'.encode()]),
        lambda: up.add_fault("disconnect_after", 5),
        lambda: up.add_fault("error_event_after", 5),
        lambda: up.add_fault("malformed_after", 5),
        lambda: up.add_fault("stall_after", 5),
    ]
    for script in scripts:
        script()
        script()  # one per attempt
        try:
            await collect(make_client(max_retries=1, idle_timeout_seconds=0.2))
        except UpstreamError as exc:
            errors.append(exc)
    up.add_json(echo)
    with pytest.raises(UpstreamError) as caught:
        await client.complete(model="m", messages=MESSAGES)
    errors.append(caught.value)
    assert len(errors) == len(scripts) + 1
    assert up.chat_requests[0].authorization == f"Bearer {KEY}"  # the key was really in play
    assert any(record.name.startswith("httpx") for record in caplog.records)  # the libraries' logs captured
    texts = [caplog.text, repr(client), str(vars(client))]
    for error in errors:
        texts += [str(error), repr(error), error.user_message if isinstance(error, UpstreamError) else ""]
        texts += [str(error.__cause__), repr(error.__cause__)]
    assert not [t for t in texts if KEY in t]


# -- downloads ---------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.mark.parametrize("chunked", [False, True])
async def test_download_fetches_bytes_without_the_key(up: FakeUpstream, make_client: MakeClient, chunked: bool) -> None:
    url = up.serve("/img/cat.png", PNG, content_type="image/png", chunked=chunked)
    assert await make_client(allow_private_image_urls=True).download(url, max_bytes=10_000, timeout_seconds=5) == PNG
    request = up.requests[-1]
    assert request.path == "/img/cat.png"
    assert request.authorization is None
    assert not any(KEY in value for value in request.headers.values())


@pytest.mark.parametrize("chunked", [False, True])
async def test_download_over_the_cap_is_refused(up: FakeUpstream, make_client: MakeClient, chunked: bool) -> None:
    url = up.serve("/big.png", PNG * 10, content_type="image/png", chunked=chunked)
    with pytest.raises(ImageError) as caught:
        await make_client(allow_private_image_urls=True).download(url, max_bytes=len(PNG), timeout_seconds=5)
    assert caught.value.user_message == IMAGE_NOT_SHOWN


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x.png", "file:///etc/passwd", "data:image/png;base64,AAAA", "http://[::1"]
)
async def test_download_refuses_other_schemes_and_bad_urls(make_client: MakeClient, url: str) -> None:
    with pytest.raises(ImageError):
        await make_client().download(url, max_bytes=1000, timeout_seconds=1)


async def test_download_failures_are_image_errors(up: FakeUpstream, make_client: MakeClient) -> None:
    client = make_client(allow_private_image_urls=True)
    missing = up.serve("/gone.png", b"not found", status=404)
    with pytest.raises(ImageError):
        await client.download(missing, max_bytes=1000, timeout_seconds=1)
    with pytest.raises(ImageError):
        await client.download("http://127.0.0.1:9/x.png", max_bytes=1000, timeout_seconds=1)


async def test_download_has_an_overall_deadline(make_client: MakeClient) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(ImageError):
            await make_client(allow_private_image_urls=True).download(
                f"http://127.0.0.1:{port}/x.png", max_bytes=1000, timeout_seconds=0.2
            )
    finally:
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 2
