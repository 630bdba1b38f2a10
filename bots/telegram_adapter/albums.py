"""Albums: Telegram delivers a media group as one update per item; this gathers them into one list.

Needs concurrent update handling: the first item's handler waits while the others join it. PTB only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram import Message

# Items of one album arrive within milliseconds in practice; a quiet gap this long ends the album.
ALBUM_GAP_SECONDS = 0.8
ALBUM_MAX_ITEMS = 10  # Telegram albums hold 2-10 items


@dataclass(slots=True)
class _Album:
    messages: list[Message]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Albums:
    """`await albums.collect(message)`: the whole album for the first item's caller, None for the rest."""

    def __init__(self, gap_seconds: float = ALBUM_GAP_SECONDS) -> None:
        self._gap_seconds = gap_seconds
        self._open: dict[tuple[int, str], _Album] = {}

    async def collect(self, message: Message) -> list[Message] | None:
        if message.media_group_id is None:
            return [message]
        key = (message.chat_id, message.media_group_id)
        album = self._open.get(key)
        if album is not None:
            album.messages.append(message)
            album.arrived.set()
            return None
        album = self._open[key] = _Album([message])
        try:
            while len(album.messages) < ALBUM_MAX_ITEMS:
                album.arrived.clear()
                try:
                    async with asyncio.timeout(self._gap_seconds):
                        await album.arrived.wait()
                except TimeoutError:
                    break
        finally:
            del self._open[key]
        return sorted(album.messages, key=lambda item: item.message_id)

    def __len__(self) -> int:
        return len(self._open)
