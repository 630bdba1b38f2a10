"""Per-minute limits counted in a real Redis (REDIS_URL) hold across assistants, as across processes.

Redis comes from PARLEY_TEST_REDIS_URL (default 127.0.0.1:6379, database 15). Unreachable means skip, or
fail when CI=true or REQUIRE_REDIS=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from core import Assistant, Completed, ConversationKey, QuotaExceededError, StoreError, Turn, UserRef, open_assistant
from tests.e2e.support import make_settings
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NOON = datetime(2026, 11, 23, 12, 0, 15, tzinfo=UTC).timestamp()


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = f"Redis unreachable at {REDIS_URL} ({type(exc).__name__})"
        if os.environ.get("CI") == "true" or os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield client
    await client.aclose()


async def ask(assistant: Assistant, user: UserRef, text: str) -> str:
    turn = Turn(conversation=ConversationKey("telegram", user.id), user=user, text=text)
    final = ""
    async for event in assistant.reply(turn):
        if isinstance(event, Completed):
            final = event.text
    return final


async def test_two_assistants_share_one_redis_counter(
    upstream: FakeUpstream, tmp_path: Path, redis_client: redis.Redis
) -> None:
    ann = UserRef(uuid.uuid4().hex, "Ann")  # a fresh id: no key of an earlier run can interfere
    first_settings = make_settings(upstream, tmp_path / "a", redis_url=REDIS_URL, user_requests_per_minute=2)
    second_settings = make_settings(upstream, tmp_path / "b", redis_url=REDIS_URL, user_requests_per_minute=2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        open_assistant(first_settings, clock=lambda: NOON) as first,
        open_assistant(second_settings, clock=lambda: NOON) as second,  # its own database: only Redis is shared
    ):
        assert await ask(first, ann, "one") == "Echo: one"
        assert await ask(second, ann, "two") == "Echo: two"
        with pytest.raises(QuotaExceededError) as caught:
            await ask(first, ann, "three")
    key = f"parley:rate:telegram:{ann.id}:{int(NOON // 60)}"
    assert int(await redis_client.get(key) or 0) == 3
    assert 0 < await redis_client.ttl(key) <= 120
    assert caught.value.user_message == "You have sent too many messages; try again in 45 seconds."
    assert len(upstream.requests) == 2


async def test_the_redis_counter_starts_afresh_at_the_minute(
    upstream: FakeUpstream, tmp_path: Path, redis_client: redis.Redis
) -> None:
    ann = UserRef(uuid.uuid4().hex, "Ann")
    clock = FakeWallClock(utc(2026, 12, 31, 23, 59, 59))  # the last second of a minute, a day and a year
    settings = make_settings(upstream, tmp_path, redis_url=REDIS_URL, user_requests_per_minute=1)
    async with open_assistant(settings, clock=clock) as assistant:
        assert await ask(assistant, ann, "one") == "Echo: one"
        with pytest.raises(QuotaExceededError) as caught:
            await ask(assistant, ann, "two")
        clock.advance(1)  # 2027-01-01 00:00:00
        assert await ask(assistant, ann, "three") == "Echo: three"
    minute = int(utc(2027, 1, 1).timestamp() // 60)
    keys = [f"parley:rate:telegram:{ann.id}:{window}" for window in (minute - 1, minute)]
    counts = [int(await redis_client.get(key) or 0) for key in keys]
    assert counts == [2, 1]
    assert caught.value.retry_after == 1
    assert [r.last_user_text for r in upstream.chat_requests] == ["one", "three"]


async def test_unreachable_redis_refuses_without_calling_upstream(upstream: FakeUpstream, tmp_path: Path) -> None:
    settings = make_settings(upstream, tmp_path, redis_url="redis://:hunter2@127.0.0.1:1/0")
    async with open_assistant(settings) as assistant:
        with pytest.raises(StoreError) as caught:
            await ask(assistant, UserRef("7", "Ann"), "hello")
    assert "hunter2" not in str(caught.value) and "hunter2" not in caught.value.user_message
    assert upstream.requests == []
