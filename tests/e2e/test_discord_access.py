"""Discord access and privacy: a stranger refused once in a DM and ignored in a server, admin slash commands
(/stats, /grant, /revoke) and /forget, all answered privately.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, answered, bot_says, build_world, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


async def test_access_admin_commands_and_forget(dc: FakeDiscord, upstream: FakeUpstream, tmp_path: Path) -> None:
    world: World = build_world(dc)
    alice, bob = world.alice, world.bob
    settings = discord_settings(
        dc, upstream, tmp_path, allowed_users=f"discord:{alice.id}", admins=f"discord:{alice.id}"
    )
    bob_dm = dc.dm_channel(bob)
    async with running_bot(dc, settings):
        dc.user_sends(world.channel, bob, f"{dc.bot.mention} hello", mentions_bot=True)
        dc.user_sends(bob_dm, bob, "hello")
        await bot_says(dc, bob_dm, lambda text: "private" in text)
        refused = await answered(dc, dc.invoke_slash("stats", channel=bob_dm, user=bob))
        granted = await answered(
            dc, dc.invoke_slash("grant", {"kind": "user", "subject_id": str(bob.id)}, channel=world.channel, user=alice)
        )
        dc.user_sends(bob_dm, bob, "thanks")
        await bot_says(dc, bob_dm, lambda text: text == "Echo: thanks")
        stats = await answered(dc, dc.invoke_slash("stats", channel=world.channel, user=alice))
        forgot = await answered(dc, dc.invoke_slash("forget", channel=bob_dm, user=bob))
    assert refused.content == "That command is for the bot's admins." and refused.flags & 64  # ephemeral
    assert granted.content == f"User `{bob.id}` now has access."
    assert stats.content.startswith("Users: 1\nConversations: 1\n")
    assert forgot.content.startswith("Done: I deleted 2 messages, 1 conversations")
    assert dc.bot_messages(world.channel) == [] or all(m.flags & 64 for m in dc.bot_messages(world.channel))
    assert [r.last_user_text for r in upstream.chat_requests] == ["thanks"]
