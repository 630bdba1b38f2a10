"""Access, admin commands, `/forget` and per-user limits through the real assistant and the fake upstream.

Refusals must come before anything reaches the upstream: every test counts the fake's requests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core import (
    AccessDeniedError,
    Assistant,
    Completed,
    ConversationKey,
    InputError,
    QuotaExceededError,
    Turn,
    UserRef,
    open_assistant,
)
from tests.e2e.conftest import make_settings
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

ANN = UserRef("7", "Ann")
BOB = UserRef("8", "Bob")
ADMIN = UserRef("1", "Root")
DM = ConversationKey("telegram", "7")
GROUP = ConversationKey("telegram", "-100")
NOON = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC).timestamp()  # 10 s into a minute


async def ask(assistant: Assistant, text: str, key: ConversationKey = DM, user: UserRef = ANN) -> str:
    final = ""
    async for event in assistant.reply(Turn(conversation=key, user=user, text=text)):
        if isinstance(event, Completed):
            final = event.text
    return final


def settings(upstream: FakeUpstream, tmp_path: Path, **overrides: Any) -> Any:
    return make_settings(upstream, tmp_path, **({"admins": "telegram:1"} | overrides))


async def test_allow_lists_refuse_others_before_the_upstream(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = settings(upstream, tmp_path, allowed_users="telegram:7", allowed_chats="telegram:-100")
    async with open_assistant(config) as assistant:
        assert await ask(assistant, "hi") == "Echo: hi"  # Ann is listed
        assert await ask(assistant, "in group", GROUP, BOB) == "Echo: in group"  # the chat is listed
        with pytest.raises(AccessDeniedError) as caught:
            await ask(assistant, "let me in", ConversationKey("telegram", "8"), BOB)
        with pytest.raises(AccessDeniedError):
            await assistant.imagine("a cat", conversation=ConversationKey("telegram", "8"), user=BOB)
        with pytest.raises(AccessDeniedError):  # the same id on another platform is someone else
            await ask(assistant, "hi", ConversationKey("discord", "7"), UserRef("7"))
        assert (await assistant.access(DM, ADMIN)).admin is True
        assert (await assistant.access(DM, ANN)).admin is False
    assert "private" in caught.value.user_message
    assert len(upstream.requests) == 2


async def test_admins_grant_and_revoke_at_run_time(upstream: FakeUpstream, tmp_path: Path) -> None:
    bob_dm = ConversationKey("telegram", "8")
    async with open_assistant(settings(upstream, tmp_path, allowed_users="telegram:7")) as assistant:
        assert not (await assistant.access(bob_dm, BOB)).allowed
        with pytest.raises(AccessDeniedError):  # only admins grant
            await assistant.grant(ANN, "telegram", "user", "8")
        await assistant.grant(ADMIN, "telegram", "user", "8")
        assert await ask(assistant, "thanks", bob_dm, BOB) == "Echo: thanks"
        await assistant.revoke(ADMIN, "telegram", "user", "7")  # a revocation beats ALLOWED_USERS
        with pytest.raises(AccessDeniedError):
            await ask(assistant, "hi")
        await assistant.revoke(ADMIN, "telegram", "chat", "-100")
        assert not (await assistant.access(GROUP, BOB)).allowed  # Bob is granted, but not in a revoked chat
        with pytest.raises(InputError) as caught:
            await assistant.grant(ADMIN, "telegram", "team", "8")
        assert "/grant user <id>" in caught.value.user_message
        stats = await assistant.stats(ADMIN, "telegram")
        with pytest.raises(AccessDeniedError):
            await assistant.stats(BOB, "telegram")
    assert (stats.users, stats.conversations, stats.errors_today) == (1, 1, 0)  # Bob and his DM
    assert stats.tokens_today > 0  # the fake reports usage for Bob's one reply
    assert len(upstream.requests) == 1


async def test_everyone_may_talk_when_no_list_is_set(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(settings(upstream, tmp_path)) as assistant:
        assert await ask(assistant, "hello", GROUP, BOB) == "Echo: hello"
        await assistant.revoke(ADMIN, "telegram", "user", "8")
        with pytest.raises(AccessDeniedError):
            await ask(assistant, "again", GROUP, BOB)


async def test_requests_per_minute_say_when_to_continue(upstream: FakeUpstream, tmp_path: Path) -> None:
    now = [NOON]
    config = settings(upstream, tmp_path, user_requests_per_minute=3)
    async with open_assistant(config, clock=lambda: now[0]) as assistant:
        for n in range(3):
            assert await ask(assistant, f"m{n}") == f"Echo: m{n}"
        with pytest.raises(QuotaExceededError) as caught:
            await ask(assistant, "one too many")
        with pytest.raises(QuotaExceededError):
            await assistant.imagine("a cat", conversation=DM, user=ANN)
        assert await ask(assistant, "Bob is not Ann", GROUP, BOB) == "Echo: Bob is not Ann"
        now[0] += 50  # the next minute
        assert await ask(assistant, "later") == "Echo: later"
    assert caught.value.retry_after == 50
    assert caught.value.user_message == "You have sent too many messages; try again in 50 seconds."
    assert len(upstream.requests) == 5  # the refused ones never left


async def test_tokens_per_day_reset_at_midnight_utc(upstream: FakeUpstream, tmp_path: Path) -> None:
    now = [NOON]
    upstream.add_reply("long answer", usage={"prompt_tokens": 60, "completion_tokens": 50, "total_tokens": 110})
    config = settings(upstream, tmp_path, user_tokens_per_day=100, user_requests_per_minute=0)
    async with open_assistant(config, clock=lambda: now[0]) as assistant:
        assert await ask(assistant, "use them up") == "long answer"
        with pytest.raises(QuotaExceededError) as caught:
            await ask(assistant, "more")
        assert await ask(assistant, "Bob still may", GROUP, BOB) == "Echo: Bob still may"
    assert caught.value.user_message == "You have used your daily token limit; it resets at 00:00 UTC."
    assert caught.value.retry_after == pytest.approx(12 * 3600 - 10)
    assert len(upstream.requests) == 2


async def test_forget_then_the_next_message_starts_afresh(upstream: FakeUpstream, tmp_path: Path) -> None:
    async with open_assistant(settings(upstream, tmp_path)) as assistant:
        await ask(assistant, "my secret is 42")
        forgotten = await assistant.forget("telegram", ANN)
        await ask(assistant, "what was my secret?")
    assert (forgotten.messages, forgotten.conversations) == (2, 1)
    last = upstream.chat_requests[-1].body["messages"]
    assert all("42" not in str(message["content"]) for message in last)
