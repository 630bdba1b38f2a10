"""Two `parley run telegram` processes on one PostgreSQL: webhook behind a load balancer, and one poller.

Real processes, the fake Telegram and upstream on 127.0.0.1, a fresh database (REQUIRE_POSTGRES=1 fails
without a server instead of skipping).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from core.store import upgrade
from tests.e2e.support import PARLEY, free_port, parley_env
from tests.e2e.telegram_harness import API_KEY, TOKEN, bot_texts, fast_limits
from tests.fakes.telegram import FakeChat, FakeTelegram, RateLimits
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply
from tests.store.conftest import fresh_postgres_database

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SECRET = "scale-out-secret"
WAIT_SECONDS = 15.0


def slow_echo(request: RecordedRequest) -> Reply:
    """Echo, streamed over ~0.3 s, so that a turn is still running when the next message arrives."""
    return Reply(text=f"Echo: {request.last_user_text} " + "." * 40, chunk_chars=4, tokens_per_second=40)


@asynccontextmanager
async def round_robin(ports: list[int]) -> AsyncIterator[str]:
    """A load balancer: each webhook push goes to the next process in turn. Yields its URL."""
    turn = itertools.cycle(ports)

    async def forward(request: web.Request) -> web.Response:
        port = next(turn)
        try:
            async with session.post(
                f"http://127.0.0.1:{port}/hook", data=await request.read(), headers=dict(request.headers)
            ) as answer:
                return web.Response(status=answer.status)
        except aiohttp.ClientError:
            return web.Response(status=502)

    app = web.Application()
    app.router.add_post("/hook", forward)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    async with aiohttp.ClientSession() as session:
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        finally:
            await runner.cleanup()


class Process:
    """One `parley run telegram`; its output is read as it comes, and copied into a log file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self._output = bytearray()
        self._changed = asyncio.Event()  # set, then replaced, whenever output arrives or ends
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("wb") as out:
            while chunk := await self.process.stdout.read(64 * 1024):
                out.write(chunk)
                out.flush()
                self._output += chunk
                self._changed.set()
                self._changed = asyncio.Event()
        self._changed.set()

    def text(self) -> str:
        return self._output.decode(errors="replace")

    async def logged(self, text: str) -> None:
        """Wait until the process's output shows `text`."""
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                changed = self._changed
                if text in self.text():
                    return
                assert not self.reader.done(), f"the process ended without logging {text!r}"
                await changed.wait()


