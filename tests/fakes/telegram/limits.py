"""Flood limits of the fake Bot API: per chat, per group and global, each answered with 429 + retry_after.

Figures from the Bot API FAQ ("My bot is hitting limits, how do I avoid this?") and the PTB wiki page
"Avoiding flood limits": ~1 message per second per chat with short bursts allowed, 20 messages per minute
per group, ~30 messages per second overall. Edits count like messages.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Tunable limits; `RateLimits.off()` disables them all. A window of 0 disables that limit."""

    chat_per_second: float = 1.0
    chat_burst: int = 3
    group_per_window: int = 20
    group_window_seconds: float = 60.0
    global_per_second: float = 30.0
    global_burst: int = 30
    # How often drafts may be sent is undocumented; by default they share the chat's budget (conservative).
    drafts_count: bool = True
    enabled: bool = True

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)


@dataclass(slots=True)
class _Bucket:
    rate_per_second: float
    capacity: float
    tokens: float
    updated: float

    def wait_seconds(self, now: float) -> float:
        """0 if a token is available now (and takes it), else how long until one will be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_second)
        self.updated = now
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate_per_second

    def take(self) -> None:
        self.tokens -= 1


@dataclass(slots=True)
class RateLimiter:
    """Decides whether one more message/edit may go to a chat now; state survives limit changes."""

    limits: RateLimits = field(default_factory=RateLimits)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    _chats: dict[int, _Bucket] = field(default_factory=dict)
    _groups: dict[int, deque[float]] = field(default_factory=dict)
    _global: _Bucket | None = None

    def reset(self, limits: RateLimits) -> None:
        """New limits, fresh budgets."""
        self.limits = limits
        self._chats.clear()
        self._groups.clear()
        self._global = None

    def check(self, chat_id: int, *, is_group: bool) -> int:
        """0 and the send is counted, or the whole seconds to wait (retry_after, at least 1)."""
        limits = self.limits
        if not limits.enabled:
            return 0
        now = self.clock()
        waits: list[float] = []
        chat = self._chats.get(chat_id)
        if limits.chat_per_second > 0:
            if chat is None:
                chat = _Bucket(limits.chat_per_second, limits.chat_burst, limits.chat_burst, now)
                self._chats[chat_id] = chat
            waits.append(chat.wait_seconds(now))
        glob = self._global
        if limits.global_per_second > 0:
            if glob is None:
                glob = self._global = _Bucket(limits.global_per_second, limits.global_burst, limits.global_burst, now)
            waits.append(glob.wait_seconds(now))
        window = self._groups.setdefault(chat_id, deque()) if is_group else None
        if window is not None and limits.group_window_seconds > 0:
            while window and window[0] <= now - limits.group_window_seconds:
                window.popleft()
            if len(window) >= limits.group_per_window:
                waits.append(window[0] + limits.group_window_seconds - now)
        worst = max(waits, default=0.0)
        if worst > 0:
            return max(1, math.ceil(worst))
        if chat is not None and limits.chat_per_second > 0:
            chat.take()
        if glob is not None and limits.global_per_second > 0:
            glob.take()
        if window is not None:
            window.append(now)
        return 0
