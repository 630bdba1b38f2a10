"""Recordings users send on the fake Telegram: voice notes, audio files and video notes, as Message.voice,
.audio and .video_note; their bytes are served by getFile and the file download like any other file.

Bot API (core.telegram.org/bots/api): Voice#voice {file_id, file_unique_id, duration "as defined by the
sender", mime_type?, file_size?}; Audio#audio {..., duration, performer?, title?, file_name?, mime_type?,
file_size?}; VideoNote#videonote {..., length "diameter of the video message", duration, file_size?}.
Message.caption is "Caption for the animation, audio, document, paid media, photo, video or voice": a video
note has none (sendVideoNote takes no caption).
"""

from __future__ import annotations

from typing import Any, Literal

from .formatting import detect_entities
from .objects import FakeChat, FakeUser
from .state import World

Recording = Literal["voice", "audio", "video_note"]
VIDEO_NOTE_LENGTH = 384  # pixels; what Telegram's apps record


def user_sends_recording(
    world: World,
    chat: FakeChat,
    user: FakeUser,
    kind: Recording,
    data: bytes,
    *,
    duration: int,
    caption: str | None = None,
    file_name: str | None = None,
    mime_type: str | None = None,
    reply_to: int | None = None,
) -> dict[str, Any]:
    """Queue a user's voice note / audio file / video note (`duration` in whole seconds, as Telegram sends it).

    Defaults as Telegram's apps send them: a voice note "audio/ogg", an audio file "audio/mpeg"; a video
    note carries no mime_type. Returns the Message dict.
    """
    if kind == "video_note" and caption is not None:
        raise ValueError("a video note has no caption (Bot API Message.caption, sendVideoNote)")
    if duration < 0:
        raise ValueError("duration is a non-negative number of seconds")
    default_type = {"voice": "audio/ogg", "audio": "audio/mpeg", "video_note": "video/mp4"}[kind]
    stored = world.add_file(
        data,
        folder={"voice": "voice", "audio": "music", "video_note": "video_notes"}[kind],
        file_name=file_name,
        mime_type=mime_type or default_type,
    )
    media: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "duration": duration,
        "file_size": len(data),
    }
    if kind == "video_note":
        media["length"] = VIDEO_NOTE_LENGTH
    else:
        media["mime_type"] = mime_type or default_type
    if kind == "audio" and file_name is not None:
        media["file_name"] = file_name
    body = caption or ""
    message = world.add_message(
        chat,
        user,
        "voice" if kind == "voice" else "other",
        text=body,
        entities=detect_entities(body),
        files=(stored,),
        reply_to_message_id=reply_to,
        extra={kind: media},
    )
    payload = world.message_api(message)
    world.queue_update("message", payload)
    return payload
