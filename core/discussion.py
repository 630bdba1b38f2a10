"""Recent group lines the bot overheard but was not asked about (GROUP_CONTEXT_MESSAGES), in memory only.

Bounded twice: at most `lines_per_chat` lines per chat and at most `max_chats` chats (least recently
active dropped first), so memory does not grow with the number of groups ever seen.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable


class Discussion:
    """Per-chat ring buffers of "name: text" lines."""

    def __init__(self, lines_per_chat: int, *, max_chats: int = 10_000, max_line_chars: int = 500) -> None:
        self._lines_per_chat = lines_per_chat
        self._max_chats = max_chats
        self._max_line_chars = max_line_chars
        self._chats: OrderedDict[Hashable, deque[str]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._lines_per_chat > 0

    def add(self, chat: Hashable, author: str, text: str) -> None:
        """Remember one overheard line (nothing when disabled)."""
        if not self.enabled or not text.strip():
            return
        lines = self._chats.pop(chat, None) or deque(maxlen=self._lines_per_chat)
        line = " ".join(text.split())
        if len(line) > self._max_line_chars:
            line = line[: self._max_line_chars] + "…"
        lines.append(f"{author}: {line}" if author else line)
        self._chats[chat] = lines
        while len(self._chats) > self._max_chats:
            self._chats.popitem(last=False)

    def take(self, chat: Hashable) -> tuple[str, ...]:
        """The lines overheard since the bot last answered in `chat`, oldest first; forgets them."""
        lines = self._chats.pop(chat, None)
        return tuple(lines) if lines else ()

    def __len__(self) -> int:
        return len(self._chats)
