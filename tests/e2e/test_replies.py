"""show_reply, the one call adapters make to answer a turn: its contract against the real assistant.

A real SQLite store and the fake upstream (real SSE bytes); the chat is the fake surface (our own port).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from core import (
    AccessDeniedError,
    Budget,
    ConversationKey,
    Turn,
    UserRef,
    open_assistant,
    show_reply,
)
from tests.e2e.support import make_settings
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.live_surface import FakePlatform, FakeSurface
from tests.fakes.upstream import FakeUpstream
from tests.profiles import TELEGRAM_PRIVATE

pytestmark = pytest.mark.e2e

ANN = UserRef("7", "Ann")
CHAT = ConversationKey("telegram", "42")
GUARD_SECONDS = 20  # a bound for a hang (a conversation lock never released), not a pace


def _surface() -> FakeSurface:
    """Telegram's pace 50 times faster, on both sides: the engine's interval and the fake's clock."""
    profile = replace(TELEGRAM_PRIVATE, edit_interval_seconds=0.02, supports_draft=False)
    return FakeSurface(profile, platform=FakePlatform(speed=0.02))


async def test_a_surface_that_breaks_off_ends_the_reply_and_frees_the_conversation(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply("the first answer")
    upstream.add_reply("the second answer")
    async with open_assistant(make_settings(upstream, tmp_path)) as assistant:
        broken = _surface()
        broken.fail_next("send", ConnectionResetError("the chat went away"))
        with pytest.raises(ConnectionResetError):
            await show_reply(assistant, Turn(CHAT, ANN, "first question"), broken, budget=Budget(30))

        surface = _surface()
        async with asyncio.timeout(GUARD_SECONDS):  # hangs here if the first reply kept the conversation's lock
            result = await show_reply(assistant, Turn(CHAT, ANN, "second question"), surface, budget=Budget(30))

    assert result.is_complete and surface.visible_texts() == ["the second answer"]
    second = upstream.chat_requests[-1].body["messages"]
    assert [m["content"] for m in second if m["role"] == "user"] == ["first question", "second question"]


async def test_a_stranger_gets_access_denied_and_the_chat_gets_nothing(upstream: FakeUpstream, tmp_path: Path) -> None:
    settings = make_settings(upstream, tmp_path, allowed_users="telegram:1")
    async with open_assistant(settings) as assistant:
        surface = _surface()
        with pytest.raises(AccessDeniedError):
            await show_reply(assistant, Turn(CHAT, ANN, "hello?"), surface, budget=Budget(30))

    assert surface.messages == {} and surface.drafts == [] and surface.images == {}
    assert upstream.chat_requests == []


async def test_an_exhausted_quota_is_a_note_in_the_chat_not_an_exception(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_reply("the answer")
    settings = make_settings(upstream, tmp_path, user_requests_per_minute=1)
    clock = FakeWallClock(utc(2027, 1, 15, 8, 0, 0))  # both requests in one minute window
    async with open_assistant(settings, clock=clock) as assistant:
        await show_reply(assistant, Turn(CHAT, ANN, "one"), _surface(), budget=Budget(30))
        surface = _surface()
        result = await show_reply(assistant, Turn(CHAT, ANN, "two"), surface, budget=Budget(30))

    assert not result.is_complete and "too many messages" in result.error_message
    assert len(surface.visible_texts()) == 1 and "too many messages" in surface.visible_texts()[0]
    assert len(upstream.chat_requests) == 1
