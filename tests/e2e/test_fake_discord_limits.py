"""The fake Discord's own platform rules, over raw HTTP and websockets: shared message-write buckets, 429s
that no header announced, and heartbeats the gateway enforces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord import FakeChannel, FakeDiscord, RateLimitPolicy

pytestmark = pytest.mark.e2e

CREATE = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(rate_limits=RateLimitPolicy(announce_buckets=False)) as fake:
        yield fake


@pytest.fixture
async def http(dc: FakeDiscord) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {dc.token}"}) as session:
        yield session


def _channel(dc: FakeDiscord) -> FakeChannel:
    guild = dc.add_guild("Limits")
    return dc.add_channel(guild, "general")


async def _write(
    http: aiohttp.ClientSession, dc: FakeDiscord, channel: FakeChannel, *, edit: str | None = None
) -> tuple[int, dict[str, str], Any]:
    url = f"{dc.rest_base}/channels/{channel.id}/messages" + (f"/{edit}" if edit else "")
    async with http.request("PATCH" if edit else "POST", url, json={"content": "hi"}) as response:
        return response.status, dict(response.headers), await response.json()


async def test_creates_and_edits_share_five_writes_per_channel_and_no_header_warns(
    dc: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = _channel(dc)
    status, headers, first = await _write(http, dc, channel)
    assert status == 200 and not any(name.startswith("X-RateLimit") for name in headers)
    for _ in range(4):
        status, _, _ = await _write(http, dc, channel, edit=first["id"])
        assert status == 200
    status, headers, body = await _write(http, dc, channel)  # the sixth write in 5 s, a create this time
    assert status == 429 and 0 < body["retry_after"] <= 5.0 and body["global"] is False
    assert int(headers["Retry-After"]) >= 1
    other = dc.add_channel(dc.add_guild("Elsewhere"), "general")
    assert (await _write(http, dc, other))[0] == 200  # per channel


async def test_a_message_takes_at_most_ten_files(dc: FakeDiscord, http: aiohttp.ClientSession) -> None:
    channel = _channel(dc)

    async def send(count: int) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("payload_json", json.dumps({"content": f"{count} files"}), content_type="application/json")
        for n in range(count):
            form.add_field(f"files[{n}]", f"file {n}".encode(), filename=f"{n}.txt")
        async with http.post(f"{dc.rest_base}/channels/{channel.id}/messages", data=form) as response:
            return response.status, await response.json()

    status, body = await send(11)
    assert status == 400 and body["code"] == 50035 and "attachments" in body["errors"]
    status, body = await send(10)
    assert status == 200 and len(body["attachments"]) == 10
    assert [m.content for m in dc.bot_messages(channel)] == ["10 files"]  # the refused one left nothing


async def test_an_injected_429_holds_the_bucket_for_retry_after(dc: FakeDiscord, http: aiohttp.ClientSession) -> None:
    channel = _channel(dc)
    dc.inject_429(CREATE, retry_after=30.0)
    status, headers, body = await _write(http, dc, channel)
    assert status == 429 and body["retry_after"] == 30.0
    assert not any(name.startswith("X-RateLimit") for name in headers)  # nothing announced it
    assert (await _write(http, dc, channel))[0] == 429  # still held
    assert dc.count_429 == 2


async def test_a_client_that_stops_heartbeating_is_closed_with_4009() -> None:
    async with (
        FakeDiscord(heartbeat_interval_ms=100) as dc,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{dc.gateway_url}?v=10&encoding=json") as ws,
    ):
        hello = await ws.receive_json(timeout=2)
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 100
        await ws.send_json({"op": 1, "d": None})
        assert (await ws.receive_json(timeout=2))["op"] == 11  # ACK
        closing = await ws.receive(timeout=2)  # then silence: closed after 1.5 intervals
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4009 and dc.heartbeat_timeouts == 1
