"""A fake chat platform behind our `Surface` port, and virtual time, for testing core.live without waiting.

`FakePlatform` plays one bot's platform: it enforces that platform's published rules (pace per chat and
per group, calls per second overall, message and caption lengths in the platform's own unit), holds a
chat after a 429 until `retry_after`, and records every call. The rules are this module's own constants,
cited below; none comes from the `Profile` under test (a fake that took its pace from the code it checks
would pass any pace). `run_virtual` runs a coroutine on an event loop whose clock jumps to the next timer
when nothing is ready, so `asyncio.sleep` (and everything built on it) takes no real time.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import selectors
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import FormattingRejectedError, ParleyError, SurfaceError, SurfaceRateLimitError
from core.events import Completed, Event, Image, ReasoningDelta, TextDelta
from core.live.markdown import visible_text
from core.live.surface import Handle, Profile, Rendered

T = TypeVar("T")


# --- virtual time --------------------------------------------------------------------------------------


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and no timer is set (a deadlock)")
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` only moves when every task waits for a timer."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion in virtual time; returns its result."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)


def now() -> float:
    return asyncio.get_running_loop().time()


# --- the platforms' rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatformRules:
    """One platform's published limits. Windows are sliding; `unit` is how the platform counts length."""

    name: str
    max_text_units: int
    max_caption_units: int
    unit: str  # "utf16" or "codepoint"
    chat_calls: int  # at most this many message writes per chat...
    chat_window_seconds: float  # ...in any window this long
    group_calls: int  # Telegram groups: a second, slower window (0: none)
    group_window_seconds: float
    global_per_second: int
    integer_retry_after: bool  # Telegram's retry_after is whole seconds


# Telegram Bot API: sendMessage "1-4096 characters after entities parsing", captions "0-1024 characters"
# (core.telegram.org/bots/api), counted in UTF-16 code units (core.telegram.org/api/entities). Bots FAQ
# (core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this): "avoid sending more than one
# message per second in a particular chat" (short bursts pass: 3 in any 3 s here), "not ... more than 20
# messages per minute to the same group", "not more than about 30 messages per second". Edits count.
TELEGRAM_RULES = PlatformRules(
    name="telegram",
    max_text_units=4096,
    max_caption_units=1024,
    unit="utf16",
    chat_calls=3,
    chat_window_seconds=3.0,
    group_calls=20,
    group_window_seconds=60.0,
    global_per_second=30,
    integer_retry_after=True,
)
# Discord: "Message content up to 2000 characters" (Create Message), counted in code points
# (discord-api-docs#1315). Message create and edit in a channel share one bucket of 5 per 5 s (the
# X-RateLimit-* headers Discord sends for POST/PATCH /channels/{id}/messages; discord-api-docs#20).
# "All bots can make up to 50 requests per second to our API" (Rate Limits, global rate limit).
DISCORD_RULES = PlatformRules(
    name="discord",
    max_text_units=2000,
    max_caption_units=2000,
    unit="codepoint",
    chat_calls=5,
    chat_window_seconds=5.0,
    group_calls=0,
    group_window_seconds=0.0,
    global_per_second=50,
    integer_retry_after=False,
)


