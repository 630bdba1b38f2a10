"""Albums: Telegram delivers a media group as one update per item; this gathers them into one list.

Needs concurrent update handling: the first item's handler waits while the others join it. With a shared
`Cluster` (Redis) the parts may reach different processes: each part goes there as the update's JSON, and
the first part's process answers the whole album. PTB only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from telegram import Message

from core import Cluster

# Items of one album arrive within milliseconds in practice; a quiet gap this long ends the album.
ALBUM_GAP_SECONDS = 0.8
ALBUM_MAX_ITEMS = 10  # Telegram albums hold 2-10 items


@dataclass(slots=True)
class _Album:
    messages: list[Message]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class Albums:
    """`await albums.collect(message)`: the whole album for the first item's caller, None for the rest."""

    def __init__(self, gap_seconds: float = ALBUM_GAP_SECONDS, *, cluster: Cluster | None = None) -> None:
        self._gap_seconds = gap_seconds
        self._open: dict[tuple[int, str], _Album] = {}
        self._cluster = cluster if cluster is not None and cluster.shared else None

    async def collect(self, message: Message) -> list[Message] | None:
        if message.media_group_id is None:
            return [message]
        if self._cluster is not None:
            return await self._collect_shared(self._cluster, message)
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

    async def _collect_shared(self, cluster: Cluster, message: Message) -> list[Message] | None:
        group = f"telegram:{message.get_bot().id}:{message.chat_id}:{message.media_group_id}"
        parts = await cluster.gather(group, message.to_json(), gap_seconds=self._gap_seconds, max_items=ALBUM_MAX_ITEMS)
        if parts is None:
            return None
        bot = message.get_bot()
        messages = [Message.de_json(json.loads(part), bot) for part in parts]
        return sorted(messages, key=lambda item: item.message_id)

    def __len__(self) -> int:
        return len(self._open)
