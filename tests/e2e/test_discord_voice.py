"""Voice messages and audio attachments on Discord: transcribed (TRANSCRIBE_MODEL) and answered with the
transcript quoted first; refused before any download when too long, too large, from a stranger, or off."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import texts
from tests.e2e.discord_harness import World, bot_says, discord_settings, running_bot
from tests.fakes.discord import FakeDiscord, Upload
from tests.fakes.discord.voice import VOICE_FILENAME, voice_upload
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

OGG = b"OggS\x00\x02" + bytes(range(256)) * 4
HEARD = "remind me what we decided"


def nothing_fetched(dc: FakeDiscord, upstream: FakeUpstream) -> bool:
    return not dc.attachment_downloads and not upstream.requests


async def test_a_voice_message_is_transcribed_answered_and_kept_as_the_users_words(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_transcript(HEARD)
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, transcribe_model="fake/whisper")):
        dc.user_sends(dm, world.alice, "", attachments=[voice_upload(OGG, duration_secs=3.5)], voice_message=True)
        shown = await bot_says(dc, dm, lambda text: text.endswith(f"Echo: {HEARD}"))
        dc.user_sends(dm, world.alice, "and then?")
        await bot_says(dc, dm, lambda text: text == "Echo: and then?")
    assert shown.content == f"> 🎤 {HEARD}\n\nEcho: {HEARD}"  # the transcript first, quoted
    [form] = upstream.transcriptions
    assert (form.model, form.filename, form.content_type, form.data) == (
        "fake/whisper",
        VOICE_FILENAME,
        "audio/ogg",
        OGG,
    )
    first, second = upstream.chat_requests
    assert first.last_user_text == HEARD
    assert [m["content"] for m in second.body["messages"] if m["role"] == "user"] == [HEARD, "and then?"]


async def test_an_audio_attachment_with_a_question_is_heard(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_transcript("the quarterly numbers")
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, transcribe_model="fake/whisper")):
        dc.user_sends(
            dm, world.alice, "what is said here?", attachments=[Upload("call.mp3", b"ID3" + OGG, "audio/mpeg")]
        )
        await bot_says(dc, dm, lambda text: text.endswith("the quarterly numbers"))
    [form] = upstream.transcriptions
    assert (form.filename, form.content_type, form.data) == ("call.mp3", "audio/mpeg", b"ID3" + OGG)
    assert upstream.chat_requests[0].last_user_text == "what is said here?\n\nthe quarterly numbers"


async def test_a_voice_message_over_max_audio_seconds_is_refused_without_a_download(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.alice)
    settings = discord_settings(dc, upstream, tmp_path, transcribe_model="fake/whisper", max_audio_seconds=60)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "", attachments=[voice_upload(OGG, duration_secs=61.2)], voice_message=True)
        await bot_says(dc, dm, lambda text: texts.audio_too_long(60) in text)
    assert "up to 1 minute long" in texts.audio_too_long(60)
    assert nothing_fetched(dc, upstream)


async def test_an_audio_file_over_max_audio_bytes_is_refused_without_a_download(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.alice)
    settings = discord_settings(dc, upstream, tmp_path, transcribe_model="fake/whisper", max_audio_bytes=1024)
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.alice, "", attachments=[Upload("talk.ogg", OGG, "audio/ogg")])
        await bot_says(dc, dm, lambda text: "can be up to 1 kB" in text)
    assert nothing_fetched(dc, upstream)


async def test_a_transcription_failure_gets_a_clear_notice_and_the_bot_keeps_serving(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_error(401, endpoint="transcribe")
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path, transcribe_model="fake/whisper")):
        dc.user_sends(dm, world.alice, "", attachments=[voice_upload(OGG, duration_secs=2)], voice_message=True)
        await bot_says(dc, dm, lambda text: "model service" in text)
        dc.user_sends(dm, world.alice, "hello?")
        await bot_says(dc, dm, lambda text: text == "Echo: hello?")
    assert [r.last_user_text for r in upstream.chat_requests] == ["hello?"]


async def test_without_transcribe_model_a_voice_message_gets_the_hint(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.alice)
    async with running_bot(dc, discord_settings(dc, upstream, tmp_path)):
        dc.user_sends(dm, world.alice, "", attachments=[voice_upload(OGG, duration_secs=2)], voice_message=True)
        await bot_says(dc, dm, lambda text: texts.VOICE_OFF in text)
    assert nothing_fetched(dc, upstream)


async def test_a_strangers_voice_message_is_never_downloaded(
    dc: FakeDiscord, world: World, upstream: FakeUpstream, tmp_path: Path
) -> None:
    dm = dc.dm_channel(world.bob)
    settings = discord_settings(
        dc, upstream, tmp_path, transcribe_model="fake/whisper", allowed_users=(f"discord:{world.alice.id}",)
    )
    async with running_bot(dc, settings):
        dc.user_sends(dm, world.bob, "", attachments=[voice_upload(OGG, duration_secs=2)], voice_message=True)
        await bot_says(dc, dm, lambda text: "this bot is private" in text)
    assert nothing_fetched(dc, upstream)


def test_the_fake_refuses_what_discord_never_delivers_as_a_voice_message(dc: FakeDiscord, world: World) -> None:
    dm = dc.dm_channel(world.alice)
    with pytest.raises(ValueError, match="no content"):
        dc.user_sends(dm, world.alice, "hi", attachments=[voice_upload(OGG, duration_secs=1)], voice_message=True)
    with pytest.raises(ValueError, match="duration_secs"):
        dc.user_sends(dm, world.alice, "", attachments=[Upload("v.ogg", OGG, "audio/ogg")], voice_message=True)
    with pytest.raises(ValueError, match="exactly one"):
        two = [voice_upload(OGG, duration_secs=1)] * 2
        dc.user_sends(dm, world.alice, "", attachments=two, voice_message=True)
