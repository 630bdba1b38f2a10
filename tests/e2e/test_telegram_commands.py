"""Telegram commands: registered with setMyCommands; /start, /help, /model, /usage and unknown ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.log_lines import REPLY_STORED, log_line
from tests.e2e.telegram_harness import BOT_USERNAME, telegram_world
from tests.fakes.clock import FakeWallClock, utc

pytestmark = pytest.mark.e2e


async def test_commands_are_registered_and_start_and_help_answer(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/start")
            start = await w.said(chat, lambda t: t.startswith("Hi Ann!"))
            w.tg.user_sends(chat, user, "/help")
            help_message = await w.said(chat, lambda t: "/usage" in t)
        [call] = w.tg.calls_of("setMyCommands")
        assert [c["command"] for c in call.params["commands"]] == [
            "start",
            "help",
            "reset",
            "model",
            "system",
            "imagine",
            "usage",
        ]
        assert f"@{BOT_USERNAME}" in start.text and "/imagine" in start.text
        assert all(f"/{name}" in help_message.text for name in ("reset", "model", "imagine"))


async def test_without_an_image_model_imagine_is_not_offered(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, image_model=None) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/imagine a cat")
            await w.said(chat, lambda t: "not set up" in t)
        [call] = w.tg.calls_of("setMyCommands")
        assert "imagine" not in [c["command"] for c in call.params["commands"]]


async def test_model_lists_the_choices_and_switches_this_conversation(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/model")
            listing = await w.said(chat, lambda t: t.startswith("Model: fake/echo"))
            w.tg.user_sends(chat, user, "/model no/such-model")
            await w.said(chat, lambda t: "Unknown model" in t)
            w.tg.user_sends(chat, user, "/model fake/other")
            await w.said(chat, lambda t: t == "Model set to fake/other for this conversation.")
            w.tg.user_sends(chat, user, "hello")
            await w.said(chat, lambda t: t == "Echo: hello")
        assert "fake/other" in listing.text and {e.type for e in listing.entities} == {"code"}
        assert w.up.chat_requests[-1].body["model"] == "fake/other"


async def test_usage_reports_tokens_of_the_conversation_and_today(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(
            "A reply worth some tokens.",
            usage={
                "prompt_tokens": 1200,
                "completion_tokens": 30,
                "total_tokens": 1230,
                "prompt_tokens_details": {"cached_tokens": 1000},
            },
        )
        user, chat = w.dm("Ann")
        clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # "today" must not end between reply and /usage
        with log_line(*REPLY_STORED) as stored:
            async with w.bot(clock=clock):
                w.tg.user_sends(chat, user, "spend some tokens")
                await w.said(chat, lambda t: t == "A reply worth some tokens.")
                async with asyncio.timeout(5):  # the text shows before the answer and its usage are stored
                    await stored.wait()
                w.tg.user_sends(chat, user, "/usage")
                report = await w.said(chat, lambda t: t.startswith("Model:"))
        assert "1,230 tokens (1,200 in, of them 1,000 cached; 30 out, of them 0 reasoning)" in report.text
        assert "1,230 tokens in 1 requests (1,000 cached, 0 reasoning)" in report.text


async def test_an_unknown_command_gets_a_hint(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "/frobnicate now")
            await w.said(chat, lambda t: t.startswith("I don't know that command"))
        assert w.up.chat_requests == []
