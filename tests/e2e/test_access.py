"""Access, admin commands, `/forget` and per-user limits through the real assistant and the fake upstream.

Refusals must come before anything reaches the upstream: every test counts the fake's requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from tests.e2e.support import make_settings
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.upstream import FakeUpstream
from tests.store.conftest import fresh_postgres_database

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where the limits count: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


def tokens(total: int) -> dict[str, int]:
    return {"prompt_tokens": total - 1, "completion_tokens": 1, "total_tokens": total}


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
    assert [(m["role"], m["content"]) for m in last if m["role"] != "system"] == [("user", "what was my secret?")]


async def test_daily_tokens_reset_between_235959_and_000000_utc(
    upstream: FakeUpstream, tmp_path: Path, database_url: str
) -> None:
    clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 58))
    upstream.add_reply("the last answer of the year", usage=tokens(110))
    upstream.add_reply("the first answer of the year", usage=tokens(7))
    config = settings(
        upstream, tmp_path, database_url=database_url, user_tokens_per_day=100, user_requests_per_minute=0
    )
    async with open_assistant(config, clock=clock) as assistant:
        assert await ask(assistant, "use them up") == "the last answer of the year"
        clock.advance(1)  # 23:59:59
        with pytest.raises(QuotaExceededError) as caught:
            await ask(assistant, "one more, please")
        old_day = await assistant.usage(DM, ANN)
        clock.advance(1)  # 2027-01-01 00:00:00
        assert await ask(assistant, "happy new year") == "the first answer of the year"
        new_day = await assistant.usage(DM, ANN)
    assert caught.value.retry_after == 1
    assert (old_day.today.requests, old_day.today.total_tokens) == (1, 110)
    assert (new_day.today.requests, new_day.today.total_tokens) == (1, 7)
    assert new_day.conversation.total_tokens == 117
    assert [r.last_user_text for r in upstream.chat_requests] == ["use them up", "happy new year"]


async def test_requests_per_minute_reset_between_second_59_and_the_next_minute(
    upstream: FakeUpstream, tmp_path: Path, database_url: str
) -> None:
    clock = FakeWallClock(utc(2026, 11, 23, 12, 34, 58))
    config = settings(upstream, tmp_path, database_url=database_url, user_requests_per_minute=2)
    async with open_assistant(config, clock=clock) as assistant:
        assert await ask(assistant, "one") == "Echo: one"
        clock.advance(1)  # 12:34:59
        assert await ask(assistant, "two") == "Echo: two"
        with pytest.raises(QuotaExceededError) as caught:
            await ask(assistant, "three")
        clock.advance(1)  # 12:35:00, a new minute
        assert await ask(assistant, "four") == "Echo: four"
        assert await ask(assistant, "five") == "Echo: five"
        with pytest.raises(QuotaExceededError) as again:
            await ask(assistant, "six")
    assert caught.value.retry_after == 1
    assert caught.value.user_message == "You have sent too many messages; try again in 1 seconds."
    assert again.value.retry_after == 60
    assert [r.last_user_text for r in upstream.chat_requests] == ["one", "two", "four", "five"]
