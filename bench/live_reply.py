"""Bench: 500 concurrent live replies, each 100 tokens/s for 10 s, through LiveReply into a no-op surface.

Each scenario runs in its own process (so peak RSS is its own) on the real clock:
  baseline   the same token producers drained by a bare loop (what the engine's cost is measured against)
  engine     LiveReply with an unlimited bot budget: every reply edits once a second (500 edits/s)
  telegram   LiveReply with Telegram's 30 requests/s per bot: first texts and finals first, few edits
Prints CPU µs per token (engine cost = scenario - baseline), event-loop lag p50/p99, peak RSS, and the delay
from a reply's first upstream token to its first text on the surface. Run: `.venv/bin/python bench/live_reply.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from core.events import Completed, Event, Image, TextDelta
from core.live import Budget, Handle, LiveReply, Profile, Rendered
from tests.profiles import DEFAULT_SETTINGS, TELEGRAM_PRIVATE

REPLIES = 500
TOKENS_PER_SECOND = 100
SECONDS = 10
LAG_PROBE_SECONDS = 0.01
TARGETS = {"cpu_us_per_token": 20.0, "lag_p99_ms": 50.0, "peak_rss_mb": 300.0, "first_text_p99_ms": 50.0}


def answer_tokens(count: int) -> list[str]:
    """About 5 characters a token of chat-like Markdown: paragraphs, bold, a list, a code block."""
    text = (
        "Here is **the plan** for today, step by step.\n\n"
        "1. Read the `config.toml` file and check every value.\n"
        "2. Start the server; watch the log for errors.\n\n"
        "```python\nfor item in items:\n    print(item, len(item))\n```\n\n"
        "Streaming keeps the chat alive: café, 東京, naïve, emoji 🚀 and plain words. "
    )
    body = (text * (count * 5 // len(text) + 1))[: count * 5]
    return [body[i : i + 5] for i in range(0, len(body), 5)]


class NoOpSurface:
    """Accepts every call at once; remembers when the first text arrived."""

    def __init__(self, chat_key: str, profile: Profile) -> None:
        self.chat_key = chat_key  # plain attributes meet the Surface protocol's read-only properties
        self.profile = profile
        self.first_text_at: float | None = None
        self.calls = 0

    async def send(self, text: Rendered) -> Handle:
        self.calls += 1
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        return Handle(str(self.calls), self.chat_key)

    async def edit(self, handle: Handle, text: Rendered) -> None:
        self.calls += 1

    async def delete(self, handle: Handle) -> None:
        self.calls += 1

    async def send_images(self, images: Sequence[Image], caption: Rendered | None) -> Sequence[Handle]:
        self.calls += 1
        return [Handle("img", self.chat_key)]

    async def typing(self) -> None:
        self.calls += 1

    async def draft(self, text: Rendered) -> None:
        self.calls += 1


class Producer:
    """One upstream stream: a token every 1/TOKENS_PER_SECOND seconds, then Completed."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.first_token_at: float | None = None

    async def events(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, token in enumerate(self.tokens):
            await asyncio.sleep(max(0.0, start + (index + 1) / TOKENS_PER_SECOND - loop.time()))
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            yield TextDelta(token)
        yield Completed("".join(self.tokens))


async def probe_lag(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_SECONDS)
        lags.append(time.perf_counter() - before - LAG_PROBE_SECONDS)


async def scenario(mode: str, replies: int, seconds: int) -> dict[str, float]:
    tokens = answer_tokens(TOKENS_PER_SECOND * seconds)
    producers = [Producer(tokens) for _ in range(replies)]
    surfaces = [NoOpSurface(f"chat-{i}", TELEGRAM_PRIVATE) for i in range(replies)]
    budget = Budget(DEFAULT_SETTINGS.telegram_requests_per_second if mode == "telegram" else 1e9)
    lags: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_lag(lags, stop))

    async def drain(producer: Producer) -> None:
        async for _ in producer.events():
            pass

    cpu, wall = time.process_time(), time.perf_counter()
    if mode == "baseline":
        await asyncio.gather(*(drain(p) for p in producers))
    else:
        await asyncio.gather(
            *(LiveReply(s, budget=budget).run(p.events()) for s, p in zip(surfaces, producers, strict=True))
        )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stop.set()
    await prober
    delays = sorted(
        (s.first_text_at - p.first_token_at) * 1000
        for s, p in zip(surfaces, producers, strict=True)
        if s.first_text_at is not None and p.first_token_at is not None
    )
    lags_ms = sorted(lag * 1000 for lag in lags)
    return {
        "tokens": float(replies * len(tokens)),
        "cpu_s": cpu,
        "wall_s": wall,
        "surface_calls": float(sum(s.calls for s in surfaces)),
        "lag_p50_ms": statistics.median(lags_ms),
        "lag_p99_ms": lags_ms[int(len(lags_ms) * 0.99)],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "first_text_p50_ms": statistics.median(delays) if delays else 0.0,
        "first_text_p99_ms": delays[int(len(delays) * 0.99)] if delays else 0.0,
        "first_text_max_ms": delays[-1] if delays else 0.0,
    }


def run_child(mode: str, replies: int, seconds: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--mode", mode, "--replies", str(replies), "--seconds", str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["baseline", "engine", "telegram"])
    parser.add_argument("--replies", type=int, default=REPLIES)
    parser.add_argument("--seconds", type=int, default=SECONDS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(asyncio.run(scenario(args.mode, args.replies, args.seconds))))
        return
    results = {mode: run_child(mode, args.replies, args.seconds) for mode in ("baseline", "engine", "telegram")}
    base = results["baseline"]
    base_us = base["cpu_s"] / base["tokens"] * 1e6
    print(f"{args.replies} replies x {TOKENS_PER_SECOND} tokens/s x {args.seconds} s, no-op surface, real clock")
    print(
        f"baseline (producers only): {base_us:.1f} µs CPU/token, lag p99 {base['lag_p99_ms']:.1f} ms, "
        f"peak RSS {base['peak_rss_mb']:.0f} MB"
    )
    for mode in ("engine", "telegram"):
        r = results[mode]
        total_us = r["cpu_s"] / r["tokens"] * 1e6
        print(
            f"{mode:9}: engine {total_us - base_us:5.1f} µs CPU/token (total {total_us:.1f}), "
            f"lag p50 {r['lag_p50_ms']:.1f} ms p99 {r['lag_p99_ms']:.1f} ms, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"first token -> first text p50 {r['first_text_p50_ms']:.1f} ms p99 {r['first_text_p99_ms']:.1f} ms "
            f"max {r['first_text_max_ms']:.0f} ms, {r['surface_calls']:.0f} surface calls in {r['wall_s']:.1f} s"
        )
    print("targets: " + ", ".join(f"{k} < {v:g}" for k, v in TARGETS.items()))


if __name__ == "__main__":
    main()
