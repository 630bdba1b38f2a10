"""Load figures for the real Telegram adapter: Poisson arrivals of new DMs, hundreds of replies streaming at once.

The fakes (Bot API with per-chat limits and a global 30 requests/s, and the upstream: each reply 300 tokens at
50 tokens/s) run in child processes, one each (as on two other machines; the figures are recorded by the fake
Bot API, which must not wait behind the gateway's streaming), so the bot process's CPU, RSS and event-loop lag
are its own; a last line gives the fakes' own CPU and the fake Bot API's loop lag. For each
database and arrival rate it prints: replies completed (final text equal to the upstream text), time from the
first upstream token to the first visible text (draft or message) p50/p99, edits per reply, platform 429s,
event-loop lag p99, bot CPU seconds, peak RSS, and the time from the user's message to the first visible
text (what the user waits, intake delays included). 20 warm-up messages are answered first and not counted.

Run from the repository root: .venv/bin/python -m bench.load [--rates 5,10,20] [--seconds 60] [--db sqlite,postgres]

`--processes N` (N > 1, PostgreSQL + Redis): N webhook bot processes of one bot behind a round-robin balancer,
sharing the platform budget through Redis (bench/load_cluster.py); the line per rate gives totals across them
(CPU summed, RSS and loop lag the largest), then a line per process for its CPU, RSS and loop lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

TOKEN = "123456789:AAHloadTestTokenForTheBench_0123456789"
API_KEY = "sk-bench-key"
TOKENS_PER_REPLY = 300
TOKENS_PER_SECOND = 50.0
WARMUP_MESSAGES = 20  # over 1 s, before the measured arrivals (see _warm_up)
DRAIN_SECONDS = 90.0  # after the last arrival, time allowed for every reply to finish


_WORDS = " ".join(f"w{n}" for n in range(TOKENS_PER_REPLY - 2))


def answer_for(question: str) -> str:
    return f"Answer to {question}: {_WORDS}"


# --- the fakes' process ---------------------------------------------------------------------------------


def fakes_main(pipe: Connection, rate: float, seconds: float, seed: int, ports: list[int] | None = None) -> None:
    asyncio.run(_fakes(pipe, rate, seconds, seed, ports or []))


def gateway_main(pipe: Connection) -> None:
    """The fake gateway in a process of its own: a gateway is another machine, and its streaming (most of the
    fakes' CPU) must not make the fake Telegram, where the figures are recorded, late."""
    asyncio.run(_gateway(pipe))


async def _gateway(pipe: Connection) -> None:
    from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply

    first_token: dict[str, float] = {}

    def reply(request: RecordedRequest) -> Reply:
        question = request.last_user_text
        first_token.setdefault(question, time.monotonic())  # the first content chunk leaves at once
        return Reply(text=answer_for(question), chunk_chars=5, tokens_per_second=TOKENS_PER_SECOND)

    loop = asyncio.get_running_loop()
    async with FakeUpstream(api_key=API_KEY, default_reply=reply) as up:
        pipe.send(up.base_url)
        cpu_before = time.process_time()
        await loop.run_in_executor(None, pipe.recv)  # the arrivals are over
        pipe.send((first_token, time.process_time() - cpu_before))
        await loop.run_in_executor(None, pipe.recv)  # the bots have stopped


async def _fakes(pipe: Connection, rate: float, seconds: float, seed: int, ports: list[int]) -> None:
    from bench.load_cluster import bench_token, watch_lag
    from tests.e2e.test_scale_out import round_robin
    from tests.fakes.telegram import FakeTelegram, RateLimits

    context = multiprocessing.get_context("spawn")
    gateway_pipe, theirs = context.Pipe()
    gateway = context.Process(target=gateway_main, args=(theirs,), daemon=True)
    gateway.start()
    loop = asyncio.get_running_loop()
    upstream_url = await loop.run_in_executor(None, gateway_pipe.recv)
    token = bench_token() if ports else TOKEN
    async with (
        FakeTelegram(token=token, limits=RateLimits(global_per_second=30.0, global_burst=30)) as tg,
        contextlib.AsyncExitStack() as stack,
    ):
        if ports:  # webhook processes behind a round-robin balancer
            hook_url = await stack.enter_async_context(round_robin(ports))
            pipe.send((upstream_url, tg.base_url, hook_url, token))
        else:
            pipe.send((upstream_url, tg.base_url))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # the bots are receiving
        lags: list[float] = []  # the fakes' own lag and CPU: a late fake would delay what it records
        cpu_before = time.process_time()
        stack.callback((watcher := asyncio.create_task(watch_lag(lags))).cancel)
        await _warm_up(tg)
        rng = random.Random(seed)
        chats: dict[str, Any] = {}
        started = time.monotonic()
        n = 0
        while (now := time.monotonic()) - started < seconds:
            question = f"q{n}"
            user = tg.user(f"User{n}")
            chat = tg.private_chat(user)
            tg.user_sends(chat, user, question)
            chats[question] = (chat, now, tg.world.updates[-1]["update_id"])
            n += 1
            await asyncio.sleep(rng.expovariate(rate))

        waiting = {q: (chat, answer_for(q)) for q, (chat, _, _) in chats.items()}

        def finished() -> bool:
            """Checked at every change of the fake: only the replies not yet complete (checking all, the
            fake Telegram spent the drain at 100 % CPU, late for the finals it was recording)."""
            for question in [q for q, (chat, answer) in waiting.items() if _final_text(tg, chat) == answer]:
                del waiting[question]
            return not waiting

        with contextlib.suppress(TimeoutError):
            await tg.wait_for(finished, DRAIN_SECONDS)
        watcher.cancel()
        own = {"fakes_lag_p99": _percentile(lags, 0.99), "fakes_cpu": time.process_time() - cpu_before}
        gateway_pipe.send("figures")
        first_token, own["gateway_cpu"] = await loop.run_in_executor(None, gateway_pipe.recv)
        pipe.send(_figures(tg, chats, first_token) | own)
        await loop.run_in_executor(None, pipe.recv)  # the bots have stopped
    gateway_pipe.send("stop")
    await loop.run_in_executor(None, gateway.join, 10)


async def _warm_up(tg: Any) -> None:
    """A fresh bot's first messages, answered before the measured arrivals and left out of every figure
    (the bench measures a bot in service): its processes open their database and upstream connections, and
    the cluster's order holds the first updates of a bot it has never seen for up to 0.5 s."""
    warm: list[tuple[str, Any]] = []
    for n in range(WARMUP_MESSAGES):
        user = tg.user(f"Warm{n}")
        chat = tg.private_chat(user)
        tg.user_sends(chat, user, f"w{n}")
        warm.append((f"w{n}", chat))
        await asyncio.sleep(0.05)
    await tg.wait_for(lambda: all(_final_text(tg, chat) == answer_for(q) for q, chat in warm), DRAIN_SECONDS)


def _final_text(tg: Any, chat: Any) -> str:
    return "".join(m.text for m in tg.messages(chat) if not m.deleted)


def _figures(tg: Any, chats: dict[str, Any], first_token: dict[str, float]) -> dict[str, Any]:
    visible_delays: list[float] = []
    edits: list[int] = []
    completed = wrong = 0
    by_chat: dict[int, list[Any]] = {}
    for call in tg.calls:
        chat_id = call.params.get("chat_id")
        if call.ok and chat_id is not None:
            by_chat.setdefault(int(chat_id), []).append(call)
    asked_delays: list[float] = []  # from the user's message: what the user waits (intake delays included)
    intake_delays: list[float] = []  # from the user's message to the upstream request
    delivered_at = tg.webhook.delivered_at  # empty when polling
    delivered: list[float] = []  # from the user's message to the webhook's 2xx (the fake's own delivery)
    for question, (chat, asked_at, update_id) in chats.items():
        if update_id in delivered_at:
            delivered.append(delivered_at[update_id] - asked_at)
        text = _final_text(tg, chat)
        if text == answer_for(question):
            completed += 1
        elif text:
            wrong += 1
        calls = by_chat.get(chat.id, [])
        shown = [c.time for c in calls if c.method in ("sendMessage", "sendMessageDraft", "editMessageText")]
        if shown and question in first_token:
            visible_delays.append(shown[0] - first_token[question])
        if shown:
            asked_delays.append(shown[0] - asked_at)
        if question in first_token:
            intake_delays.append(first_token[question] - asked_at)
        edits.append(sum(c.method in ("editMessageText", "sendMessageDraft") for c in calls))
    return {
        "arrived": len(chats),
        "completed": completed,
        "wrong": wrong,
        "visible": visible_delays,
        "asked_visible": asked_delays,
        "intake": intake_delays,
        "delivered": delivered,
        "edits": edits,
        "count_429": tg.count_429,
    }


# --- the bot's process ----------------------------------------------------------------------------------


async def run_bot(database_url: str, rate: float, seconds: float) -> str:
    from bench.load_cluster import watch_lag
    from bots.telegram_bot import run_telegram
    from core import Settings, open_assistant

    os.environ.setdefault("PTB_TIMEDELTA", "true")
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fakes = context.Process(target=fakes_main, args=(child, rate, seconds, 7))  # not a daemon: it starts the gateway
    fakes.start()
    loop = asyncio.get_running_loop()
    upstream_url, telegram_url = await loop.run_in_executor(None, parent.recv)
    settings = Settings(
        _env_file=None,
        llm_base_url=upstream_url,
        llm_api_key=API_KEY,
        chat_model="fake/echo",
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=telegram_url,
    )
    lags: list[float] = []

    async with open_assistant(settings) as assistant:
        cpu_before = time.process_time()
        bot = asyncio.create_task(run_telegram(assistant, settings))
        watcher = asyncio.create_task(watch_lag(lags))
        await asyncio.sleep(1.0)  # getMe, setMyCommands, first getUpdates
        parent.send("go")
        figures = await loop.run_in_executor(None, parent.recv)
        cpu = time.process_time() - cpu_before
        for task in (bot, watcher):
            task.cancel()
        await asyncio.gather(bot, watcher, return_exceptions=True)
    parent.send("done")
    await loop.run_in_executor(None, fakes.join, 10)
    return _line(rate, figures, lags, cpu) + "\n" + _fakes_line(figures)


def _fakes_line(figures: dict[str, Any]) -> str:
    """The fakes share the machine's cores: a fake Telegram short of CPU records every figure above late."""
    lag_ms = figures["fakes_lag_p99"] * 1000
    return (
        f"        fakes: Telegram CPU {figures['fakes_cpu']:.1f} s, loop lag p99 {lag_ms:.1f} ms; "
        f"gateway CPU {figures['gateway_cpu']:.1f} s"
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_bots(processes: int, database_url: str, redis_url: str, rate: float, seconds: float) -> str:
    """The line for `processes` webhook processes: totals, then one line per process."""
    from bench.load_cluster import run_processes

    figures, own = await run_processes(fakes_main, processes, database_url, redis_url, rate, seconds)
    cpu = sum(p["cpu"] for p in own)
    rss = max(p["rss_mb"] for p in own)
    lines = [_line(rate, figures, [max(p["lag_p99"] for p in own)], cpu, rss_mb=rss)]
    for n, p in enumerate(own, 1):
        lag_ms = p["lag_p99"] * 1000
        lines.append(
            f"        process {n}: CPU {p['cpu']:.1f} s, peak RSS {p['rss_mb']:.0f} MB, loop lag p99 {lag_ms:.1f} ms"
        )
    lines.append(_fakes_line(figures))
    return "\n".join(lines)


def _line(rate: float, f: dict[str, Any], lags: list[float], cpu: float, *, rss_mb: float | None = None) -> str:
    if rss_mb is None:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    visible, asked = f["visible"], f["asked_visible"]
    return (
        f"  {rate:>4.0f}/s: {f['completed']}/{f['arrived']} replies complete ({f['wrong']} wrong), "
        f"first visible p50 {_percentile(visible, 0.5) * 1000:.0f} ms p99 {_percentile(visible, 0.99) * 1000:.0f} ms, "
        f"edits/reply {statistics.fmean(f['edits']) if f['edits'] else 0:.1f}, 429s {f['count_429']}, "
        f"loop lag p99 {_percentile(lags, 0.99) * 1000:.1f} ms, bot CPU {cpu:.1f} s, peak RSS {rss_mb:.0f} MB, "
        f"message to first visible p50 {_percentile(asked, 0.5) * 1000:.0f} ms "
        f"p99 {_percentile(asked, 0.99) * 1000:.0f} ms (to the upstream request p50 "
        f"{_percentile(f['intake'], 0.5) * 1000:.0f} ms p99 {_percentile(f['intake'], 0.99) * 1000:.0f} ms"
        + (
            f", to the webhook's 2xx p50 {_percentile(f['delivered'], 0.5) * 1000:.0f} ms "
            f"p99 {_percentile(f['delivered'], 0.99) * 1000:.0f} ms"
            if f["delivered"]
            else ""
        )
        + ")"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,10,20")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--processes", type=int, default=1, help="webhook bot processes (> 1: PostgreSQL + Redis)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(
        f"Poisson arrivals for {args.seconds:.0f} s; each reply {TOKENS_PER_REPLY} tokens at "
        f"{TOKENS_PER_SECOND:.0f}/s; fake Bot API per-chat limits and 30 requests/s global"
        + (f"; {args.processes} webhook processes sharing Redis" if args.processes > 1 else ""),
        flush=True,
    )
    for db in args.db.split(","):
        print(f"{db}:", flush=True)
        for rate in rates:
            if db == "sqlite":
                if args.processes > 1:
                    raise SystemExit("--processes > 1 needs --db postgres (SQLite is one process)")
                with tempfile.TemporaryDirectory() as folder:
                    print(await run_bot(f"sqlite+aiosqlite:///{Path(folder) / 'load.db'}", rate, args.seconds))
            else:
                from bench.history import temporary_postgres_database

                async with temporary_postgres_database(args.pg_url) as url:
                    if args.processes > 1:
                        print(await run_bots(args.processes, url, args.redis_url, rate, args.seconds), flush=True)
                    else:
                        print(await run_bot(url, rate, args.seconds), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    asyncio.run(main())
