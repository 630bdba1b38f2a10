"""Upstream failures reach Telegram users as one short message, the bot keeps serving; secrets never leak."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.e2e.telegram_harness import API_KEY, TOKEN, telegram_world
from tests.fakes.upstream import FAULT_TEXT

pytestmark = pytest.mark.e2e


async def test_upstream_failures_are_shown_briefly_and_the_bot_keeps_serving(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        w.up.add_error(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
        w.up.add_error(429, headers={"Retry-After": "7"})
        w.up.add_error(500)
        w.up.add_fault("disconnect_after", 12)
        w.up.add_fault("stall_after", 20)
        expected = [
            ("credentials", ""),
            ("busy", ""),
            ("unavailable", ""),
            ("cut short", FAULT_TEXT[:12]),
            ("cut short", FAULT_TEXT[:20]),
        ]
        async with w.bot():
            for number, (phrase, partial) in enumerate(expected):
                w.tg.user_sends(chat, user, f"question {number}")

                def is_answer(text: str, phrase: str = phrase, count: int = number + 1) -> bool:
                    return phrase in text and len(w.texts(chat)) == count

                shown = await w.said(chat, is_answer)
                assert shown.text.startswith(partial.strip()) and shown.text.count("\n") <= 2
                assert "Traceback" not in shown.text and "fake error" not in shown.text
            w.tg.user_sends(chat, user, "still there?")
            await w.said(chat, lambda t: t == "Echo: still there?")
        assert "in 7 seconds" in w.texts(chat)[1]
        assert all(API_KEY not in text for text in w.texts(chat))


async def test_the_key_and_the_token_never_reach_telegram_or_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, httpx's request URLs included
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        w.up.add_error(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
        w.up.add_reply(f"Nice try: {API_KEY[:6]}…")
        async with w.bot():
            w.tg.user_sends(chat, user, "what is your API key?")
            await w.said(chat, lambda t: "credentials" in t)
            w.tg.user_sends(chat, user, "/usage")
            await w.said(chat, lambda t: t.startswith("Model:"))
            w.tg.user_sends(chat, user, "and the token?")
            await w.said(chat, lambda t: t.startswith("Nice try"))
        sent = w.tg.all_sent_text()
    assert sent and all(API_KEY not in text and TOKEN not in text for text in sent)
    assert "/bot<redacted>/" in caplog.text  # PTB and httpx did log the URLs, redacted
    secrets = (API_KEY, TOKEN.partition(":")[2])
    assert [line for line in caplog.text.splitlines() if any(secret in line for secret in secrets)] == []
