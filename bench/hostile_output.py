"""Bench: loop time of the passes over model output, for hostile answers and a benign one of the same size.

Every pass over model output must be linear in its length (the markdown-image regex used to be quadratic:
16k characters of `![` stalled the event loop for a second). For 16k, 64k and 1M characters of each hostile
pattern this prints the milliseconds spent in
  images   core.images.find_markdown_images + extract_images (what a finished reply runs)
  filter   core.live.markdown.strip_images + ImageFilter fed 4000-character deltas (the live engine's passes)
  links    core.live.markdown.neutralize_links (Discord) and render_final's text_link filter input
and, with --layout, the whole layout into Telegram and Discord messages (16k and 64k only unless --full),
each with its ratio to the benign text of the same size. Run: `.venv/bin/python bench/hostile_output.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from core.images import extract_images, find_markdown_images
from core.live.layout import Layout
from core.live.markdown import ImageFilter, neutralize_links, render_final, strip_images
from core.live.split import count_units

SIZES = (16_000, 64_000, 1_000_000)
UNITS = {
    "benign": "Hello **world**, here is `code` and a [link](https://example.org/x). ",
    "![": "![",
    "[![": "[![",
    "![x](": "![x](",
    "![x](http://": "![x](http://",
    "![x](http://a ": "![x](http://a ",
    "![x](http://a)": "![x](http://a)",
    "](": "](",
    "[": "[",
    "(": "(",
    "`": "`",
    ".": ".",
    "data:": "data:",
    "> ": "> ",
    "- ": "- ",
    "*a ": "*a ",
    "e\u0301": "e" + "\u0301" * 40 + " ",
}


def hostile(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def images_pass(text: str) -> None:
    find_markdown_images(text)
    asyncio.run(extract_images(text, max_bytes=10_000_000))


def filter_pass(text: str) -> None:
    strip_images(text)
    live = ImageFilter()
    for start in range(0, len(text), 4000):
        live.feed(text[start : start + 4000])
    live.flush()


def layout_pass(text: str) -> None:
    for platform, window in (("entities", 4096), ("markdown", 1984)):
        Layout(
            window_units=window,
            unit="utf16",
            render=lambda source, p=platform: render_final(source, p),  # type: ignore[misc]
            fits=lambda rendered, w=window: count_units(rendered.text, "utf16") <= w + 16,  # type: ignore[misc]
        ).finish(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layout", action="store_true", help="also time the layout into messages")
    parser.add_argument("--full", action="store_true", help="time the layout at 1M characters too (slow)")
    args = parser.parse_args()
    passes: dict[str, Callable[[str], object]] = {
        "images": images_pass,
        "filter": filter_pass,
        "links": neutralize_links,
    }
    if args.layout:
        passes["layout"] = layout_pass
    print(f"{'pattern':>14} {'size':>9} " + " ".join(f"{name + ' ms':>11} {'x benign':>8}" for name in passes))
    benign: dict[tuple[str, int], float] = {}
    for name, unit in UNITS.items():
        for size in SIZES:
            text = hostile(unit, size)
            cells = []
            for pass_name, run in passes.items():
                if pass_name == "layout" and size > 64_000 and not args.full:
                    cells.append(f"{'-':>11} {'-':>8}")
                    continue
                ms = timed(lambda run=run, text=text: run(text))  # type: ignore[misc]
                if name == "benign":
                    benign[(pass_name, size)] = ms
                ratio = ms / max(benign[(pass_name, size)], 0.01)
                cells.append(f"{ms:11.1f} {ratio:8.1f}")
            print(f"{name!r:>14} {size:>9} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
