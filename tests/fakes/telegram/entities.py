"""Entities of formatted text: the MessageEntity value, and the builder the markup parsers share.

Offsets and lengths are UTF-16 code units, as in the Bot API. Pure; imports nothing from the fake's server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class EntityParseError(ValueError):
    """Formatting Telegram would refuse; str(exc) is the part after "can't parse entities: "."""


class EntityUrlError(ValueError):
    """A text_link URL Telegram refuses; str(exc) is the whole description after "Bad Request: "."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Entity:
    """One MessageEntity; `user` is the User dict of a text_mention."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None
    user: Mapping[str, Any] | None = field(default=None, compare=False)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length}
        for key in ("url", "language", "custom_emoji_id", "user"):
            value = getattr(self, key)
            if value is not None:
                out[key] = dict(value) if key == "user" else value
        return out


@dataclass(frozen=True, slots=True)
class Formatted:
    """Visible text and its entities, sorted by offset (outer entities first)."""

    text: str
    entities: tuple[Entity, ...] = ()

    def entities_api(self) -> list[dict[str, Any]]:
        return [entity.to_api() for entity in self.entities]


def sorted_entities(entities: list[Entity]) -> tuple[Entity, ...]:
    return tuple(sorted(entities, key=lambda e: (e.offset, -e.length)))


@dataclass(slots=True)
class OpenEntity:
    """An entity whose start has been seen; `tag` is the markup that opened it."""

    tag: str
    type: str
    start: int
    byte_offset: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None
    absorbed: bool = False  # <code> directly inside <pre>: becomes the pre's language, not an entity


class Builder:
    """Accumulates visible text while tracking the UTF-16 position for entity offsets."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._parts: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def add(self, text: str) -> None:
        self._parts.append(text)
        self.pos += utf16_len(text)

    def close(self, item: OpenEntity) -> None:
        if not item.absorbed and self.pos > item.start:
            self.entities.append(
                Entity(item.type, item.start, self.pos - item.start, item.url, item.language, item.custom_emoji_id)
            )

    def byte_offset(self, index: int) -> int:
        return len(self._source[:index].encode())

    def result(self) -> Formatted:
        return Formatted("".join(self._parts), sorted_entities(self.entities))
