"""The real Telegram adapter (`run_telegram`) against tests/fakes/telegram and the fake upstream, fast.

Pacing is scaled, not switched off: the fake's per-chat and per-group limits and the adapter's edit
intervals both run at `SPEED` x real time, so "zero 429s" (checked when every world closes) still means the
adapter keeps Telegram's published pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.telegram_bot import run_telegram
from core import Settings, open_assistant
from tests.e2e.support import API_KEY, PARLEY, make_settings, parley_env
from tests.fakes.telegram import FakeChat, FakeTelegram, FakeUser, RateLimits, StoredMessage
from tests.fakes.upstream import FakeUpstream

TOKEN = "123456789:AAHfakeTelegramTokenForTests_0123456789"
BOT_USERNAME = "parley_test_bot"
SPEED = 0.2  # 1 s of Telegram's limits and of the adapter's pacing takes 0.2 s here
WAIT_SECONDS = 8.0

__all__ = ["API_KEY", "BOT_USERNAME", "TOKEN", "World", "bot_texts", "fast_limits", "reads", "telegram_world"]


def fast_limits() -> RateLimits:
    """The fake's own Bot FAQ limits scaled by SPEED: ~1 message/s per chat (burst 3), 20 per minute per group."""
    return RateLimits.scaled(SPEED)


def _default(name: str) -> float:
    """The product's default for a pacing setting: the adapter is tested at its shipped pace, scaled."""
    value = Settings.model_fields[name].default
    assert isinstance(value, float)
    return value


@dataclass
class World:
    """One fake Telegram, one fake upstream, and the settings of a bot between them."""

    tg: FakeTelegram
    up: FakeUpstream
    settings: Settings

    @contextlib.asynccontextmanager
    async def bot(
        self, settings: Settings | None = None, *, clock: Callable[[], float] = time.time
    ) -> AsyncIterator[None]:
        """`run_telegram` as `parley run` runs it, until the block ends (then cancelled, as by SIGTERM).

        `clock` is the assistant's wall clock (Unix seconds): a test of "this minute" or "today" sets it.
        """
        settings = settings or self.settings
        async with open_assistant(settings, clock=clock) as assistant:
            task = asyncio.create_task(run_telegram(assistant, settings))
            calls_before = len(self.tg.calls)

            def receiving() -> bool:
                fresh = self.tg.calls[calls_before:]
                return any(c.method == "getUpdates" for c in fresh) or any(
                    c.method == "setWebhook" and c.ok for c in fresh
                )

            waiting = asyncio.create_task(self.tg.wait_for(receiving, WAIT_SECONDS))
            try:
                await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    task.result()  # raises what stopped the bot
                await waiting
                yield
            finally:
                waiting.cancel()
                task.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def dm(self, first_name: str) -> tuple[FakeUser, FakeChat]:
        """A new user of the fake Telegram and their private chat with the bot."""
        user = self.tg.user(first_name)
        return user, self.tg.private_chat(user)

    def texts(self, chat: FakeChat, *, thread_id: int | None = None) -> list[str]:
        return bot_texts(self.tg, chat, thread_id=thread_id)

    async def said(
        self,
        chat: FakeChat,
        test: Callable[[str], bool],
        *,
        thread_id: int | None = None,
        timeout_seconds: float = WAIT_SECONDS,
    ) -> StoredMessage:
        """Wait for a visible bot message in `chat` whose text passes `test`."""

        def found() -> StoredMessage | None:
            shown = [m for m in self.tg.messages(chat, thread_id=thread_id) if not m.deleted]
            return next((m for m in reversed(shown) if test(m.text)), None)

        message = await self.tg.wait_for(found, timeout_seconds)
        assert message is not None
        return message

    async def final(self, chat: FakeChat, expected: str, *, count: int = 1) -> list[StoredMessage]:
        """Wait until the bot's last `count` messages in `chat` read `expected` (joined as they are)."""

        def done() -> list[StoredMessage] | None:
            shown = [m for m in self.tg.messages(chat) if not m.deleted][-count:]
            return shown if len(shown) == count and "".join(m.text for m in shown) == expected else None

        shown = await self.tg.wait_for(done, WAIT_SECONDS)
        assert shown is not None
        return shown

    def run_env(self, **values: str) -> dict[str, str]:
        """The environment of a `parley run telegram` between this world's fakes, its SQLite file in the
        process's working folder, then `values`."""
        return parley_env(
            LLM_BASE_URL=self.up.base_url, LLM_API_KEY=API_KEY, CHAT_MODEL="fake/echo",
            DATABASE_URL="sqlite:///parley.db", TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=self.tg.base_url,
            **values,
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def parley_run(self, cwd: Path, **values: str) -> AsyncIterator[asyncio.subprocess.Process]:
        """A real `parley run telegram` process (env: `run_env(**values)`), yielded once it polls the fake;
        killed on exit if the test has not stopped it."""
        process = await asyncio.create_subprocess_exec(
            PARLEY, "run", "telegram", cwd=cwd, env=self.run_env(**values),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await self.tg.wait_for(lambda: self.tg.calls_of("getUpdates"), 30)
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def idle(self) -> None:
        """Wait until the bot has confirmed every update (PTB asks for the next batch only then)."""
        await self.tg.wait_for(lambda: not self.tg.pending_updates, WAIT_SECONDS)


def reads(expected: str) -> Callable[[str], bool]:
    """A test for `World.said`: the message reads exactly `expected` (bound now, not when a loop moves on)."""
    return lambda text: text == expected


def bot_texts(tg: FakeTelegram, chat: FakeChat, *, thread_id: int | None = None) -> list[str]:
    return [m.text for m in tg.messages(chat, thread_id=thread_id) if not m.deleted and m.kind != "service"]


@contextlib.asynccontextmanager
async def telegram_world(tmp_path: Path, *, expect_429s: int = 0, **overrides: Any) -> AsyncIterator[World]:
    """The fakes and settings; on exit, the fake must have answered `expect_429s` 429s (those a test
    injected) and met no bug of its own."""
    async with FakeUpstream(api_key=API_KEY) as up, FakeTelegram(token=TOKEN, limits=fast_limits()) as tg:
        values: dict[str, Any] = {
            "telegram_bot_token": TOKEN,
            "telegram_api_base_url": tg.base_url,
            "telegram_edit_interval_seconds": _default("telegram_edit_interval_seconds") * SPEED,
            "telegram_group_edit_interval_seconds": _default("telegram_group_edit_interval_seconds") * SPEED,
            "stream_idle_timeout": 0.5,
        }
        settings = make_settings(up, tmp_path, **(values | overrides))
        yield World(tg, up, settings)
        assert tg.count_429 == expect_429s, [f"{c.method}: {c.description}" for c in tg.calls if c.status == 429]
        assert tg.internal_errors == []
