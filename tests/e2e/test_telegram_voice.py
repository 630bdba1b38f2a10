"""Voice notes, audio files and video notes on Telegram: transcribed (TRANSCRIBE_MODEL) and answered with the
transcript quoted first; refused before any download when too long, too large, from a stranger, or off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import texts
from tests.e2e.telegram_harness import BOT_USERNAME, World, telegram_world
from tests.fakes.clock import FakeWallClock, utc
from tests.fakes.telegram import FakeChat, FakeUser
from tests.fakes.telegram.audio import Recording, user_sends_recording

pytestmark = pytest.mark.e2e

OGG = b"OggS\x00\x02" + bytes(range(256)) * 4  # the bytes as the user's app recorded them
HEARD = "what is the weather in Paris"
VOICE: dict[str, Any] = {"transcribe_model": "fake/whisper"}


def send(w: World, chat: FakeChat, user: FakeUser, kind: Recording = "voice", data: bytes = OGG, **fields: Any) -> None:
    user_sends_recording(w.tg.world, chat, user, kind, data, **{"duration": 4} | fields)


def nothing_fetched(w: World) -> bool:
    """No getFile, no file download, no upstream request of any kind."""
    return not w.tg.calls_of("getFile") and not w.tg.downloads and not w.up.requests


async def test_a_voice_note_is_transcribed_answered_and_kept_as_the_users_words(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **VOICE) as w:
        w.up.add_transcript(HEARD)
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user)
            shown = await w.said(chat, lambda t: t.endswith(f"Echo: {HEARD}"))
            w.tg.user_sends(chat, user, "and tomorrow?")
            await w.said(chat, lambda t: t == "Echo: and tomorrow?")
        assert shown.text == f"🎤 {HEARD}\n\nEcho: {HEARD}"  # the transcript first, quoted
        assert any(e.type == "blockquote" and e.offset == 0 for e in shown.entities)
        [form] = w.up.transcriptions
        assert (form.model, form.filename, form.content_type, form.data) == (
            "fake/whisper",
            "voice.ogg",
            "audio/ogg",
            OGG,
        )
        first, second = w.up.chat_requests
        assert first.last_user_text == HEARD  # the transcript is the user's turn
        users = [m["content"] for m in second.body["messages"] if m["role"] == "user"]
        assert users == [HEARD, "and tomorrow?"]  # and stays in the history as such
        assert len(w.tg.calls_of("getFile")) == 1


async def test_an_audio_file_with_a_caption_and_a_video_note_are_heard_too(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **VOICE) as w:
        w.up.add_transcript("minutes of the meeting")
        w.up.add_transcript("hello from a circle")
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user, "audio", b"ID3" + OGG, file_name="memo.mp3", caption="summarise this")
            await w.said(chat, lambda t: t.endswith("minutes of the meeting"))
            send(w, chat, user, "video_note", b"\x00\x00\x00\x18ftypmp42" + OGG)
            await w.said(chat, lambda t: t.endswith("Echo: hello from a circle"))
        audio, circle = w.up.transcriptions
        assert (audio.filename, audio.content_type, audio.data) == ("memo.mp3", "audio/mpeg", b"ID3" + OGG)
        assert (circle.filename, circle.content_type) == ("video_note.mp4", "video/mp4")
        assert w.up.chat_requests[0].last_user_text == "summarise this\n\nminutes of the meeting"


async def test_a_voice_over_max_audio_seconds_is_refused_without_a_download(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **VOICE) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user, duration=301)
            await w.said(chat, lambda t: texts.audio_too_long(300) in t)
            await w.idle()
        assert "up to 5 minutes long" in texts.audio_too_long(300)
        assert nothing_fetched(w)


async def test_a_recording_over_max_audio_bytes_is_refused_without_a_download(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, max_audio_bytes=2000, **VOICE) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user, "audio", OGG * 2, file_name="long.mp3")
            await w.said(chat, lambda t: "can be up to 2 kB" in t)
            await w.idle()
        assert nothing_fetched(w)


async def test_a_transcription_failure_gets_a_clear_notice_and_the_bot_keeps_serving(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **VOICE) as w:
        w.up.add_error(500, endpoint="transcribe")
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user)
            await w.said(chat, lambda t: "The model service is unavailable right now" in t)
            w.tg.user_sends(chat, user, "still there?")
            await w.said(chat, lambda t: t == "Echo: still there?")
        assert [r.last_user_text for r in w.up.chat_requests] == ["still there?"]  # the failed voice left nothing
        assert not any("went wrong" in text for text in w.texts(chat))


async def test_without_transcribe_model_a_voice_gets_the_hint_and_nothing_is_fetched(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user)
            await w.said(chat, lambda t: texts.VOICE_OFF in t)
            await w.idle()
        assert nothing_fetched(w)


async def test_a_strangers_voice_is_never_downloaded(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, allowed_users=("telegram:1",), **VOICE) as w:
        user, chat = w.dm("Eve")
        async with w.bot():
            send(w, chat, user)
            await w.said(chat, lambda t: "Sorry, this bot is private" in t)
            await w.idle()
        assert nothing_fetched(w)


async def test_a_voice_counts_against_the_users_requests_per_minute(tmp_path: Path) -> None:
    clock = FakeWallClock(utc(2026, 11, 23, 12, 0, 10))
    async with telegram_world(tmp_path, user_requests_per_minute=1, **VOICE) as w:
        w.up.add_transcript(HEARD, usage={"type": "tokens", "input_tokens": 40, "output_tokens": 6})
        user, chat = w.dm("Ann")
        async with w.bot(clock=clock):
            send(w, chat, user)
            await w.said(chat, lambda t: t.endswith(f"Echo: {HEARD}"))
            send(w, chat, user)  # the second in this minute: refused before its download
            await w.said(chat, lambda t: "too many messages" in t)
            clock.advance(60)
            w.tg.user_sends(chat, user, "/usage")
            await w.said(chat, lambda t: "You today" in t)
        assert len(w.up.transcriptions) == 1 and len(w.tg.calls_of("getFile")) == 1
        usage = w.texts(chat)[-1]
        assert "in 2 requests" in usage  # the transcription (its 46 tokens) and the answer


async def test_a_recording_telegram_will_not_hand_out_gets_a_clear_notice(tmp_path: Path) -> None:
    # MAX_AUDIO_BYTES above Telegram's own getFile cap: Telegram refuses the download, and the user hears why.
    async with telegram_world(tmp_path, max_audio_bytes=30_000_000, **VOICE) as w:
        user, chat = w.dm("Ann")
        async with w.bot():
            send(w, chat, user, "audio", bytes(21 * 1024 * 1024), file_name="concert.mp3")
            await w.said(chat, lambda t: texts.AUDIO_DOWNLOAD_FAILED in t)
            w.tg.user_sends(chat, user, "ok")
            await w.said(chat, lambda t: t == "Echo: ok")
        assert [c.status for c in w.tg.calls_of("getFile")] == [400]
        assert not w.tg.downloads and not w.up.transcriptions


async def test_in_a_group_only_a_voice_replying_to_the_bot_is_heard(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, **VOICE) as w:
        w.up.add_transcript("and for Bob?")
        alice, bob = w.tg.user("Alice"), w.tg.user("Bob")
        group = w.tg.group()
        async with w.bot():
            w.tg.user_sends(group, alice, f"@{BOT_USERNAME} hello")
            first = await w.said(group, lambda t: t == "Echo: Alice: hello")
            send(w, group, bob)  # among humans: not fetched
            send(w, group, bob, reply_to=first.message_id)
            await w.said(group, lambda t: t.endswith("Echo: Bob: and for Bob?"))
        assert len(w.tg.calls_of("getFile")) == 1 and len(w.up.transcriptions) == 1


async def test_the_fake_telegram_sends_recordings_as_the_bot_api_describes_them(tmp_path: Path) -> None:
    async with telegram_world(tmp_path) as w:
        user, chat = w.dm("Ann")
        voice = user_sends_recording(w.tg.world, chat, user, "voice", OGG, duration=7)["voice"]
        note = user_sends_recording(w.tg.world, chat, user, "video_note", OGG, duration=3)["video_note"]
        assert (voice["duration"], voice["mime_type"], voice["file_size"]) == (7, "audio/ogg", len(OGG))
        assert note["length"] > 0 and "mime_type" not in note
        with pytest.raises(ValueError, match="no caption"):
            user_sends_recording(w.tg.world, chat, user, "video_note", OGG, duration=3, caption="hi")
        assert w.tg.file(voice["file_id"]).data == OGG
