"""The port a chat platform implements for live replies (`Surface`), its `Profile`, and the values crossing it.

Imports only the stdlib and core.events; adapters (bots/) implement `Surface`, core.live drives it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from core.events import Image

Markup = Literal["plain", "entities", "markdown"]
"""How `Rendered.text` is to be sent.

plain     The text as it is: no formatting, nothing parsed.
entities  `text` plus `entities`: formatting as spans over the text, which itself is not parsed.
markdown  `text` is Markdown the platform parses (plain text comes escaped).
"""

Dialect = Literal["entities", "markdown"]
"""How a platform formats a message: the `Markup` of its formatted text (plain text is always possible)."""

LengthUnit = Literal["utf16", "codepoint"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A formatting span of the "entities" dialect: `type` names it (bold, text_link, ...); offset and
    length count UTF-16 code units."""

    type: str
    offset: int
    length: int
    url: str = ""
    language: str = ""


EntityConverter = Callable[[str], tuple[str, Sequence[Entity]]]
"""Markdown to plain text plus entities: the "entities" dialect's parser, given by the adapter whose
platform takes entities (the converter knows that platform's entity types)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message body ready for one platform call. Equal values show the same thing on screen."""

    text: str
    markup: Markup = "plain"
    entities: tuple[Entity, ...] = ()


@dataclass(frozen=True, slots=True)
class Handle:
    """A message the surface sent; ids are strings on every platform."""

    id: str
    chat_id: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    """What the engine must know about a platform (and a kind of chat) to pace and cut a reply.

    Adapters build it from their platform's limits and the settings. `markup` is the dialect of formatted
    text. Lengths are counted in `length_unit` on the rendered text, as the platform counts them; a live
    preview may add up to `live_reserve_units` to its source (a closed code fence), so that much room is
    kept in every message. `edit_interval_seconds` spaces every call into one chat (shared by all replies
    in it); `typing_interval_seconds` re-sends the typing action; `supports_draft` drafts the growing
    message instead of editing it, re-sent every `draft_refresh_seconds` so it does not expire.
    `to_entities` parses Markdown for the "entities" dialect (required there, unused for "markdown").
    """

    markup: Dialect
    max_message_units: int
    caption_max_units: int
    length_unit: LengthUnit
    edit_interval_seconds: float
    typing_interval_seconds: float
    live_reserve_units: int = 0
    supports_draft: bool = False
    draft_refresh_seconds: float = 0.0
    to_entities: EntityConverter | None = None

    def __post_init__(self) -> None:
        if self.markup == "entities" and self.to_entities is None:
            raise ValueError("a profile of the entities dialect needs to_entities")
        if self.supports_draft and self.draft_refresh_seconds <= 0:
            raise ValueError("a profile with drafts needs draft_refresh_seconds")


class Surface(Protocol):
    """One chat, seen by one live reply. Each method is one platform call.

    Platform errors are mapped: a 429 raises `SurfaceRateLimitError(retry_after)`, a refused markup
    `FormattingRejectedError`; "message is not modified" is swallowed (the engine never provokes it).
    Any other failure may raise `SurfaceError` or propagate. `chat_key` names the chat, so that replies
    in the same chat share its pacing. `send` may send the first message as a reply to the user's message.
    """

    @property
    def profile(self) -> Profile: ...

    @property
    def chat_key(self) -> str: ...

    async def send(self, text: Rendered) -> Handle: ...

    async def edit(self, handle: Handle, text: Rendered) -> None: ...

    async def delete(self, handle: Handle) -> None: ...

    async def send_images(self, images: Sequence[Image], caption: Rendered | None) -> Sequence[Handle]: ...

    async def typing(self) -> None: ...

    async def draft(self, text: Rendered) -> None:
        """A native draft of the growing message; called only when `profile.supports_draft`. The next
        `send` replaces it."""
        ...


@dataclass(frozen=True, slots=True)
class Labels:
    """The few words the engine shows itself; adapters may translate them."""

    thinking: str = "💭 Thinking…"
    tool_running: str = "🔧 {names}…"  # while tools run; `{names}`: theirs
    note_prefix: str = "⚠️ "
    empty_answer: str = "The model returned an empty answer."
    truncated_reasoning: str = "…"


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """What a live reply left on screen, for the adapter to store."""

    handles: tuple[Handle, ...]
    text: str
    is_complete: bool
    error_message: str = ""
    images_sent: int = 0
