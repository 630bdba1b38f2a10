"""`bench.load --processes N`: N webhook bot processes of one bot on PostgreSQL + Redis behind a round-robin
balancer; the fake Bot API (in the fakes' process, with the balancer) pushes updates concurrently and enforces
its limits, 30 requests/s per bot among them, across all processes. The balancer is test_scale_out's.

Each bot process reports its own CPU seconds, peak RSS and event-loop lag p99; the reply figures are totals
measured at the fake. Used by bench/load.py; not run on its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

SECRET = "bench-webhook-secret"
READY_SECONDS = 60.0  # startup of every process (migrations, getMe, setWebhook) on a loaded machine


async def watch_lag(lags: list[float]) -> None:
    """Record the event loop's lag every 10 ms into `lags`, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(max(0.0, loop.time() - before - 0.01))


def bot_main(pipe: Connection, settings: dict[str, Any]) -> None:
    asyncio.run(_bot(pipe, settings))


async def _bot(pipe: Connection, values: dict[str, Any]) -> None:
    import os

    from bots.telegram_bot import run_telegram
    from core import Settings, open_assistant

    os.environ.setdefault("PTB_TIMEDELTA", "true")
    settings = Settings(_env_file=None, **values)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    async with open_assistant(settings) as assistant:
        bot = asyncio.create_task(run_telegram(assistant, settings))
        await asyncio.sleep(2.0)  # getMe, setMyCommands, setWebhook
        cpu_before = time.process_time()
        watcher = asyncio.create_task(watch_lag(lags))
        pipe.send("ready")
        await loop.run_in_executor(None, pipe.recv)  # "stop"
        cpu = time.process_time() - cpu_before
        for task in (bot, watcher):
            task.cancel()
        await asyncio.gather(bot, watcher, return_exceptions=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ordered = sorted(lags) or [float("nan")]
    pipe.send({"cpu": cpu, "rss_mb": rss_mb, "lag_p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]})


async def run_processes(
    fakes_main: Any, processes: int, database_url: str, redis_url: str, rate: float, seconds: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start the fakes and `processes` bots, run the arrivals; the fakes' figures and each bot's own."""
    from tests.e2e.support import free_port

    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    ports = [free_port() for _ in range(processes)]
    parent, child = context.Pipe()
    fakes = context.Process(target=fakes_main, args=(child, rate, seconds, 7, ports))  # it starts the gateway
    fakes.start()
    upstream_url, telegram_url, hook_url, token = await loop.run_in_executor(None, parent.recv)
    common = {
        "llm_base_url": upstream_url, "llm_api_key": "sk-bench-key", "chat_model": "fake/echo",
        "database_url": database_url, "redis_url": redis_url, "telegram_bot_token": token,
        "telegram_api_base_url": telegram_url, "telegram_webhook_url": hook_url,
        "telegram_webhook_secret": SECRET, "telegram_webhook_listen": "127.0.0.1",
    }  # fmt: skip
    bots: list[tuple[Any, Connection]] = []
    for port in ports:
        mine, theirs = context.Pipe()
        process = context.Process(target=bot_main, args=(theirs, common | {"telegram_webhook_port": port}))
        process.start()
        bots.append((process, mine))
    for _, pipe in bots:
        await asyncio.wait_for(loop.run_in_executor(None, pipe.recv), READY_SECONDS)
    parent.send("go")
    figures = await loop.run_in_executor(None, parent.recv)
    own: list[dict[str, Any]] = []
    for _, pipe in bots:
        pipe.send("stop")
    for process, pipe in bots:
        own.append(await loop.run_in_executor(None, pipe.recv))
        await loop.run_in_executor(None, process.join, 20)
    parent.send("done")
    await loop.run_in_executor(None, fakes.join, 10)
    return figures, own


def bench_token() -> str:
    """A bot id of its own per run: Redis keys of an earlier run never meet this one."""
    return f"{100_000_000 + uuid.uuid4().int % 800_000_000}:AAHloadTestTokenForTheBench_0123456789"
