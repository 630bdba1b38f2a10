"""Bench: a 10,000-token streamed reply from the local fake, through UpstreamClient and through bare httpx.

Prints events per second and the CPU-time ratio client / bare byte read; first, the client CPU per event of
100 replies streaming at once at 50 events/s, through Parley's gateway transport and through httpx's own
(core/upstream/transport.py says why they differ). The fake runs in a child process,
so `time.process_time()` here counts only the client side. Run: `.venv/bin/python bench/upstream_stream.py`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

import httpx

from core.upstream import UpstreamClient
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply

Chunking = Literal["event", "bulk"]  # the fake upstream's write modes this bench compares

TOKENS = 10_000
CHARS_PER_TOKEN = 4
RUNS = 5
MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
TARGET_EVENTS_PER_SECOND = 50_000
# A busy bot's case: many replies streaming at once at a gateway's pace, a token per event.
PACED_STREAMS = 100
PACED_EVENTS = 300
PACED_RATE = 50.0


def _long_text() -> str:
    words = "Streaming keeps the chat alive: café, 東京, naïve, emoji 🚀 and plain ASCII words. "
    return (words * (TOKENS * CHARS_PER_TOKEN // len(words) + 1))[: TOKENS * CHARS_PER_TOKEN]


def _serve(conn: Connection, chunking: Chunking) -> None:
    """Child process: run the fake until the parent says stop."""

    def reply(_: RecordedRequest) -> Reply:
        return Reply(text=_long_text(), chunk_chars=CHARS_PER_TOKEN, byte_chunking=chunking)

    async def main() -> None:
        async with FakeUpstream(default_reply=reply) as up:
            conn.send(up.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


async def _client_run(client: UpstreamClient) -> tuple[int, float, float]:
    events = 0
    cpu, wall = time.process_time(), time.perf_counter()
    async for _ in client.stream(model="bench", messages=MESSAGES):
        events += 1
    return events, time.process_time() - cpu, time.perf_counter() - wall


async def _bare_run(http: httpx.AsyncClient, base_url: str, body: dict[str, Any]) -> tuple[int, float]:
    received = 0
    cpu = time.process_time()
    async with http.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        async for piece in response.aiter_bytes():
            received += len(piece)
    return received, time.process_time() - cpu


async def _measure(base_url: str) -> dict[str, float]:
    body = {"model": "bench", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    client_runs: list[tuple[int, float, float]] = []
    bare_runs: list[tuple[int, float]] = []
    async with UpstreamClient(base_url=base_url, api_key="bench-key") as client, httpx.AsyncClient() as http:
        await _client_run(client)  # warm-up: connections, caches
        await _bare_run(http, base_url, body)
        for _ in range(RUNS):
            client_runs.append(await _client_run(client))
            bare_runs.append(await _bare_run(http, base_url, body))
    events, client_cpu, client_wall = min(client_runs, key=lambda run: run[1])
    received, bare_cpu = min(bare_runs, key=lambda run: run[1])
    return {
        "events": events,
        "bytes": received,
        "client_cpu": client_cpu,
        "client_wall": client_wall,
        "bare_cpu": bare_cpu,
    }


def _bench(chunking: Chunking) -> dict[str, float]:
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, chunking))
    server.start()
    try:
        base_url = parent.recv()
        return asyncio.run(_measure(base_url))
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


def _serve_paced(conn: Connection) -> None:
    """Child process: many replies at once, each PACED_EVENTS events at a gateway's pace (one event a token)."""

    def reply(_: RecordedRequest) -> Reply:
        return Reply(text="w" * PACED_EVENTS * 5, chunk_chars=5, tokens_per_second=PACED_RATE)

    async def main() -> None:
        async with FakeUpstream(default_reply=reply) as up:
            conn.send(up.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


async def _paced_cpu(base_url: str, transport: httpx.AsyncBaseTransport | None) -> float:
    """Client CPU per event (µs) for PACED_STREAMS replies streaming together; `transport` None: Parley's own."""
    async with UpstreamClient(base_url=base_url, api_key="bench-key", transport=transport) as client:

        async def one() -> int:
            return len([event async for event in client.stream(model="bench", messages=MESSAGES)])

        await one()  # warm-up
        cpu = time.process_time()
        events = sum(await asyncio.gather(*(one() for _ in range(PACED_STREAMS))))
        return (time.process_time() - cpu) / events * 1e6


def _bench_paced() -> tuple[float, float]:
    """(Parley's transport, httpx's own): µs of client CPU per event, alternating runs in one process."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve_paced, args=(child,))
    server.start()
    try:
        base_url = parent.recv()
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(2):
            ours.append(asyncio.run(_paced_cpu(base_url, None)))
            theirs.append(asyncio.run(_paced_cpu(base_url, httpx.AsyncHTTPTransport())))
        return min(ours), min(theirs)
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()


def main() -> int:
    ours, theirs = _bench_paced()
    print(
        f"{PACED_STREAMS} replies at once, {PACED_EVENTS} events each at {PACED_RATE:.0f}/s: client CPU per event "
        f"{ours:.0f} µs (Parley's gateway transport, aiohttp) vs {theirs:.0f} µs (httpx's own transport): "
        f"ratio {ours / theirs:.2f}"
    )
    print(f"{TOKENS} tokens, best of {RUNS} runs; the fake runs in a child process")
    ok = True
    modes: list[tuple[Chunking, str]] = [("event", "one write per SSE event"), ("bulk", "whole body in one write")]
    for chunking, label in modes:
        r = _bench(chunking)
        per_cpu = r["events"] / r["client_cpu"]
        ok = ok and per_cpu >= TARGET_EVENTS_PER_SECOND
        print(
            f"[{label}] {int(r['events'])} events, {r['bytes'] / 1e6:.1f} MB: "
            f"client {r['client_cpu'] * 1000:.0f} ms CPU ({per_cpu:,.0f} events/s per CPU second, "
            f"{r['events'] / r['client_wall']:,.0f} events/s wall); "
            f"bare httpx {r['bare_cpu'] * 1000:.0f} ms CPU; "
            f"ratio client/bare {r['client_cpu'] / r['bare_cpu']:.1f}"
        )
    print(f"target >= {TARGET_EVENTS_PER_SECOND:,} events/s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
