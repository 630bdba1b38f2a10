"""How answers end, through the real Telegram and Discord adapters: the reply deadline against endless
keep-alives, finish_reason length / content_filter, error events and malformed chunks mid-stream.

Each scenario is one message in the same private conversation, in order; the next message is only sent
once the last answer is final, so every scenario also proves the conversation was free again. What the
fake platform shows last and what the store kept (text, incomplete) are both checked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.discord_harness import API_KEY as DISCORD_API_KEY
from tests.e2e.discord_harness import bot_says, build_world, discord_settings, running_bot
from tests.e2e.telegram_harness import reads, telegram_world
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram.entities import utf16_len
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

# The keep-alive scenario ends at the deadline; the idle timeout is shorter, so only comments that keep
# the stream from counting as stalled let it get there.
TIMING: dict[str, Any] = {"reply_timeout_seconds": 2.5, "stream_idle_timeout": 1.0, "llm_max_retries": 0}

TOO_LONG = "The answer took too long and was stopped."
CUT_SHORT = "The answer was cut short."
LENGTH = "The answer hit the length limit."
FILTERED = "The provider filtered this answer."
BUSY = "The model service is busy right now. Please try again in a moment."


@dataclass(frozen=True)
class Scenario:
    message: str
    script: Callable[[FakeUpstream], None]
    text: str  # the answer shown ("" for none)
    note: str  # the note after it ("" for none)
    stored: tuple[str, bool] | None  # the assistant row kept: (text, incomplete), None for no row


def _echo(message: str) -> Scenario:
    return Scenario(message, lambda up: None, f"Echo: {message}", "", (f"Echo: {message}", False))


SCENARIOS = [
    Scenario(
        "keep-alives forever",
        lambda up: up.add_fault("keepalive_after", 19, keepalive_comment="OPENROUTER PROCESSING"),
        "The quick brown fox",
        TOO_LONG,
        ("The quick brown fox", True),
    ),
    _echo("free again?"),
    Scenario(
        "a long one",
        lambda up: up.add_reply("A long answer that stops mid", finish_reason="length"),
        "A long answer that stops mid",
        LENGTH,
        ("A long answer that stops mid", False),
    ),
    Scenario(
        "a touchy one",
        lambda up: up.add_reply("I can tell you that", finish_reason="content_filter"),
        "I can tell you that",
        FILTERED,
        ("I can tell you that", False),
    ),
    Scenario(
        "error chunk",
        lambda up: up.add_fault("error_event_after", 9),
        "The quick",
        CUT_SHORT,
        ("The quick", True),
    ),
    Scenario(  # the gateway leaves the stream open after its error event: only the event may end the reply
        "error event",
        lambda up: up.add_fault("sse_error_after", 15, after_fault="keep_alive"),
        "The quick brown",
        CUT_SHORT,
        ("The quick brown", True),
    ),
    Scenario(  # `event: error` whose data is the error's own fields: only the event type marks it
        "error event first",
        lambda up: up.add_fault("sse_error_after", 0, error_payload={"message": "Rate limit exceeded", "code": 429}),
        "",
        BUSY,
        None,
    ),
    Scenario(  # a normal end follows the garbage: it must not be shown as a whole answer
        "garbage",
        lambda up: up.add_fault("malformed_after", 25, malformed="choices_not_a_list", after_fault="continue"),
        "The quick brown fox jumps",
        CUT_SHORT,
        ("The quick brown fox jumps", True),
    ),
    _echo("still there?"),
]


def shown(scenario: Scenario, note_markup: str) -> str:
    """The final message: the answer, then the note in the platform's small print (if any)."""
    note = f"{note_markup}⚠️ {scenario.note}" if scenario.note else ""
    return "\n\n".join(part for part in (scenario.text, note) if part)


def stored_replies(database: Path) -> list[tuple[str, bool]]:
    with sqlite3.connect(database) as db:
        rows = db.execute("select text, incomplete from messages where role = 'assistant' order by id").fetchall()
    return [(text, bool(incomplete)) for text, incomplete in rows]


def expected_rows() -> list[tuple[str, bool]]:
    return [s.stored for s in SCENARIOS if s.stored is not None]


async def test_telegram_shows_every_kind_of_ending_and_keeps_serving(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **TIMING) as w:
        user = w.tg.user("Ann")
        chat = w.tg.private_chat(user)
        async with w.bot():
            for number, scenario in enumerate(SCENARIOS):
                scenario.script(w.up)
                w.tg.user_sends(chat, user, scenario.message)
                expected = shown(scenario, "")  # Telegram: the note is in italics (an entity)
                message = await w.said(chat, reads(expected))
                assert len(w.texts(chat)) == number + 1, w.texts(chat)
                if scenario.note:
                    italic = message.entities[-1]
                    assert italic.type == "italic" and italic.offset + italic.length == utf16_len(expected)
        texts = w.texts(chat)
    assert not any("Traceback" in text or "fake error" in text for text in texts)
    assert " over the lazy dog" not in "".join(texts)  # nothing after the malformed chunk was shown
    assert stored_replies(tmp_path / "parley.db") == expected_rows()


async def test_discord_shows_every_kind_of_ending_and_keeps_serving(dc: FakeDiscord, tmp_path: Path) -> None:
    world = build_world(dc)
    dm = dc.dm_channel(world.alice)
    async with (
        FakeUpstream(api_key=DISCORD_API_KEY) as upstream,
        running_bot(dc, discord_settings(dc, upstream, tmp_path, **TIMING)),
    ):
        for number, scenario in enumerate(SCENARIOS):
            scenario.script(upstream)
            dc.user_sends(dm, world.alice, scenario.message)
            expected = shown(scenario, "-# ")  # Discord: the note is subtext
            await bot_says(dc, dm, reads(expected))
            assert [m.content for m in dc.bot_messages(dm)][number] == expected
    texts = [m.content for m in dc.bot_messages(dm)]
    assert len(texts) == len(SCENARIOS)
    assert not any("Traceback" in text or "fake error" in text for text in dc.all_sent_text())
    assert " over the lazy dog" not in "".join(dc.all_sent_text())
    assert stored_replies(tmp_path / "parley.db") == expected_rows()
