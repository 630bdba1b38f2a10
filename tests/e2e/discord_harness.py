"""The real Discord adapter against tests/fakes/discord and the fake upstream, ten times faster than life.

Pacing is scaled, not switched off: the fake's per-route buckets and the adapter's Profile both run at
`SPEED` x real time, so "zero 429s" still means the adapter keeps Discord's published pace.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core import Settings, open_assistant
from tests.e2e.support import API_KEY as API_KEY  # the tests' secret, imported from here too
from tests.e2e.support import make_settings
from tests.fakes.discord import (
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeInteraction,
    FakeUser,
    RateLimitPolicy,
    StoredMessage,
)
from tests.fakes.upstream import FakeUpstream
from tests.profiles import DISCORD

with warnings.catch_warnings():
    # discord.py imports the stdlib audioop, deprecated since Python 3.11.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from bots.discord_adapter import ParleyDiscord, build_client

SPEED = 0.1  # 1 s of Discord's limits and of the adapter's pacing takes 0.1 s here
FAST_PROFILE = replace(
    DISCORD,
    edit_interval_seconds=DISCORD.edit_interval_seconds * SPEED,
    typing_interval_seconds=DISCORD.typing_interval_seconds * SPEED,
)
STARTUP_SECONDS = 5.0
WAIT_SECONDS = 5.0


def fast_limits(*, announce_buckets: bool = False) -> RateLimitPolicy:
    """The fake's own Discord buckets (5 message writes / 5 s per channel...) with windows scaled by SPEED.

    No X-RateLimit headers by default: discord.py then cannot wait before a bucket runs out, so the
    fixtures' "zero 429s" checks the adapter's own pace rather than discord.py's.
    """
    policy = RateLimitPolicy(announce_buckets=announce_buckets)
    policy.scale(SPEED)
    return policy


@dataclass(frozen=True, slots=True)
class World:
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeUser
    bob: FakeUser


def build_world(dc: FakeDiscord) -> World:
    alice = dc.add_user("alice", global_name="Alice")
    bob = dc.add_user("bob", global_name="Bob")
    guild = dc.add_guild("Parley Test", members=[alice, bob])
    return World(guild, dc.add_channel(guild, "general"), alice, bob)


def discord_settings(dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path, **overrides: Any) -> Settings:
    """Only the REST base is given: the gateway URL comes from GET /gateway/bot, as in production."""
    values: dict[str, Any] = {
        "stream_idle_timeout": 1.0,
        "llm_max_retries": 1,
        "discord_bot_token": dc.token,
        "discord_api_base_url": dc.rest_base,
    }
    return make_settings(upstream, tmp_path, **(values | overrides))


@asynccontextmanager
async def running_bot(
    dc: FakeDiscord, settings: Settings, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[ParleyDiscord]:
    """The real assistant and ParleyDiscord, connected and ready; everything closed on exit. `clock` is the
    assistant's wall clock (Unix seconds): a test of "this minute" or "today" sets it. With DISCORD_SHARD_COUNT
    in `settings`, the sharded client of `parley run discord`, running DISCORD_SHARD_IDS.
    """
    async with open_assistant(settings, clock=clock) as assistant:
        bot = build_client(assistant=assistant, settings=settings, profile=FAST_PROFILE, guild_ready_timeout=0.05)
        async with bot:
            running = asyncio.create_task(bot.start(dc.token))
            ready = asyncio.create_task(bot.wait_until_ready())
            try:
                await asyncio.wait({running, ready}, timeout=STARTUP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    running.result()  # raises what stopped the bot
                assert bot.is_ready(), "the bot never got ready"
                yield bot
            finally:
                ready.cancel()
                await bot.close()
                await asyncio.gather(running, ready, return_exceptions=True)


async def final_reply(
    dc: FakeDiscord, channel: FakeChannel | int, expected: str, *, count: int = 1
) -> list[StoredMessage]:
    """Wait until the bot's last `count` messages in `channel` show `expected` (joined), and return them."""

    def done() -> list[StoredMessage] | None:
        shown = dc.bot_messages(channel)[-count:]
        return shown if len(shown) == count and "".join(m.content for m in shown) == expected else None

    found = await dc.wait_for(done, WAIT_SECONDS)
    return found


async def bot_says(dc: FakeDiscord, channel: FakeChannel | int, test: Callable[[str], bool]) -> StoredMessage:
    """Wait for a visible bot message in `channel` whose content passes `test`."""

    def found() -> StoredMessage | None:
        return next((m for m in dc.bot_messages(channel) if test(m.content)), None)

    return await dc.wait_for(found, WAIT_SECONDS)


async def answered(dc: FakeDiscord, interaction: FakeInteraction) -> StoredMessage:
    """The message a deferred command ended with (its first follow-up replaces the "thinking…" one)."""
    await dc.wait_for(lambda: interaction.followup_ids)
    return dc.message(interaction.followup_ids[-1])
