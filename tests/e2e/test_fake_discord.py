"""End-to-end: the real discord.py client against tests/fakes/discord (REST v10 + gateway on 127.0.0.1).

Proves the fake is faithful enough for the Discord adapter's tests: login, events, limits, uploads, slash commands.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import warnings
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import yarl

from tests.fakes.discord import FakeChannel, FakeDiscord, FakeGuild, FakeUser, Upload, point_discord_py_at
from tests.fakes.discord.models import MessageFlag

with warnings.catch_warnings():
    # discord.py imports the stdlib audioop, deprecated since Python 3.11; filterwarnings = error would fail here.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import app_commands
    from discord.gateway import DiscordWebSocket

pytestmark = pytest.mark.e2e

READY_TIMEOUT_SECONDS = 0.05  # discord.py waits this long after the last GUILD_CREATE before on_ready
STARTUP_SECONDS = 5.0
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet")


def png(width: int, height: int) -> bytes:
    """A valid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class ProbeClient(discord.Client):
    """A minimal bot recording what reaches it; /imagine defers then follows up, /model autocompletes."""

    def __init__(self, *, gateway_from_rest: bool = False, message_content: bool = True, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = intents.guild_messages = intents.dm_messages = True
        intents.message_content = message_content
        super().__init__(intents=intents, guild_ready_timeout=READY_TIMEOUT_SECONDS, **options)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.received: list[discord.Message] = []
        self.threads: list[discord.Thread] = []
        self.reference_images: list[bytes] = []
        self.command_errors: list[Exception] = []
        self.resumed = 0
        self._gateway_from_rest = gateway_from_rest
        self._add_commands()

    def _add_commands(self) -> None:
        @self.tree.command(description="Draw a picture")
        async def imagine(
            interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
        ) -> None:
            await interaction.response.defer(thinking=True)
            if image is not None:
                self.reference_images.append(await image.read())
            await interaction.followup.send(f"Here is {prompt}", file=discord.File(io.BytesIO(png(4, 3)), "art.png"))

        @self.tree.command(description="Choose the model")
        async def model(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.send_message(f"Model set to {name}", ephemeral=True)

        @self.tree.command(description="Forget the conversation")
        async def reset(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(content="Conversation reset")

        @model.autocomplete("name")
        async def model_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=m, value=m) for m in MODELS if m.startswith(current)]

        @self.tree.error
        async def on_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            self.command_errors.append(error)

    async def setup_hook(self) -> None:
        if self._gateway_from_rest:
            # What an adapter given only DISCORD_API_BASE_URL does: take the gateway from GET /gateway/bot.
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        self.received.append(message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads.append(thread)

    async def on_resumed(self) -> None:
        self.resumed += 1

    def from_user(self, user: FakeUser) -> list[discord.Message]:
        return [m for m in self.received if m.author.id == user.id]


@asynccontextmanager
async def running(dc: FakeDiscord, client: ProbeClient | None = None) -> AsyncIterator[ProbeClient]:
    """Log `client` into the fake, connect, wait for on_ready; close everything on exit."""
    client = client or ProbeClient()
    gateway = None if client._gateway_from_rest else dc.gateway_url
    with point_discord_py_at(dc.rest_base, gateway):
        await client.login(dc.token)
        connection = asyncio.create_task(client.connect())
        ready = asyncio.create_task(client.ready.wait())
        try:
            await asyncio.wait({connection, ready}, timeout=STARTUP_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if connection.done():
                connection.result()  # raises what stopped the connection
            assert client.ready.is_set(), "on_ready never came"
            yield client
        finally:
            ready.cancel()
            await client.close()
            await asyncio.gather(connection, ready, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class World:
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeUser


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def world(dc: FakeDiscord) -> World:
    alice = dc.add_user("alice")
    guild = dc.add_guild("Parley Test", members=[alice])
    return World(guild, dc.add_channel(guild, "general"), alice)


@pytest.fixture
async def bot(dc: FakeDiscord, world: World) -> AsyncIterator[ProbeClient]:
    async with running(dc) as client:
        yield client


def text_channel(client: discord.Client, channel: FakeChannel) -> discord.TextChannel:
    found = client.get_channel(channel.id)
    assert isinstance(found, discord.TextChannel)
    return found


async def test_login_gets_ready_with_the_guild_and_gateway_from_gateway_bot(dc: FakeDiscord, world: World) -> None:
    default_gateway = DiscordWebSocket.DEFAULT_GATEWAY
    async with running(dc, ProbeClient(gateway_from_rest=True)) as client:
        assert client.user is not None and client.user.id == dc.bot.id
        guild = client.get_guild(world.guild.id)
        assert guild is not None and [c.name for c in guild.text_channels] == ["general"]
        assert guild.me is not None
        login_routes = ("GET /users/@me", "GET /oauth2/applications/@me", "GET /gateway/bot")
        assert [len(dc.calls_to(route)) for route in login_routes] == [1, 1, 1]
        assert [(c.path, c.compression) for c in dc.connections] == [("/gateway", "zlib-stream")]
        assert dc.identifies[0].intents == client.intents.value
        await dc.wait_for(lambda: dc.heartbeats >= 1)  # discord.py beats at once after HELLO
    assert default_gateway == DiscordWebSocket.DEFAULT_GATEWAY
    assert discord.http.Route.BASE == "https://discord.com/api/v10"


async def test_guild_reply_with_mention_and_attachment_reaches_on_message(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    earlier = await text_channel(bot, world.channel).send("earlier answer")
    picture = png(5, 7)
    dc.user_sends(
        world.channel,
        world.alice,
        "what about this?",
        mentions_bot=True,
        reply_to=earlier.id,
        attachments=[Upload("cat.png", picture)],
    )
    [message] = await dc.wait_for(lambda: bot.from_user(world.alice))
    assert message.content == f"<@{dc.bot.id}> what about this?"
    assert bot.user is not None and bot.user.mentioned_in(message)
    assert message.reference is not None and message.reference.message_id == earlier.id
    assert isinstance(message.reference.resolved, discord.Message)
    assert message.reference.resolved.content == "earlier answer"
    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type, attachment.width, attachment.height) == (
        "cat.png",
        "image/png",
        5,
        7,
    )
    assert await attachment.read() == picture


async def test_direct_message_reaches_on_message_and_the_answer_is_stored(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    dm = dc.dm_channel(world.alice)
    dc.user_sends(dm, world.alice, "hi in private")
    [message] = await dc.wait_for(lambda: bot.from_user(world.alice))
    assert message.guild is None and isinstance(message.channel, discord.DMChannel)
    await message.channel.send("hello alice")
    user = await bot.fetch_user(world.alice.id)
    await user.send("opened through POST /users/@me/channels")
    assert [m.content for m in dc.bot_messages(dm)] == [
        "hello alice",
        "opened through POST /users/@me/channels",
    ]


async def test_send_edit_delete_and_typing_are_recorded(dc: FakeDiscord, world: World, bot: ProbeClient) -> None:
    channel = text_channel(bot, world.channel)
    async with channel.typing():
        sent = await channel.send("draft")
    await sent.edit(content="draft, then final")
    await sent.edit(content="draft, then final")
    doomed = await channel.send("to be deleted")
    await doomed.delete()
    [kept, deleted] = dc.messages(world.channel)
    assert (kept.content, kept.edit_count, kept.noop_edits, kept.versions) == (
        "draft, then final",
        2,
        1,
        ["draft", "draft, then final", "draft, then final"],
    )
    assert deleted.deleted and [m.content for m in dc.bot_messages(world.channel)] == ["draft, then final"]
    assert len(dc.calls_to("POST /channels/{channel_id}/typing")) >= 1
    own = await dc.wait_for(lambda: [m for m in bot.received if m.author.id == dc.bot.id])
    assert own[0].id == kept.id  # the bot's own messages come back as MESSAGE_CREATE, as on Discord
    assert "draft, then final" in dc.all_sent_text() and dc.sent_anywhere("to be deleted")
    assert not dc.sent_anywhere("sk-never-sent") and dc.token not in dc.all_sent_text()


async def test_over_2000_characters_is_http_exception_50035_and_empty_is_50006(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    channel = text_channel(bot, world.channel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "Must be 2000 or fewer in length." in too_long.value.text
    exact = await channel.send("é" * 2000)  # counted in code points, not bytes
    with pytest.raises(discord.HTTPException) as edited_too_long:
        await exact.edit(content="y" * 2001)
    assert edited_too_long.value.code == 50035
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send("   ")
    assert (empty.value.code, empty.value.text) == (50006, "Cannot send an empty message")
    assert [m.content for m in dc.bot_messages(world.channel)] == ["é" * 2000]


async def test_429_has_discord_headers_and_json_and_limits_can_be_switched_off(dc: FakeDiscord, world: World) -> None:
    url = f"{dc.rest_base}/channels/{world.channel.id}/messages"
    headers = {"Authorization": f"Bot {dc.token}"}
    async with aiohttp.ClientSession() as http:
        remaining = []
        for i in range(5):
            async with http.post(url, json={"content": f"m{i}"}, headers=headers) as response:
                assert response.status == 200
                remaining.append(response.headers["X-RateLimit-Remaining"])
                assert response.headers["X-RateLimit-Limit"] == "5"
        async with http.post(url, json={"content": "one too many"}, headers=headers) as limited:
            assert limited.status == 429
            body = await limited.json()
            assert limited.headers["Content-Type"] == "application/json"
            assert {k: limited.headers[k] for k in ("X-RateLimit-Remaining", "X-RateLimit-Scope")} == {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Scope": "user",
            }
            assert float(limited.headers["X-RateLimit-Reset-After"]) == body["retry_after"]
            assert int(limited.headers["Retry-After"]) >= body["retry_after"] > 0
            assert limited.headers["X-RateLimit-Bucket"] and limited.headers["Via"]
        dc.rate_limits.enabled = False
        async with http.post(url, json={"content": "unlimited"}, headers=headers) as unlimited:
            assert unlimited.status == 200
    assert remaining == ["4", "3", "2", "1", "0"]
    assert body == {
        "message": "You are being rate limited.",
        "retry_after": body["retry_after"],
        "global": False,
    }
    assert dc.count_429 == 1 and len(dc.bot_messages(world.channel)) == 6


async def test_discord_py_paces_itself_on_bucket_headers_without_429(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    dc.rate_limits.set_rule("POST /channels/{channel_id}/messages", 3, 0.4)
    channel = text_channel(bot, world.channel)
    started = time.monotonic()
    for i in range(7):
        await channel.send(f"paced {i}")
    assert time.monotonic() - started >= 0.75  # two exhausted windows waited out
    assert dc.count_429 == 0 and len(dc.bot_messages(world.channel)) == 7


async def test_global_429_is_retried_by_discord_py_and_counted(dc: FakeDiscord, world: World, bot: ProbeClient) -> None:
    channels = [world.channel] + [dc.add_channel(world.guild, f"room-{i}") for i in range(3)]
    await dc.wait_for(lambda: all(bot.get_channel(c.id) for c in channels))
    dc.rate_limits.global_per_second = 3
    await asyncio.gather(*(text_channel(bot, c).send(f"hello {c.name}") for c in channels))
    assert dc.count_429 >= 1
    assert [[m.content for m in dc.bot_messages(c)] for c in channels] == [[f"hello {c.name}"] for c in channels]


async def test_file_upload_keeps_bytes_and_over_the_limit_is_40005(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    channel = text_channel(bot, world.channel)
    picture = png(6, 2)
    sent = await channel.send("a picture", file=discord.File(io.BytesIO(picture), "picture.png"))
    [stored] = dc.bot_messages(world.channel)[0].attachments
    assert (stored.filename, stored.content_type, stored.data, stored.width) == (
        "picture.png",
        "image/png",
        picture,
        6,
    )
    assert await sent.attachments[0].read() == picture
    dc.upload_limit_bytes = 1024
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=discord.File(io.BytesIO(b"\0" * 2048), "big.bin"))
    assert (too_big.value.status, too_big.value.code) == (413, 40005)


async def test_slash_commands_sync_and_imagine_defers_then_follows_up(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    guild = discord.Object(world.guild.id)
    bot.tree.copy_global_to(guild=guild)
    synced = await bot.tree.sync(guild=guild)
    assert (
        sorted(c.name for c in synced)
        == sorted(c["name"] for c in dc.commands(world.guild))
        == ["imagine", "model", "reset"]
    )
    assert dc.command_syncs[-1].guild_id == world.guild.id
    reference = png(3, 3)
    interaction = dc.invoke_slash(
        "imagine",
        {"prompt": "a cat", "image": Upload("ref.png", reference)},
        channel=world.channel,
        user=world.alice,
    )
    await dc.wait_for(lambda: interaction.followup_ids)
    assert interaction.deferred and bot.reference_images == [reference]
    # The first follow-up after a deferral replaces the "thinking..." message.
    [answer] = dc.bot_messages(world.channel)
    assert answer.id == interaction.original_id and not answer.loading
    assert answer.content == "Here is a cat" and answer.attachments[0].data.startswith(b"\x89PNG")
    assert answer.versions == ["", "Here is a cat"] and bot.command_errors == []


async def test_autocomplete_and_ephemeral_reply(dc: FakeDiscord, world: World, bot: ProbeClient) -> None:
    asked = dc.autocomplete("model", {"name": "gpt"}, focused="name", channel=world.channel, user=world.alice)
    choices = await dc.wait_for(lambda: asked.choices) or []
    assert [c["value"] for c in choices] == ["gpt-4o", "gpt-4o-mini"]
    chosen = dc.invoke_slash("model", {"name": "gpt-4o"}, channel=world.channel, user=world.alice)
    await dc.wait_for(lambda: chosen.original_id)
    reply = dc.message(chosen.original_id or 0)
    assert reply.content == "Model set to gpt-4o" and reply.flags & MessageFlag.EPHEMERAL
    reset = dc.invoke_slash("reset", channel=world.channel, user=world.alice)
    await dc.wait_for(lambda: reset.original_id and dc.message(reset.original_id).edit_count)
    done = dc.message(reset.original_id or 0)
    assert (done.content, done.ephemeral, done.loading) == ("Conversation reset", True, False)
    assert len(dc.calls_to("PATCH /webhooks/{application_id}/{token}/messages/@original")) == 1


async def test_interaction_answered_after_3_seconds_is_unknown(dc: FakeDiscord, world: World, bot: ProbeClient) -> None:
    dc.interaction_ack_seconds = 0.0  # as if the bot took longer than Discord's 3 s
    late = dc.invoke_slash("model", {"name": "gpt-4o"}, channel=world.channel, user=world.alice)
    await dc.wait_for(lambda: bot.command_errors)
    assert late.callbacks and not late.acknowledged
    error = bot.command_errors[0]
    assert isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, discord.NotFound)
    assert error.original.code == 10062


async def test_thread_creation_dispatches_thread_create_and_thread_messages_arrive(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    starter = await text_channel(bot, world.channel).send("let us talk in a thread")
    thread = await starter.create_thread(name="topic")
    assert thread.id == starter.id  # Discord gives a message's thread the message's id
    await dc.wait_for(lambda: bot.threads)
    assert [t.id for t in bot.threads] == [thread.id] and dc.channel(thread.id).parent_id == world.channel.id
    dc.user_sends(thread.id, world.alice, "inside the thread")
    [message] = await dc.wait_for(lambda: bot.from_user(world.alice))
    assert isinstance(message.channel, discord.Thread) and message.channel.id == thread.id
    await message.channel.send("answer in thread")
    assert [m.content for m in dc.bot_messages(thread.id)] == ["answer in thread"]
    side = await text_channel(bot, world.channel).create_thread(name="side", type=discord.ChannelType.public_thread)
    fetched = await bot.fetch_channel(side.id)
    assert isinstance(fetched, discord.Thread) and (fetched.name, fetched.parent_id) == (
        "side",
        world.channel.id,
    )
    opened = dc.add_thread(world.channel, "alice's topic", owner=world.alice)
    await dc.wait_for(lambda: len(bot.threads) == 3)
    assert bot.threads[-1].id == opened.id and bot.threads[-1].owner_id == world.alice.id


async def test_forced_reconnect_resumes_and_replays_missed_events(
    dc: FakeDiscord, world: World, bot: ProbeClient
) -> None:
    await dc.force_reconnect()
    dc.user_sends(world.channel, world.alice, "after a reconnect")
    await dc.wait_for(lambda: bot.from_user(world.alice))
    await dc.force_reconnect("close", wait=False)
    dc.user_sends(world.channel, world.alice, "sent while disconnected")
    await dc.wait_for(lambda: len(bot.from_user(world.alice)) == 2)
    assert [m.content for m in bot.from_user(world.alice)] == ["after a reconnect", "sent while disconnected"]
    assert len(dc.identifies) == 1 and [r.path for r in dc.resumes] == ["/gateway-resume"] * 2
    assert dc.resumes[1].replayed == 1
    await dc.wait_for(lambda: bot.resumed == 2)
    await text_channel(bot, world.channel).send("still serving")
    assert dc.bot_messages(world.channel)[-1].content == "still serving"


async def test_allowed_mentions_none_makes_everyone_ping_nobody(dc: FakeDiscord, world: World) -> None:
    role = dc.add_role(world.guild, "staff")
    hostile = f"@everyone @here <@{world.alice.id}> <@&{role.id}> look"
    async with running(dc, ProbeClient(allowed_mentions=discord.AllowedMentions.none())) as quiet:
        sent = await text_channel(quiet, world.channel).send(hostile)
        await sent.edit(content=hostile + " again")  # discord.py re-sends the client default on edits
        assert dc.pings == []
        assert [m.allowed_mentions for m in dc.messages(world.channel)] == [[{"parse": []}, {"parse": []}]]
    async with running(dc) as loud:
        await text_channel(loud, world.channel).send(hostile)
    [ping] = dc.pings
    assert ping.outcome.everyone and ping.outcome.here
    assert ping.outcome.users == {world.alice.id} and ping.outcome.roles == {role.id}


async def test_without_message_content_intent_guild_text_is_blank_unless_it_mentions_the_bot(
    dc: FakeDiscord, world: World
) -> None:
    async with running(dc, ProbeClient(message_content=False)) as client:
        dc.user_sends(world.channel, world.alice, "plain chatter")
        dc.user_sends(world.channel, world.alice, "hey bot", mentions_bot=True)
        dc.user_sends(dc.dm_channel(world.alice), world.alice, "private words")
        await dc.wait_for(lambda: len(client.from_user(world.alice)) == 3)
        contents = [m.content for m in client.from_user(world.alice)]
    assert contents == ["", f"<@{dc.bot.id}> hey bot", "private words"]


async def test_disabled_message_content_intent_closes_4014() -> None:
    async with FakeDiscord(message_content_enabled=False) as dc:
        dc.add_guild()
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with running(dc):
                pass
        assert dc.identifies == []
