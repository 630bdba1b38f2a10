"""Tools on Discord: every case of tests/e2e/tool_cases.py; a drawing in a server channel with a status line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.discord_harness import API_KEY, WAIT_SECONDS, World, discord_settings, running_bot
from tests.e2e.tool_cases import CASES, Shown, ToolCase, case_id, check_shown, play
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeUser
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def shown(content: str) -> str:
    """Markdown as Discord shows it, for the one escape a tool name needs (`\\_` shows as `_`)."""
    return content.replace("\\_", "_")


class DiscordChat:
    """A channel of the fake Discord with the bot, as tool_cases reads one (tool_cases.ChatView)."""

    def __init__(self, dc: FakeDiscord, user: FakeUser, channel: FakeChannel, *, in_guild: bool) -> None:
        self._dc, self._user, self._channel, self._in_guild = dc, user, channel, in_guild

    def send(self, text: str) -> object:
        mention = f"{self._dc.bot.mention} " if self._in_guild else ""
        return self._dc.user_sends(self._channel, self._user, mention + text, mentions_bot=self._in_guild).id

    def answers(self) -> list[Shown]:
        """The bot's messages with text; one the bot deleted (a status line a picture then replaced) counts
        among the versions of the next."""
        answers: list[Shown] = []
        replaced: list[str] = []
        for message in self._dc.messages(self._channel):
            if message.author is not self._dc.bot or not message.content:
                continue
            if message.deleted:
                replaced.extend(map(shown, message.versions))
                continue
            versions = (*replaced, *map(shown, message.versions))
            answers.append(Shown(shown(message.content), versions, message.reference_id))
            replaced = []
        if replaced:
            answers.append(Shown("", tuple(replaced), None))
        return answers

    def pictures(self) -> list[bytes]:
        return [a.data for m in self._dc.bot_messages(self._channel) for a in m.attachments]

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        await self._dc.wait_for(predicate, WAIT_SECONDS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_each_tool_case_on_discord(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path, case: ToolCase
) -> None:
    drawings = case.drawings(upstream)
    channel = world.channel if case.in_group else dc.dm_channel(world.alice)
    chat = DiscordChat(dc, world.alice, channel, in_guild=case.in_group)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, **case.settings)) as bot:
        asked = await play(case, chat, drawings)
        await dc.wait_for(lambda: bot.handlers_in_flight == 0)
    check_shown(case, chat, asked, secrets=(API_KEY, dc.token))
    case.check_requests(upstream)
