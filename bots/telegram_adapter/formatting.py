"""Markdown to Telegram's text plus entities: the Telegram profile's `to_entities`.

telegramify-markdown converts on pulldown-cmark (pyromark); Telegram then parses nothing, and lengths are
counted on exactly the text it receives (UTF-16). Imports only `core` and the converter.
"""

from __future__ import annotations

from telegramify_markdown import convert

from core import Entity


def markdown_to_entities(source: str) -> tuple[str, tuple[Entity, ...]]:
    text, entities = convert(source)
    return text, tuple(Entity(e.type, e.offset, e.length, e.url or "", e.language or "") for e in entities)
