"""UpstreamClient: one pooled httpx.AsyncClient to an OpenAI-compatible gateway, with retries.

HTTP statuses, error bodies and httpx errors become core.errors through `faults.py` and nowhere else; a
streamed answer is read by `stream.EventReader`. Imports only core.events, core.errors and this package.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from core.errors import ReplyTimeoutError, StreamInterruptedError, UpstreamError, UpstreamRateLimitError
from core.events import Event, TextDelta
from core.upstream.chunks import (
    ChunkError,
    Completion,
    Transcript,
    parse_completion,
    parse_error_body,
    parse_model_ids,
    parse_object,
    parse_transcript,
    read_error,
)
from core.upstream.faults import (
    Secret,
    error_for,
    image_faults,
    malformed,
    reply_timeout,
    retry_after_seconds,
    transcription_faults,
    upstream_faults,
)
from core.upstream.guard import ByteBudget, PublicOnlyBackend, fetch_image, image_client
from core.upstream.stream import EventReader
from core.upstream.transport import GatewayTransport

log = logging.getLogger(__name__)

T = TypeVar("T")
# Multipart fields and files: {"name": "value"}, {"file": (filename, bytes, content type)}.
Form = tuple[Mapping[str, str], Mapping[str, tuple[str, bytes, str]]]

ERROR_BODY_MAX_BYTES = 64 * 1024
USER_AGENT = "parley/0.1"


class UpstreamClient:
    """Calls `{base_url}/chat/completions` (streaming or not), `/models`, `/audio/transcriptions`, and
    downloads model images.

    Failures before the first event (429, 502/503/504, connection failures, a stream dropped before any
    event) are retried up to `max_retries` times with exponential backoff and jitter; a 429 waits at least
    its Retry-After, and one asking for more than `backoff_max_seconds` is raised at once. After the first
    event any failure raises StreamInterruptedError carrying the text yielded so far.

    A stream ends after `idle_timeout_seconds` without a byte, and in any case `reply_timeout_seconds` after
    it was asked for (retries included): keep-alive comments are bytes, so only the second bounds a gateway
    that keeps a stream open forever. That raises ReplyTimeoutError, or StreamInterruptedError with its
    message once text was yielded.

    `transport` replaces httpx's own for the gateway (not for image downloads): a proxy, a test's recorder.
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
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 1000,
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
            transport=transport or GatewayTransport(max_connections=max_connections),
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
                    reader = EventReader(response, self._idle_timeout_seconds, self._secret, deadline)
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
                raise malformed("completion", exc) from None

        return await self._with_retries(once)

    async def list_models(self) -> list[str]:
        """`GET {base_url}/models` -> model ids, sorted."""

        async def once() -> list[str]:
            payload = await self._fetch_object("GET", "models", None)
            try:
                return parse_model_ids(payload)
            except ChunkError as exc:
                raise malformed("model list", exc) from None

        return await self._with_retries(once)

    async def transcribe(
        self, *, model: str, audio: bytes, filename: str, content_type: str, user: str | None = None
    ) -> Transcript:
        """`POST {base_url}/audio/transcriptions`: `audio` as the multipart `file` part, named `filename` with
        `content_type` (the platform's own file, e.g. voice.ogg audio/ogg: the gateway reads the format from
        the name), `model`, `response_format=json` (OpenAI's createTranscription). Retried like `complete`;
        failures are the same UpstreamErrors as a chat call's (faults.py). LLM_EXTRA_BODY is not sent: its
        chat fields (provider routing, `contents`) mean nothing to this endpoint.
        """
        form = {"model": model, "response_format": "json"}
        if user is not None:
            form["user"] = user
        upload = {"file": (filename, audio, content_type)}

        async def once() -> Transcript:
            payload = await self._fetch_object("POST", "audio/transcriptions", None, form=(form, upload))
            try:
                return parse_transcript(payload)
            except ChunkError as exc:
                raise malformed("transcription", exc) from None

        with transcription_faults():
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
        with image_faults():
            async with asyncio.timeout(timeout_seconds):  # a deadline for the whole download, not per read
                budget = budget or ByteBudget(max_bytes)
                return await fetch_image(self._downloads, url, max_bytes=max_bytes, budget=budget)

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
            raise reply_timeout() from None

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, form: Form | None = None
    ) -> httpx.Response:
        """Send and check the status first: a 2xx response is returned open; anything else is raised.

        `form` (fields, files) sends multipart/form-data instead of the JSON `body`."""
        if form is None:
            request = self._http.build_request(method, path, json=body)
        else:
            request = self._http.build_request(method, path, data=form[0], files=form[1])
        with upstream_faults():
            response = await self._http.send(request, stream=True)
        if response.is_success:
            return response
        try:
            raw = await _read_bounded(response, ERROR_BODY_MAX_BYTES, self._idle_timeout_seconds)
        finally:
            await response.aclose()
        is_429 = response.status_code == 429
        retry_after = retry_after_seconds(response.headers, now=self._clock()) if is_429 else None
        raise error_for(response.status_code, parse_error_body(raw), self._secret, retry_after=retry_after)

    async def _fetch_object(
        self, method: str, path: str, body: dict[str, Any] | None, *, form: Form | None = None
    ) -> dict[str, Any]:
        response = await self._send(method, path, body, form=form)
        try:
            with upstream_faults():
                raw = await response.aread()
        finally:
            await response.aclose()
        try:
            payload = parse_object(raw)
        except ChunkError as exc:
            raise malformed("response", exc) from None
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


async def _read_bounded(response: httpx.Response, max_bytes: int, timeout_seconds: float) -> bytes:
    """At most `max_bytes` of an error body; a body that fails to arrive is simply shorter."""
    data = bytearray()
    # A failed read is ignored: the status alone decides the error; the body only adds detail.
    with suppress(TimeoutError, UpstreamError), upstream_faults():
        async with asyncio.timeout(timeout_seconds):
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) >= max_bytes:
                    break
    return bytes(data[:max_bytes])