@asynccontextmanager
async def parley(tmp_path: Path, name: str, env: dict[str, str]) -> AsyncIterator[Process]:
    process = await asyncio.create_subprocess_exec(
        PARLEY, "run", "telegram", cwd=tmp_path, env=parley_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    running = Process(process, tmp_path / f"{name}.log")
    try:
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait_for(running.reader, 10)  # the rest of the output, up to the pipe's end


@asynccontextmanager
async def fakes(
    *, token: str = TOKEN, limits: RateLimits | None = None
) -> AsyncIterator[tuple[FakeTelegram, FakeUpstream, str]]:
    async with (
        fresh_postgres_database() as database_url,
        FakeUpstream(api_key=API_KEY, default_reply=slow_echo) as up,
        FakeTelegram(token=token, limits=limits or fast_limits(), webhook_retry_seconds=0.05) as tg,
    ):
        await upgrade(database_url)  # once, before the processes start (they then find it up to date)
        yield tg, up, database_url
        assert tg.count_429 == 0, [(c.method, c.params.get("chat_id")) for c in tg.calls if c.status == 429]
        assert tg.internal_errors == []


def base_env(tg: FakeTelegram, up: FakeUpstream, database_url: str, *, token: str = TOKEN) -> dict[str, str]:
    return {
        "LLM_BASE_URL": up.base_url, "LLM_API_KEY": API_KEY, "CHAT_MODEL": "fake/echo", "LLM_MAX_RETRIES": "0",
        "DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": tg.base_url,
        "TELEGRAM_STREAM_MODE": "edit", "TELEGRAM_EDIT_INTERVAL_SECONDS": "0.4", "LOG_LEVEL": "INFO",
    }  # fmt: skip


async def wait_until(tg: FakeTelegram, test: Callable[[], object]) -> None:
    await tg.wait_for(test, WAIT_SECONDS)


def asked_upstream(up: FakeUpstream, text: str) -> Callable[[], bool]:
    return lambda: text in [r.last_user_text for r in up.chat_requests]


def transcript(request: RecordedRequest) -> list[tuple[str, str]]:
    return [(m["role"], str(m["content"])) for m in request.body["messages"] if m["role"] != "system"]


async def test_one_conversation_in_order_across_webhook_processes(tmp_path: Path) -> None:
    async with fakes() as (tg, up, database_url), AsyncExitStack() as stack:
        ports = [free_port(), free_port()]
        url = await stack.enter_async_context(round_robin(ports))
        env = base_env(tg, up, database_url) | {
            "TELEGRAM_WEBHOOK_URL": url, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        }  # fmt: skip
        for number, port in enumerate(ports):
            await stack.enter_async_context(parley(tmp_path, f"p{number}", env | {"TELEGRAM_WEBHOOK_PORT": str(port)}))
        await wait_until(tg, lambda: len([c for c in tg.calls_of("setWebhook") if c.ok]) == 2)
        ann, bob = tg.user("Ann"), tg.user("Bob")
        ann_chat, bob_chat = tg.private_chat(ann), tg.private_chat(bob)
        asked = [f"a{i}" for i in range(1, 5)]
        for i, text in enumerate(asked):
            # Pushed alternately to each process (the fake pushes in order), each while the turn before
            # it still streams (~0.3 s) in the other process, so that it has to wait for it.
            tg.user_sends(ann_chat, ann, text)
            if i == 1:
                tg.user_sends(bob_chat, bob, "b1")  # lands on the process busy with a1: must not wait
            await wait_until(tg, asked_upstream(up, text))

        def answered(chat: FakeChat, count: int) -> bool:
            return len([t for t in bot_texts(tg, chat) if t.endswith("." * 40)]) >= count

        await wait_until(tg, lambda: answered(ann_chat, 4) and answered(bob_chat, 1))
        deliveries = [status for _, status in tg.webhook.deliveries]
        ann_requests = [r for r in up.chat_requests if r.last_user_text.startswith("a")]
        assert [r.last_user_text for r in ann_requests] == asked  # answered in order
        for i, request in enumerate(ann_requests):  # each turn saw every exchange before it
            seen = transcript(request)
            expected_users = [("user", text) for text in asked[: i + 1]]
            assert [m for m in seen if m[0] == "user"] == expected_users
            assert [c for r, c in seen if r == "assistant"] == [f"Echo: {t} " + "." * 40 for t in asked[:i]]
        order = [r.last_user_text for r in up.chat_requests]
        assert order.index("b1") < order.index("a2")  # Bob was not queued behind Ann's conversation
        assert deliveries[:5] == [200] * 5  # so the pushes alternated a1, a2, b1, a3, a4 over p0, p1
        assert all(p.read_text().count("reply done") >= 2 for p in tmp_path.glob("p*.log"))  # both answered
        # Every answer shown once. (Their order on screen may differ from the order answered: a process's
        # per-chat pacing can hold a reply's first message back after the conversation's lock is released.)
        assert sorted(t.split(" ")[1] for t in bot_texts(tg, ann_chat)) == asked
    logs = [p.read_text() for p in tmp_path.glob("p*.log")]
    assert len(logs) == 2 and not any("Traceback" in log or API_KEY in log for log in logs)


async def test_one_poller_at_a_time_and_a_follower_takes_over(tmp_path: Path) -> None:
    async with fakes() as (tg, up, database_url), AsyncExitStack() as stack:
        env = base_env(tg, up, database_url) | {"POLL_LEADER_RETRY_SECONDS": "0.2"}
        first = await stack.enter_async_context(parley(tmp_path, "first", env))
        await wait_until(tg, lambda: tg.calls_of("getUpdates"))
        second = await stack.enter_async_context(parley(tmp_path, "second", env))
        await second.logged("waiting to be the one process")
        ann = tg.user("Ann")
        chat = tg.private_chat(ann)
        tg.user_sends(chat, ann, "one")
        await wait_until(tg, lambda: any(t.startswith("Echo: one") for t in bot_texts(tg, chat)))
        assert "is polling for updates" in first.text() and "is polling for updates" not in second.text()

        first.process.kill()  # the leader dies: its database session ends, and with it the lock
        await first.process.wait()
        await second.logged("is polling for updates")
        tg.user_sends(chat, ann, "two")
        await wait_until(tg, lambda: any(t.startswith("Echo: two") for t in bot_texts(tg, chat)))
        conflicts = [c for c in tg.calls_of("getUpdates") if c.status == 409]
        assert conflicts == []
        assert [r.last_user_text for r in up.chat_requests] == ["one", "two"]  # each answered once
    logs = [p.read_text() for p in tmp_path.glob("*.log")]
    assert len(logs) == 2 and not any("Traceback" in log or API_KEY in log for log in logs)