def length_in(text: str, unit: str) -> int:
    """Length as the platform counts it; the fake's own count, independent of core.live.split."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2 if unit == "utf16" else len(text)


def _free_in(calls: deque[float], limit: int, window: float, at: float) -> float:
    """0 if one more call fits in the sliding window now, else the seconds until one does."""
    inside = [t for t in calls if t > at - window + 1e-6]  # 1e-6: float drift of virtual time
    return 0.0 if len(inside) < limit else inside[-limit] + window - at


def _forget_before(calls: deque[float], at: float) -> None:
    while calls and calls[0] <= at:
        calls.popleft()


# --- the fake platform -----------------------------------------------------------------------------------


@dataclass
class Call:
    at: float
    kind: str
    chat: str
    message_id: str = ""
    rendered: Rendered | None = None


@dataclass
class FakePlatform:
    """One bot's view of a chat platform: limits enforced, every call recorded.

    `speed` scales the platform's time for tests in real time: 0.02 makes Telegram's second last 20 ms.
    """

    rules: PlatformRules | None = None  # None: the platform the first chat's profile is for
    speed: float = 1.0
    calls: list[Call] = field(default_factory=list)
    rate_limits: int = 0
    not_modified: int = 0
    too_long: int = 0
    rejected_formatting: int = 0
    _recent: deque[float] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def admit(self, chat: FakeSurface, kind: str) -> None:
        """Raise a 429 the way the platform would if the bot goes over its published pacing."""
        rules = chat.rules
        at = now()
        waits = [chat.held_until - at, _free_in(self._recent, rules.global_per_second, self.speed, at)]
        if kind != "delete":  # Discord deletes have their own bucket; Telegram's FAQ speaks of messages
            waits.append(_free_in(chat.writes, rules.chat_calls, rules.chat_window_seconds * self.speed, at))
            if chat.is_group and rules.group_calls:
                waits.append(_free_in(chat.writes, rules.group_calls, rules.group_window_seconds * self.speed, at))
        wait = max(waits)
        if wait > 1e-6:
            self.rate_limits += 1
            retry_after = math.ceil(wait / self.speed) * self.speed if rules.integer_retry_after else wait
            chat.held_until = at + retry_after  # calling before retry_after is refused again
            raise SurfaceRateLimitError(retry_after)
        _forget_before(self._recent, at - self.speed)
        self._recent.append(at)
        if kind != "delete":
            longest = max(rules.chat_window_seconds, rules.group_window_seconds) * self.speed
            _forget_before(chat.writes, at - longest)
            chat.writes.append(at)

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call.kind == kind)


class FakeSurface:
    """A `Surface` on the fake platform. Tests queue faults with `fail_next` and read `messages`."""

    def __init__(
        self,
        profile: Profile,
        *,
        platform: FakePlatform | None = None,
        chat_key: str = "chat-1",
        rejects_entities: bool = False,
        is_group: bool = False,
    ) -> None:
        self._profile = profile
        self._chat_key = chat_key
        self.platform = platform or FakePlatform()
        if self.platform.rules is None:  # which platform, not which limits: those are the fake's own
            self.platform.rules = TELEGRAM_RULES if profile.markup == "entities" else DISCORD_RULES
        self.rules = self.platform.rules
        self.is_group = is_group
        self.rejects_entities = rejects_entities
        self.held_until = -math.inf
        self.writes: deque[float] = deque()  # this chat's recent message writes
        self.messages: dict[str, Rendered] = {}  # id -> what the chat shows, in sending order
        self.images: dict[str, tuple[tuple[Image, ...], Rendered | None]] = {}
        self.draft_text: Rendered | None = None
        self.drafts: list[Rendered] = []
        self.typing_calls = 0
        self.first_send_at: float | None = None
        self._faults: dict[str, deque[Exception]] = {}

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def chat_key(self) -> str:
        return self._chat_key

    def fail_next(self, kind: str, error: Exception) -> None:
        self._faults.setdefault(kind, deque()).append(error)

    def _enter(self, kind: str, message_id: str = "", rendered: Rendered | None = None) -> None:
        self.platform.calls.append(Call(now(), kind, self._chat_key, message_id, rendered))
        faults = self._faults.get(kind)
        if faults:
            raise faults.popleft()
        self.platform.admit(self, kind)
        if rendered is not None:
            self._check(rendered, self.rules.max_text_units)

    def _check(self, rendered: Rendered, limit: int) -> None:
        if not rendered.text.strip():
            raise SurfaceError("message text is empty")
        if length_in(rendered.text, self.rules.unit) > limit:
            self.platform.too_long += 1
            raise SurfaceError("message is too long")
        if self.rejects_entities and rendered.entities:
            self.platform.rejected_formatting += 1
            raise FormattingRejectedError("can't parse entities")
        if any(e.type == "text_link" and "://" not in e.url for e in rendered.entities):
            # Telegram: "entity URL '…' is invalid: URL host is empty" (relative links, fragments); the
            # adapter maps that 400 on formatted text to FormattingRejectedError.
            self.platform.rejected_formatting += 1
            raise FormattingRejectedError("entity URL is invalid: URL host is empty")
        size = length_in(rendered.text, "utf16")
        assert all(e.offset >= 0 and e.length > 0 and e.offset + e.length <= size for e in rendered.entities)

    async def send(self, text: Rendered) -> Handle:
        self._enter("send", rendered=text)
        message_id = str(next(self.platform._ids))
        self.messages[message_id] = text
        self.draft_text = None
        if self.first_send_at is None:
            self.first_send_at = now()
        return Handle(message_id, self._chat_key)

    async def edit(self, handle: Handle, text: Rendered) -> None:
        self._enter("edit", handle.id, text)
        if self.messages[handle.id] == text:
            self.platform.not_modified += 1  # Telegram: "message is not modified"
        self.messages[handle.id] = text

    async def delete(self, handle: Handle) -> None:
        self._enter("delete", handle.id)
        del self.messages[handle.id]

    async def send_images(self, images: Sequence[Image], caption: Rendered | None) -> Sequence[Handle]:
        self._enter("images")
        if caption is not None:
            self._check(caption, self.rules.max_caption_units)
        message_id = str(next(self.platform._ids))
        self.images[message_id] = (tuple(images), caption)
        self.draft_text = None
        return [Handle(message_id, self._chat_key)]

    async def typing(self) -> None:
        self.typing_calls += 1
        faults = self._faults.get("typing")
        if faults:
            raise faults.popleft()

    async def draft(self, text: Rendered) -> None:
        self._enter("draft", rendered=text)
        self.draft_text = text
        self.drafts.append(text)

    def visible_texts(self) -> list[str]:
        """What a reader sees, message by message (captions included), formatting removed."""
        shown = [visible_text(rendered) for rendered in self.messages.values()]
        shown += [visible_text(caption) for _, caption in self.images.values() if caption is not None]
        return shown

    def calls(self, kind: str) -> list[Call]:
        return [c for c in self.platform.calls if c.kind == kind and c.chat == self._chat_key]


# --- event streams ---------------------------------------------------------------------------------------


async def stream(
    tokens: Sequence[str],
    *,
    interval: float = 0.01,
    reasoning: Sequence[str] = (),
    images: tuple[Image, ...] = (),
    final_text: str | None = None,
    error: ParleyError | None = None,
    error_after: int | None = None,
    complete: bool = True,
    finish_reason: str = "stop",
) -> AsyncIterator[Event]:
    """Reasoning then text tokens `interval` seconds apart, then `Completed` (or `error`)."""
    for piece in reasoning:
        await asyncio.sleep(interval)
        yield ReasoningDelta(piece)
    for index, token in enumerate(tokens):
        if error is not None and error_after == index:
            raise error
        await asyncio.sleep(interval)
        yield TextDelta(token)
    if error is not None:
        raise error
    if complete:
        text = "".join(tokens) if final_text is None else final_text
        yield Completed(text, images, "".join(reasoning), finish_reason)
