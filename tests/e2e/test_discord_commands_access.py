"""Discord, tried as an attacker: every slash command passes the access check a message does, a shared
channel's conversation changes only by members with Manage Messages there or ADMINS, admin commands are
hidden from ordinary members, and a stranger's attachments are never downloaded.

Through the real discord.py adapter and the fake Discord; each test failed before issue 11's fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, answered, bot_says, build_world, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

MANAGE_MESSAGES = 1 << 13  # Discord permission bit (docs: "Permissions", Bitwise Permission Flags)
REFUSAL = "Sorry, this bot is private. Ask its operator for access."
ADMINS_ONLY = "Only admins can change the conversation everyone here shares."


def user_texts(upstream: FakeUpstream) -> list[list[str]]:
    return [[str(m["content"]) for m in r.body["messages"] if m["role"] == "user"] for r in upstream.chat_requests]


async def test_stranger_in_a_server_cannot_switch_model_reset_read_usage_or_imagine(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, bob = world.alice, world.bob
    settings = discord_settings(dc, upstream, tmp_path, allowed_users=f"discord:{alice.id}")
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, alice, "remember mango", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "remember mango" in text)
        tries = [
            dc.invoke_slash("model", {"name": "fake/other"}, channel=world.channel, user=bob),
            dc.invoke_slash("reset", channel=world.channel, user=bob),
            dc.invoke_slash("usage", channel=world.channel, user=bob),
            dc.invoke_slash("model", channel=world.channel, user=bob),
            dc.invoke_slash(
                "imagine",
                {"prompt": "a cat", "image": Upload("cat.png", png_bytes(8, 8))},
                channel=world.channel,
                user=bob,
            ),
        ]
        refusals = [await answered(dc, interaction) for interaction in tries]
        choices = dc.autocomplete("model", {"name": ""}, focused="name", channel=world.channel, user=bob)
        await dc.wait_for(lambda: choices.choices is not None)
        dc.user_sends(world.channel, alice, "what fruit?", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "what fruit?" in text)
    assert [(m.content, m.ephemeral) for m in refusals] == [(REFUSAL, True)] * 5  # seen by Bob alone
    assert choices.choices == []  # the gateway's model list is not shown to strangers
    assert user_texts(upstream)[-1] == ["Alice: remember mango", "Alice: what fruit?"]  # not reset
    assert [r.body["model"] for r in upstream.chat_requests] == ["fake/echo", "fake/echo"]  # nothing drawn
    assert dc.attachment_downloads == []


async def test_in_a_shared_channel_only_manage_messages_or_admins_switch_model_or_reset(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, bob = world.alice, world.bob
    carol = dc.add_user("carol", global_name="Carol")
    dc.add_member(world.guild, carol, roles=[dc.add_role(world.guild, "Mods", permissions=MANAGE_MESSAGES)])
    settings = discord_settings(dc, upstream, tmp_path, admins=f"discord:{bob.id}")
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, alice, "remember mango", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "remember mango" in text)
        switch = await answered(dc, dc.invoke_slash("model", {"name": "fake/other"}, channel=world.channel, user=alice))
        reset = await answered(dc, dc.invoke_slash("reset", channel=world.channel, user=alice))
        dc.user_sends(world.channel, alice, "what fruit?", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "what fruit?" in text)
        by_admin = await answered(dc, dc.invoke_slash("reset", channel=world.channel, user=bob))
        by_mod = await answered(dc, dc.invoke_slash("model", {"name": "fake/other"}, channel=world.channel, user=carol))
        dc.user_sends(world.channel, alice, "fresh start", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: "fresh start" in text)
        in_dm = await answered(dc, dc.invoke_slash("reset", channel=dc.dm_channel(alice), user=alice))
    assert switch.content == ADMINS_ONLY and reset.content == ADMINS_ONLY and switch.ephemeral
    assert user_texts(upstream)[1] == ["Alice: remember mango", "Alice: what fruit?"]  # Alice changed nothing
    assert by_admin.content.startswith("New conversation started")
    assert by_mod.content == "Model set to `fake/other` for this conversation."
    assert user_texts(upstream)[2] == ["Alice: fresh start"] and upstream.chat_requests[2].body["model"] == "fake/other"
    assert in_dm.content.startswith("New conversation started")  # her own DM is hers to reset


async def test_admin_commands_are_hidden_from_ordinary_members_at_sync(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    build_world(dc)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        await dc.wait_for(lambda: dc.command_syncs)
    [sync] = dc.command_syncs
    # A permission bit set, as a string or a number (discord.py sends the number); None: everyone.
    needed = {c["name"]: c.get("default_member_permissions") for c in sync.commands}
    hidden = {name: None if value is None else int(value) for name, value in needed.items()}
    assert hidden == {
        "imagine": None, "reset": None, "model": None, "system": None, "usage": None, "forget": None,
        "stats": 8, "grant": 8, "revoke": 8,  # Administrator: a server's admins, unless they open it up
    }  # fmt: skip


async def test_a_strangers_attachments_are_never_downloaded(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, bob = world.alice, world.bob
    bob_dm, alice_dm = dc.dm_channel(bob), dc.dm_channel(alice)
    pictures = [Upload(f"p{n}.png", png_bytes(10 + n, 10)) for n in range(3)]
    settings = discord_settings(dc, upstream, tmp_path, allowed_users=f"discord:{alice.id}")
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, bob, "look", mentions_bot=True, attachments=pictures)
        dc.user_sends(bob_dm, bob, "what is this?", attachments=pictures)
        await bot_says(dc, bob_dm, lambda text: text == REFUSAL)
        dc.user_sends(alice_dm, alice, "and this?", attachments=pictures[:1])
        await bot_says(dc, alice_dm, lambda text: text == "Echo: and this?")
    assert dc.bot_messages(world.channel) == [] and len(dc.bot_messages(bob_dm)) == 1
    assert len(dc.attachment_downloads) == 1  # Alice's picture only: downloads are counted
