"""Two webhook processes of one bot behind a round-robin balancer, sharing PostgreSQL and Redis (REDIS_URL).

The fake Telegram pushes updates concurrently, as Telegram does (up to `max_connections` at once:
https://core.telegram.org/bots/api#setwebhook), so one conversation's messages reach both processes in any
order; nothing here waits for a message to reach the upstream before sending the next. The fake enforces
its per-chat, per-group and per-bot limits across both processes. PostgreSQL as in test_scale_out.py; Redis
as in test_redis_limits.py (skipped when unreachable, failing with CI=true or REQUIRE_REDIS=1).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from tests.e2e.support import free_port
from tests.e2e.telegram_harness import BOT_USERNAME, bot_texts
from tests.e2e.test_redis_limits import REDIS_URL, redis_client  # noqa: F401  (the fixture)
from tests.e2e.test_scale_out import (
    SECRET,
    base_env,
    fakes,
    parley,
    round_robin,
    transcript,
    wait_until,
)
from tests.e2e.test_telegram_media import image_parts
from tests.fakes.images import png_bytes
from tests.fakes.telegram import FakeTelegram, RateLimits
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.usefixtures("redis_client")]

ANSWER_SECONDS = 40.0
LONG_WORDS = 90  # a reply streams ~3 s: long enough for both processes to press on the same limits


def fresh_token() -> str:
    """A bot of its own per test: no Redis key of another test or run is shared (the bot id names them)."""
    return f"{100_000_000 + uuid.uuid4().int % 800_000_000}:AAHscaleOutSharedTokenForTests_0123456"


@asynccontextmanager
async def two_processes(
    tmp_path: Path, *, limits: RateLimits | None = None, **env: str
) -> AsyncIterator[tuple[FakeTelegram, FakeUpstream]]:
    """Two `parley run telegram` webhook processes behind `round_robin`; no 429 allowed (`fakes` checks)."""
    token = fresh_token()
    async with fakes(token=token, limits=limits) as (tg, up, database_url), AsyncExitStack() as stack:
        ports = [free_port(), free_port()]
        url = await stack.enter_async_context(round_robin(ports))
        common = base_env(tg, up, database_url, token=token) | {
            "TELEGRAM_WEBHOOK_URL": url, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
            "REDIS_URL": REDIS_URL,
        } | env  # fmt: skip
        for number, port in enumerate(ports):
            await stack.enter_async_context(
                parley(tmp_path, f"p{number}", common | {"TELEGRAM_WEBHOOK_PORT": str(port)})
            )
        await wait_until(tg, lambda: len([c for c in tg.calls_of("setWebhook") if c.ok]) == 2)
        yield tg, up
    logs = [p.read_text() for p in tmp_path.glob("p*.log")]
    assert len(logs) == 2 and not any("Traceback" in log for log in logs)


ECHOED = re.compile(r"Echo: (?:\S+: )?(\S+) ")  # a group turn may carry its author's name


SLOW_ECHO_END = " " + "." * 40  # how every reply of test_scale_out.slow_echo ends


def answered(tg: FakeTelegram, end: str = SLOW_ECHO_END) -> set[str]:
    """The questions whose reply shows complete (ending in `end`) in any chat."""
    return {
        found.group(1)
        for messages in tg.world.chat_messages.values()
        for message in messages
        if message.from_bot and not message.deleted and message.text.endswith(end)
        if (found := ECHOED.match(message.text))
    }


async def test_ten_messages_pushed_at_once_are_answered_in_order(tmp_path: Path) -> None:
    async with two_processes(tmp_path) as (tg, up):
        ann = tg.user("Ann")
        chat = tg.private_chat(ann)
        asked = [f"m{i}" for i in range(1, 11)]
        for text in asked:
            tg.user_sends(chat, ann, text)  # all ten pending at once: pushed concurrently, alternately
        await tg.wait_for(lambda: len(answered(tg)) == 10, ANSWER_SECONDS)
        assert tg.webhook_peak_in_flight > 1  # the fake really had several pushes under way
        requests = up.chat_requests
        assert [r.last_user_text for r in requests] == asked  # Telegram's order, across both processes
        for i, request in enumerate(requests):  # each turn saw every exchange before it
            seen = transcript(request)
            assert [c for r, c in seen if r == "user"] == asked[: i + 1]
            assert [c for r, c in seen if r == "assistant"] == [f"Echo: {t} " + "." * 40 for t in asked[:i]]
        assert sorted(bot_texts(tg, chat)) == sorted(f"Echo: {t} " + "." * 40 for t in asked)
    assert all(p.read_text().count("reply done") >= 2 for p in tmp_path.glob("p*.log"))  # both answered


async def test_an_album_split_over_both_processes_is_answered_once(tmp_path: Path) -> None:
    photos = [png_bytes(10 + i, 10, (40 * i, 0, 200)) for i in range(3)]
    async with two_processes(tmp_path) as (tg, up):
        ann = tg.user("Ann")
        chat = tg.private_chat(ann)
        tg.user_sends(chat, ann, photo=tg.add_file(photos[0]), caption="compare these", media_group_id="g1")
        for photo in photos[1:]:
            tg.user_sends(chat, ann, photo=tg.add_file(photo), media_group_id="g1")
        tg.user_sends(chat, ann, "after")  # answered after the album: a second album answer would come first
        await tg.wait_for(lambda: "after" in answered(tg), ANSWER_SECONDS)
        assert len(tg.webhook.deliveries) == 4  # round robin: parts on both processes
        album, after = up.chat_requests
        assert image_parts(album.body) == photos  # all three photos, in the album's order, in one turn
        assert album.last_user_text == "compare these" and after.last_user_text == "after"
        assert bot_texts(tg, chat) == ["Echo: compare these " + "." * 40, "Echo: after " + "." * 40]


def long_echo(request: RecordedRequest) -> Reply:
    """~3 s of streaming per reply, ending in " ." (only once complete)."""
    words = " ".join(f"w{n}" for n in range(LONG_WORDS))
    return Reply(text=f"Echo: {request.last_user_text} {words} .", chunk_chars=6, tokens_per_second=60)


async def test_no_429_with_both_processes_streaming_into_one_group_and_many_chats(tmp_path: Path) -> None:
    # Per chat 2.5 messages/s (burst 3), per group 20 per 12 s, per bot 20/s (burst 8, 0.4 s; Telegram's
    # own is undocumented, PTB's AIORateLimiter allows a whole second's worth): one process at its own pace
    # stays within each, two processes together would not, unless they share the budget.
    limits = RateLimits(
        chat_per_second=2.5, chat_burst=3, group_per_window=20, group_window_seconds=12.0,
        global_per_second=20.0, global_burst=8,
    )  # fmt: skip
    pace = {
        "TELEGRAM_EDIT_INTERVAL_SECONDS": "0.4", "TELEGRAM_GROUP_EDIT_INTERVAL_SECONDS": "0.65",
        "TELEGRAM_REQUESTS_PER_SECOND": "20", "GROUP_HISTORY": "user",
    }  # fmt: skip
    async with two_processes(tmp_path, limits=limits, **pace) as (tg, up):
        up.default_reply = long_echo
        group = tg.group("Team")
        questions: list[str] = []
        for n in range(4):  # four conversations in one group (one per user): four streams into one chat
            user = tg.user(f"G{n}")
            questions.append(f"g{n}")
            tg.user_sends(group, user, f"@{BOT_USERNAME} g{n}")
        for n in range(12):  # and twelve private chats at once
            user = tg.user(f"D{n}")
            questions.append(f"d{n}")
            tg.user_sends(tg.private_chat(user), user, f"d{n}")
        await tg.wait_for(lambda: len(answered(tg, " .")) == len(questions), ANSWER_SECONDS)
        assert answered(tg, " .") == set(questions)
        assert tg.calls_of("editMessageText")  # replies streamed (edited), not just sent once
    logs = [p.read_text() for p in tmp_path.glob("p*.log")]
    assert all(log.count("reply done") >= 3 for log in logs)  # both processes streamed
