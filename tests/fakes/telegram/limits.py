"""Flood limits of the fake Bot API: per chat, per group and global, each answered with 429 + retry_after.

Figures from the Bot API FAQ (core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this: "avoid
sending more than one message per second in a particular chat ... bots are not be able to send more than
20 messages per minute to the same group ... not more than about 30 messages per second") and the PTB wiki
page "Avoiding flood limits" (short bursts allowed). Edits count like messages. After a 429 the chat is held:
a call before `retry_after` has passed is refused again, as Telegram's flood wait does. These are the
fake's own figures; nothing here comes from core or bots.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CHAT_MESSAGES_PER_SECOND = 1.0  # Bot FAQ: "more than one message per second in a particular chat"
CHAT_BURST = 3  # PTB wiki "Avoiding flood limits": short bursts over 1/s pass
GROUP_MESSAGES_PER_WINDOW = 20  # Bot FAQ: "not ... more than 20 messages per minute to the same group"
GROUP_WINDOW_SECONDS = 60.0
BOT_MESSAGES_PER_SECOND = 30.0  # Bot FAQ: "not more than about 30 messages per second"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Tunable limits; `RateLimits.off()` disables them all. A window of 0 disables that limit."""

    chat_per_second: float = CHAT_MESSAGES_PER_SECOND
    chat_burst: int = CHAT_BURST
    group_per_window: int = GROUP_MESSAGES_PER_WINDOW
    group_window_seconds: float = GROUP_WINDOW_SECONDS
    global_per_second: float = BOT_MESSAGES_PER_SECOND
    global_burst: int = int(BOT_MESSAGES_PER_SECOND)
    # How often drafts may be sent is undocumented; by default they share the chat's budget (conservative).
    drafts_count: bool = True
    enabled: bool = True

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)

    @classmethod
    def scaled(cls, speed: float) -> RateLimits:
        """Telegram's limits with time running `1/speed` times faster (speed 0.2: a minute lasts 12 s)."""
        return cls(
            chat_per_second=CHAT_MESSAGES_PER_SECOND / speed,
            group_window_seconds=GROUP_WINDOW_SECONDS * speed,
            global_per_second=BOT_MESSAGES_PER_SECOND / speed,
        )


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
    _held: dict[int, float] = field(default_factory=dict)  # chat id -> clock time its flood wait ends

    def reset(self, limits: RateLimits) -> None:
        """New limits, fresh budgets."""
        self.limits = limits
        self._chats.clear()
        self._groups.clear()
        self._held.clear()
        self._global = None

    def hold(self, chat_id: int, retry_after: int) -> None:
        """A 429 told the bot to wait `retry_after` seconds: until then every call to the chat is refused."""
        self._held[chat_id] = max(self._held.get(chat_id, 0.0), self.clock() + retry_after)

    def check(self, chat_id: int, *, is_group: bool) -> int:
        """0 and the send is counted, or the whole seconds to wait (retry_after, at least 1)."""
        limits = self.limits
        if not limits.enabled:
            return 0
        now = self.clock()
        held = self._held.get(chat_id, 0.0) - now
        if held > 0:
            return max(1, math.ceil(held))
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
            retry_after = max(1, math.ceil(worst))
            self.hold(chat_id, retry_after)
            return retry_after
        if chat is not None and limits.chat_per_second > 0:
            chat.take()
        if glob is not None and limits.global_per_second > 0:
            glob.take()
        if window is not None:
            window.append(now)
        return 0
