"""Tools on Discord: the chat model draws in a server channel; the reply shows a status line meanwhile."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.discord_harness import World, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream, RecordedRequest, ToolCallScript

pytestmark = pytest.mark.e2e

STATUS = "🔧 generate_image…"


def shown(content: str) -> str:
    """Markdown as Discord shows it, for the one escape a tool name needs (`\\_` shows as `_`)."""
    return content.replace("\\_", "_")


async def test_a_mention_gets_a_status_line_while_the_picture_is_drawn_then_the_answer_and_the_upload(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    picture = png_bytes(12, 8)
    drawn = asyncio.Event()  # the image model answers only once the test has seen the status line

    async def image_model(request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await drawn.wait()
        content = f"![ship](data:image/png;base64,{base64.b64encode(picture).decode()})"
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        return web.json_response({"id": "img", "object": "chat.completion", "choices": [choice]})

    upstream.add_reply(
        "On it.", finish_reason="tool_calls", tool_call_index="omitted",
        tool_calls=[ToolCallScript("c1", "generate_image", '{"prompt": "a ship", "use_images": false}')],
    )  # fmt: skip
    upstream.add_handler(image_model)
    upstream.add_reply("A ship, as asked.")
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)) as bot:
        asked = dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} draw a ship", mentions_bot=True)

        def status() -> bool:
            return any(STATUS in shown(m.content) for m in dc.bot_messages(world.channel))

        await dc.wait_for(status)
        drawn.set()
        message = await dc.wait_for(lambda: next((m for m in dc.bot_messages(world.channel) if m.attachments), None))
        await dc.wait_for(lambda: bot.handlers_in_flight == 0)
    [attachment] = message.attachments
    assert attachment.data == picture
    [answer, *_] = dc.bot_messages(world.channel)
    assert answer.content == "On it.\n\nA ship, as asked." and answer.reference_id == asked.id
    assert any(version.startswith("On it.") and STATUS in shown(version) for version in answer.versions)
    assert "🔧" not in answer.content  # the answer replaced the status line
    assert upstream.chat_requests[2].tool_results[0]["content"] == "Done: an image was shown to the user."


async def test_two_drawings_in_one_round_then_the_round_limit_stops_the_model_with_a_note(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    picture = png_bytes(10, 10)
    encoded = base64.b64encode(picture).decode()
    upstream.add_reply(
        finish_reason="tool_calls", tool_call_index="reused",
        tool_calls=[ToolCallScript("c1", "generate_image", '{"prompt": "a"}'),
                    ToolCallScript("c2", "generate_image", '{"prompt": "b"}')],
    )  # fmt: skip
    upstream.add_reply(f"![a](data:image/png;base64,{encoded})")
    upstream.add_reply(f"![b](data:image/png;base64,{encoded})")
    upstream.add_reply(
        "Both drawn.", finish_reason="tool_calls",
        tool_calls=[ToolCallScript("c3", "generate_image", '{"prompt": "c"}')],
    )  # fmt: skip
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, tool_max_rounds=1)) as bot:
        dc.user_sends(dm, world.alice, "draw a and b")
        message = await dc.wait_for(lambda: next((m for m in dc.bot_messages(dm) if m.attachments), None))
        await dc.wait_for(lambda: bot.handlers_in_flight == 0)
    assert [a.data for a in message.attachments] == [picture, picture]
    texts = [m.content for m in dc.bot_messages(dm) if m.content]
    assert texts[0].startswith("Both drawn.") and "more tool calls than allowed" in texts[0]
    assert [m["tool_call_id"] for m in upstream.chat_requests[3].tool_results] == ["c1", "c2"]
    assert len(upstream.chat_requests) == 4  # the third call was not run
