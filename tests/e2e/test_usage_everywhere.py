"""/usage tells the same facts on Telegram, Discord and in the terminal: one wording, only the markup differs."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from bots.terminal import TerminalChat
from core import open_assistant
from tests.e2e.discord_harness import World, answered, bot_says, discord_settings, running_bot
from tests.e2e.log_lines import REPLY_STORED, log_line
from tests.e2e.support import make_settings
from tests.e2e.telegram_harness import telegram_world
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 30,
    "total_tokens": 1230,
    "prompt_tokens_details": {"cached_tokens": 1000},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
FACTS = [
    "This conversation: 1,230 tokens (1,200 in, of them 1,000 cached; 30 out, of them 12 reasoning)",
    "You today (UTC): 1,230 tokens in 1 requests (1,000 cached, 12 reasoning)",
]
ANSWER = "A reply worth some tokens."


def midnight_clock() -> FakeWallClock:
    return FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # "today" must not end between reply and /usage


async def test_usage_on_telegram_shows_every_fact_reasoning_included(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(ANSWER, usage=USAGE)
        user, chat = w.dm("Ann")
        with log_line(*REPLY_STORED) as stored:
            async with w.bot(clock=midnight_clock()):
                w.tg.user_sends(chat, user, "spend some tokens")
                await w.said(chat, lambda t: t == ANSWER)
                async with asyncio.timeout(5):  # the text shows before the answer and its usage are stored
                    await stored.wait()
                w.tg.user_sends(chat, user, "/usage")
                report = await w.said(chat, lambda t: t.startswith("Model:"))
    assert report.text.splitlines() == ["Model: fake/echo", *FACTS]
    [code] = report.entities
    assert code.type == "code" and report.text[code.offset : code.offset + code.length] == "fake/echo"


async def test_usage_on_discord_shows_every_fact_reasoning_included(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply(ANSWER, usage=USAGE)
    with log_line(*REPLY_STORED) as stored:
        async with running_bot(dc, discord_settings(dc, upstream, tmp_path), clock=midnight_clock()):
            dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} spend some", mentions_bot=True)
            await bot_says(dc, world.channel, lambda text: text == ANSWER)
            async with asyncio.timeout(5):
                await stored.wait()
            report = await answered(dc, dc.invoke_slash("usage", channel=world.channel, user=world.alice))
    assert report.ephemeral and report.content.splitlines() == ["Model: `fake/echo`", *FACTS]


async def test_usage_in_the_terminal_shows_every_fact_reasoning_included(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply(ANSWER, usage=USAGE)
    settings = make_settings(upstream, tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with log_line(*REPLY_STORED) as stored:
        async with open_assistant(settings, clock=midnight_clock()) as assistant:
            spend = TerminalChat(assistant, settings, inp=io.StringIO("spend some\n"), out=out, err=err)
            assert await spend.run() == 0
            async with asyncio.timeout(5):
                await stored.wait()
            ask = TerminalChat(assistant, settings, inp=io.StringIO("/usage\n"), out=out, err=err)
            assert await ask.run() == 0
    assert out.getvalue().splitlines() == [ANSWER, "Model: fake/echo", *FACTS] and err.getvalue() == ""
