"""DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT: a process runs its share of a bot's shards, as it tells the gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord
import pytest

from core import ConfigError, open_assistant
from tests.e2e.discord_harness import (
    FAST_PROFILE,
    STARTUP_SECONDS,
    bot_says,
    build_world,
    discord_settings,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

from bots.discord_adapter import ParleyDiscord, build_client  # isort: skip  (after the harness's warning filter)

pytestmark = pytest.mark.e2e


async def test_a_process_running_shard_1_hears_only_its_guilds_and_no_dms(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    # Discord routes a guild's events to shard (guild_id >> 22) % shard_count and DMs to shard 0 only
    # (Gateway, "Sharding"). This test once expected a shard-1-only process to answer a DM: with the
    # fake routing as Discord does, the DM goes to whichever process runs shard 0.
    world = build_world(dc)
    mine = dc.add_guild("Odd", members=[world.alice], guild_id=1001 << 22)  # (id >> 22) % 2 == 1
    theirs = dc.add_guild("Even", members=[world.alice], guild_id=1002 << 22)
    mine_channel, theirs_channel = dc.add_channel(mine, "odd"), dc.add_channel(theirs, "even")
    settings = discord_settings(dc, upstream, tmp_path, discord_shard_ids="1", discord_shard_count=2)
    async with open_assistant(settings) as assistant:
        bot = build_client(assistant=assistant, settings=settings, profile=FAST_PROFILE, guild_ready_timeout=0.05)
        async with bot:
            running = asyncio.create_task(bot.start(dc.token))
            try:
                await asyncio.wait_for(bot.wait_until_ready(), STARTUP_SECONDS)
                assert [identify.shard for identify in dc.identifies] == [[1, 2]]
                assert bot.get_guild(mine.id) is not None and bot.get_guild(theirs.id) is None
                dm = dc.dm_channel(world.alice)
                dc.user_sends(dm, world.alice, "hello shard")
                dc.user_sends(theirs_channel, world.alice, "not yours", mentions_bot=True)
                dc.user_sends(mine_channel, world.alice, "yours", mentions_bot=True)
                await bot_says(dc, mine_channel, lambda text: text.endswith("yours"))
                alice = str(world.alice.id)
                created = [d for d in dc.delivered if d.event == "MESSAGE_CREATE" and d.data["author"]["id"] == alice]
                assert [(d.shard, d.data["channel_id"]) for d in created] == [((1, 2), str(mine_channel.id))]
                assert dc.bot_messages(dm) == [] and dc.bot_messages(theirs_channel) == []
            finally:
                await bot.close()
                await asyncio.gather(running, return_exceptions=True)


async def test_unsharded_by_default_and_shard_settings_are_checked(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = discord_settings(dc, upstream, tmp_path)
    async with open_assistant(settings) as assistant:
        assert type(build_client(assistant=assistant, settings=settings)) is ParleyDiscord
        sharded = build_client(assistant=assistant, settings=settings.model_copy(update={"discord_shard_count": 4}))
        assert isinstance(sharded, discord.AutoShardedClient)
        assert sharded.shard_count == 4 and sharded.shard_ids is None  # all four shards in this process
        with pytest.raises(ConfigError, match="DISCORD_SHARD_COUNT"):
            build_client(assistant=assistant, settings=settings.model_copy(update={"discord_shard_ids": (0,)}))
        with pytest.raises(ConfigError, match="below"):
            wrong = {"discord_shard_ids": (0, 2), "discord_shard_count": 2}
            build_client(assistant=assistant, settings=settings.model_copy(update=wrong))
