"""Voice messages on the fake Discord: the recording a user's client uploads, and the rules such a message
follows.

Discord (discord.com/developers/docs/resources/message#message-object-message-flags): IS_VOICE_MESSAGE,
1 << 13, "this message is a voice message". Voice messages "cannot be edited", "only a single audio
attachment is allowed", and no content, stickers or other attachments may come with it; the attachment
carries `duration_secs` ("the duration of the audio file (currently for voice messages)") and `waveform`
("base64 encoded bytearray representing a sampled waveform (currently for voice messages)"), per the
attachment object (#attachment-object). The official clients upload "voice-message.ogg", OGG/Opus.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from .models import Upload

VOICE_FILENAME = "voice-message.ogg"
WAVEFORM_SAMPLES = 256  # the clients sample the recording into at most 256 one-byte amplitudes


def voice_upload(data: bytes, *, duration_secs: float) -> Upload:
    """The attachment of a voice message as Discord's clients make it."""
    waveform = base64.b64encode(bytes(index % 256 for index in range(WAVEFORM_SAMPLES))).decode()
    return Upload(VOICE_FILENAME, data, "audio/ogg", duration_secs=duration_secs, waveform=waveform)


def check_voice_message(content: str, attachments: Sequence[Upload]) -> None:
    """ValueError for what Discord never delivers as a voice message."""
    if content:
        raise ValueError("a voice message has no content")
    if len(attachments) != 1:
        raise ValueError("a voice message carries exactly one audio attachment")
    [upload] = attachments
    if not (upload.content_type or "").startswith("audio/"):
        raise ValueError("a voice message's attachment is audio")
    if upload.duration_secs is None or upload.waveform is None:
        raise ValueError("a voice message's attachment has duration_secs and waveform")
