"""Bench: the tool loop's own cost between rounds, against the local fake in a child process.

For each round: the time from the end of a tool-calling stream (its last byte read) to the fake receiving
the next request, minus the tool's own run time; and the client-side CPU per round (ToolLoop, the real
UpstreamClient, SSE parsing, tool-call assembly). Both processes read the same system-wide monotonic
clock. Run: `.venv/bin/python bench/tool_rounds.py`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import sys
import time
from collections.abc import AsyncGenerator, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from core.events import Event
from core.tools import Exchange, ToolContext, ToolLimits, ToolLoop, ToolRegistry, ToolResult
from core.upstream import UpstreamClient
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply, ToolCallScript

REPLIES = 40
ROUNDS = 5  # tool rounds per reply (TOOL_MAX_ROUNDS' default)
CALLS_PER_ROUND = 2
TARGET_GAP_MS = 20.0
MESSAGES = [{"role": "user", "content": "Look up both orders, five times over."}]


class NoOp:
    """A tool that only builds its result; it notes when each round's calls ran (first start, last end)."""

    name = "lookup_order"
    description = "Look up an order."
    parameters: Mapping[str, object] = {"type": "object", "properties": {"id": {"type": "string"}}}

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}  # by round ("A-<round>-<call>" ids)

    async def run(self, arguments: Mapping[str, object], context: ToolContext) -> ToolResult:
        started = time.monotonic()
        order = str(arguments.get("id"))
        result = ToolResult(f"order {order}: shipped " + "details " * 200)
        ended = time.monotonic()
        key = order.rsplit("-", 1)[0]
        first, _ = self.spans.get(key, (started, ended))
        self.spans[key] = (min(first, started), ended)
        return result

    def seconds(self, round_number: int) -> float:
        """How long the calls of a round ran (they run concurrently: the span, not the sum)."""
        started, ended = self.spans[f"A-{round_number}"]
        return ended - started


def _serve(conn: Connection) -> None:
    arrivals: list[float] = []

    def reply(request: RecordedRequest) -> Reply:
        arrivals.append(time.monotonic())
        done = len(request.tool_results) // CALLS_PER_ROUND
        if done >= ROUNDS:
            return Reply(text="All orders have shipped. " * 20, chunk_chars=4)
        calls = [
            ToolCallScript(f"call_{done}_{n}", "lookup_order", f'{{"id": "A-{done}-{n}"}}')
            for n in range(CALLS_PER_ROUND)
        ]
        return Reply(text="Checking. ", tool_calls=calls, finish_reason="tool_calls", chunk_chars=2)

    async def main() -> None:
        async with FakeUpstream(default_reply=reply) as up:
            conn.send(up.base_url)
            while (await asyncio.get_running_loop().run_in_executor(None, conn.recv)) != "stop":
                conn.send(list(arrivals))
                arrivals.clear()

    asyncio.run(main())


async def _measure(base_url: str, conn: Connection) -> tuple[list[float], float, int]:
    tool = NoOp()
    loop = ToolLoop(ToolRegistry([tool]), ToolLimits(max_rounds=ROUNDS))
    gaps: list[float] = []
    cpu_total, rounds_total = 0.0, 0
    async with UpstreamClient(base_url=base_url, api_key="bench-key") as client:

        def timed(ends: list[float]) -> Any:
            def stream(**kwargs: Any) -> AsyncGenerator[Event, None]:
                async def events() -> AsyncGenerator[Event, None]:
                    async for event in client.stream(**kwargs):
                        yield event
                    ends.append(time.monotonic())

                return events()

            return stream

        for number in range(REPLIES + 1):  # the first reply warms up connections and caches
            ends: list[float] = []
            tool.spans.clear()
            cpu = time.process_time()
            async for _ in loop.run(
                timed(ends), model="bench", messages=MESSAGES, user=None, context=ToolContext(), exchange=Exchange()
            ):
                pass
            cpu = time.process_time() - cpu
            conn.send("arrivals")
            arrivals: list[float] = conn.recv()
            if number == 0:
                continue
            assert len(arrivals) == len(ends) == ROUNDS + 1, (len(arrivals), len(ends))
            gaps += [(arrivals[i + 1] - ends[i] - tool.seconds(i)) * 1000 for i in range(ROUNDS)]
            cpu_total += cpu
            rounds_total += ROUNDS + 1
    return gaps, cpu_total, rounds_total


def main() -> int:
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    server.start()
    try:
        base_url = parent.recv()
        gaps, cpu, rounds = asyncio.run(_measure(base_url, parent))
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()
    gaps.sort()
    p50, p95 = statistics.median(gaps), gaps[int(len(gaps) * 0.95) - 1]
    print(f"{REPLIES} replies x {ROUNDS} tool rounds x {CALLS_PER_ROUND} calls; the fake runs in a child process")
    print(f"stream end -> next request (tool time excluded): p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {gaps[-1]:.2f} ms")
    print(f"client CPU per upstream round: {cpu / rounds * 1000:.2f} ms")
    ok = p95 < TARGET_GAP_MS
    print(f"target p95 < {TARGET_GAP_MS:g} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
