"""A streamed upstream answer that stops half-way until the test lets it go on: something can happen
(a /forget, say) while a reply is certainly in flight, without relying on timing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.upstream import FakeUpstream, RecordedRequest

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def add_paused_reply(upstream: FakeUpstream, first: str, rest: str, go: asyncio.Event) -> None:
    """Queue an SSE answer: `first`, then nothing until `go` is set, then `rest`, a usage chunk and [DONE].

    Give the bot a STREAM_IDLE_TIMEOUT_SECONDS longer than the pause.
    """

    async def handler(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(payload: dict[str, Any]) -> None:
            await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {
                "id": "chatcmpl-paused",
                "object": "chat.completion.chunk",
                "model": "fake/echo",
                "choices": [choice],
            }

        await send(chunk({"role": "assistant", "content": first}))
        await go.wait()
        await send(chunk({"content": rest}))
        await send(chunk({}, "stop"))
        await send({"id": "chatcmpl-paused", "object": "chat.completion.chunk", "choices": [], "usage": USAGE})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    upstream.add_handler(handler)


def add_paused_image(upstream: FakeUpstream, image_url: str, go: asyncio.Event) -> None:
    """Queue a non-streamed answer (what /imagine asks for) with one image, sent only once `go` is set."""

    async def handler(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await go.wait()
        message = {
            "role": "assistant",
            "content": "Drawn.",
            "images": [{"type": "image_url", "image_url": {"url": image_url}}],
        }
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body = {
            "id": "chatcmpl-paused",
            "object": "chat.completion",
            "model": "fake/painter",
            "choices": [choice],
            "usage": USAGE,
        }
        return web.json_response(body)

    upstream.add_handler(handler)
