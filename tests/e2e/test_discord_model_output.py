"""Model output as an attacker writes it, through the real discord.py adapter: image links into the bot's
own network, masked links with dangerous schemes, and answers built to stall the event loop (and with it
the gateway heartbeat)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.discord_harness import World, bot_says, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.images import png_bytes
from tests.fakes.upstream import FakeUpstream
from tests.loop_steps import longest_loop_step as longest_step

pytestmark = pytest.mark.e2e

NOT_SHOWN = "An image could not be shown."
# Discord's masked-link rule needs "](" followed by the target; one whose target is not http(s) must not
# reach Discord intact (Discord hides a backslash before "(" and shows the text as written).
MASKED_NOT_WEB = re.compile(r"\]\((?!\s*<?https?://)", re.IGNORECASE)


async def test_an_image_link_into_the_bots_network_is_not_fetched_and_not_posted(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    internal = upstream.serve("/internal.png", png_bytes(8, 8), content_type="image/png")
    hop = upstream.serve("/hop", b"", status=302, headers={"Location": internal})
    upstream.add_reply(f"Here it is: ![admin]({internal}) ![cat]({hop}) ![meta](http://169.254.169.254/x.png)")
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "show me")
        message = await bot_says(dc, dm, lambda text: NOT_SHOWN in text)
    assert message.content == f"Here it is:\n\n({NOT_SHOWN})"
    assert [m for m in dc.bot_messages(dm) if m.attachments] == []
    assert not [r for r in upstream.requests if r.path in ("/internal.png", "/hop")]


async def test_only_http_masked_links_reach_discord(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply(
        "Ping [Ann](tg://user?id=42), run [this](javascript:alert(1)), read [it](file:///etc/passwd), "
        "see [here](/relative) or [there](#top) or ![img](javascript:x). Code stays: `[a](b)`. "
        "Only [the docs](https://example.org/docs) is a link.",
        chunk_chars=7,
    )
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "links please")
        message = await bot_says(dc, dm, lambda text: text.endswith("is a link."))
    assert all(
        MASKED_NOT_WEB.search(version) is None
        for version in [*message.versions[:-1], message.content]
        if "`" not in version
    ), message.versions
    assert MASKED_NOT_WEB.findall(message.content) == ["]("]  # the one inside the code span, shown as code
    assert "`[a](b)`" in message.content and "[the docs](https://example.org/docs)" in message.content


@pytest.mark.parametrize("unit", ["![", "> ", "`"])
async def test_a_hostile_answer_does_not_stall_the_event_loop(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, unit: str
) -> None:
    upstream.add_reply(unit * (32_000 // len(unit)), chunk_chars=4000)
    upstream.add_reply("Still here.")
    dm = dc.dm_channel(world.alice)
    with longest_step() as longest:
        async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
            dc.user_sends(dm, world.alice, "stall")
            await dc.wait_for(lambda: dc.bot_messages(dm) or None, 8)
            dc.user_sends(dm, world.alice, "hello?")
            await bot_says(dc, dm, lambda text: text == "Still here.")
    assert longest.seconds < 2.0  # the longest single loop step; generous on a busy machine
