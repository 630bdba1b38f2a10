"""The port a chat platform implements for live replies (`Surface`), its `Profile`, and the values crossing it.

Imports only the stdlib and core.events; adapters (bots/) implement `Surface`, core.live drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from core.events import Image

Markup = Literal["plain", "entities", "markdown"]
"""How `Rendered.text` is to be sent.

plain     Telegram: no parse_mode, no entities.
entities  Telegram: `text` plus `entities` (MessageEntity values); no parse_mode.
markdown  Discord: `content` as it is (Discord always parses Markdown; plain text comes escaped).
"""

LengthUnit = Literal["utf16", "codepoint"]


@dataclass(frozen=True, slots=True)
class Entity:
    """A Telegram MessageEntity: `type` is the Bot API name, offset and length count UTF-16 code units."""

    type: str
    offset: int
    length: int
    url: str = ""
    language: str = ""


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

    `markup` picks the renderer: "telegram" (entities) or "discord" (Markdown). Lengths are counted in
    `length_unit` on the rendered text, as the platform counts them. `edit_interval_seconds` spaces every
    call into one chat (shared by all replies in it); `typing_interval_seconds` re-sends the typing action.
    """

    markup: Literal["telegram", "discord"]
    max_message_units: int
    caption_max_units: int
    length_unit: LengthUnit
    edit_interval_seconds: float
    typing_interval_seconds: float
    supports_draft: bool = False
    # A draft is "a temporary 30-second preview" (Bot API sendMessageDraft): refresh it before then.
    draft_refresh_seconds: float = 20.0


# Telegram: 4096 UTF-16 code units of text after entity parsing, captions 1024 (Bot API sendMessage,
# sendPhoto; core.telegram.org/api/entities for the unit). Bot FAQ "My bot is hitting limits": avoid
# more than one message per second in a chat; no more than 20 messages per minute to the same group.
# sendChatAction: "The status is set for 5 seconds or less", hence a re-send every 4.5 s.
TELEGRAM_PRIVATE = Profile(
    markup="telegram", max_message_units=4096, caption_max_units=1024, length_unit="utf16",
    edit_interval_seconds=1.0, typing_interval_seconds=4.5,
)
TELEGRAM_GROUP = Profile(
    markup="telegram", max_message_units=4096, caption_max_units=1024, length_unit="utf16",
    edit_interval_seconds=3.0, typing_interval_seconds=4.5,
)
# Discord: 2000 characters of content, counted in code points ("Our API uses Python 3, so the API
# calculates length based on the number of codepoints", discord-api-docs#1315). Per channel, message
# creation and editing share 5 per 5 s (discord-api-docs#20); 1.25 s leaves room for typing and commands.
# The typing indicator lasts about 10 s (Trigger Typing Indicator), so every 8 s keeps it on.
DISCORD = Profile(
    markup="discord", max_message_units=2000, caption_max_units=2000, length_unit="codepoint",
    edit_interval_seconds=1.25, typing_interval_seconds=8.0,
)


def telegram_profile(*, is_group: bool, drafts: bool = False) -> Profile:
    """The Telegram profile for a chat; `drafts` turns on sendMessageDraft (private chats only)."""
    base = TELEGRAM_GROUP if is_group else TELEGRAM_PRIVATE
    return replace(base, supports_draft=True) if drafts and not is_group else base


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
        """Telegram sendMessageDraft; called only when `profile.supports_draft`. The next `send` replaces it."""
        ...


@dataclass(frozen=True, slots=True)
class Labels:
    """The few words the engine shows itself; adapters may translate them."""

    thinking: str = "💭 Thinking…"
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
