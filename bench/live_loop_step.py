"""Bench: the longest single event-loop step while the live engine shows a 1 MB answer.

Every other chat and the platform heartbeats run on the same loop, so what matters is how long one step
holds it, not the total. For each pattern (benign words and hostile Markdown) and each dialect, a 1 MB answer
streams in 4,096-character deltas through `LiveReply` onto the fake surface at 1/100 of the platforms' pace,
and the longest `asyncio` callback is printed; with `--inline` the final layout runs on the loop instead of a
worker thread (`FINAL_LAYOUT_THREAD_CHARS`), for comparison. Run: `.venv/bin/python bench/live_loop_step.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

import core.live.engine as engine
from core import Budget, Completed, LiveReply, Profile, TextDelta
from tests.fakes.live_surface import FakePlatform, FakeSurface
from tests.loop_steps import longest_loop_step
from tests.profiles import DISCORD, TELEGRAM_PRIVATE

PATTERNS = ("word ", "> ", "![", "`", "](", "- ", "**")
SIZE = 1_000_000
DELTA_CHARS = 4096


async def show(text: str, profile: Profile) -> tuple[int, float, float]:
    async def events() -> AsyncIterator[object]:
        for start in range(0, len(text), DELTA_CHARS):
            yield TextDelta(text[start : start + DELTA_CHARS])
        yield Completed(text, ())

    paced = replace(profile, edit_interval_seconds=0.01, supports_draft=False)
    surface = FakeSurface(paced, platform=FakePlatform(speed=0.01))
    started = time.perf_counter()
    with longest_loop_step() as longest:
        result = await LiveReply(surface, budget=Budget(10_000)).run(events())
    return len(result.handles), time.perf_counter() - started, longest.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inline", action="store_true", help="final layout on the loop, not in a thread")
    args = parser.parse_args()
    if args.inline:
        engine.FINAL_LAYOUT_THREAD_CHARS = sys.maxsize
    print(f"{'pattern':>8} {'dialect':>9} {'messages':>8} {'wall s':>7} {'longest step ms':>15}")
    for pattern in PATTERNS:
        text = pattern * (SIZE // len(pattern))
        for profile in (TELEGRAM_PRIVATE, DISCORD):
            messages, wall, step = asyncio.run(show(text, profile))
            print(f"{pattern!r:>8} {profile.markup:>9} {messages:>8} {wall:>7.2f} {step * 1000:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
