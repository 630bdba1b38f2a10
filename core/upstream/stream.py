"""Reading one streamed answer: response bytes -> SSE events -> chunks -> batches of Parley events.

Split from client.py, which sends the request and decides on retries; here each read is bounded by the
idle timeout and the reply's deadline, and every fault becomes an UpstreamError through faults.py.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import httpx

from core.errors import Outage, UpstreamError, UpstreamUnavailableError
from core.events import Event, Finished, ReasoningDelta, TextDelta
from core.upstream.chunks import (
    ChunkError,
    ErrorChunk,
    StreamAssembler,
    parse_completion,
    parse_object,
    read_error,
    read_error_event,
)
from core.upstream.faults import Secret, error_for, malformed, reply_timeout, upstream_faults
from core.upstream.sse import SSEDecoder, SSEError

DRAIN_SECONDS = 1.0
DRAIN_MAX_BYTES = 64 * 1024


class EventReader:
    """Reads one streamed response: bytes -> SSE -> chunks -> batches of events, one batch per read.

    Faults become UpstreamErrors; events decoded before a fault in the same read are returned first and
    the fault is raised on the next call, so the caller's partial text is exact. A gateway that ignores
    `stream: true` and answers one JSON body is read whole and turned into the same events. Each read
    waits at most the idle timeout, and never past `deadline` (event-loop time), whatever keeps arriving.
    """

    __slots__ = (
        "_assembler",
        "_bytes",
        "_deadline",
        "_decoder",
        "_ended",
        "_failure",
        "_finished",
        "_idle",
        "_json_body",
        "_secret",
    )

    def __init__(
        self, response: httpx.Response, idle_timeout_seconds: float, secret: Secret, deadline: float | None = None
    ) -> None:
        self._bytes = response.aiter_bytes()
        self._idle = idle_timeout_seconds
        self._deadline = deadline
        self._secret = secret
        self._decoder = SSEDecoder()
        self._assembler = StreamAssembler()
        self._ended = False
        self._finished = False
        self._failure: UpstreamError | None = None
        is_json = response.headers.get("content-type", "").startswith("application/json")
        self._json_body: bytearray | None = bytearray() if is_json else None

    async def read(self) -> list[Event] | None:
        """The next non-empty batch of events, or None after the final batch."""
        out: list[Event] = []
        while not self._ended:
            wait, by_deadline = self._idle, False
            if self._deadline is not None:
                left = self._deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise reply_timeout()
                if left < wait:
                    wait, by_deadline = left, True
            try:
                with upstream_faults():
                    async with asyncio.timeout(wait):
                        chunk = await anext(self._bytes, None)
            except TimeoutError:
                if by_deadline:
                    raise reply_timeout() from None
                raise UpstreamUnavailableError(f"no data for {self._idle}s", outage=Outage.TIMEOUT) from None
            if chunk is None:
                self._ended = True
                break
            if self._json_body is not None:
                self._json_body += chunk
                continue
            self._decode(chunk, out)
            if out:
                return out
        if self._failure is not None:
            raise self._failure
        if self._finished:
            await self._drain()
            return None
        self._finished = True
        tail = self._assembler.finish() if self._json_body is None else self._whole_json(self._json_body)
        if tail is None:
            raise UpstreamUnavailableError("stream ended without finish_reason", outage=Outage.DROPPED)
        return tail

    async def _drain(self) -> None:
        """Read what follows [DONE] (the end of the chunked body) so the connection returns to the pool."""
        left = DRAIN_MAX_BYTES
        # A failed read is ignored: the answer is complete; this connection just will not be reused.
        with suppress(TimeoutError, UpstreamError), upstream_faults():
            async with asyncio.timeout(min(self._idle, DRAIN_SECONDS)):
                async for piece in self._bytes:
                    left -= len(piece)
                    if left < 0:
                        break

    def _decode(self, chunk: bytes, out: list[Event]) -> None:
        try:
            for sse in self._decoder.feed(chunk):
                if sse.data == "[DONE]":
                    self._ended = True
                    return
                if sse.event == "error":
                    raise ErrorChunk(read_error_event(sse.data))
                self._assembler.feed(parse_object(sse.data), out)
        except ErrorChunk as exc:
            self._fail(error_for(None, exc.info, self._secret))
        except (ChunkError, SSEError) as exc:
            self._fail(malformed("stream", exc))

    def _whole_json(self, raw: bytearray) -> list[Event]:
        try:
            payload = parse_object(bytes(raw))
            info = read_error(payload)
            if info is not None:
                raise error_for(None, info, self._secret)
            completion = parse_completion(payload)
        except ChunkError as exc:
            raise malformed("response", exc) from None
        events: list[Event] = []
        if completion.reasoning:
            events.append(ReasoningDelta(completion.reasoning))
        if completion.text:
            events.append(TextDelta(completion.text))
        events.extend(completion.tool_calls)
        if completion.usage is not None:
            events.append(completion.usage)
        events.append(Finished(completion.finish_reason or "stop"))  # a whole body is complete by nature
        return events

    def _fail(self, error: UpstreamError) -> None:
        self._failure = error
        self._ended = True
