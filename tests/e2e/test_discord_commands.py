"""The Discord adapter end to end, commands and start-up: sync, /imagine, /reset, /model, /usage, secrets.

Every scenario ends by checking that the fake Discord answered no 429 (the `dc` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import random
from pathlib import Path

import discord
import pytest
from discord.gateway import DiscordWebSocket
from PIL import Image as Pillow

from bots.discord_bot import run_discord
from core import ConfigError, open_assistant
from tests.e2e.discord_harness import (
    API_KEY,
    World,
    answered,
    bot_says,
    build_world,
    discord_settings,
    fast_limits,
    running_bot,
)
from tests.e2e.log_lines import REPLY_STORED, log_line
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

COMMANDS = ["forget", "grant", "imagine", "model", "reset", "revoke", "stats", "system", "usage"]
GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15
REST_DEFAULT = "https://discord.com/api/v10"


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def noise_png(side: int) -> bytes:
    """A PNG that does not compress (random pixels), so its size is about 3 bytes per pixel."""
    rng = random.Random(7)
    picture = Pillow.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_commands_sync_globally_by_default(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        pass
    assert len(dc.calls_to("GET /gateway/bot")) == 1  # only the REST base was set: the gateway comes from it
    assert dc.identifies[0].intents == GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT
    [sync] = dc.command_syncs
    assert sync.guild_id is None and sorted(c["name"] for c in sync.commands) == COMMANDS
    assert sorted(c["name"] for c in dc.commands()) == COMMANDS and dc.commands(world.guild) == []


async def test_commands_sync_to_discord_guild_ids_for_instant_use(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(
        dc, upstream, tmp_path, discord_guild_ids=str(world.guild.id), discord_gateway_url=dc.gateway_url
    )
    async with running_bot(dc, settings):
        pass
    assert dc.calls_to("GET /gateway/bot") == [] and len(dc.identifies) == 1
    assert [s.guild_id for s in dc.command_syncs] == [world.guild.id]
    assert sorted(c["name"] for c in dc.commands(world.guild)) == COMMANDS and dc.commands() == []


async def test_imagine_defers_then_uploads_a_valid_png(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    picture = png_bytes(8, 6)
    upstream.add_reply("A red square, as asked.", images=[data_url(picture)])
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        interaction = dc.invoke_slash("imagine", {"prompt": "a red square"}, channel=world.channel, user=world.alice)
        message = await answered(dc, interaction)
    assert interaction.deferred and message.id == interaction.original_id and not message.ephemeral
    assert message.content == "A red square, as asked."
    [attachment] = message.attachments
    assert attachment.data == picture and attachment.content_type == "image/png"
    with Pillow.open(io.BytesIO(attachment.data)) as opened:
        assert opened.size == (8, 6)
    request = upstream.chat_requests[0].body
    assert request["model"] == "fake/painter" and request["messages"][-1]["content"] == "a red square"


async def test_imagine_sends_an_attached_image_as_reference(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    reference, result = png_bytes(3, 3, (0, 0, 255)), png_bytes(5, 5)
    upstream.add_reply("", images=[data_url(result)])
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        interaction = dc.invoke_slash(
            "imagine",
            {"prompt": "make it bigger", "image": Upload("ref.png", reference)},
            channel=world.channel,
            user=world.alice,
        )
        message = await answered(dc, interaction)
    assert [a.data for a in message.attachments] == [result] and message.content == ""
    content = upstream.chat_requests[0].body["messages"][-1]["content"]
    assert content == [
        {"type": "text", "text": "make it bigger"},
        {"type": "image_url", "image_url": {"url": data_url(reference)}},
    ]


async def test_imagine_over_the_upload_limit_is_re_encoded_to_fit(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    big = noise_png(200)
    dc.upload_limit_bytes = 40_000
    assert len(big) > dc.upload_limit_bytes
    upstream.add_reply("noise", images=[data_url(big)])
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        interaction = dc.invoke_slash("imagine", {"prompt": "static"}, channel=world.channel, user=world.alice)
        message = await answered(dc, interaction)
    [attachment] = message.attachments
    assert attachment.size <= 40_000 and attachment.filename.endswith(".jpg")
    with Pillow.open(io.BytesIO(attachment.data)) as opened:
        assert opened.format == "JPEG" and opened.size[0] >= 64


async def test_imagine_with_twelve_pictures_delivers_all_in_messages_of_at_most_ten(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    pictures = [png_bytes(n + 1, 2, (n * 20, 0, 0)) for n in range(12)]
    upstream.add_reply("Twelve squares.", images=[data_url(picture) for picture in pictures])
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        interaction = dc.invoke_slash("imagine", {"prompt": "twelve squares"}, channel=world.channel, user=world.alice)
        await dc.wait_for(lambda: len(interaction.followup_ids) == 2)
    first, second = (dc.message(i) for i in interaction.followup_ids)
    assert first.id == interaction.original_id and first.content == "Twelve squares." and second.content == ""
    assert [len(first.attachments), len(second.attachments)] == [10, 2]
    assert [a.data for a in first.attachments + second.attachments] == pictures
    assert not first.ephemeral and not second.ephemeral


async def test_imagine_failure_is_ephemeral_and_the_thinking_message_goes(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_error(400)
    settings = discord_settings(dc, upstream, tmp_path, llm_max_retries=0)
    async with running_bot(dc, settings):
        interaction = dc.invoke_slash("imagine", {"prompt": "anything"}, channel=world.channel, user=world.alice)
        notice = await answered(dc, interaction)
        empty = dc.invoke_slash("imagine", {"prompt": "   "}, channel=world.channel, user=world.alice)
        second = await answered(dc, empty)
    assert notice.ephemeral and notice.content == "The model service refused this request."
    assert second.ephemeral and second.content.startswith("Say what to draw")
    assert dc.bot_messages(world.channel) == [notice, second]  # the public "thinking…" messages were deleted
    assert all(dc.message(i.original_id or 0).deleted for i in (interaction, empty))


async def test_reset_starts_a_new_conversation(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "remember mango")
        await bot_says(dc, dm, lambda text: "mango" in text)
        interaction = dc.invoke_slash("reset", channel=dm, user=world.alice)
        done = await answered(dc, interaction)
        dc.user_sends(dm, world.alice, "what fruit?")
        await bot_says(dc, dm, lambda text: "what fruit" in text)
    assert interaction.deferred and done.ephemeral and done.content.startswith("New conversation started")
    assert [m["content"] for m in upstream.chat_requests[-1].body["messages"][1:]] == ["what fruit?"]


async def test_model_autocompletes_switches_and_refuses_unknown_names(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    # The channel's conversation is shared (GROUP_HISTORY=chat): switching it is for admins.
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, admins=f"discord:{world.alice.id}")):
        asked = dc.autocomplete("model", {"name": "oth"}, focused="name", channel=world.channel, user=world.alice)
        choices = await dc.wait_for(lambda: asked.choices)
        chosen = dc.invoke_slash("model", {"name": "fake/other"}, channel=world.channel, user=world.alice)
        switched = await answered(dc, chosen)
        wrong = dc.invoke_slash("model", {"name": "no/such"}, channel=world.channel, user=world.alice)
        refused = await answered(dc, wrong)
        shown = dc.invoke_slash("model", channel=world.channel, user=world.alice)
        current = await answered(dc, shown)
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} hello", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "hello" in text)
    assert choices == [{"name": "fake/other", "value": "fake/other"}]
    assert switched.ephemeral and switched.content == "Model set to `fake/other` for this conversation."
    assert refused.ephemeral and refused.content == "Unknown model. Choose one of: fake/echo, fake/other"
    assert current.content == (
        "Model: `fake/other`\nChoices: `fake/echo`, `fake/other`\nSwitch this conversation with /model NAME."
    )
    assert upstream.chat_requests[-1].body["model"] == "fake/other"


async def test_usage_reports_tokens_privately(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    with log_line(*REPLY_STORED) as stored:
        clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # "today" must not end between reply and /usage
        async with running_bot(dc, discord_settings(dc, upstream, tmp_path), clock=clock):
            dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} count me", mentions_bot=True)
            await bot_says(dc, world.channel, lambda text: "count me" in text)
            async with asyncio.timeout(5):  # the text shows before the answer and its usage are stored
                await stored.wait()
            interaction = dc.invoke_slash("usage", channel=world.channel, user=world.alice)
            report = await answered(dc, interaction)
    assert interaction.deferred and report.ephemeral
    assert report.content.startswith("Model: `fake/echo`\nThis conversation: ")
    assert "in 1 requests" in report.content and " 0 tokens" not in report.content


async def test_run_discord_never_sends_the_key_or_token_and_restores_discord_py(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream.add_reply(f"I will not tell you {API_KEY[:6]}…")
    settings = discord_settings(dc, upstream, tmp_path)
    dm = dc.dm_channel(world.alice)
    async with open_assistant(settings) as assistant:
        running = asyncio.create_task(run_discord(assistant, settings))
        await dc.wait_for(lambda: dc.identifies)
        dc.user_sends(dm, world.alice, "what is your API key?")
        await bot_says(dc, dm, lambda text: text.startswith("I will not tell you"))
        interaction = dc.invoke_slash("usage", channel=dm, user=world.alice)
        await answered(dc, interaction)
        assert dc.rest_base == discord.http.Route.BASE
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert discord.http.Route.BASE == REST_DEFAULT
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    assert not dc.sent_anywhere(API_KEY) and dc.token not in dc.all_sent_text()
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert API_KEY not in logged and dc.token not in logged and "fake/echo" in logged


async def test_without_the_message_content_intent_start_fails_with_instructions(
    upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord(message_content_enabled=False, rate_limits=fast_limits()) as dc:
        build_world(dc)
        settings = discord_settings(dc, upstream, tmp_path)
        async with open_assistant(settings) as assistant:
            with pytest.raises(ConfigError) as caught:
                await run_discord(assistant, settings)
        assert dc.count_429 == 0
    assert caught.value.setting == "DISCORD_BOT_TOKEN"
    assert "Privileged Gateway Intents → Message Content" in caught.value.problem
    assert any("Message Content" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert discord.http.Route.BASE == REST_DEFAULT


async def test_a_refused_token_is_a_config_error(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with FakeDiscord() as dc:
        settings = discord_settings(dc, upstream, tmp_path, discord_bot_token="not-the-token")
        async with open_assistant(settings) as assistant:
            with pytest.raises(ConfigError) as caught:
                await run_discord(assistant, settings)
        assert dc.count_429 == 0 and dc.identifies == []
    assert caught.value.setting == "DISCORD_BOT_TOKEN" and "refused" in caught.value.problem
