"""What Telegram stores for a text: parse_mode or `entities` applied, whitespace trimmed; auto-detected entities.

Pure functions, no I/O. Offsets and lengths are UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .entities import Entity, EntityParseError, EntityUrlError, Formatted, sorted_entities, utf16_len
from .html_style import parse_html
from .markdown_style import parse_markdown, parse_markdown_v2

__all__ = [
    "Entity",
    "EntityParseError",
    "EntityUrlError",
    "Formatted",
    "detect_entities",
    "entities_from_api",
    "format_text",
    "utf16_len",
]

ENTITY_TYPES = frozenset(
    {
        "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold", "italic",
        "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote", "code", "pre",
        "text_link", "text_mention", "custom_emoji", "date_time",
    }
)  # fmt: skip
# Trimmed from both ends of every message, as Telegram does ("  hi \n" arrives as "hi").
_TRIMMED = " \t\n\r\x0b\x0c"


def format_text(text: str, parse_mode: str | None, entities: Sequence[Any] | None) -> Formatted:
    """What Telegram stores for `text`: parsed by `entities` (which win) or `parse_mode`, then trimmed.

    Raises EntityParseError for broken markup and ValueError("unsupported parse_mode") for unknown modes.
    """
    if entities:
        parsed = Formatted(text, entities_from_api(text, entities))
    elif parse_mode is None or parse_mode == "":
        parsed = Formatted(text)
    elif parse_mode.lower() == "html":
        parsed = parse_html(text)
    elif parse_mode.lower() == "markdownv2":
        parsed = parse_markdown_v2(text)
    elif parse_mode.lower() == "markdown":
        parsed = parse_markdown(text)
    else:
        raise ValueError("unsupported parse_mode")
    return trim(parsed)


def entities_from_api(text: str, raw: Sequence[Any]) -> tuple[Entity, ...]:
    """Validate an `entities` array against `text`."""
    size = utf16_len(text)
    out: list[Entity] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise EntityParseError("entity must be an object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if kind not in ENTITY_TYPES:
            raise EntityParseError(f"unsupported entity type {kind!r}")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length <= 0:
            raise EntityParseError("entity offset and length must be non-negative integers")
        if offset + length > size:
            raise EntityParseError(f"entity ends at {offset + length}, beyond the text end ({size})")
        if kind == "text_link" and not item.get("url"):
            raise EntityParseError("text_link entity needs a url")
        if kind == "text_link":
            check_link_url(str(item["url"]))
        if kind == "custom_emoji" and not item.get("custom_emoji_id"):
            raise EntityParseError("custom_emoji entity needs a custom_emoji_id")
        if kind == "text_mention" and not isinstance(item.get("user"), Mapping):
            raise EntityParseError("text_mention entity needs a user")
        out.append(
            Entity(
                kind,
                offset,
                length,
                item.get("url"),
                item.get("language"),
                item.get("custom_emoji_id"),
                item.get("user"),
            )
        )
    return sorted_entities(out)


def check_link_url(url: str) -> None:
    """Telegram refuses a text_link whose URL has no host: relative paths ("README.md") and fragments
    ("#intro") answer 400 "entity URL '…' is invalid: URL host is empty" (observed on api.telegram.org;
    model answers hold such links all the time). Absolute URLs with a host, and tg:// links, pass."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise EntityUrlError(f"entity URL '{url}' is invalid: URL host is empty")


def trim(parsed: Formatted) -> Formatted:
    """Strip leading/trailing whitespace and clip the entities to what is left."""
    text = parsed.text
    stripped = text.strip(_TRIMMED)
    if stripped == text:
        return parsed
    start = utf16_len(text[: len(text) - len(text.lstrip(_TRIMMED))])
    end = start + utf16_len(stripped)
    kept: list[Entity] = []
    for entity in parsed.entities:
        lo, hi = max(entity.offset, start), min(entity.offset + entity.length, end)
        if hi > lo:
            kept.append(replace(entity, offset=lo - start, length=hi - lo))
    return Formatted(stripped, sorted_entities(kept))


# ------------------------------------------------------------- entities Telegram finds in what users type

_AUTO_ENTITIES = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{4,32}(?!\w)")),
    ("url", re.compile(r"(?<!\w)https?://[^\s]+")),
    ("hashtag", re.compile(r"(?<![\w#])#\w+")),
)


def detect_entities(text: str) -> tuple[Entity, ...]:
    """The mention / bot_command / url / hashtag entities Telegram attaches to a user's text."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_ENTITIES:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            taken.append(match.span())
            found.append(Entity(kind, utf16_len(text[: match.start()]), utf16_len(match.group())))
    return sorted_entities(found)
