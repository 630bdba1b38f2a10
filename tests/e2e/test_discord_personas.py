"""Discord /system: shown, set (sent upstream from the next turn, kept across /reset), reset to SYSTEM_PROMPT,
bounded, shown whole however long (escaped, in pieces), and in a shared channel changed only by members with
Manage Messages there and ADMINS; strangers get the usual refusal.

Through the real discord.py adapter, the fake Discord and the fake upstream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, answered, bot_says, build_world, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

DEFAULT = "Default prompt."
MANAGE_MESSAGES = 1 << 13  # Discord permission bit (docs: "Permissions", Bitwise Permission Flags)
ADMINS_ONLY = "Only admins can change the conversation everyone here shares."
REFUSAL = "Sorry, this bot is private. Ask its operator for access."
DISCORD_MAX_CONTENT = 2000  # message content limit (docs: "Create Message", content "up to 2000 characters")


def systems(upstream: FakeUpstream) -> list[str]:
    """The system message of every chat request sent upstream, in order."""
    return [
        next(str(m["content"]) for m in r.body["messages"] if m["role"] == "system") for r in upstream.chat_requests
    ]


async def test_system_is_shown_set_used_upstream_kept_across_reset_and_reset_to_the_default(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, dm = world.alice, dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, system_prompt=DEFAULT)):
        default = await answered(dc, dc.invoke_slash("system", channel=dm, user=alice))
        done = await answered(dc, dc.invoke_slash("system", {"text": "You are a pirate."}, channel=dm, user=alice))
        dc.user_sends(dm, alice, "hello")
        await bot_says(dc, dm, lambda text: text == "Echo: hello")
        await answered(dc, dc.invoke_slash("reset", channel=dm, user=alice))
        dc.user_sends(dm, alice, "again")
        await bot_says(dc, dm, lambda text: text == "Echo: again")
        shown = await answered(dc, dc.invoke_slash("system", channel=dm, user=alice))
        back = await answered(dc, dc.invoke_slash("system", {"text": "reset"}, channel=dm, user=alice))
        dc.user_sends(dm, alice, "last")
        await bot_says(dc, dm, lambda text: text == "Echo: last")
    assert default.ephemeral and default.content.startswith("System prompt of this conversation \\(the default\\)")
    assert "Default prompt\\." in default.content
    assert done.content.startswith("System prompt set \\(17 characters\\)")
    assert "You are a pirate\\." in shown.content and "set with \\/system" in shown.content
    assert back.content.startswith("System prompt back to the default")
    assert systems(upstream) == ["You are a pirate.", "You are a pirate.", DEFAULT]


async def test_a_long_system_prompt_is_shown_whole_in_several_messages(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, dm = world.alice, dc.dm_channel(world.alice)
    prompt = " ".join(f"Rule {n}: be *kind* [to all]." for n in range(130))  # 3,789 characters, 4,000 allowed
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        done = await answered(dc, dc.invoke_slash("system", {"text": prompt}, channel=dm, user=alice))
        assert done.content.startswith("System prompt set \\(3\\,789 characters\\)")
        interaction = dc.invoke_slash("system", channel=dm, user=alice)
        await dc.wait_for(lambda: any(dc.message(i).content.endswith("TEXT\\.") for i in interaction.followup_ids))
    pieces = [dc.message(i) for i in interaction.followup_ids]
    assert len(pieces) >= 3 and all(p.ephemeral and len(p.content) <= DISCORD_MAX_CONTENT for p in pieces)
    assert prompt in "".join(p.content for p in pieces).replace("\\", "")  # whole, every mark escaped


async def test_an_over_long_system_prompt_is_refused_naming_the_limit(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, dm = world.alice, dc.dm_channel(world.alice)
    settings = discord_settings(dc, upstream, tmp_path, max_system_prompt_chars=20, system_prompt=DEFAULT)
    async with running_bot(dc, settings):
        refused = await answered(dc, dc.invoke_slash("system", {"text": "x" * 21}, channel=dm, user=alice))
        dc.user_sends(dm, alice, "hi")
        await bot_says(dc, dm, lambda text: text == "Echo: hi")
    assert (refused.content, refused.ephemeral) == (
        "That system prompt is too long (the limit is 20 characters).",
        True,
    )
    assert systems(upstream) == [DEFAULT]


async def test_in_a_shared_channel_only_manage_messages_or_admins_change_the_system_prompt(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, bob, channel = world.alice, world.bob, world.channel
    carol = dc.add_user("carol", global_name="Carol")
    dc.add_member(world.guild, carol, roles=[dc.add_role(world.guild, "Mods", permissions=MANAGE_MESSAGES)])
    settings = discord_settings(dc, upstream, tmp_path, admins=f"discord:{bob.id}", system_prompt=DEFAULT)
    async with running_bot(dc, settings):
        refused = await answered(dc, dc.invoke_slash("system", {"text": "Be rude."}, channel=channel, user=alice))
        read = await answered(dc, dc.invoke_slash("system", channel=channel, user=alice))
        dc.user_sends(channel, alice, "hi", mentions_bot=True)
        await bot_says(dc, channel, lambda text: text == "Echo: Alice: hi")
        by_mod = await answered(dc, dc.invoke_slash("system", {"text": "Be kind."}, channel=channel, user=carol))
        dc.user_sends(channel, alice, "hello", mentions_bot=True)
        await bot_says(dc, channel, lambda text: text == "Echo: Alice: hello")
        by_admin = await answered(dc, dc.invoke_slash("system", {"text": "reset"}, channel=channel, user=bob))
        dc.user_sends(channel, alice, "bye", mentions_bot=True)
        await bot_says(dc, channel, lambda text: text == "Echo: Alice: bye")
    assert (refused.content, refused.ephemeral) == (ADMINS_ONLY, True)
    assert read.content.startswith("System prompt of this conversation")  # reading is for everyone here
    assert by_mod.content.startswith("System prompt set") and by_admin.content.startswith("System prompt back")
    assert systems(upstream) == [DEFAULT, "Be kind.", DEFAULT]


async def test_a_stranger_can_neither_read_nor_set_the_system_prompt(
    dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path
) -> None:
    world: World = build_world(dc)
    alice, bob = world.alice, world.bob
    settings = discord_settings(dc, upstream, tmp_path, allowed_users=f"discord:{alice.id}", system_prompt=DEFAULT)
    async with running_bot(dc, settings):
        tries = [
            dc.invoke_slash("system", {"text": "Be evil."}, channel=world.channel, user=bob),
            dc.invoke_slash("system", channel=world.channel, user=bob),
            dc.invoke_slash("system", {"text": "Be evil."}, channel=dc.dm_channel(bob), user=bob),
        ]
        refusals = [await answered(dc, interaction) for interaction in tries]
        dc.user_sends(world.channel, alice, "hi", mentions_bot=True)
        await bot_says(dc, world.channel, lambda text: text == "Echo: Alice: hi")
    assert [(m.content, m.ephemeral) for m in refusals] == [(REFUSAL, True)] * 3
    assert systems(upstream) == [DEFAULT]
