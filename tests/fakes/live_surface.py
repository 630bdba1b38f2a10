"""A fake chat platform behind our `Surface` port, and virtual time, for testing core.live without waiting.

`FakePlatform` plays one bot's platform: it enforces the published pacing (calls per chat, calls per
second overall), message and caption limits, "message is not modified", and records every call.
`run_virtual` runs a coroutine on an event loop whose clock jumps to the next timer when nothing is ready,
so `asyncio.sleep` (and everything built on it) takes no real time.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import FormattingRejectedError, ParleyError, SurfaceError, SurfaceRateLimitError
from core.events import Completed, Event, Image, ReasoningDelta, TextDelta
from core.live.markdown import visible_text
from core.live.split import count_units
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
    """One bot's view of a chat platform: limits enforced, every call recorded."""

    requests_per_second: float = 30.0
    calls: list[Call] = field(default_factory=list)
    rate_limits: int = 0
    not_modified: int = 0
    too_long: int = 0
    rejected_formatting: int = 0
    _recent: deque[float] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def admit(self, chat: FakeSurface, kind: str) -> None:
        """Raise a 429 the way the platform would if the bot goes over its published pacing."""
        at = now()
        while self._recent and self._recent[0] <= at - 1.0 + 1e-6:  # float drift of virtual time
            self._recent.popleft()
        last = chat.last_call_at
        too_fast_for_chat = last is not None and at - last < chat.profile.edit_interval_seconds - 1e-6
        if len(self._recent) >= self.requests_per_second or too_fast_for_chat:
            self.rate_limits += 1
            raise SurfaceRateLimitError(1.0)
        self._recent.append(at)
        chat.last_call_at = at

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call.kind == kind)


class FakeSurface:
    """A `Surface` on the fake platform. Tests queue faults with `fail_next` and read `messages`."""

    def __init__(
        self, profile: Profile, *, platform: FakePlatform | None = None, chat_key: str = "chat-1",
        rejects_entities: bool = False,
    ) -> None:
        self._profile = profile
        self._chat_key = chat_key
        self.platform = platform or FakePlatform()
        self.rejects_entities = rejects_entities
        self.last_call_at: float | None = None
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
            self._check(rendered, self._profile.max_message_units)

    def _check(self, rendered: Rendered, limit: int) -> None:
        if not rendered.text.strip():
            raise SurfaceError("message text is empty")
        if count_units(rendered.text, self._profile.length_unit) > limit:
            self.platform.too_long += 1
            raise SurfaceError("message is too long")
        if self.rejects_entities and rendered.entities:
            self.platform.rejected_formatting += 1
            raise FormattingRejectedError("can't parse entities")
        size = count_units(rendered.text, "utf16")
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
            self._check(caption, self._profile.caption_max_units)
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
    tokens: Sequence[str], *, interval: float = 0.01, reasoning: Sequence[str] = (),
    images: tuple[Image, ...] = (), final_text: str | None = None, error: ParleyError | None = None,
    error_after: int | None = None, complete: bool = True, finish_reason: str = "stop",
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
