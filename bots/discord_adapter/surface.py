"""DiscordSurface: one channel, thread or DM as the live-reply engine sees it (core.live.Surface).

One discord.py call per method, discord.py errors mapped to core errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import discord
from discord.abc import Messageable

from bots.discord_adapter.uploads import fit_image
from core import Handle, Image, Profile, Rendered, Settings, SurfaceRateLimitError

log = logging.getLogger(__name__)

MAX_FILES_PER_MESSAGE = 10  # "up to 10 files" per message (Discord docs, "Uploading Files")
MAX_CONTENT_CHARS = 2000
TOO_LARGE_NOTE = "(An image was too large to upload here.)"
UNKNOWN_MESSAGE = 10008  # JSON error code: the message is already gone

# The typing indicator lasts about 10 s (Trigger Typing Indicator): every 8 s keeps it on.
TYPING_INTERVAL_SECONDS = 8.0
# A live preview closes an open code fence: this much of each message stays free for it.
LIVE_RESERVE_CHARS = 16


def discord_profile(settings: Settings) -> Profile:
    """Discord's profile, paced by DISCORD_EDIT_INTERVAL_SECONDS.

    2000 characters of content, counted in code points ("Our API uses Python 3, so the API calculates
    length based on the number of codepoints", discord-api-docs#1315); Discord parses Markdown itself.
    """
    return Profile(
        markup="markdown",
        max_message_units=MAX_CONTENT_CHARS,
        caption_max_units=MAX_CONTENT_CHARS,
        length_unit="codepoint",
        edit_interval_seconds=settings.discord_edit_interval_seconds,
        typing_interval_seconds=TYPING_INTERVAL_SECONDS,
        live_reserve_units=LIVE_RESERVE_CHARS,
    )


@contextmanager
def platform_errors() -> Iterator[None]:
    """Map discord.py's rate-limit errors into core's; everything else propagates unchanged.

    discord.py already waits out 429s and paces itself on the bucket headers, so these only arrive when it
    gives up (five 429s in a row, or a wait over `max_ratelimit_timeout`).
    """
    try:
        yield
    except discord.RateLimited as exc:
        raise SurfaceRateLimitError(exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise SurfaceRateLimitError(1.0) from exc
        raise


class DiscordSurface:
    """Sends, edits and deletes the bot's messages in one channel; the first message may reply to the user's.

    Every send and edit carries the client's `AllowedMentions.none()` (discord.py adds it when none is
    given), so model output can never ping anyone.
    """

    def __init__(
        self,
        channel: Messageable,
        *,
        chat_id: int,
        profile: Profile,
        upload_limit_bytes: int,
        reply_to: discord.Message | None = None,
    ) -> None:
        self._channel = channel
        self._chat_id = chat_id
        self._profile = profile
        self._upload_limit_bytes = upload_limit_bytes
        self._reply_to = reply_to
        self._sent: dict[str, discord.Message] = {}

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def chat_key(self) -> str:
        return f"discord:{self._chat_id}"

    async def send(self, text: Rendered) -> Handle:
        with platform_errors():
            if self._reply_to is not None:
                # The first message answers the user's; if that message is gone, send it plainly.
                reference = self._reply_to.to_reference(fail_if_not_exists=False)
                message = await self._channel.send(text.text, reference=reference)
            else:
                message = await self._channel.send(text.text)
        self._reply_to = None
        return self._keep(message)

    async def edit(self, handle: Handle, text: Rendered) -> None:
        # Discord has no "not modified" error: an identical edit succeeds (the engine never sends one).
        with platform_errors():
            self._sent[handle.id] = await self._sent[handle.id].edit(content=text.text)

    async def delete(self, handle: Handle) -> None:
        message = self._sent.pop(handle.id)
        try:
            with platform_errors():
                await message.delete()
        except discord.NotFound as exc:
            if exc.code != UNKNOWN_MESSAGE:
                raise

    async def send_images(self, images: Sequence[Image], caption: Rendered | None) -> Sequence[Handle]:
        fitted = [await asyncio.to_thread(fit_image, image, self._upload_limit_bytes) for image in images]
        usable = [image for image in fitted if image is not None]
        content = caption.text if caption is not None else ""
        if len(usable) < len(images):
            log.warning("%d image(s) over the upload limit even scaled down", len(images) - len(usable))
            noted = f"{content}\n\n{TOO_LARGE_NOTE}" if content else TOO_LARGE_NOTE
            if len(noted) <= MAX_CONTENT_CHARS:
                content = noted
        handles: list[Handle] = []
        batches = [usable[i : i + MAX_FILES_PER_MESSAGE] for i in range(0, len(usable), MAX_FILES_PER_MESSAGE)]
        for index, batch in enumerate(batches or [[]]):
            if not batch and not content:
                break
            first = index * MAX_FILES_PER_MESSAGE + 1
            files = [upload_file(image, f"image-{number}") for number, image in enumerate(batch, start=first)]
            with platform_errors():
                message = await self._channel.send(content or None, files=files)
            handles.append(self._keep(message))
            content = ""  # the caption goes with the first batch only
        return handles

    async def typing(self) -> None:
        with platform_errors():
            await self._channel.typing()

    async def draft(self, text: Rendered) -> None:
        raise NotImplementedError("Discord has no drafts; Profile.supports_draft is False")

    def _keep(self, message: discord.Message) -> Handle:
        handle = Handle(str(message.id), str(self._chat_id))
        self._sent[handle.id] = message
        return handle


def upload_file(image: Image, stem: str) -> discord.File:
    """An attachment; the alt text becomes its description, which screen readers announce (max 1024 chars)."""
    return discord.File(
        io.BytesIO(image.data), filename=f"{stem}.{image.extension}", description=image.alt[:1024] or None
    )
