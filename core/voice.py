"""Voice messages: a turn's recording checked, fetched and transcribed (`Listener`), and the transcript quoted
over the answer (`quoting_transcript`). Knows no chat platform; the adapter only says what the platform
declares and how to download it (`core.conversation.Voice`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, replace

from core.access import Gatekeeper
from core.conversation import Turn, Voice
from core.errors import InputError
from core.events import Completed, Event, Heard, TextDelta, Usage
from core.inputs import is_blank
from core.live.markdown import escape_markdown
from core.store import Store
from core.texts import NOTHING_HEARD, VOICE_OFF, audio_too_large, audio_too_long
from core.upstream import UpstreamClient

log = logging.getLogger(__name__)

QUOTE_MAX_CHARS = 200  # the transcript shown over the answer: enough to see it was heard right
FILENAME_MAX_CHARS = 100  # a platform's file name goes upstream; an absurd one is cut (its extension kept)
HEARD_MARK = "🎤"


@dataclass(frozen=True, slots=True)
class Hearing:
    """The limits of voice messages (TRANSCRIBE_MODEL, MAX_AUDIO_SECONDS, MAX_AUDIO_BYTES)."""

    model: str | None
    max_seconds: float
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Transcribed:
    """A voice turn heard: the turn with its transcript as text, the transcript, its token usage (if given)."""

    turn: Turn
    transcript: str
    usage: Usage | None


class Listener:
    """Turns a voice turn into a text turn: access first, then the declared duration and size, then the
    user's quota (one request), and only then the download and the transcription."""

    def __init__(self, *, hearing: Hearing, upstream: UpstreamClient, gate: Gatekeeper, store: Store) -> None:
        self._hearing = hearing
        self._upstream = upstream
        self._gate = gate
        self._store = store

    async def hear(self, turn: Turn, *, upstream_user: str) -> Transcribed:
        """`turn` with its transcript as text (after a caption, if any), the transcript, and its token usage.

        Raises AccessDeniedError for a stranger, InputError with the limit's words for a recording over
        MAX_AUDIO_SECONDS or MAX_AUDIO_BYTES (or when voice is off), QuotaExceededError, and the upstream's
        errors (the same notices as a chat call's). Nothing is downloaded or sent upstream before all checks.
        """
        voice = turn.voice
        assert voice is not None
        await self._gate.require(turn.conversation, turn.user)  # a stranger's recording is never fetched
        hearing = self._hearing
        if not hearing.model:
            raise InputError("TRANSCRIBE_MODEL not set", user_message=VOICE_OFF)
        check_declared(voice, hearing)
        await self._gate.limit(turn.conversation, turn.user)
        audio = await voice.fetch()
        if len(audio) > hearing.max_bytes:  # the platform declared less (or nothing): refused all the same
            raise InputError(f"{len(audio)} audio bytes", user_message=audio_too_large(hearing.max_bytes))
        transcript = await self._upstream.transcribe(
            model=hearing.model,
            audio=audio,
            filename=upstream_filename(voice.filename),
            content_type=voice.content_type or "application/octet-stream",
            user=upstream_user,
        )
        heard = transcript.text.strip()
        if is_blank(heard):
            raise InputError("empty transcript", user_message=NOTHING_HEARD)
        text = f"{turn.text.strip()}\n\n{heard}" if turn.text.strip() else heard
        log.info("voice message transcribed: %d bytes, %d characters", len(audio), len(heard))
        return Transcribed(replace(turn, text=text, voice=None), heard, transcript.usage)

    async def charge(self, turn: Turn, conversation_id: int, usage: Usage | None) -> None:
        """Tokens a transcription reported count against the user's day, as a chat reply's do."""
        if usage is not None and self._hearing.model:
            await self._store.record_usage(
                turn.user,
                turn.conversation.platform,
                conversation_id=conversation_id,
                kind="transcription",
                model=self._hearing.model,
                usage=usage,
            )


def check_declared(voice: Voice, hearing: Hearing) -> None:
    """Refuse, naming the limit, a recording the platform declares too long or too large."""
    if voice.duration_seconds is not None and voice.duration_seconds > hearing.max_seconds:
        raise InputError(f"{voice.duration_seconds} audio seconds", user_message=audio_too_long(hearing.max_seconds))
    if voice.size_bytes is not None and voice.size_bytes > hearing.max_bytes:
        raise InputError(f"{voice.size_bytes} audio bytes", user_message=audio_too_large(hearing.max_bytes))


def upstream_filename(name: str) -> str:
    """The platform's file name, bounded: the service reads the format from its extension, so that stays."""
    name = name.strip().replace("\r", "").replace("\n", "") or "audio"
    if len(name) <= FILENAME_MAX_CHARS:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 10:
        return name[:FILENAME_MAX_CHARS]
    return stem[: FILENAME_MAX_CHARS - len(extension) - 1] + "." + extension


def heard_quote(transcript: str) -> str:
    """The transcript as a one-line Markdown quote (its start, escaped: it is the user's words, not markup)."""
    flat = " ".join(transcript.split())  # one line: a newline would end the quote
    shown = flat if len(flat) <= QUOTE_MAX_CHARS else flat[:QUOTE_MAX_CHARS].rstrip() + "…"
    return f"> {HEARD_MARK} {escape_markdown(shown)}\n\n"


async def quoting_transcript(events: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
    """`events` with a `Heard` transcript shown first, quoted, in the same reply: a text delta at once, and the
    final text starts with it too. Closing this closes `events` (the reply holds its conversation's lock)."""
    quote = ""
    async with aclosing(events):
        async for event in events:
            if type(event) is Heard:
                quote = heard_quote(event.text)
                yield TextDelta(quote)
            elif type(event) is Completed and quote:
                yield replace(event, text=quote + event.text)
            else:
                yield event
