"""Discord, what is stored: image bytes bounded per message and kept only for recent turns, /forget that a
reply in flight cannot undo, and input refused before it is stored (invisible-only text, image types the bot
cannot read).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.database import every_value, holds, mentions, rows
from tests.e2e.discord_harness import World, bot_says, discord_settings, running_bot
from tests.e2e.paused_reply import add_paused_reply
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0f \u3164"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
BMP = b"BM" + bytes(52)


async def test_images_older_than_the_window_leave_the_database(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    old, new = png_bytes(30, 30, (10, 20, 30)), png_bytes(31, 31, (40, 50, 60))
    settings = discord_settings(dc, upstream, tmp_path, history_image_turns=2)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "first", attachments=[Upload("old.png", old)])
        await bot_says(dc, dm, lambda t: t == "Echo: first")
        kept = await every_value(settings.database_url)
        dc.user_sends(dm, world.alice, "second", attachments=[Upload("new.png", new)])
        await bot_says(dc, dm, lambda t: t == "Echo: second")
        dc.user_sends(dm, world.alice, "third")
        await bot_says(dc, dm, lambda t: t == "Echo: third")
    stored = await every_value(settings.database_url)
    assert holds(kept, old) and not holds(stored, old) and holds(stored, new)
    assert [m.image_count for m in await rows(settings.database_url, "messages") if m.role == "user"] == [1, 1, 0]
    assert "[an image was shared here]" in str(upstream.chat_requests[2].body["messages"])


async def test_images_over_the_per_message_cap_are_refused_and_not_stored(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    uploads = [Upload(f"{i}.png", png_bytes(600, 600, (i, 0, 0))) for i in range(3)]  # about 2.3 kB each
    settings = discord_settings(dc, upstream, tmp_path, image_max_bytes_per_turn=5000)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "compare", attachments=uploads)
        refusal = await bot_says(dc, dm, lambda t: "too large" in t)
    assert "5 kB per message" in refusal.content and upstream.chat_requests == []
    assert await rows(settings.database_url, "messages") == []


async def test_forget_while_a_reply_streams_in_a_dm_leaves_nothing_and_no_error(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    go = asyncio.Event()
    add_paused_reply(upstream, "A slow answer ", "that ends after the forget.", go)
    settings = discord_settings(dc, upstream, tmp_path, stream_idle_timeout=30.0)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "my secret is 4242")
        await bot_says(dc, dm, lambda t: t == "A slow answer")
        forget = dc.invoke_slash("forget", channel=dm, user=world.alice)
        await dc.wait_for(lambda: forget.followup_ids)
        assert dc.message(forget.followup_ids[-1]).content.startswith("Done:")
        go.set()
        await bot_says(dc, dm, lambda t: t == "A slow answer that ends after the forget.")
    stored = await every_value(settings.database_url)
    assert not mentions(stored, "4242") and not mentions(stored, "slow answer")
    assert await rows(settings.database_url, "users") == []
    assert await rows(settings.database_url, "usage_records") == []
    assert [m.content for m in dc.bot_messages(dm) if "wrong" in m.content.lower()] == []


async def test_forget_while_a_reply_streams_in_a_server_channel_is_not_undone(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    go = asyncio.Event()
    settings = discord_settings(dc, upstream, tmp_path, stream_idle_timeout=30.0)
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, world.bob, f"{dc.bot.mention} bob was here", mentions_bot=True)
        await bot_says(dc, world.channel, lambda t: t == "Echo: Bob: bob was here")
        add_paused_reply(upstream, "A slow answer ", "that ends after the forget.", go)
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} my secret is 4242", mentions_bot=True)
        await bot_says(dc, world.channel, lambda t: t == "A slow answer")
        forget = dc.invoke_slash("forget", channel=world.channel, user=world.alice)
        await dc.wait_for(lambda: forget.followup_ids)
        assert dc.message(forget.followup_ids[-1]).content.startswith("Done:")
        go.set()
        await bot_says(dc, world.channel, lambda t: t == "A slow answer that ends after the forget.")
    stored = await every_value(settings.database_url)
    assert not mentions(stored, "4242") and not mentions(stored, "slow answer")
    assert [u.name for u in await rows(settings.database_url, "users")] == ["Bob"]
    assert len(await rows(settings.database_url, "usage_records")) == 1 and mentions(stored, "bob was here")


async def test_text_of_invisible_characters_counts_as_empty(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, INVISIBLE)
        await bot_says(dc, dm, lambda t: "nothing to answer" in t)
        dc.user_sends(world.channel, world.bob, f"{dc.bot.mention} {INVISIBLE}", mentions_bot=True)
        await bot_says(dc, world.channel, lambda t: "nothing to answer" in t)
    assert upstream.chat_requests == []
    assert await rows(settings.database_url, "messages") == []


@pytest.mark.parametrize(
    "upload", [Upload("picture.svg", SVG, "image/svg+xml"), Upload("picture.bmp", BMP, "image/bmp")], ids=["svg", "bmp"]
)
async def test_an_svg_or_bmp_from_a_user_is_an_unsupported_type(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, upload: Upload
) -> None:
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "what is this?", attachments=[upload])
        refusal = await bot_says(dc, dm, lambda t: "not supported" in t)
    assert "image type" in refusal.content and "model" not in refusal.content
    assert upstream.chat_requests == []
