"""The Discord adapter's pure parts: conversation keys, thread names, upload fitting, its settings."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image as Pillow

from bots.discord_adapter.commands import verbatim_pieces
from bots.discord_adapter.conversations import Place, conversation_key, thread_name
from bots.discord_adapter.surface import discord_profile
from bots.discord_adapter.uploads import fit_image
from core import ConfigError, ConversationKey, Image, Settings, SystemPrompt, load_settings, texts
from tests.fakes.images import png_bytes

REQUIRED = {"llm_base_url": "http://127.0.0.1:9/v1", "llm_api_key": "sk-x", "chat_model": "m"}


def noise_png(width: int, height: int, *, alpha: bool = False) -> bytes:
    mode, bands = ("RGBA", 4) if alpha else ("RGB", 3)
    data = random.Random(3).randbytes(width * height * bands)
    buffer = io.BytesIO()
    Pillow.frombytes(mode, (width, height), data).save(buffer, format="PNG")
    return buffer.getvalue()


def test_conversation_keys_per_dm_channel_thread_and_user() -> None:
    dm, channel, thread = Place(5, is_dm=True), Place(10), Place(11, parent_id=10)
    assert conversation_key(dm, 7, group_history="user") == ConversationKey("discord", "5")
    assert conversation_key(channel, 7, group_history="chat") == ConversationKey("discord", "10")
    assert conversation_key(channel, 7, group_history="user") == ConversationKey("discord", "10", scope="7")
    assert conversation_key(thread, 7, group_history="chat") == ConversationKey("discord", "10", thread_id="11")


def test_thread_names_come_from_the_first_line_and_are_short() -> None:
    assert thread_name("  plan a   picnic\nwith details", "fallback") == "plan a picnic"
    long = thread_name("word " * 40, "fallback")
    assert len(long) <= 60 and long.endswith("…")
    assert thread_name(" \n ", "Conversation with Alice") == "Conversation with Alice"


def test_an_image_within_the_limit_is_sent_as_it_is() -> None:
    image = Image(png_bytes(3, 3), "image/png")
    assert fit_image(image, 10_000) is image


@pytest.mark.parametrize("alpha", [False, True])
def test_an_image_over_the_limit_becomes_a_jpeg_within_it(alpha: bool) -> None:
    big = Image(noise_png(300, 200, alpha=alpha), "image/png", alt="noise")
    fitted = fit_image(big, 30_000)
    assert fitted is not None and len(fitted.data) <= 30_000 < len(big.data)
    assert (fitted.mime, fitted.alt) == ("image/jpeg", "noise")
    with Pillow.open(io.BytesIO(fitted.data)) as opened:
        assert opened.format == "JPEG" and opened.width / opened.height == pytest.approx(1.5, rel=0.02)


def test_an_image_that_cannot_fit_or_cannot_be_decoded_is_refused() -> None:
    assert fit_image(Image(noise_png(100, 100), "image/png"), 300) is None
    assert fit_image(Image(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000, "image/png"), 1000) is None


def test_discord_guild_ids_are_a_comma_list_of_numbers() -> None:
    settings = load_settings(Settings, _env_file=None, **REQUIRED, discord_guild_ids="123, 456,")
    assert settings.discord_guild_ids == (123, 456) and settings.discord_auto_thread is False
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, _env_file=None, **REQUIRED, discord_guild_ids="my-server")
    assert caught.value.setting == "DISCORD_GUILD_IDS"


def test_channel_profile_keeps_discords_pace_and_follows_the_setting() -> None:
    default = discord_profile(load_settings(Settings, _env_file=None, **REQUIRED))
    assert default.edit_interval_seconds >= 1.0  # message writes: 5 per 5 s per channel
    assert (default.markup, default.length_unit, default.max_message_units) == ("markdown", "codepoint", 2000)
    assert default.live_reserve_units > 0  # room for the fence a live preview closes
    tuned = load_settings(Settings, _env_file=None, **REQUIRED, discord_edit_interval_seconds=2.5)
    assert discord_profile(tuned).edit_interval_seconds == 2.5


def shown(prompt: str) -> texts.Text:
    return texts.system_prompt(SystemPrompt(prompt, True, "shown"))


def test_a_shown_system_prompt_formats_nothing_and_links_nowhere() -> None:
    [piece] = verbatim_pieces(shown("# Rule\n[click](http://evil.example) *now* <@1> `x` \\o/"), 2000)
    lines = piece.split("\n")
    assert lines[1:3] == [
        "\\# Rule",
        "\\[click\\]\\(http\\:\\/\\/evil\\.example\\) \\*now\\* \\<\\@1\\> \\`x\\` \\\\o\\/",
    ]


def test_a_long_system_prompt_is_shown_whole_in_pieces_within_the_limit() -> None:
    prompt = "\n".join(["a line of words."] * 300) + "\n" + "x" * 251 + "." * 700  # hard cuts, inside escapes
    pieces = verbatim_pieces(shown(prompt), 500)
    assert len(pieces) > 1 and all(0 < len(piece) <= 500 for piece in pieces)
    assert all((len(piece) - len(piece.rstrip("\\"))) % 2 == 0 for piece in pieces)  # no escape cut in two
    unescaped = "\n".join(pieces).replace("\\", "")
    assert prompt.replace("\n", "") in unescaped.replace("\n", "")
