"""core.voice: the limits checked from what a platform declares, the file name sent upstream, the quote."""

from __future__ import annotations

import pytest

from core import InputError, Voice, texts
from core.voice import QUOTE_MAX_CHARS, Hearing, check_declared, heard_quote, upstream_filename

HEARING = Hearing(model="whisper-1", max_seconds=300, max_bytes=20_000_000)


async def _never() -> bytes:
    raise AssertionError("nothing may be fetched while checking")


def voice(duration: float | None, size: int | None) -> Voice:
    return Voice(
        fetch=_never, filename="voice.ogg", content_type="audio/ogg", duration_seconds=duration, size_bytes=size
    )


def test_declared_limits_are_inclusive_and_each_refusal_names_its_limit() -> None:
    check_declared(voice(300, 20_000_000), HEARING)
    check_declared(voice(None, None), HEARING)  # a platform that declares nothing: the bytes are checked later
    with pytest.raises(InputError) as long:
        check_declared(voice(300.5, 10), HEARING)
    assert (
        long.value.user_message
        == texts.audio_too_long(300)
        == ("Voice messages and audio files can be up to 5 minutes long; send a shorter one.")
    )
    with pytest.raises(InputError) as large:
        check_declared(voice(1, 20_000_001), HEARING)
    assert large.value.user_message == "Voice messages and audio files can be up to 20 MB; send a smaller one."


def test_durations_read_as_people_say_them() -> None:
    assert [texts.duration(s) for s in (60, 300, 90, 45.5)] == ["1 minute", "5 minutes", "90 seconds", "45.5 seconds"]


def test_the_quote_is_one_escaped_line_of_at_most_its_length() -> None:
    assert heard_quote("hello there") == "> 🎤 hello there\n\n"
    assert heard_quote("a\n\n# not a heading\n```\n*b*") == "> 🎤 a \\# not a heading \\`\\`\\` \\*b\\*\n\n"
    long = heard_quote("word " * 1000)
    assert long.endswith("…\n\n") and len(long) < QUOTE_MAX_CHARS + 20


def test_the_upstream_file_name_keeps_its_extension_and_is_bounded() -> None:
    assert upstream_filename("memo.mp3") == "memo.mp3"
    assert upstream_filename("  ") == "audio"
    cut = upstream_filename("x" * 500 + ".m4a")
    assert cut.endswith(".m4a") and len(cut) == 100
    assert "\n" not in upstream_filename("a\r\nb.ogg")
