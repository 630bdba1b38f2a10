"""The Telegram adapter at Telegram's limits: flood waits, the group pace, UTF-16 lengths, refused links.

The fake enforces its own Bot API rules (tests/fakes/telegram/limits.py, methods.py), scaled by the
harness's SPEED; the adapter runs at its shipped pacing defaults, scaled the same way.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.e2e.telegram_harness import BOT_USERNAME, World, telegram_world
from tests.fakes.telegram import utf16_len

pytestmark = pytest.mark.e2e

PROSE = ("Streams grow in place while the model writes, and every reply ends with its whole text. " * 2).strip()
TELEGRAM_MAX_UTF16 = 4096  # sendMessage: "1-4096 characters after entities parsing", in UTF-16 units


def _wide_answer(length: int) -> str:
    """Mostly emoji (2 UTF-16 units each) and CJK, in short lines, with a little ASCII: `length` code points."""
    rng = random.Random(12)
    emoji = [chr(c) for c in range(0x1F600, 0x1F640)]
    cjk = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    parts: list[str] = []
    size = 0
    line = 0
    while size < length:
        line += 1
        body = "".join(rng.choice(emoji if rng.random() < 0.6 else cjk) for _ in range(rng.randint(20, 60)))
        piece = f"{body} {line}\n"
        parts.append(piece)
        size += len(piece)
    return "".join(parts)[:length].rstrip() + " END"


async def test_a_flood_wait_in_the_middle_of_a_reply_loses_nothing_and_holds_the_chat(tmp_path: Path) -> None:
    answer = " ".join(f"word{n}" for n in range(300))
    # One 429 injected; the fake refuses every call to the chat before retry_after (a second 429 would
    # fail the world's expect_429s), so the answer completing proves the adapter waited it out.
    async with telegram_world(tmp_path, expect_429s=1, telegram_stream_mode="edit") as w:
        w.up.add_reply(answer, chunk_chars=12, tokens_per_second=60)  # ~2 s of streaming
        user, chat = w.dm("Ann")
        w.tg.fail_next("editMessageText", 429, "Too Many Requests: retry after 1", retry_after=1)
        async with w.bot():
            w.tg.user_sends(chat, user, "count for me")
            [message] = await w.final(chat, answer)
            await w.idle()
        refused = next(c for c in w.tg.calls_of("editMessageText") if c.status == 429)
        later = [c for c in w.tg.calls if c.time > refused.time and c.params.get("chat_id") is not None]
        writes = [c for c in later if c.method in ("sendMessage", "editMessageText")]
        assert writes and writes[0].time - refused.time >= 1.0  # held for retry_after
        assert message.history[-1] == answer and all(answer.startswith(h) for h in message.history if h)


async def test_relative_links_are_shown_as_text_and_the_rest_keeps_its_formatting(tmp_path: Path) -> None:
    """The fake refuses a text_link to a relative URL ("URL host is empty"), as Telegram does; the product
    never sends one: relative and fragment links are plain words, the https link and the bold survive."""
    tail = " ".join(f"more{n}" for n in range(60))
    answer = (
        "See [the README](README.md) and jump back to [top](#intro).\n\n"
        f"**Bold** still reads fine, and [a real link](https://example.org/x) too.\n\n{tail}"
    )
    shown = f"See the README and jump back to top.\n\nBold still reads fine, and a real link too.\n\n{tail}"
    async with telegram_world(tmp_path) as w:
        w.up.add_reply(answer, chunk_chars=10, tokens_per_second=80)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "where are the docs?")
            [message] = await w.final(chat, shown)
            await w.idle()
        assert {(e.type, e.url) for e in message.entities} == {("bold", None), ("text_link", "https://example.org/x")}
        assert not [c for c in w.tg.errors() if c.status == 400]
        assert w.texts(chat) == [shown]


async def test_any_400_on_formatted_text_falls_back_to_plain_text_and_the_answer_completes(tmp_path: Path) -> None:
    """Whatever Telegram objects to in the entities (here an entity it calls invalid), that message is sent
    again as plain text and the stream goes on; only "can't parse entities" used to fall back."""
    tail = " ".join(f"more{n}" for n in range(60))
    answer = f"**Bold** and [a link](https://example.org/x).\n\n{tail}"
    shown = f"Bold and a link.\n\n{tail}"
    refusal = "Bad Request: entity URL 'https://example.org/x' is invalid: wrong HTTP URL"
    async with telegram_world(tmp_path, telegram_stream_mode="edit") as w:
        w.up.add_reply(answer, chunk_chars=10, tokens_per_second=80)
        user, chat = w.dm("Ann")
        for method in ("sendMessage", "editMessageText"):  # whichever call first carries the entities
            w.tg.fail_next(method, 400, refusal, when=lambda params: bool(params.get("entities")))
        async with w.bot():
            w.tg.user_sends(chat, user, "where are the docs?")
            [message] = await w.final(chat, shown)
            await w.idle()
        assert message.entities == ()  # this message fell back to plain text
        refused = [c for c in w.tg.errors() if c.status == 400]
        assert len(refused) == 1 and refused[0].description == refusal
        assert w.texts(chat) == [shown]


async def test_a_12000_character_group_answer_streams_under_twenty_messages_a_minute(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {n}: " + " ".join(f"word{n}x{i}" for i in range(95)) for n in range(14)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) >= 12_000
    async with telegram_world(tmp_path) as w:
        # ~6 s of streaming = 30 s of Telegram time at SPEED 0.2: long enough that editing at the
        # private-chat pace would send more than 20 messages and edits within one (scaled) minute.
        w.up.add_reply(answer, chunk_chars=40, tokens_per_second=50)
        alice = w.tg.user("Alice")
        group = w.tg.supergroup()
        async with w.bot():
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} write a lot")
            await w.said(group, lambda t: t.endswith("word13x94"), timeout_seconds=30)
            await w.idle()
        texts = w.texts(group)
        assert len(texts) >= 3 and all(utf16_len(t) <= TELEGRAM_MAX_UTF16 for t in texts)
        assert " ".join(texts).split() == answer.split()
        writes = [c for c in w.tg.calls if c.method in ("sendMessage", "editMessageText")]
        assert len(writes) > 8  # it did stream, not just send the final text
    # telegram_world asserts zero 429s on exit: the group's 20-per-minute rule was kept.


async def test_a_9000_character_emoji_and_cjk_answer_arrives_whole_in_several_messages(tmp_path: Path) -> None:
    answer = _wide_answer(9000)
    assert utf16_len(answer) > 3 * TELEGRAM_MAX_UTF16  # 4+ messages by UTF-16 units, 3 by code points
    async with telegram_world(tmp_path, telegram_stream_mode="edit") as w:
        w.up.add_reply(answer, chunk_chars=300, tokens_per_second=40)
        user, chat = w.dm("Ann")
        async with w.bot():
            w.tg.user_sends(chat, user, "emoji please")
            await w.said(chat, lambda t: t.endswith("END"))
            await w.idle()
        texts = w.texts(chat)
        assert len(texts) >= 4 and all(utf16_len(t) <= TELEGRAM_MAX_UTF16 for t in texts)
        assert " ".join(texts).split() == answer.split()
        assert [c for c in w.tg.errors() if c.status == 400] == []


async def _requests_reaching_upstream(w: World, seconds: float) -> int:
    """How many chat requests the upstream has seen after `seconds`."""
    await asyncio.sleep(seconds)
    return len(w.up.chat_requests)


@pytest.mark.parametrize("limit", [None, 3])
async def test_replies_in_flight_do_not_hold_new_messages_back(tmp_path: Path, limit: int | None) -> None:
    """A reply holds its update until its last text is sent (under load: until the request budget allows
    it). PTB's default of 256 such updates once left a busy bot's new messages unread; the default now lets
    thousands run, and TELEGRAM_CONCURRENT_UPDATES still bounds them (here 3: the fourth message waits)."""
    overrides = {} if limit is None else {"telegram_concurrent_updates": limit}
    async with telegram_world(tmp_path, **overrides) as w:
        for _ in range(4):
            w.up.add_reply(PROSE, chunk_chars=4, tokens_per_second=20)  # ~2.3 s each
        async with w.bot():
            for name in ("Ann", "Bob", "Cid", "Dee"):
                user, chat = w.dm(name)
                w.tg.user_sends(chat, user, f"hello from {name}")
            assert await _requests_reaching_upstream(w, 1.0) == (4 if limit is None else 3)
            await w.final(chat, PROSE)  # all four are answered in the end
