"""What users read: core.texts written once, and each adapter's rendering of it for its markup."""

from __future__ import annotations

import pytest
import telegramify_markdown

from bots.discord_adapter import commands as discord_commands
from bots.telegram_adapter import texts as telegram_texts
from core import ParleyError, UsageReport, texts
from core.store.usage import UsageTotals

REPORT = UsageReport(
    model="vendor/model_x",
    conversation=UsageTotals(
        requests=2, prompt_tokens=1500, completion_tokens=40, total_tokens=1540, cached_tokens=900, reasoning_tokens=25
    ),
    today=UsageTotals(
        requests=3, prompt_tokens=2000, completion_tokens=50, total_tokens=2050, cached_tokens=900, reasoning_tokens=30
    ),
)
FACTS = [
    "This conversation: 1,540 tokens (1,500 in, of them 900 cached; 40 out, of them 25 reasoning)",
    "You today (UTC): 2,050 tokens in 3 requests (900 cached, 30 reasoning)",
]


def telegram_visible(markdown: str) -> tuple[str, list[str]]:
    """What Telegram shows for our Markdown (the converter core.live uses), and the entity types."""
    text, entities = telegramify_markdown.convert(markdown)
    return text, [entity.type for entity in entities]


def test_usage_reads_the_same_in_every_markup_reasoning_included() -> None:
    report = texts.usage(REPORT)
    assert report.plain().splitlines() == ["Model: vendor/model_x", *FACTS]
    assert discord_commands.markdown(report).splitlines() == ["Model: `vendor/model_x`", *FACTS]
    shown, kinds = telegram_visible(telegram_texts.usage(REPORT))
    assert shown.splitlines() == ["Model: vendor/model_x", *FACTS] and kinds == ["code"]


@pytest.mark.parametrize(
    "name", ["Ann (work)", "x [b, c] y", "[a](http://x.y)", "\\(z\\) and \\[w\\]", "_a_ *b* `c` ~d~ ||e|| $f$"]
)
def test_telegram_plain_text_shows_every_character_as_sent(name: str) -> None:
    # telegramify-markdown reads \(...\) and \[...\] as LaTeX; escaping parentheses turned them into a code block
    assert telegram_visible(telegram_texts.plain(name)) == (name, [])


def test_discord_markdown_escapes_plain_spans_and_keeps_code_spans_whole() -> None:
    rendered = discord_commands.markdown(texts.access_changed(True, "user", " a`b*c "))
    assert rendered == "User `ab*c` now has access."
    assert discord_commands.markdown(texts.Text((("*not bold* _x_ ~y~ |z|",),))) == (
        "\\*not bold\\* \\_x\\_ \\~y\\~ \\|z\\|"
    )


def test_model_choices_list_at_most_fifty_and_say_how_to_switch() -> None:
    many = [f"m{n}" for n in range(60)]
    lines = texts.model_choices("m0", many).plain().splitlines()
    assert lines[0] == "Model: m0" and lines[1] == "Choices: " + ", ".join(many[:50])
    assert lines[2] == "Switch this conversation with /model NAME."
    assert texts.model_choices("m0", []).plain() == "Model: m0"


def test_the_generic_failure_is_the_core_error_default() -> None:
    assert ParleyError().user_message == texts.GENERIC_FAILURE == "Something went wrong. Please try again."


@pytest.mark.parametrize(("limit", "shown"), [(20_000_000, "20 MB"), (2_500_000, "2.5 MB"), (500_000, "500 kB")])
def test_image_too_large_names_the_limit_in_readable_units(limit: int, shown: str) -> None:
    assert texts.image_too_large(limit) == f"The image is too large (the limit is {shown})."
