"""Telegram voice notes, audio files and video notes as core's `Voice`: what the message declares (duration,
file_size) and a download the core calls only after it checked access and the limits. Imports PTB and `core`.
"""

from __future__ import annotations

from telegram import Audio, Message, VideoNote
from telegram import Voice as VoiceNote
from telegram.error import TelegramError
from telegram.ext import filters

from bots.telegram_adapter.surface import as_seconds
from core import ParleyError, Voice, texts

# The messages that carry a recording (Bot API Message.voice, .audio, .video_note).
RECORDINGS = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE
# sendVoice: "audio must be in an .OGG file encoded with OPUS, or in .MP3 format, or in .M4A format"; the
# transcription service reads the format from the file name's extension.
EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/opus": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
}


def voice_of(message: Message) -> Voice | None:
    """The recording of `message`, or None. A voice note is OGG/Opus ("audio/ogg", Bot API Voice), a video
    note an MP4 (Bot API VideoNote has no mime_type); an audio file keeps the name and type it came with."""
    media: VoiceNote | Audio | VideoNote
    if message.voice is not None:
        media = message.voice
        content_type = media.mime_type or "audio/ogg"
        filename = "voice" + EXTENSIONS.get(content_type, ".ogg")
    elif message.audio is not None:
        media = message.audio
        content_type = media.mime_type or "audio/mpeg"
        filename = media.file_name or "audio" + EXTENSIONS.get(content_type, ".mp3")
    elif message.video_note is not None:
        media = message.video_note
        content_type, filename = "video/mp4", "video_note.mp4"
    else:
        return None

    async def fetch() -> bytes:
        try:
            return bytes(await (await media.get_file()).download_as_bytearray())
        except TelegramError as exc:  # getFile refused (over 20 MB) or the download failed
            raise ParleyError(
                f"audio download failed: {type(exc).__name__}", user_message=texts.AUDIO_DOWNLOAD_FAILED
            ) from None

    return Voice(
        fetch=fetch,
        filename=filename,
        content_type=content_type,
        duration_seconds=as_seconds(media.duration),
        size_bytes=media.file_size,
    )
