"""DISCORD_SHARD_IDS / DISCORD_SHARD_COUNT: a process runs its share of a bot's shards, as it tells the gateway.

The fake routes as Discord does (tests/fakes/discord/gateway.py `shard_of`): a guild's events to shard
(guild_id >> 22) % shard_count, DMs to shard 0 only.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import discord
import pytest
import redis.asyncio as redis

from core import ConfigError, open_assistant
from tests.e2e.discord_harness import (
    FAST_PROFILE,
    STARTUP_SECONDS,
    bot_says,
    build_world,
    discord_settings,
    running_bot,
)
from tests.e2e.support import API_KEY, PARLEY, parley_env
from tests.e2e.test_redis_limits import REDIS_URL, redis_client  # noqa: F401  (the fixture)
from tests.fakes.discord import FakeChannel, FakeDiscord
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


def ending_with(text: str) -> Callable[[str], bool]:
    return lambda shown: shown.endswith(text)


async def test_two_processes_with_one_shard_each_answer_dms_and_both_guilds_once_each(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    # Two clients, each with its own assistant on one database, as two pods of deploy/discord.yaml run.
    world = build_world(dc)
    guilds = [dc.add_guild(f"G{n}", members=[world.alice, world.bob], guild_id=n << 22) for n in (1000, 1001, 1002)]
    channels = [dc.add_channel(guild, "talk") for guild in guilds]  # shards 0, 1, 0
    settings = discord_settings(dc, upstream, tmp_path, discord_shard_count=2)
    async with (
        running_bot(dc, settings.model_copy(update={"discord_shard_ids": (0,)})) as first,
        running_bot(dc, settings.model_copy(update={"discord_shard_ids": (1,)})) as second,
    ):
        assert sorted(identify.shard or [] for identify in dc.identifies) == [[0, 2], [1, 2]]
        held = [{g.id for g in first.guilds}, {g.id for g in second.guilds}]
        assert {guilds[0].id, guilds[2].id} <= held[0] and guilds[1].id in held[1] and not held[0] & held[1]
        alice_dm, bob_dm = dc.dm_channel(world.alice), dc.dm_channel(world.bob)
        asked: list[tuple[FakeChannel, str]] = [(alice_dm, "dm from alice"), (bob_dm, "dm from bob")]
        asked += [(channel, f"guild {n}") for n, channel in enumerate(channels)]
        for channel, text in asked:
            author = world.bob if channel is bob_dm else world.alice
            dc.user_sends(channel, author, text, mentions_bot=channel not in (alice_dm, bob_dm))
        for channel, text in asked:
            await bot_says(dc, channel, ending_with(text))
        users = {str(world.alice.id), str(world.bob.id)}
        created = [d for d in dc.delivered if d.event == "MESSAGE_CREATE" and d.data["author"]["id"] in users]
        routed = sorted((d.data["channel_id"], d.shard[0]) for d in created)
        expected = [(str(alice_dm.id), 0), (str(bob_dm.id), 0), *((str(c.id), n % 2) for n, c in enumerate(channels))]
        assert routed == sorted(expected)  # each message reached exactly one process: its shard's
        sent_upstream = [r.last_user_text for r in upstream.chat_requests]  # "Alice: guild 0" in a server
        assert [len([t for t in sent_upstream if t.endswith(text)]) for _, text in asked] == [1] * len(asked)
        assert [len(dc.bot_messages(channel)) for channel, _ in asked] == [1] * len(asked)  # answered once each


async def test_two_shards_with_redis_draw_on_one_request_budget(
    dc: FakeDiscord,
    upstream: FakeUpstream,
    tmp_path: Path,
    redis_client: redis.Redis,  # noqa: F811  (the fixture: fails with CI=true when Redis is away)
) -> None:
    """With REDIS_URL the shards' processes share DISCORD_REQUESTS_PER_SECOND: each alone would send at
    the full rate, so two busy shards without the shared bucket send twice as much."""
    rate, burst = 2.0, 1  # the shared bucket holds max(1, round(rate * 0.1)) requests
    async for key in redis_client.scan_iter("parley:pace:discord:*"):
        await redis_client.delete(key)  # a bucket left by an earlier run must not lend this one requests
    world = build_world(dc)
    guilds = [dc.add_guild(f"G{n}", members=[world.alice], guild_id=n << 22) for n in (1000, 1001)]  # shards 0, 1
    channels = [dc.add_channel(guild, f"talk-{k}") for guild in guilds for k in range(3)]
    for n in range(len(channels)):
        upstream.add_reply(f"answer {n}: " + "word " * 40 + "the end.", chunk_chars=8, tokens_per_second=15)
    settings = discord_settings(
        dc,
        upstream,
        tmp_path,
        discord_shard_count=2,
        redis_url=REDIS_URL,
        discord_requests_per_second=rate,
        discord_edit_interval_seconds=0.3,
    )
    async with (
        running_bot(dc, settings.model_copy(update={"discord_shard_ids": (0,)})),
        running_bot(dc, settings.model_copy(update={"discord_shard_ids": (1,)})),
    ):
        started = time.monotonic()
        for n, channel in enumerate(channels):
            dc.user_sends(channel, world.alice, f"question {n}", mentions_bot=True)

        def all_answered() -> bool:  # the upstream answers in arrival order: any answer, once per channel
            return all(any(m.content.endswith("the end.") for m in dc.bot_messages(c)) for c in channels)

        await dc.wait_for(all_answered, 30)  # at 2 requests a second for both shards: several seconds
    sent = sorted(c.at for c in dc.calls if c.at >= started and "/messages" in c.path and c.method != "GET")
    assert len(sent) >= len(channels) + 2  # every answer, and edits of some
    assert dc.count_429 == 0
    # Any run of calls fits the one bucket: its burst, the rate over the run's span, and one call of slack
    # for the time between Redis granting a call and the fake receiving it.
    worst = max(j - i + 1 - rate * (sent[j] - sent[i]) for i in range(len(sent)) for j in range(i, len(sent)))
    assert worst <= burst + 1, f"{worst:.2f} calls over the shared budget ({len(sent)} calls)"


async def _parley_run_discord(cwd: Path, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the process
        return await asyncio.create_subprocess_exec(
            PARLEY, "run", "discord", cwd=cwd, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )


async def _stopped(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, as Kubernetes stops a pod; SIGKILL if it has not ended within 20 s. Its exit status."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        process.kill()
        return await process.wait()


def identified(dc: FakeDiscord, sessions: int) -> Callable[[], bool]:
    return lambda: len(dc.identifies) == sessions


async def test_two_parley_run_discord_processes_split_by_shard_settings_answer_each_message_once(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """As deploy/discord.yaml runs them: real `parley run discord` processes, DISCORD_SHARD_IDS 0 and 1 of 2."""
    world = build_world(dc)
    odd = dc.add_guild("Odd", members=[world.alice], guild_id=2001 << 22)  # shard 1
    odd_channel = dc.add_channel(odd, "odd")
    env = parley_env(
        LLM_BASE_URL=upstream.base_url, LLM_API_KEY=API_KEY, CHAT_MODEL="fake/echo", LLM_MAX_RETRIES="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'parley.db'}", DISCORD_BOT_TOKEN=dc.token,
        DISCORD_API_BASE_URL=dc.rest_base, DISCORD_SHARD_COUNT="2", LOG_LEVEL="INFO",
    )  # fmt: skip
    processes: list[asyncio.subprocess.Process] = []
    logs = [tmp_path / f"shard{shard}.log" for shard in (0, 1)]
    try:
        for shard, log in enumerate(logs):
            processes.append(await _parley_run_discord(tmp_path, env | {"DISCORD_SHARD_IDS": str(shard)}, log))
            # One after the other: the fake's record of IDENTIFYs then says which process is which.
            await dc.wait_for(identified(dc, shard + 1), 30)
        assert [identify.shard for identify in dc.identifies] == [[0, 2], [1, 2]]
        dm, alice = dc.dm_channel(world.alice), str(world.alice.id)
        dc.user_sends(dm, world.alice, "dm to shard zero")
        dc.user_sends(odd_channel, world.alice, "guild on shard one", mentions_bot=True)
        await bot_says(dc, dm, ending_with("dm to shard zero"))
        await bot_says(dc, odd_channel, ending_with("guild on shard one"))
        created = [d for d in dc.delivered if d.event == "MESSAGE_CREATE" and d.data["author"]["id"] == alice]
        assert sorted((d.data["channel_id"], d.shard) for d in created) == sorted(
            [(str(dm.id), (0, 2)), (str(odd_channel.id), (1, 2))]
        )
        assert len(dc.bot_messages(dm)) == len(dc.bot_messages(odd_channel)) == 1
        assert len(upstream.chat_requests) == 2
    finally:
        codes = [await _stopped(process) for process in processes]
    assert codes == [0, 0]  # SIGTERM: a clean stop
    for shard, log in enumerate(logs):
        output = log.read_text()
        assert f"Shard ID {shard} has connected" in output  # discord.py's line: each process ran its own shard
        assert "Traceback" not in output and dc.token not in output and API_KEY not in output
