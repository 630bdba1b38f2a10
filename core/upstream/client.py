"""UpstreamClient: one pooled httpx.AsyncClient to an OpenAI-compatible gateway, with retries.

HTTP statuses, error bodies and httpx errors become core.errors through `faults.py` and nowhere else.
Imports only core.events, core.errors and this package.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from core.errors import (
    ReplyTimeoutError,
    StreamInterruptedError,
    UpstreamError,
    UpstreamRateLimitError,
)
from core.events import Event, Finished, ReasoningDelta, TextDelta
from core.upstream.chunks import (
    ChunkError,
    Completion,
    ErrorChunk,
    StreamAssembler,
    parse_completion,
    parse_error_body,
    parse_model_ids,
    parse_object,
    read_error,
    read_error_event,
)
from core.upstream.faults import (
    Secret,
    error_for,
    retry_after_seconds,
    transport_error,
    unavailable,
)
from core.upstream.guard import ByteBudget, PublicOnlyBackend, fetch_image, image_client, image_failed
from core.upstream.sse import SSEDecoder, SSEError

log = logging.getLogger(__name__)

T = TypeVar("T")

ERROR_BODY_MAX_BYTES = 64 * 1024
USER_AGENT = "parley/0.1"
DRAIN_SECONDS = 1.0
DRAIN_MAX_BYTES = 64 * 1024


class UpstreamClient:
    """Calls `{base_url}/chat/completions` (streaming or not), `/models`, and downloads model images.

    Failures before the first event (429, 502/503/504, connection failures, a stream dropped before any
    event) are retried up to `max_retries` times with exponential backoff and jitter; a 429 waits at least
    its Retry-After, and one asking for more than `backoff_max_seconds` is raised at once. After the first
    event any failure raises StreamInterruptedError carrying the text yielded so far.

    A stream ends after `idle_timeout_seconds` without a byte, and in any case `reply_timeout_seconds` after
    it was asked for (retries included): keep-alive comments are bytes, so only the second bounds a gateway
    that keeps a stream open forever. That raises ReplyTimeoutError, or StreamInterruptedError with its
    message once text was yielded.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_seconds: float = 60.0,
        idle_timeout_seconds: float = 60.0,
        reply_timeout_seconds: float | None = None,
        max_retries: int = 3,
        extra_body: Mapping[str, Any] | None = None,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 20.0,
        clock: Callable[[], float] = time.time,
        allow_private_image_urls: bool = False,
        image_network: PublicOnlyBackend | None = None,
    ) -> None:
        self._clock = clock  # Unix seconds: the reference for a Retry-After HTTP-date
        self._base_url = base_url.rstrip("/")
        self._secret = Secret(api_key)
        self._idle_timeout_seconds = idle_timeout_seconds
        self._reply_timeout_seconds = reply_timeout_seconds
        self._max_retries = max_retries
        self._extra_body = dict(extra_body or {})
        self._backoff_base_seconds = backoff_base_seconds
        self._backoff_max_seconds = backoff_max_seconds
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout_seconds),
        )
        # Images live on third-party hosts: a client that has never seen the key (core.upstream.guard).
        self._downloads = image_client(
            user_agent=USER_AGENT, allow_private=allow_private_image_urls, network=image_network
        )

    def __repr__(self) -> str:
        return (
            f"UpstreamClient(base_url={self._secret.redact(self._base_url)!r}, "
            f"max_retries={self._max_retries}, idle_timeout_seconds={self._idle_timeout_seconds})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._http.aclose()
        finally:
            await self._downloads.aclose()

    async def stream(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        user: str | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> AsyncGenerator[Event, None]:
        """Yield TextDelta/ReasoningDelta as they arrive, then ToolCalls, Usage (if sent) and Finished last.

        Raises an UpstreamError subclass before the first event, StreamInterruptedError after it. To stop
        early, `aclose()` the generator (or use `contextlib.aclosing`): that closes the response.
        """
        body = self._body(model, messages, user, stream=True)
        if tools:  # OpenAI `tools` format; absent, not empty, when there are none (some gateways refuse [])
            body["tools"] = [dict(tool) for tool in tools]
        limit = self._reply_timeout_seconds
        deadline = asyncio.get_running_loop().time() + limit if limit is not None else None
        attempt = 0
        while True:
            shown: list[str] = []
            started = False
            try:
                response = await self._send_by(deadline, "POST", "chat/completions", body)
                try:
                    reader = _EventReader(response, self._idle_timeout_seconds, self._secret, deadline)
                    while (batch := await reader.read()) is not None:
                        for event in batch:
                            started = True
                            if type(event) is TextDelta:
                                shown.append(event.text)
                            yield event
                    return
                finally:
                    await response.aclose()
            except UpstreamError as exc:
                if started:
                    raise StreamInterruptedError(
                        f"stream interrupted: {exc}",
                        partial_text="".join(shown),
                        status=exc.status,
                        user_message=exc.user_message if isinstance(exc, ReplyTimeoutError) else None,
                    ) from exc
                await self._pause_or_raise(exc, attempt, deadline)
                attempt += 1

    async def complete(
        self, *, model: str, messages: Sequence[Mapping[str, Any]], user: str | None = None
    ) -> Completion:
        """One non-streaming call (image models); retried like a stream before its first event."""
        body = self._body(model, messages, user, stream=False)

        async def once() -> Completion:
            payload = await self._fetch_object("POST", "chat/completions", body)
            try:
                return parse_completion(payload)
            except ChunkError as exc:
                raise unavailable(f"malformed completion: {exc}", retryable=False) from None

        return await self._with_retries(once)

    async def list_models(self) -> list[str]:
        """`GET {base_url}/models` -> model ids, sorted."""

        async def once() -> list[str]:
            payload = await self._fetch_object("GET", "models", None)
            try:
                return parse_model_ids(payload)
            except ChunkError as exc:
                raise unavailable(f"malformed model list: {exc}", retryable=False) from None

        return await self._with_retries(once)

    async def download(
        self, url: str, *, max_bytes: int, timeout_seconds: float | None = None, budget: ByteBudget | None = None
    ) -> bytes:
        """Fetch an http(s) image URL the model returned, without our credentials, at most `max_bytes`.

        Unless `allow_private_image_urls`, only public addresses are connected to, on every redirect hop
        (core.upstream.guard). `budget` is shared by the downloads of one answer. Raises ImageError, with
        the same user message whatever the cause (bad scheme, refused address, non-2xx, network failure,
        timeout, oversize), so the messages tell an attacker nothing about the network.
        """
        try:
            async with asyncio.timeout(timeout_seconds):  # a deadline for the whole download, not per read
                budget = budget or ByteBudget(max_bytes)
                return await fetch_image(self._downloads, url, max_bytes=max_bytes, budget=budget)
        except TimeoutError:
            raise image_failed("image download timed out") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError: "Invalid IPv6 URL"
            raise image_failed(f"image download failed: {type(exc).__name__}: {exc}") from None

    # -- internals ---------------------------------------------------------------------------------

    def _body(
        self, model: str, messages: Sequence[Mapping[str, Any]], user: str | None, *, stream: bool
    ) -> dict[str, Any]:
        """extra_body first (shallow), then the fields we need, which win."""
        body = dict(self._extra_body)
        body["model"] = model
        body["messages"] = [dict(message) for message in messages]
        body["stream"] = stream
        if stream:
            options = body.get("stream_options")
            merged = dict(options) if isinstance(options, Mapping) else {}
            body["stream_options"] = {**merged, "include_usage": True}
        else:
            body.pop("stream_options", None)  # only valid with stream: true
        if user is not None:
            body["user"] = user
        return body

    async def _send_by(
        self, deadline: float | None, method: str, path: str, body: dict[str, Any] | None
    ) -> httpx.Response:
        """`_send`, given up when the reply's deadline passes first (no yield in between: safe here)."""
        try:
            async with asyncio.timeout_at(deadline):
                return await self._send(method, path, body)
        except TimeoutError:
            raise _reply_timeout() from None

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """Send and check the status first: a 2xx response is returned open; anything else is raised."""
        request = self._http.build_request(method, path, json=body)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        if response.is_success:
            return response
        try:
            raw = await _read_bounded(response, ERROR_BODY_MAX_BYTES, self._idle_timeout_seconds)
        finally:
            await response.aclose()
        is_429 = response.status_code == 429
        retry_after = retry_after_seconds(response.headers, now=self._clock()) if is_429 else None
        raise error_for(response.status_code, parse_error_body(raw), self._secret, retry_after=retry_after)

    async def _fetch_object(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = await self._send(method, path, body)
        try:
            raw = await response.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        finally:
            await response.aclose()
        try:
            payload = parse_object(raw)
        except ChunkError as exc:
            raise unavailable(f"malformed response: {exc}", retryable=False) from None
        info = read_error(payload)  # some gateways answer 200 with an error object
        if info is not None:
            raise error_for(None, info, self._secret)
        return payload

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except UpstreamError as exc:
                await self._pause_or_raise(exc, attempt)
                attempt += 1

    async def _pause_or_raise(self, exc: UpstreamError, attempt: int, deadline: float | None = None) -> None:
        """Sleep before retry number `attempt + 1`, or re-raise `exc` when it should not be retried
        (also when the pause would end after the reply's `deadline`)."""
        if not exc.retryable or attempt >= self._max_retries:
            raise exc
        backoff = min(self._backoff_max_seconds, self._backoff_base_seconds * 2**attempt)
        delay = random.uniform(backoff / 2, backoff)  # jitter spreads clients that failed together
        if isinstance(exc, UpstreamRateLimitError) and exc.retry_after is not None:
            if exc.retry_after > self._backoff_max_seconds:
                raise exc  # longer than we are willing to make a user wait: let them retry later
            delay = max(delay, exc.retry_after)
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            raise exc
        log.warning(
            "upstream %s status=%s: retry %d/%d in %.2fs",
            type(exc).__name__,
            exc.status,
            attempt + 1,
            self._max_retries,
            delay,
        )
        await asyncio.sleep(delay)


class _EventReader:
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
                    raise _reply_timeout()
                if left < wait:
                    wait, by_deadline = left, True
            try:
                async with asyncio.timeout(wait):
                    chunk = await anext(self._bytes, None)
            except TimeoutError:
                if by_deadline:
                    raise _reply_timeout() from None
                raise unavailable(f"no data for {self._idle}s", retryable=False) from None
            except httpx.HTTPError as exc:
                raise transport_error(exc) from exc
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
            raise unavailable("stream ended without finish_reason", retryable=True)
        return tail

    async def _drain(self) -> None:
        """Read what follows [DONE] (the end of the chunked body) so the connection returns to the pool."""
        left = DRAIN_MAX_BYTES
        try:
            async with asyncio.timeout(min(self._idle, DRAIN_SECONDS)):
                async for piece in self._bytes:
                    left -= len(piece)
                    if left < 0:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the answer is complete; this connection just will not be reused

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
            self._fail(unavailable(f"malformed stream: {exc}", retryable=False))

    def _whole_json(self, raw: bytearray) -> list[Event]:
        try:
            payload = parse_object(bytes(raw))
            info = read_error(payload)
            if info is not None:
                raise error_for(None, info, self._secret)
            completion = parse_completion(payload)
        except ChunkError as exc:
            raise unavailable(f"malformed response: {exc}", retryable=False) from None
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


def _reply_timeout() -> ReplyTimeoutError:
    return ReplyTimeoutError("the reply's deadline (REPLY_TIMEOUT_SECONDS) passed")


async def _read_bounded(response: httpx.Response, max_bytes: int, timeout_seconds: float) -> bytes:
    """At most `max_bytes` of an error body; a body that fails to arrive is simply shorter."""
    data = bytearray()
    try:
        async with asyncio.timeout(timeout_seconds):
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) >= max_bytes:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass  # the status alone decides the error; the body only adds detail
    return bytes(data[:max_bytes])
