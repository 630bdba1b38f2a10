"""Fifty varied Markdown answers streamed in random chunks: what readers finally see is exactly the rendered
answer, spread over messages that each fit the platform's limit, with no 429 and no unchanged edit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from bots.telegram_adapter.formatting import markdown_to_entities
from core.events import Completed, Event, TextDelta
from core.live import Budget, LiveReply, Profile, Rendered
from core.live.markdown import render_final, visible_text
from core.live.split import count_units
from tests.fakes.live_surface import FakeSurface, run_virtual
from tests.profiles import DISCORD, TELEGRAM_PRIVATE

EMOJI = ["👨\u200d👩\u200d👧\u200d👦", "🇯🇵", "👍🏽", "1\ufe0f\u20e3", "e\u0301", "🎉", "❤\ufe0f"]
CJK = ["这是一个句子。", "日本語の文です。", "한국어 문장입니다.", "中文，还有逗号！"]
WORDS = ["alpha", "beta", "snake_case", "2 * 3", "a < b", "x & y", "*not emphasis", "under_score_", "C#", "[brackets]"]


def sentence(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(4, 14)):
        roll = rng.random()
        if roll < 0.08:
            parts.append(f"**{rng.choice(WORDS)} {rng.choice(WORDS)}**")
        elif roll < 0.14:
            parts.append(f"_{rng.choice(['italic', 'slanted words'])}_")
        elif roll < 0.19:
            parts.append(f"`{rng.choice(['x < y', 'a_b', 'f(*args)', 'i++'])}`")
        elif roll < 0.23:
            parts.append(f"[{rng.choice(['docs', 'the link'])}](https://example.com/{rng.randint(1, 99)}?a=1&b=2)")
        elif roll < 0.30:
            parts.append(rng.choice(EMOJI))
        elif roll < 0.36:
            parts.append(rng.choice(CJK))
        elif roll < 0.38:
            parts.append(f"~~{rng.choice(WORDS)}~~")
        else:
            parts.append(rng.choice(WORDS))
    return " ".join(parts) + rng.choice([".", "!", "?", "…"])


def document(rng: random.Random) -> str:
    blocks: list[str] = []
    for _ in range(rng.randint(3, 24)):
        roll = rng.random()
        if roll < 0.35:
            blocks.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 8))))
        elif roll < 0.45:
            blocks.append(f"{'#' * rng.randint(1, 3)} {sentence(rng)[:40]}")
        elif roll < 0.58:
            items = [f"- {sentence(rng)}" for _ in range(rng.randint(2, 8))]
            if rng.random() < 0.4:
                items.insert(1, f"  - nested {sentence(rng)}")
            blocks.append("\n".join(items))
        elif roll < 0.66:
            blocks.append("\n".join(f"{i + 1}. {sentence(rng)}" for i in range(rng.randint(2, 6))))
        elif roll < 0.80:
            language = rng.choice(["python", "js", "", "rust"])
            lines = [f"value_{i} = data[{i}] * 2  # <{i}> & more" for i in range(rng.randint(3, 160))]
            blocks.append(f"```{language}\n" + "\n".join(lines) + "\n```")
        elif roll < 0.88:
            blocks.append("\n".join(f"> {sentence(rng)}" for _ in range(rng.randint(1, 4))))
        elif roll < 0.92:
            blocks.append("| name | value |\n|---|---|\n| a_b | 1 < 2 |\n| c*d | x & y |")
        else:
            blocks.append(" ".join(sentence(rng) for _ in range(rng.randint(25, 50))))  # one paragraph over a message
    return "\n\n".join(blocks)


async def chunked(text: str, rng: random.Random) -> AsyncIterator[Event]:
    position = 0
    while position < len(text):
        step = rng.randint(1, 40)
        await asyncio.sleep(rng.choice([0.005, 0.01, 0.03]))
        yield TextDelta(text[position : position + step])
        position += step
    yield Completed(text)


def squash(text: str) -> str:
    return "".join(text.split())


def expected_visible(source: str, profile: Profile) -> str:
    if profile.markup == "entities":
        return render_final(source, "entities", markdown_to_entities).text
    return visible_text(Rendered(source, "markdown"))


@pytest.mark.parametrize("profile", [TELEGRAM_PRIVATE, DISCORD], ids=["telegram", "discord"])
def test_fifty_documents_arrive_whole_and_within_limits(profile: Profile) -> None:
    rng = random.Random(20240611)
    documents = [document(rng) for _ in range(50)]
    assert sum(len(d) > 2 * profile.max_message_units for d in documents) >= 10  # many need splitting

    async def main() -> list[FakeSurface]:
        surfaces = []
        for number, source in enumerate(documents):
            surface = FakeSurface(profile, chat_key=f"chat-{number}")
            result = await LiveReply(surface, budget=Budget(30)).run(chunked(source, random.Random(number)))
            assert result.is_complete
            surfaces.append(surface)
        return surfaces

    surfaces = run_virtual(main())
    for source, surface in zip(documents, surfaces, strict=True):
        platform = surface.platform
        assert (platform.rate_limits, platform.not_modified, platform.too_long) == (0, 0, 0)
        for call in platform.calls:
            if call.rendered is not None:
                assert count_units(call.rendered.text, profile.length_unit) <= profile.max_message_units
        assert squash("".join(surface.visible_texts())) == squash(expected_visible(source, profile))
