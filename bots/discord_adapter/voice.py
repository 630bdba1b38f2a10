"""Discord voice messages and audio attachments as core's `Voice`: what Discord declares (size, a voice
message's `duration_secs`) and a download the core calls only after it checked access and the limits.
Imports discord.py and `core`.
"""

from __future__ import annotations

import discord

from core import ParleyError, Voice, texts


def is_audio(attachment: discord.Attachment) -> bool:
    """A voice message's recording or an audio file (Attachment.content_type "audio/*")."""
    return attachment.is_voice_message() or (attachment.content_type or "").startswith("audio/")


def voice_of(message: discord.Message) -> Voice | None:
    """The first recording attached to `message`, or None.

    A voice message (message flag IS_VOICE_MESSAGE, 1 << 13) carries one OGG/Opus attachment with
    `duration_secs` and `waveform` (discord.com/developers/docs/resources/message#attachment-object); other
    audio attachments declare only their size, which then bounds them alone.
    """
    attachment = next((a for a in message.attachments if is_audio(a)), None)
    if attachment is None:
        return None

    async def fetch() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException as exc:  # NotFound, Forbidden: the attachment is gone or hidden
            raise ParleyError(
                f"audio download failed: {type(exc).__name__}", user_message=texts.AUDIO_DOWNLOAD_FAILED
            ) from None

    return Voice(
        fetch=fetch,
        filename=attachment.filename,
        content_type=(attachment.content_type or "audio/ogg").partition(";")[0].strip(),
        duration_seconds=attachment.duration,
        size_bytes=attachment.size,
    )
