"""The Discord adapter at Discord's limits: a 429 nothing announced, and long answers at the channel's pace.

The fake sends no X-RateLimit headers (discord_harness.fast_limits), so discord.py cannot wait before a
bucket runs out: staying clear of 429s is the adapter's own pacing against the fake's 5 writes / 5 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, discord_settings, fast_limits, running_bot
from tests.fakes.discord import FakeDiscord, StoredMessage
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

DISCORD_MAX_CHARS = 2000  # Create Message: "Message contents (up to 2000 characters)"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
WRITES = ("POST /channels/{channel_id}/messages", EDIT)


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    """conftest's fake Discord without its zero-429 check: these tests inject 429s and count them."""
    async with FakeDiscord(rate_limits=fast_limits()) as fake:
        yield fake


async def _replies(dc: FakeDiscord, channel_id: int, last_word: str) -> list[StoredMessage]:
    def done() -> list[StoredMessage] | None:
        shown = dc.bot_messages(channel_id)
        return shown if shown and shown[-1].content.endswith(last_word) else None

    return await dc.wait_for(done, 20.0)


async def test_a_429_without_warning_headers_mid_reply_loses_nothing_and_holds_the_channel(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    answer = " ".join(f"token{n}" for n in range(150))
    upstream.add_reply(answer, chunk_chars=8, tokens_per_second=100)  # ~1.2 s of streaming
    dc.inject_429(EDIT, retry_after=0.3)  # the first edit; the bucket stays closed for 0.3 s
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "count")
        [reply] = await _replies(dc, dm.id, "token149")
    assert reply.content == answer
    assert all(answer.startswith(version.rstrip("…").rstrip()) for version in reply.versions)  # in order
    # A write before retry_after would have been refused again: exactly one 429 means the channel waited.
    assert dc.count_429 == 1
    writes = [c for c in dc.calls if c.route in WRITES]
    refused = next(i for i, c in enumerate(writes) if c.status == 429)
    assert writes[refused + 1].at - writes[refused].at >= 0.3


async def test_a_5000_character_channel_answer_streams_within_five_writes_per_five_seconds(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    paragraphs = [f"Part {n}: " + " ".join(f"w{n}x{i}" for i in range(80)) for n in range(10)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 2 * DISCORD_MAX_CHARS
    upstream.add_reply(answer, chunk_chars=20, tokens_per_second=150)  # ~1.8 s: over three 0.5 s buckets
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(world.channel, world.alice, f"{dc.bot.mention} write", mentions_bot=True)
        shown = await _replies(dc, world.channel.id, "w9x79")
    assert len(shown) >= 3 and all(len(m.content) <= DISCORD_MAX_CHARS for m in shown)
    assert " ".join(m.content for m in shown).split() == answer.split()
    assert len([c for c in dc.calls if c.route in WRITES]) > 6  # it streamed
    assert dc.count_429 == 0, "the adapter went over the channel's 5 writes per 5 s"
